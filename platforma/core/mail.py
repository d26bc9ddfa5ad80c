"""Mail, queued in the transaction and sent after commit by the job outbox."""
from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from platforma.core.jobs import enqueue, job_handler
from platforma.core.runtime import Runtime


def queue_mail(session: Session, runtime: Runtime, *, to: str, subject: str, text: str) -> None:
    enqueue(session, runtime, "mail.send", {"to": to, "subject": subject, "text": text})


def build_message(runtime: Runtime, payload: dict[str, Any]) -> EmailMessage:
    settings = runtime.settings
    message = EmailMessage()
    message["From"] = formataddr((settings.gmina.office_name, settings.mail.sender))
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail.sender.rsplit("@", 1)[-1])
    message.set_content(payload["text"])
    return message


@job_handler("mail.send")
def send_mail(runtime: Runtime, payload: dict[str, Any]) -> None:
    config = runtime.settings.mail
    message = build_message(runtime, payload)
    if config.backend == "file":
        folder = runtime.settings.instance_path(config.file_dir)
        folder.mkdir(parents=True, exist_ok=True)
        target = Path(folder, f"{uuid.uuid4().hex}.eml")
        target.write_bytes(bytes(message))
        return
    if config.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout_seconds, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
    with client:
        if config.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if config.username:
            client.login(config.username, config.password)
        client.send_message(message)
