"""Taxpayers (the rest of the tax model arrives with the taxes module)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from platforma.core.db import Base, UTCDateTime, utcnow


class Taxpayer(Base):
    """Podatnik: a natural person (PESEL) or a business or other legal person (NIP, REGON)."""

    __tablename__ = "taxpayer"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('natural', 'legal')", name="kind"),
        sa.CheckConstraint(
            "(kind = 'natural' AND last_name <> '') OR (kind = 'legal' AND name <> '')", name="named"
        ),
        sa.CheckConstraint("kind = 'natural' OR nip IS NOT NULL", name="legal_has_nip"),
        # a record that came from the gmina's domain system is found again by its key there
        sa.UniqueConstraint("source", "source_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "natural" (osoba fizyczna) or "legal" (osoba prawna, jednostka organizacyjna)
    kind: Mapped[str] = mapped_column(sa.String(8))
    first_name: Mapped[str] = mapped_column(sa.String(100), default="")
    last_name: Mapped[str] = mapped_column(sa.String(100), default="")
    #: the registered name of a legal person
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    pesel: Mapped[str | None] = mapped_column(sa.String(11), unique=True)
    nip: Mapped[str | None] = mapped_column(sa.String(10), index=True)
    regon: Mapped[str | None] = mapped_column(sa.String(14))
    street: Mapped[str] = mapped_column(sa.String(200), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(6), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    #: where the record comes from: "local" or a domain system's plugin id
    source: Mapped[str] = mapped_column(sa.String(32), default="local")
    #: the record's key in its source system
    source_key: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def display_name(self) -> str:
        if self.kind == "legal":
            return self.name
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def identifier_label(self) -> str:
        if self.kind == "natural" and self.pesel:
            return f"PESEL {self.pesel}"
        return f"NIP {self.nip}" if self.nip else ""

    @property
    def address(self) -> str:
        return f"{self.street}, {self.postal_code} {self.city}".strip(", ")
