"""Letters (e-pisma): drafts, filed letters and their files, the register of incoming mail, receipts,
replies and exports to the gmina's document management.

A filed letter and everything it was filed with are history (DESIGN.md, rule 4): the files of a letter
(``letter_file``) and its events (``letter_event``) are append-only, and the columns of ``letter`` that
describe what was filed are written once, when it is filed; later changes (assignment, status) are
recorded as events too. A draft is the resident's own working copy and may change or go away.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from platforma.core.db import Base, Money, UTCDateTime, utcnow

#: draft: the resident's working copy; received: filed, stored, entered in the register of incoming mail;
#: registered: the registry office assigned it (department, clerk, file code); in_progress: being dealt
#: with; answered: the office replied; closed: the matter is finished
LETTER_STATUSES = ("draft", "received", "registered", "in_progress", "answered", "closed")

#: the kancelaria moves a letter along these edges only (a reply moves it to "answered" by itself)
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"received"}),
    "received": frozenset({"registered", "closed"}),
    "registered": frozenset({"registered", "in_progress", "answered", "closed"}),
    "in_progress": frozenset({"registered", "answered", "closed"}),
    "answered": frozenset({"in_progress", "answered", "closed"}),
    "closed": frozenset({"in_progress"}),
}

#: how a letter was signed: an XML document with XAdES, or a PDF with PAdES
SIGNATURE_KINDS = ("xades", "pades")

#: the roles of a filed letter's files
FILE_ROLES = ("signed", "content", "attachment", "receipt", "reply_document", "reply_attachment")

EXPORT_STATUSES = ("pending", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Department(Base):
    """A department of the office (wydział, referat) that letters are assigned to."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the department's symbol used in case numbers, e.g. "FN"
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)


class FileCode(Base):
    """A class of the office's file plan (jednolity rzeczowy wykaz akt, JRWA) that letters are filed under."""

    __tablename__ = "file_code"

    #: the class symbol, e.g. "3120"
    code: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    active: Mapped[bool] = mapped_column(default=True)


class RegisterCounter(Base):
    """The last number given in a register in a year: numbers follow one another with no gaps.

    The counter is raised in the transaction that files the letter, so a filing that fails gives its
    number back with the rollback, and the row lock makes concurrent filings take turns.
    """

    __tablename__ = "register_counter"

    register: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class Letter(Base):
    """A letter (pismo, wniosek, deklaracja): a draft of a resident, then a filed, signed document."""

    __tablename__ = "letter"
    __table_args__ = (
        sa.CheckConstraint(_in("status", LETTER_STATUSES), name="status"),
        sa.CheckConstraint(f"signature_kind IS NULL OR {_in('signature_kind', SIGNATURE_KINDS)}", name="signature_kind"),
        # a filed letter has everything a receipt needs
        sa.CheckConstraint(
            "status = 'draft' OR (received_at IS NOT NULL AND registration_number IS NOT NULL "
            "AND document_sha256 IS NOT NULL AND signature_kind IS NOT NULL)",
            name="filed_complete",
        ),
        sa.UniqueConstraint("register_year", "register_seq"),
        sa.Index("ix_letter_status_received", "status", "received_at"),
        sa.Index("ix_letter_author_status", "author_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the document's identifier (a UUID written into the XML): one filing per document
    document_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    #: the form of the catalogue (platforma.episma.forms) and its version
    form_code: Mapped[str] = mapped_column(sa.String(40))
    form_version: Mapped[str] = mapped_column(sa.String(10))
    title: Mapped[str] = mapped_column(sa.String(300))
    #: the resident who wrote and filed it
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    #: the taxpayer on whose behalf (None: the author files for themself, with no tax account involved)
    taxpayer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the form's data while a draft; after filing, the data read from the signed document
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    # -- written once, when the letter is filed -------------------------------------------------------
    #: the time of receipt (the moment the filing was committed), UTC
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    signature_kind: Mapped[str | None] = mapped_column(sa.String(8))
    #: SHA-256 (hex) of the file as uploaded, and of the content its signature covers
    document_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    #: what the verification found: format, signer, signing time, warnings, references
    verification: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    signer_name: Mapped[str] = mapped_column(sa.String(300), default="")
    signer_pesel: Mapped[str | None] = mapped_column(sa.String(11))
    signer_nip: Mapped[str | None] = mapped_column(sa.String(10))
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the entry in the register of incoming mail (rejestr przesyłek wpływających)
    register_year: Mapped[int | None]
    register_seq: Mapped[int | None]
    registration_number: Mapped[str | None] = mapped_column(sa.String(60), unique=True)
    #: the stamp duty (opłata skarbowa) the form requires, if any
    stamp_duty: Mapped[Decimal | None] = mapped_column(Money)

    # -- set by the office, each change recorded as an event ------------------------------------------
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    file_code: Mapped[str | None] = mapped_column(sa.ForeignKey("file_code.code"))
    #: the case reference (znak sprawy) the office gave, e.g. "FN.3120.15.2026"
    case_reference: Mapped[str] = mapped_column(sa.String(80), default="")
    #: when the receipt (UPO) was issued; it is a letter_file with role "receipt"
    receipt_issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship()
    files: Mapped[list[LetterFile]] = relationship(order_by="LetterFile.id", viewonly=True)
    events: Mapped[list[LetterEvent]] = relationship(order_by="LetterEvent.id", viewonly=True)
    replies: Mapped[list[Reply]] = relationship(order_by="Reply.id", viewonly=True)

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"


class _StoredFile:
    """A file kept in the database with the transaction that stores it: its name as given (made safe),
    its kind, size and SHA-256 (hex); the bytes are loaded only when asked for."""

    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DraftAttachment(_StoredFile, Base):
    """A file the resident attached to a draft; it goes into the document (base64) when it is prepared."""

    __tablename__ = "draft_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(sa.ForeignKey("letter.id", ondelete="CASCADE"), index=True)


class Reply(Base):
    """The office's reply to a letter, delivered to the author's account; opening it confirms receipt."""

    __tablename__ = "reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(sa.ForeignKey("letter.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    title: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the read confirmation: when and by whom the reply was first opened
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    read_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    files: Mapped[list[LetterFile]] = relationship(order_by="LetterFile.id", viewonly=True)


class LetterFile(_StoredFile, Base):
    """A file of a filed letter or of a reply: append-only, with its SHA-256."""

    __tablename__ = "letter_file"
    __table_args__ = (
        sa.CheckConstraint(_in("role", FILE_ROLES), name="role"),
        sa.CheckConstraint("size >= 0", name="size"),
        sa.CheckConstraint("role NOT IN ('reply_document', 'reply_attachment') OR reply_id IS NOT NULL", name="reply_file"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(sa.ForeignKey("letter.id"), index=True)
    reply_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reply.id"), index=True)
    #: signed (the file as uploaded), content (what its signature covers), attachment, receipt (UPO),
    #: reply_document, reply_attachment
    role: Mapped[str] = mapped_column(sa.String(20))


class LetterEvent(Base):
    """The letter's history, shown to the author and the office: append-only."""

    __tablename__ = "letter_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(sa.ForeignKey("letter.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: filed, receipt, assigned, status, reply, reply_read, export, fee_paid
    kind: Mapped[str] = mapped_column(sa.String(16))
    from_status: Mapped[str | None] = mapped_column(sa.String(12))
    to_status: Mapped[str | None] = mapped_column(sa.String(12))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class LetterExport(Base):
    """Forwarding a filed letter to the gmina's document management through a DocumentSink plugin."""

    __tablename__ = "letter_export"
    __table_args__ = (
        sa.CheckConstraint(_in("status", EXPORT_STATUSES), name="status"),
        # one package per letter and sink: forwarding again repeats nothing
        sa.UniqueConstraint("letter_id", "sink"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(sa.ForeignKey("letter.id"), index=True)
    sink: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(8), default="pending")
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: failed deliveries so far; after platforma.episma.sinks.MAX_ATTEMPTS the export is marked failed
    attempts: Mapped[int] = mapped_column(default=0)
    #: what the sink reports: the package's name or the receiving system's identifier
    reference: Mapped[str] = mapped_column(sa.String(300), default="")
    last_error: Mapped[str] = mapped_column(sa.Text, default="")


class LetterFee(Base):
    """An online payment of a letter's stamp duty (opłata skarbowa): it is not a tax liability, so the
    payments core settles it here instead of posting it to the taxpayer's ledger."""

    __tablename__ = "letter_fee"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(sa.ForeignKey("letter.id"), index=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payment.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


APPEND_ONLY = (LetterFile, LetterEvent)


@event.listens_for(Session, "before_flush")
def _refuse_history_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, APPEND_ONLY):
            raise RuntimeError(f"{obj.__tablename__} is append-only")
    for obj in session.dirty:
        if isinstance(obj, APPEND_ONLY) and session.is_modified(obj, include_collections=False):
            raise RuntimeError(f"{obj.__tablename__} is append-only")
