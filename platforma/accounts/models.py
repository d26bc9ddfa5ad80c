"""User accounts, sessions, login attempts and the taxpayers a user may act for."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from platforma.core.db import Base, UTCDateTime, utcnow
from platforma.taxes.models import Taxpayer

ROLES = ("resident", "clerk", "admin")
#: roles whose accounts must use two-factor authentication
ROLES_REQUIRING_TOTP = ("clerk", "admin")


class User(Base):
    __tablename__ = "user_account"
    __table_args__ = (sa.CheckConstraint("role IN ('resident', 'clerk', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the login; stored lower-case
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    #: resident (mieszkaniec), clerk (urzędnik) or admin (administrator instancji)
    role: Mapped[str] = mapped_column(sa.String(16), default="resident")
    #: argon2id hash
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    email_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: base32 TOTP secret; set while enrolling, trusted once totp_confirmed_at is set
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the last accepted TOTP time step, so that a code is never accepted twice
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_active: Mapped[bool] = mapped_column(default=True)
    #: what the person declared about themself, for a clerk to check before linking taxpayers
    phone: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    declared_pesel: Mapped[str | None] = mapped_column(sa.String(11))
    declared_nip: Mapped[str | None] = mapped_column(sa.String(10))
    #: the person's own account for refunds of overpayments (zwrot nadpłaty)
    refund_nrb: Mapped[str | None] = mapped_column(sa.String(26))
    locale: Mapped[str] = mapped_column(sa.String(5), default="pl")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def needs_totp(self) -> bool:
        return self.role in ROLES_REQUIRING_TOTP

    @property
    def has_totp(self) -> bool:
        return self.totp_confirmed_at is not None and bool(self.totp_secret)


class UserSession(Base):
    """A signed-in session; the browser holds a random token, the database its SHA-256."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the absolute end of the session, whatever the activity
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: logout, idle, expired, password_changed, admin
    end_reason: Mapped[str] = mapped_column(sa.String(32), default="")
    ip: Mapped[str] = mapped_column(sa.String(45), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """Every attempt to log in, kept in the database so that lockout holds across processes."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_user_at", "user_id", "at"),
        sa.Index("ix_login_attempt_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    email: Mapped[str] = mapped_column(sa.String(254))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    #: success, bad_password, unknown_user, locked, bad_totp, inactive
    outcome: Mapped[str] = mapped_column(sa.String(16))
    #: the step that was attempted: password or totp
    stage: Mapped[str] = mapped_column(sa.String(8), default="password")
    ip: Mapped[str] = mapped_column(sa.String(45), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")

    @property
    def failed(self) -> bool:
        return self.outcome != "success"


class TaxpayerAccess(Base):
    """The taxpayers a user may act for: themself, or as a representative (pełnomocnik)."""

    __tablename__ = "taxpayer_access"
    __table_args__ = (
        sa.CheckConstraint("relation IN ('self', 'representative')", name="relation"),
        sa.Index(
            "uq_taxpayer_access_active",
            "user_id",
            "taxpayer_id",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    taxpayer_id: Mapped[int] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    relation: Mapped[str] = mapped_column(sa.String(16), default="self")
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    taxpayer: Mapped[Taxpayer] = relationship()
