"""Time-based one-time passwords (RFC 6238) with pyotp; a code is never accepted twice."""
from __future__ import annotations

import datetime as dt

import pyotp
import segno

from platforma.core.db import utcnow


def new_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """An inline SVG QR code of the provisioning URI (no script, no external image)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#0b0c0c", light="#ffffff", title="Kod QR do aplikacji uwierzytelniającej")


def verify(secret: str, code: str, last_step: int | None, now: dt.datetime | None = None) -> int | None:
    """The accepted time step, or None. One step of clock drift either way is tolerated."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = now or utcnow()
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
