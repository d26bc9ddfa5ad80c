"""The legal pages an administrator edits: each save is a new version, older ones stay."""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from platforma.core.db import Base, UTCDateTime, utcnow

LEGAL_PAGES = ("deklaracja-dostepnosci", "regulamin", "rodo")


class LegalPageVersion(Base):
    __tablename__ = "legal_page_version"
    __table_args__ = (
        sa.UniqueConstraint("slug", "version"),
        sa.CheckConstraint(
            "slug IN ('deklaracja-dostepnosci', 'regulamin', 'rodo')", name="slug"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(32))
    version: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(200))
    #: Markdown (regulamin, RODO) with raw HTML disabled
    body: Mapped[str] = mapped_column(sa.Text, default="")
    #: the structured fields of the accessibility declaration
    fields: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
