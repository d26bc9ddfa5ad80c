"""Payments: online payments and their event history, idempotency keys, bank statements and their lines."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from platforma.core.db import Base, Money, UTCDateTime, utcnow

#: created: written before the gateway is called; pending: the gateway has it, the resident is paying;
#: then one of the final states
PAYMENT_STATES = ("created", "pending", "confirmed", "failed", "cancelled", "expired")
FINAL_STATES = frozenset({"confirmed", "failed", "cancelled", "expired"})

#: the transition table: only the payments core moves a payment (DESIGN.md, rule 6). A failed,
#: cancelled or expired payment may still be confirmed: the gateway's word that the money arrived
#: beats our guess that it would not (an expiry job or a late notification).
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"pending", "confirmed", "failed", "cancelled", "expired"}),
    "pending": frozenset({"confirmed", "failed", "cancelled", "expired"}),
    "failed": frozenset({"confirmed"}),
    "cancelled": frozenset({"confirmed"}),
    "expired": frozenset({"confirmed"}),
    "confirmed": frozenset(),
}

#: a refund the treasury ordered in the gateway's panel: ordered, money returned, withdrawn
REFUND_STATES = ("pending", "completed", "cancelled")
REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}

#: what the resident asked to pay
PAYMENT_MODES = ("installments", "overdue", "amount")

LINE_STATUSES = ("matched", "unmatched", "assigned", "gateway", "debit", "returned")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Payment(Base):
    """One online payment by a resident through a gateway."""

    __tablename__ = "payment"
    __table_args__ = (
        sa.CheckConstraint(_in("state", PAYMENT_STATES), name="state"),
        sa.CheckConstraint(_in("mode", PAYMENT_MODES), name="mode"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("state <> 'confirmed' OR paid_on IS NOT NULL", name="confirmed_paid_on"),
        # the gateway's id of a transaction belongs to one payment only
        sa.UniqueConstraint("gateway", "gateway_txn_id"),
        sa.Index("ix_payment_state_updated", "state", "updated_at"),
        # the daily report, and the days a gateway's payout on a statement may stand for
        sa.Index("ix_payment_paid_on", "paid_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: our reference, sent to the gateway and printed for the resident ("PF-…")
    reference: Mapped[str] = mapped_column(sa.String(32), unique=True)
    taxpayer_id: Mapped[int] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    #: the resident who started it
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    #: the gateway plugin's id
    gateway: Mapped[str] = mapped_column(sa.String(32))
    gateway_txn_id: Mapped[str | None] = mapped_column(sa.String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3), default="PLN")
    state: Mapped[str] = mapped_column(sa.String(10), default="created")
    mode: Mapped[str] = mapped_column(sa.String(12))
    #: the installments the resident designated (art. 62 §1 OP), in the order chosen
    designation: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    description: Mapped[str] = mapped_column(sa.String(200))
    #: the day of payment (art. 60 §1 pkt 1 OP): the day the gateway charged the payer
    paid_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the confirmed payment was posted to the taxes ledger (once)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[PaymentEvent]] = relationship(order_by="PaymentEvent.id", viewonly=True)


class PaymentEvent(Base):
    """The payment's history: append-only (DESIGN.md, rule 4)."""

    __tablename__ = "payment_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payment.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: created, registered, notification, verified, state, posted, refused, query, second_payment,
    #: refund (a refund reported or moved; its from/to states are the refund's), refund_posted (its
    #: money in the taxes ledger)
    kind: Mapped[str] = mapped_column(sa.String(20))
    from_state: Mapped[str | None] = mapped_column(sa.String(10))
    to_state: Mapped[str | None] = mapped_column(sa.String(10))
    #: resident, gateway, job, clerk, statement
    actor: Mapped[str] = mapped_column(sa.String(10))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class PaymentRefund(Base):
    """Money returned to the payer through the gateway. The treasury orders a refund in the gateway's
    panel; the gateway reports it and the core records it here, moves it along REFUND_TRANSITIONS and,
    once the money is returned, reflects it in the taxes ledger once (ADR 0011). Every report of it is
    also an event in the payment's append-only history."""

    __tablename__ = "payment_refund"
    __table_args__ = (
        sa.CheckConstraint(_in("state", REFUND_STATES), name="state"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("state <> 'completed' OR refunded_on IS NOT NULL", name="completed_refunded_on"),
        sa.CheckConstraint("posted_amount IS NULL OR (posted_amount >= 0 AND posted_amount <= amount)",
                           name="posted_amount"),
        # the gateway's id of a refund belongs to one refund only
        sa.UniqueConstraint("gateway", "gateway_refund_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payment.id"), index=True)
    #: the gateway plugin's id (the payment's)
    gateway: Mapped[str] = mapped_column(sa.String(32))
    #: the gateway's own id of the refund (PayU refundId)
    gateway_refund_id: Mapped[str] = mapped_column(sa.String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3), default="PLN")
    #: pending, completed (the money went back to the payer) or cancelled
    state: Mapped[str] = mapped_column(sa.String(10))
    #: the Warsaw day the money went back, for a completed refund
    refunded_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the completed refund was reflected in the taxes ledger (once), and how much of it went
    #: there as a zwrot of the taxpayer's nadpłata; the rest waits for a clerk's correction
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    posted_amount: Mapped[Decimal | None] = mapped_column(Money)

    @property
    def unposted_amount(self) -> Decimal:
        """What was returned to the payer but is not yet reflected in the taxes ledger."""
        if self.state != "completed":
            return Decimal("0.00")
        return self.amount - (self.posted_amount or Decimal("0.00"))


class IdempotencyKey(Base):
    """A key the resident's form carries: pressing "Zapłać" twice starts one payment."""

    __tablename__ = "idempotency_key"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payment.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankStatement(Base):
    """An imported bank statement; the same statement of the same account is imported once."""

    __tablename__ = "bank_statement"
    __table_args__ = (sa.UniqueConstraint("account", "statement_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(sa.String(34))
    statement_id: Mapped[str] = mapped_column(sa.String(80))
    currency: Mapped[str] = mapped_column(sa.String(3))
    opening: Mapped[Decimal] = mapped_column(Money)
    closing: Mapped[Decimal] = mapped_column(Money)
    opening_date: Mapped[dt.date | None]
    closing_date: Mapped[dt.date | None]
    #: SHA-256 of the file it came from, and the file's name as uploaded
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    file_name: Mapped[str] = mapped_column(sa.String(255), default="")
    format: Mapped[str] = mapped_column(sa.String(10))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    entries: Mapped[int] = mapped_column(default=0)
    credits_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))


#: queued (the job is waiting), importing, done, refused (the file was not imported: `message` says
#: why), failed (the job gave up: `message` has the last error)
IMPORT_STATES = ("queued", "importing", "done", "refused", "failed")
#: an import in these states is over for good: its file is not read again
IMPORT_ENDED = ("done", "refused")


class StatementImport(Base):
    """A statement file a clerk uploaded: kept as uploaded and imported by a job, so a file of tens of
    thousands of entries is not bound to one web request (nor to a proxy's timeout)."""

    __tablename__ = "statement_import"
    __table_args__ = (
        sa.CheckConstraint(_in("status", IMPORT_STATES), name="status"),
        sa.Index("ix_statement_import_uploaded_at", "uploaded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(sa.String(255), default="")
    file_sha256: Mapped[str] = mapped_column(sa.String(64))
    size_bytes: Mapped[int]
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(10), default="queued")
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: entries read so far while importing (PostgreSQL: written from outside the import's transaction)
    entries_done: Mapped[int] = mapped_column(default=0)
    #: `ImportResult.as_dict()` once done
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: why the file was refused, in Polish (or the job's last error)
    message: Mapped[str] = mapped_column(sa.Text, default="")


class StatementLine(Base):
    """One entry of an imported statement, and what became of it."""

    __tablename__ = "statement_line"
    __table_args__ = (
        sa.UniqueConstraint("statement_id", "sequence"),
        sa.CheckConstraint(_in("status", LINE_STATUSES), name="status"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("status NOT IN ('matched', 'assigned') OR taxpayer_id IS NOT NULL", name="posted_has_taxpayer"),
        sa.Index("ix_statement_line_status", "status", "booking_date"),
        # the taxpayers earlier credits from a payer's account went to (`reconciliation.suggestions`)
        sa.Index("ix_statement_line_counterparty_account", "counterparty_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("bank_statement.id"))
    sequence: Mapped[int]
    booking_date: Mapped[dt.date]
    value_date: Mapped[dt.date | None]
    amount: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[bool]
    counterparty: Mapped[str] = mapped_column(sa.String(300), default="")
    counterparty_account: Mapped[str] = mapped_column(sa.String(34), default="")
    title: Mapped[str] = mapped_column(sa.String(500), default="")
    account_credited: Mapped[str] = mapped_column(sa.String(34), default="")
    bank_reference: Mapped[str] = mapped_column(sa.String(80), default="")
    #: matched (posted automatically), unmatched (waits for a clerk), assigned (a clerk chose the
    #: taxpayer; posted), gateway (a gateway's payout of payments already posted: one payment's, found
    #: by its reference, or a day's, marked by a clerk), debit (money out), returned (a clerk marked it
    #: to be sent back)
    status: Mapped[str] = mapped_column(sa.String(10))
    #: how it was matched: account, decision, pesel, nip, payment, clerk
    matched_by: Mapped[str] = mapped_column(sa.String(10), default="")
    taxpayer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payment.id"))
    #: the posting reference in the taxes ledger ("W…")
    payment_ref: Mapped[str | None] = mapped_column(sa.String(100))
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: a returned credit: the day the treasury sent it back (None: still to send)
    sent_back_on: Mapped[dt.date | None]
    note: Mapped[str] = mapped_column(sa.Text, default="")

    statement: Mapped[BankStatement] = relationship()


@event.listens_for(Session, "before_flush")
def _refuse_event_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, PaymentEvent):
            raise RuntimeError("payment events are append-only")
    for obj in session.dirty:
        if isinstance(obj, PaymentEvent) and session.is_modified(obj, include_collections=False):
            raise RuntimeError("payment events are append-only")
