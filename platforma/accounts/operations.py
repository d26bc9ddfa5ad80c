"""The verbs of accounts: register, authenticate, confirm, reset, enrol TOTP, link taxpayers.

They take a session and never commit; the request or command that calls them owns the transaction.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from platforma.accounts import totp
from platforma.accounts.models import LoginAttempt, TaxpayerAccess, User
from platforma.accounts.passwords import hash_password, needs_rehash, verify_password
from platforma.config import Settings
from platforma.core import audit
from platforma.core.db import utcnow
from platforma.core.mail import queue_mail
from platforma.core.runtime import Runtime
from platforma.taxes.models import Taxpayer

CONFIRM_MAX_AGE = dt.timedelta(days=3)
RESET_MAX_AGE = dt.timedelta(hours=1)


class AccountError(Exception):
    """A refusal with a message for the person (Polish)."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(sa.select(User).where(User.email == normalise_email(email))).first()


def create_user(
    session: Session, *, email: str, full_name: str, password: str, role: str = "resident", confirmed: bool = False
) -> User:
    email = normalise_email(email)
    if find_user(session, email) is not None:
        raise AccountError(_l("Konto z tym adresem e-mail już istnieje."))
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=role,
        password_hash=hash_password(password),
        email_confirmed_at=utcnow() if confirmed else None,
    )
    session.add(user)
    session.flush()
    return user


# -- tokens sent by mail ---------------------------------------------------------------------------

def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.server.secret_key, salt=f"platforma.{purpose}")


def confirmation_token(settings: Settings, user: User) -> str:
    return _serializer(settings, "confirm-email").dumps({"u": user.id, "e": user.email})


def reset_token(settings: Settings, user: User) -> str:
    # the hash fragment makes the link single-use: a new password invalidates it
    return _serializer(settings, "reset-password").dumps({"u": user.id, "p": user.password_hash[-16:]})


def _load(settings: Settings, purpose: str, token: str, max_age: dt.timedelta) -> dict[str, Any]:
    try:
        return _serializer(settings, purpose).loads(token, max_age=int(max_age.total_seconds()))
    except SignatureExpired:
        raise AccountError(_l("Link wygasł. Poproś o nowy.")) from None
    except BadSignature:
        raise AccountError(_l("Link jest nieprawidłowy albo został już użyty.")) from None


def send_confirmation(session: Session, runtime: Runtime, user: User) -> None:
    settings = runtime.settings
    link = f"{settings.server.base_url}/konto/potwierdz/{confirmation_token(settings, user)}"
    queue_mail(
        session,
        runtime,
        to=user.email,
        subject=f"{settings.gmina.office_name}: potwierdź adres e-mail",
        text=(
            f"Dzień dobry,\n\nzałożono konto w serwisie {settings.gmina.service_name} ({settings.gmina.name}).\n"
            f"Aby potwierdzić adres e-mail, otwórz link (ważny 3 dni):\n\n{link}\n\n"
            "Jeśli to nie Ty zakładałeś konto, zignoruj tę wiadomość.\n\n"
            f"{settings.gmina.office_name}\n"
        ),
    )


def confirm_email(session: Session, settings: Settings, token: str) -> User:
    data = _load(settings, "confirm-email", token, CONFIRM_MAX_AGE)
    user = session.get(User, data.get("u"))
    if user is None or user.email != data.get("e"):
        raise AccountError(_l("Link jest nieprawidłowy albo został już użyty."))
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        audit.record(session, "account.email_confirmed", actor=user, object_type="user", object_id=user.id)
    return user


def send_password_reset(session: Session, runtime: Runtime, email: str) -> None:
    """Mail a reset link if the account exists; the caller says the same thing either way."""
    user = find_user(session, email)
    if user is None or not user.is_active:
        return
    settings = runtime.settings
    link = f"{settings.server.base_url}/konto/haslo/nowe/{reset_token(settings, user)}"
    queue_mail(
        session,
        runtime,
        to=user.email,
        subject=f"{settings.gmina.office_name}: ustawienie nowego hasła",
        text=(
            "Dzień dobry,\n\notrzymaliśmy prośbę o ustawienie nowego hasła do Twojego konta.\n"
            f"Otwórz link (ważny 1 godzinę, jednorazowy):\n\n{link}\n\n"
            "Jeśli to nie Ty, zignoruj tę wiadomość: hasło pozostanie bez zmian.\n\n"
            f"{settings.gmina.office_name}\n"
        ),
    )


def user_for_reset(session: Session, settings: Settings, token: str) -> User:
    data = _load(settings, "reset-password", token, RESET_MAX_AGE)
    user = session.get(User, data.get("u"))
    if user is None or user.password_hash[-16:] != data.get("p"):
        raise AccountError(_l("Link jest nieprawidłowy albo został już użyty."))
    return user


def set_password(session: Session, user: User, password: str) -> None:
    from platforma.accounts.sessions import end_all

    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    end_all(session, user, "password_changed")


# -- login: throttling and lockout, kept in the database so that they hold across processes --------

@dataclass
class LoginResult:
    user: User | None
    outcome: str  # success, password_ok, bad_password, unknown_user, locked, inactive, unconfirmed, throttled

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


def locked_until(session: Session, settings: Settings, user: User, now: dt.datetime | None = None) -> dt.datetime | None:
    """The end of a lockout: `login_max_failures` failed attempts in a row within the lockout window.

    Attempts refused during a lockout do not prolong it; a new password (reset by mail) lifts it.
    """
    now = now or utcnow()
    window = dt.timedelta(minutes=settings.security.lockout_minutes)
    since = max(now - window, user.password_changed_at)
    recent = session.scalars(
        sa.select(LoginAttempt)
        .where(
            LoginAttempt.user_id == user.id,
            LoginAttempt.at > since,
            LoginAttempt.outcome.in_(("bad_password", "bad_totp", "success")),
        )
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
        .limit(settings.security.login_max_failures)
    ).all()
    if len(recent) < settings.security.login_max_failures or any(a.outcome == "success" for a in recent):
        return None
    return recent[0].at + window


def ip_throttled(session: Session, settings: Settings, ip: str, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    failures = session.scalar(
        sa.select(sa.func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.ip == ip, LoginAttempt.at > now - dt.timedelta(hours=1), LoginAttempt.outcome != "success")
    )
    return (failures or 0) >= settings.security.ip_max_failures_per_hour


def record_attempt(
    session: Session, *, email: str, user: User | None, outcome: str, stage: str, ip: str, user_agent: str
) -> None:
    session.add(
        LoginAttempt(
            email=normalise_email(email)[:254],
            user_id=user.id if user else None,
            outcome=outcome,
            stage=stage,
            ip=ip,
            user_agent=user_agent,
        )
    )


def check_password(session: Session, settings: Settings, email: str, password: str, *, ip: str, user_agent: str) -> LoginResult:
    """The first step of logging in. Every attempt is recorded."""
    if ip_throttled(session, settings, ip):
        return LoginResult(None, "throttled")
    user = find_user(session, email)
    outcome: str
    if user is None:
        verify_password(None, password)  # same work as for a real account
        outcome = "unknown_user"
    elif locked_until(session, settings, user) is not None:
        outcome = "locked"
    elif not verify_password(user.password_hash, password):
        outcome = "bad_password"
    elif not user.is_active:
        outcome = "inactive"
    elif user.email_confirmed_at is None:
        outcome = "unconfirmed"
    else:
        outcome = "success" if not user.needs_totp and not user.has_totp else "password_ok"
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
    if outcome != "password_ok":
        record_attempt(session, email=email, user=user, outcome=outcome, stage="password", ip=ip, user_agent=user_agent)
    if outcome == "bad_password" and user is not None and locked_until(session, settings, user) is not None:
        outcome = "locked"
    return LoginResult(user if outcome in ("success", "password_ok") else None, outcome)


def check_totp(session: Session, settings: Settings, user: User, code: str, *, ip: str, user_agent: str) -> LoginResult:
    """The second step, for accounts with two-factor authentication."""
    if locked_until(session, settings, user) is not None:
        record_attempt(session, email=user.email, user=user, outcome="locked", stage="totp", ip=ip, user_agent=user_agent)
        return LoginResult(None, "locked")
    step = totp.verify(user.totp_secret or "", code, user.totp_last_step)
    if step is None:
        record_attempt(session, email=user.email, user=user, outcome="bad_totp", stage="totp", ip=ip, user_agent=user_agent)
        return LoginResult(None, "bad_totp")
    user.totp_last_step = step
    record_attempt(session, email=user.email, user=user, outcome="success", stage="totp", ip=ip, user_agent=user_agent)
    return LoginResult(user, "success")


def confirm_totp_enrolment(session: Session, user: User, secret: str, code: str) -> bool:
    step = totp.verify(secret, code, None)
    if step is None:
        return False
    user.totp_secret = secret
    user.totp_confirmed_at = utcnow()
    user.totp_last_step = step
    audit.record(session, "account.totp_enabled", actor=user, object_type="user", object_id=user.id)
    return True


def login_history(session: Session, user: User, limit: int = 50) -> list[LoginAttempt]:
    return list(
        session.scalars(
            sa.select(LoginAttempt)
            .where(LoginAttempt.user_id == user.id)
            .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
            .limit(limit)
        )
    )


# -- the taxpayers a user may act for --------------------------------------------------------------

def taxpayers_of(session: Session, user: User) -> list[TaxpayerAccess]:
    return list(
        session.scalars(
            sa.select(TaxpayerAccess)
            .where(TaxpayerAccess.user_id == user.id, TaxpayerAccess.revoked_at.is_(None))
            .order_by(TaxpayerAccess.relation.desc(), TaxpayerAccess.id)
        )
    )


def link_taxpayer(
    session: Session, *, user: User, taxpayer: Taxpayer, relation: str, granted_by: User | None, note: str = "",
    ip: str = "", user_agent: str = ""
) -> TaxpayerAccess:
    existing = session.scalars(
        sa.select(TaxpayerAccess).where(
            TaxpayerAccess.user_id == user.id,
            TaxpayerAccess.taxpayer_id == taxpayer.id,
            TaxpayerAccess.revoked_at.is_(None),
        )
    ).first()
    if existing is not None:
        raise AccountError(_l("To konto jest już powiązane z tym podatnikiem."))
    access = TaxpayerAccess(
        user_id=user.id, taxpayer_id=taxpayer.id, relation=relation, granted_by_id=granted_by.id if granted_by else None, note=note
    )
    session.add(access)
    session.flush()
    audit.record(
        session, "taxpayer_access.granted", actor=granted_by, object_type="user", object_id=user.id,
        taxpayer_id=taxpayer.id, details={"relation": relation, "note": note, "user_email": user.email},
        ip=ip, user_agent=user_agent,
    )
    return access


def revoke_taxpayer_access(
    session: Session, access: TaxpayerAccess, *, revoked_by: User, ip: str = "", user_agent: str = ""
) -> None:
    if access.revoked_at is not None:
        return
    access.revoked_at = utcnow()
    access.revoked_by_id = revoked_by.id
    audit.record(
        session, "taxpayer_access.revoked", actor=revoked_by, object_type="user", object_id=access.user_id,
        taxpayer_id=access.taxpayer_id, details={"relation": access.relation}, ip=ip, user_agent=user_agent,
    )
