"""The reads that the letters' pages need."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, undefer

from platforma.accounts.models import TaxpayerAccess, User
from platforma.episma.models import Department, Letter, LetterEvent, LetterExport, LetterFile, Reply

INBOX_PAGE = 50


def letters_of(session: Session, user: User, limit: int = 500) -> list[Letter]:
    """The user's own letters (drafts too) and the filed letters of the taxpayers they act for."""
    linked = sa.select(TaxpayerAccess.taxpayer_id).where(TaxpayerAccess.user_id == user.id,
                                                         TaxpayerAccess.revoked_at.is_(None))
    return list(session.scalars(
        sa.select(Letter).where(sa.or_(Letter.author_id == user.id,
                                       sa.and_(Letter.status != "draft", Letter.taxpayer_id.in_(linked))))
        .order_by(Letter.updated_at.desc(), Letter.id.desc()).limit(limit)
    ))


def unread_replies(session: Session, letter_ids: list[int]) -> dict[int, int]:
    if not letter_ids:
        return {}
    rows = session.execute(sa.select(Reply.letter_id, sa.func.count(Reply.id))
                           .where(Reply.letter_id.in_(letter_ids), Reply.read_at.is_(None))
                           .group_by(Reply.letter_id))
    return {letter_id: count for letter_id, count in rows}


def file_content(session: Session, letter: Letter, role: str) -> bytes:
    return session.scalars(sa.select(LetterFile.content).where(LetterFile.letter_id == letter.id,
                                                               LetterFile.role == role)).first()


def receipt_file(session: Session, letter: Letter) -> LetterFile | None:
    return session.scalars(sa.select(LetterFile).where(LetterFile.letter_id == letter.id, LetterFile.role == "receipt")
                           .options(undefer(LetterFile.content))).first()


@dataclass
class FiledLetter:
    """A filed letter as its pages show it: read again from the signed content that was stored."""

    parsed: Any | None  # ParsedLetter; None for a free-form signed PDF
    xml: bytes | None  # the form's XML the signature covers
    sections: list
    files: list[LetterFile]
    events: list[LetterEvent]
    replies: list[Reply]
    exports: list[LetterExport]
    department: Department | None
    assignee: User | None

    @property
    def signed(self) -> LetterFile:
        return next(f for f in self.files if f.role == "signed")

    @property
    def attachments(self) -> list[LetterFile]:
        return [f for f in self.files if f.role == "attachment"]

    @property
    def receipt(self) -> LetterFile | None:
        return next((f for f in self.files if f.role == "receipt"), None)


def signed_xml(session: Session, letter: Letter, max_bytes: int) -> bytes | None:
    """The form's XML that the signature covers: the content itself (XAdES) or the XML embedded in the
    signed revision of the PDF (PAdES); None for a free-form signed PDF."""
    content = file_content(session, letter, "content")
    if letter.signature_kind == "xades":
        return content
    from platforma.esign.pades import embedded_files

    # the bound of the filing (the signed document's limit): embedded files are compressed, so the PDF's own
    # size is no bound on what they hold
    return embedded_files(content, max_bytes=max(max_bytes, len(content))).get(f"{letter.form_code}.xml")


def filed_letter(session: Session, letter: Letter, max_bytes: int) -> FiledLetter:
    from platforma.episma.forms import parse_letter

    xml = signed_xml(session, letter, max_bytes)
    parsed = parse_letter(xml) if xml is not None else None
    files = list(session.scalars(sa.select(LetterFile).where(LetterFile.letter_id == letter.id,
                                                             LetterFile.reply_id.is_(None)).order_by(LetterFile.id)))
    events = list(session.scalars(sa.select(LetterEvent).where(LetterEvent.letter_id == letter.id).order_by(LetterEvent.id)))
    replies = list(session.scalars(sa.select(Reply).where(Reply.letter_id == letter.id).order_by(Reply.id)))
    exports = list(session.scalars(sa.select(LetterExport).where(LetterExport.letter_id == letter.id)
                                   .order_by(LetterExport.id)))
    return FiledLetter(
        parsed=parsed, xml=xml, sections=parsed.form.summary(parsed.data) if parsed else [], files=files,
        events=events, replies=replies, exports=exports,
        department=session.get(Department, letter.department_id) if letter.department_id else None,
        assignee=session.get(User, letter.assignee_id) if letter.assignee_id else None,
    )


@dataclass(frozen=True)
class InboxFilter:
    status: str = ""
    department_id: int | None = None
    mine: bool = False
    query: str = ""


def inbox(session: Session, user: User, chosen: InboxFilter, page: int = 1) -> tuple[list[tuple[Letter, str]], int]:
    """Filed letters for the registry office, newest first, with their authors' names; and the total."""
    conditions = [Letter.status != "draft"]
    if chosen.status:
        conditions.append(Letter.status == chosen.status)
    if chosen.department_id:
        conditions.append(Letter.department_id == chosen.department_id)
    if chosen.mine:
        conditions.append(Letter.assignee_id == user.id)
    text = chosen.query.strip()
    if text:
        pattern = f"%{text.lower()}%"
        conditions.append(sa.or_(sa.func.lower(Letter.registration_number).like(pattern),
                                 sa.func.lower(Letter.title).like(pattern),
                                 sa.func.lower(Letter.signer_name).like(pattern),
                                 sa.func.lower(User.full_name).like(pattern),
                                 Letter.signer_pesel == text, Letter.signer_nip == text,
                                 sa.func.lower(Letter.case_reference).like(pattern)))
    base = sa.select(Letter, User.full_name).join(User, User.id == Letter.author_id).where(*conditions)
    total = session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
    rows = session.execute(base.order_by(Letter.received_at.desc(), Letter.id.desc())
                           .offset((max(page, 1) - 1) * INBOX_PAGE).limit(INBOX_PAGE)).all()
    return list(rows), total


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(Letter.status, sa.func.count(Letter.id)).where(Letter.status != "draft")
                           .group_by(Letter.status))
    return {status: count for status, count in rows}


@dataclass(frozen=True)
class StampDuty:
    amount: Decimal
    paid: bool
    #: a payment started and not yet confirmed by the gateway
    pending_reference: str | None
    pay_url: str | None = None


def stamp_duty_state(session: Session, letter: Letter) -> StampDuty | None:
    """The stamp duty of a filed letter and whether its online payment is confirmed."""
    if letter.stamp_duty is None or letter.status == "draft":
        return None
    from platforma.episma.fees import fee_paid, fee_payments

    payments = fee_payments(session, letter)
    paid = fee_paid(session, letter, payments)
    pending = next((p.reference for p in reversed(payments) if p.state in ("created", "pending")), None)
    return StampDuty(letter.stamp_duty, paid, pending)
