"""The append-only audit log: who did or saw what, when, on whose behalf and from where.

Entries are written in the same transaction as the change they describe. Nothing in the application
updates or deletes them: the ORM refuses it, and database triggers refuse it too.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from platforma.core.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: when it happened (UTC)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: the user who acted; null for the system and for anonymous requests
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    #: the actor's e-mail at that moment, kept even if the account changes later
    actor_label: Mapped[str] = mapped_column(sa.String(254), default="")
    #: what happened, a stable dotted code such as "taxpayer.view" or "access.denied"
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(sa.String(64))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: the taxpayer whose data was seen or changed
    taxpayer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    #: the taxpayer the actor acted for, when acting as a representative
    on_behalf_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("taxpayer.id"))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    ip: Mapped[str] = mapped_column(sa.String(45), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEntry):
            raise RuntimeError("audit entries are append-only")


# Triggers for both databases; created by the first migration.
APPEND_ONLY_TABLES = ("audit_entry", "login_attempt", "legal_page_version")


def append_only_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
        ]
    return [
        "CREATE OR REPLACE FUNCTION platforma_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION platforma_append_only()",
    ]


def record(
    session: Session,
    action: str,
    *,
    actor: Any = None,
    object_type: str | None = None,
    object_id: Any = None,
    taxpayer_id: int | None = None,
    on_behalf_of_id: int | None = None,
    details: dict[str, Any] | None = None,
    ip: str = "",
    user_agent: str = "",
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None),
        actor_label=getattr(actor, "email", "") or "",
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        taxpayer_id=taxpayer_id,
        on_behalf_of_id=on_behalf_of_id,
        details=details or {},
        ip=ip[:45],
        user_agent=user_agent[:300],
    )
    session.add(entry)
    return entry
