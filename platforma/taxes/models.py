"""Taxpayers, what they are taxed on, their liabilities and installments, and the append-only ledger."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from platforma.core.db import Base, Money, UTCDateTime, utcnow


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


# -- exact quantities -------------------------------------------------------------------------------

class Quantity(TypeDecorator):
    """A tax base or a rate per unit: Decimal with at most 4 places, stored as BIGINT of ten-thousandths.

    Areas (m², ha), hectares przeliczeniowe, persons and rates in zł per unit are exact values from
    decisions and resolutions; like `Money`, a float or a finer fraction is refused, never rounded.
    """

    impl = sa.BigInteger
    cache_ok = True

    SCALE = 10_000

    def process_bind_param(self, value: Decimal | int | None, dialect: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, (float, bool)):
            raise TypeError(f"{type(value).__name__} given for a quantity column")
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"quantity {value} is not a finite number")
        scaled = number * self.SCALE
        if scaled != scaled.to_integral_value():
            raise ValueError(f"quantity {value} has a fraction finer than 0.0001")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / self.SCALE).quantize(Decimal("0.0001"))


# -- vocabularies (each is also a CHECK constraint below) --------------------------------------------

#: the taxes and fees the platform shows (DOMAIN.md, "Local taxes and fees")
TAX_KINDS = ("nieruchomosci", "rolny", "lesny", "laczne", "srodki_transportowe", "odpady")
#: natural persons are assessed by decision, legal persons declare (it decides the schedule)
PAYER_TYPES = ("natural", "legal")
#: what a tax or the waste fee is charged on:
#: grunt (land under podatek od nieruchomości), budynek (a building or part of one),
#: budowla (a structure used in business), grunt_rolny (agricultural land, podatek rolny),
#: las (forest, podatek leśny), pojazd (a vehicle, podatek od środków transportowych),
#: lokal_odpady (a dwelling or property covered by a waste-fee declaration)
TAX_OBJECT_KINDS = ("grunt", "budynek", "budowla", "grunt_rolny", "las", "pojazd", "lokal_odpady")
DOCUMENT_TYPES = ("decyzja", "deklaracja", "informacja")
PARTY_ROLES = ("principal", "co_owner")
BASIS_UNITS = ("m2", "ha", "ha_przeliczeniowe", "szt", "osoba")
#: charges raise what the taxpayer owes, credits lower it; a korekta carries its own sign
CHARGE_KINDS = ("przypis", "odsetki", "koszty_upomnienia", "zwrot")
CREDIT_KINDS = ("odpis", "wplata", "nadplata")
POSTING_KINDS = CHARGE_KINDS + CREDIT_KINDS + ("korekta",)
POSTING_ORIGINS = ("system", "manual", "import")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# -- what is taxed and by which document -------------------------------------------------------------

class TaxObject(Base):
    """Przedmiot opodatkowania: a plot, a building, a vehicle, a dwelling under the waste fee."""

    __tablename__ = "tax_object"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", TAX_OBJECT_KINDS), name="kind"),
        sa.UniqueConstraint("source", "source_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: one of TAX_OBJECT_KINDS
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: what the resident reads, e.g. "Budynek mieszkalny"
    description: Mapped[str] = mapped_column(sa.String(300), default="")
    #: an address or a cadastral plot, e.g. "obręb 0003, dz. 125/4"
    location: Mapped[str] = mapped_column(sa.String(300), default="")
    #: a vehicle's registration number; null for everything else
    registration_number: Mapped[str | None] = mapped_column(sa.String(16))
    #: where the record comes from: "local" or a domain system's plugin id
    source: Mapped[str] = mapped_column(sa.String(32), default="local")
    #: the record's key in its source system
    source_key: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Decision(Base):
    """A decyzja of the wójt/burmistrz, or a deklaracja (legal persons) or informacja the tax rests on."""

    __tablename__ = "decision"
    __table_args__ = (
        sa.CheckConstraint(_in("document_type", DOCUMENT_TYPES), name="document_type"),
        sa.CheckConstraint("number <> ''", name="numbered"),
        # a decision exists from the day it is issued; declarations carry no such date
        sa.CheckConstraint("document_type <> 'decyzja' OR issued_on IS NOT NULL", name="decision_issued"),
        sa.CheckConstraint(
            "issued_on IS NULL OR delivered_on IS NULL OR delivered_on >= issued_on", name="delivered_after_issue"
        ),
        sa.UniqueConstraint("source", "number"),
        sa.UniqueConstraint("source", "source_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the document's number in its source, e.g. "FN.3120.1.2025"
    number: Mapped[str] = mapped_column(sa.String(64))
    #: "decyzja", "deklaracja" (DN-1, DR-1, DL-1, DT-1, DO) or "informacja" (IN-1, IR-1, IL-1)
    document_type: Mapped[str] = mapped_column(sa.String(16))
    #: the tax year it concerns
    year: Mapped[int]
    #: the day the decision was issued; null for declarations
    issued_on: Mapped[dt.date | None]
    #: the day it was delivered: a late delivery moves installment dates (art. 47 §2 OP)
    delivered_on: Mapped[dt.date | None]
    #: where the record comes from: "local" or a domain system's plugin id
    source: Mapped[str] = mapped_column(sa.String(32), default="local")
    #: the record's key in its source system
    source_key: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- liabilities ---------------------------------------------------------------------------------

class Liability(Base):
    """Zobowiązanie podatkowe or należność from a fee, for one kind and one period.

    `amount` is the assessed total as the decision or declaration states it (after the art. 63 OP
    rounding for taxes; the waste fee stays in grosze). What is owed at any moment comes from the
    postings, never from this column.
    """

    __tablename__ = "liability"
    __table_args__ = (
        sa.CheckConstraint(_in("tax_kind", TAX_KINDS), name="tax_kind"),
        sa.CheckConstraint(_in("payer_type", PAYER_TYPES), name="payer_type"),
        sa.CheckConstraint("period_from <= period_to", name="period"),
        sa.CheckConstraint("amount >= 0", name="amount"),
        sa.UniqueConstraint("source", "source_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the decision or declaration it comes from; null for a liability without one (e.g. imported balance)
    decision_id: Mapped[int | None] = mapped_column(sa.ForeignKey("decision.id"), index=True)
    #: one of TAX_KINDS
    tax_kind: Mapped[str] = mapped_column(sa.String(24))
    #: "natural" or "legal": decides how it is assessed and its due dates
    payer_type: Mapped[str] = mapped_column(sa.String(8))
    #: the tax year
    year: Mapped[int]
    #: the part of the year it covers (a property bought in June is taxed from July, art. 6 ust. 1 upol)
    period_from: Mapped[dt.date]
    period_to: Mapped[dt.date]
    #: the assessed total in złoty
    amount: Mapped[Decimal] = mapped_column(Money)
    #: what the resident reads, e.g. "Podatek od nieruchomości 2025"
    description: Mapped[str] = mapped_column(sa.String(300), default="")
    #: where the record comes from: "local" or a domain system's plugin id
    source: Mapped[str] = mapped_column(sa.String(32), default="local")
    #: the record's key in its source system
    source_key: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: raised by database triggers (migration 0005) whenever the liability, one of its installments
    #: or its decision is changed in place: part of what tells the account page that a rendering it
    #: keeps is out of date (`taxes.queries.AccountFingerprint`); postings, append-only, need none
    revision: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")

    decision: Mapped[Decision | None] = relationship()
    parties: Mapped[list[LiabilityParty]] = relationship(
        back_populates="liability", cascade="all, delete-orphan", order_by="LiabilityParty.id"
    )
    bases: Mapped[list[LiabilityBasis]] = relationship(
        back_populates="liability", cascade="all, delete-orphan", order_by="LiabilityBasis.id"
    )
    installments: Mapped[list[Installment]] = relationship(
        back_populates="liability", cascade="all, delete-orphan", order_by="Installment.number"
    )


class LiabilityParty(Base):
    """Who is liable. Co-owners are jointly liable (art. 3 ust. 4 upol, art. 91 OP): each one sees
    the whole liability and a payment by any of them counts for all."""

    __tablename__ = "liability_party"
    __table_args__ = (
        sa.CheckConstraint(_in("role", PARTY_ROLES), name="role"),
        sa.UniqueConstraint("liability_id", "taxpayer_id"),
        # the addressee named first in the decision; the others are co-owners
        sa.Index(
            "uq_liability_party_principal", "liability_id", unique=True,
            sqlite_where=sa.text("role = 'principal'"), postgresql_where=sa.text("role = 'principal'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    liability_id: Mapped[int] = mapped_column(sa.ForeignKey("liability.id", ondelete="CASCADE"))
    taxpayer_id: Mapped[int] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    #: "principal" (at most one per liability) or "co_owner"
    role: Mapped[str] = mapped_column(sa.String(16), default="principal")

    liability: Mapped[Liability] = relationship(back_populates="parties")
    taxpayer: Mapped[Taxpayer] = relationship()


class LiabilityBasis(Base):
    """Podstawa opodatkowania shown to the resident: one object, its base, the rate and the tax on it.

    `amount` is the tax on this object before the total is rounded (art. 63 OP); it need not equal
    basis x rate (the waste fee multiplies by months, a part-year object by its share of the year).
    """

    __tablename__ = "liability_basis"
    __table_args__ = (
        sa.CheckConstraint(_in("unit", BASIS_UNITS), name="unit"),
        sa.CheckConstraint("basis >= 0", name="basis"),
        sa.CheckConstraint("rate >= 0", name="rate"),
        sa.CheckConstraint("amount >= 0", name="amount"),
        sa.UniqueConstraint("liability_id", "tax_object_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    liability_id: Mapped[int] = mapped_column(sa.ForeignKey("liability.id", ondelete="CASCADE"))
    tax_object_id: Mapped[int] = mapped_column(sa.ForeignKey("tax_object.id"), index=True)
    #: the base in `unit`: m², ha, ha przeliczeniowe, vehicles, persons
    basis: Mapped[Decimal] = mapped_column(Quantity)
    #: one of BASIS_UNITS
    unit: Mapped[str] = mapped_column(sa.String(24))
    #: the rate in złoty per unit, as the rada gminy's resolution states it
    rate: Mapped[Decimal] = mapped_column(Quantity)
    #: the tax on this object in złoty, not yet rounded to whole złoty
    amount: Mapped[Decimal] = mapped_column(Money)

    liability: Mapped[Liability] = relationship(back_populates="bases")
    tax_object: Mapped[TaxObject] = relationship()


class Installment(Base):
    """Rata: one part of a liability with its nominal due date.

    `due_on` is the date the decision or the law names; the date that counts for interest, after
    weekends and holidays (art. 12 §5 OP) and late delivery (art. 47 §2 OP), is computed by the rules.
    """

    __tablename__ = "installment"
    __table_args__ = (
        sa.CheckConstraint("number >= 1", name="number"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.UniqueConstraint("liability_id", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    liability_id: Mapped[int] = mapped_column(sa.ForeignKey("liability.id", ondelete="CASCADE"))
    #: 1..n within the liability
    number: Mapped[int]
    #: the nominal due date
    due_on: Mapped[dt.date] = mapped_column(index=True)
    #: the installment in złoty (whole złoty for taxes, art. 63 OP; grosze for the waste fee)
    amount: Mapped[Decimal] = mapped_column(Money)

    liability: Mapped[Liability] = relationship(back_populates="installments")


# -- the ledger ----------------------------------------------------------------------------------

class Posting(Base):
    """One line of a taxpayer's account. Append-only (DESIGN.md, rule 4): a mistake is put right by a
    new `korekta` that references the line it corrects; the database refuses UPDATE and DELETE.

    Sign convention: `amount` is positive and `kind` says the direction, except for `korekta`,
    which carries its own sign and must name the posting it corrects. `signed_amount` is what the
    line does to the balance, and a balance is the sum of signed amounts (> 0: owed, < 0: overpaid):

    - charges (+): przypis (tax assessed), odsetki (interest, posted when settled),
      koszty_upomnienia (reminder cost), zwrot (an overpayment paid back or set off leaves the account);
    - credits (−): odpis (tax reduced or written off), wplata (a payment, or the part of one,
      allocated to a liability), nadplata (the part of a payment no liability absorbed; it stands
      alone on the taxpayer's account, liability_id null);
    - korekta (±): reverses or adjusts the posting named by corrects_id.
    """

    __tablename__ = "posting"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", POSTING_KINDS), name="kind"),
        sa.CheckConstraint(_in("origin", POSTING_ORIGINS), name="origin"),
        sa.CheckConstraint("amount > 0 OR (kind = 'korekta' AND amount <> 0)", name="amount"),
        sa.CheckConstraint("kind <> 'korekta' OR corrects_id IS NOT NULL", name="korekta_corrects"),
        sa.CheckConstraint("origin <> 'manual' OR trim(reason) <> ''", name="manual_reason"),
        sa.CheckConstraint("origin <> 'import' OR source_key IS NOT NULL", name="import_key"),
        sa.CheckConstraint("installment_id IS NULL OR liability_id IS NOT NULL", name="installment_liability"),
        # tax assessed, reduced or the interest on it always belongs to a liability
        sa.CheckConstraint(
            "kind NOT IN ('przypis', 'odpis', 'odsetki') OR liability_id IS NOT NULL", name="liability_required"
        ),
        sa.UniqueConstraint("source", "source_key"),
        sa.Index("ix_posting_taxpayer_value_date", "taxpayer_id", "value_date"),
        # the lines outside liabilities (nadpłata, reminder costs) of one account, without reading its other lines
        sa.Index(
            "ix_posting_taxpayer_loose", "taxpayer_id",
            sqlite_where=sa.text("liability_id IS NULL"), postgresql_where=sa.text("liability_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: whose account the line is on (for a co-owned liability: the party who paid or was charged)
    taxpayer_id: Mapped[int] = mapped_column(sa.ForeignKey("taxpayer.id"))
    #: the liability it belongs to; null for an overpayment or a reminder cost standing alone
    liability_id: Mapped[int | None] = mapped_column(sa.ForeignKey("liability.id"), index=True)
    #: the installment it belongs to, when a payment or interest concerns one
    installment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("installment.id"), index=True)
    #: one of POSTING_KINDS
    kind: Mapped[str] = mapped_column(sa.String(20))
    #: złoty; positive, except a korekta, which carries its own sign (see the class docstring)
    amount: Mapped[Decimal] = mapped_column(Money)
    #: the posting a korekta corrects
    corrects_id: Mapped[int | None] = mapped_column(sa.ForeignKey("posting.id"), index=True)
    #: the accounting date (data księgowania)
    booked_on: Mapped[dt.date]
    #: the legal date: the day of payment (art. 60 OP), of assessment, of the reminder's delivery
    value_date: Mapped[dt.date]
    #: the payment or statement line it came from
    payment_ref: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    #: "system" (computed), "manual" (a clerk, who must give a reason) or "import" (a domain system)
    origin: Mapped[str] = mapped_column(sa.String(8), default="system")
    #: why a clerk posted it; required for manual postings
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the clerk who posted it; null for the system and imports
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    #: where the line comes from: "local" or a domain system's or gateway's plugin id
    source: Mapped[str] = mapped_column(sa.String(32), default="local")
    #: the idempotency key in its source (a statement line, a notification); null for manual postings
    source_key: Mapped[str | None] = mapped_column(sa.String(100))

    liability: Mapped[Liability | None] = relationship()
    installment: Mapped[Installment | None] = relationship()
    corrects: Mapped[Posting | None] = relationship(remote_side="Posting.id")

    @staticmethod
    def sign_of(kind: str) -> int:
        """+1 for charges, -1 for credits, +1 for a korekta (its amount carries the sign)."""
        if kind in CHARGE_KINDS or kind == "korekta":
            return 1
        if kind in CREDIT_KINDS:
            return -1
        raise ValueError(f"unknown posting kind {kind!r}")

    @property
    def signed_amount(self) -> Decimal:
        """What this line does to the balance: + raises what is owed, − lowers it."""
        return self.sign_of(self.kind) * self.amount

    @classmethod
    def signed_amount_sql(cls) -> sa.ColumnElement[Decimal]:
        """The same as `signed_amount` in SQL; `sa.func.sum()` of it is a balance in złoty (Decimal)."""
        return sa.case((cls.kind.in_(CREDIT_KINDS), -cls.amount), else_=cls.amount)


# -- przedawnienie (art. 70 OP) ---------------------------------------------------------------------

#: przerwanie (art. 70 §4), zawieszenie (art. 70 §2 pkt 1, §6), koniec_zawieszenia (art. 70 §7: the
#: period runs on from the next day), zabezpieczenie (art. 70 §8: a tax mortgage or pledge)
LIMITATION_RECORD_KINDS = ("przerwanie", "zawieszenie", "koniec_zawieszenia", "zabezpieczenie")


class LimitationRecord(Base):
    """What a clerk recorded about the running of a liability's limitation period (art. 70 OP).

    Append-only (the database refuses UPDATE and DELETE): a suspension whose end was not known is
    ended by a later `koniec_zawieszenia` naming it. A new record raises the liability's `revision`
    (trigger, migration 0007), so the account page shows the new limitation date at once. It
    concerns every installment of the liability (`taxes.rules.limitation_date`)."""

    __tablename__ = "limitation_record"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", LIMITATION_RECORD_KINDS), name="kind"),
        sa.CheckConstraint("trim(reason) <> ''", name="reason"),
        sa.CheckConstraint("kind <> 'koniec_zawieszenia' OR ends_id IS NOT NULL", name="ends_suspension"),
        sa.CheckConstraint("until IS NULL OR (kind = 'zawieszenie' AND until >= occurred_on)", name="until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    liability_id: Mapped[int] = mapped_column(sa.ForeignKey("liability.id"), index=True)
    #: one of LIMITATION_RECORD_KINDS
    kind: Mapped[str] = mapped_column(sa.String(20))
    #: the day of the enforcement measure, the first day suspended, the last day of a suspension
    #: (koniec_zawieszenia), the day of the mortgage or pledge
    occurred_on: Mapped[dt.date]
    #: a suspension's last day when known at once (e.g. the deferred due date, art. 70 §2 pkt 1)
    until: Mapped[dt.date | None]
    #: the suspension a koniec_zawieszenia ends
    ends_id: Mapped[int | None] = mapped_column(sa.ForeignKey("limitation_record.id"))
    #: what happened, e.g. the enforcement title and the measure; required
    reason: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- manual postings waiting for a second clerk ([taxes] manual_posting_approval) ------------------

PROPOSAL_STATES = ("proposed", "approved", "rejected")


class PostingProposal(Base):
    """A clerk's manual posting that waits for a different clerk's approval; not in the ledger until
    then. Approval moves `state` from "proposed" once (a conditional UPDATE: two approvals at once
    post once) and posts it with `source` "approval" and the proposal's id as its key."""

    __tablename__ = "posting_proposal"
    __table_args__ = (
        sa.CheckConstraint(_in("state", PROPOSAL_STATES), name="state"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("trim(reason) <> ''", name="reason"),
        sa.CheckConstraint("state = 'proposed' OR decided_by_id IS NOT NULL", name="decided"),
        sa.CheckConstraint("state <> 'rejected' OR trim(decision_reason) <> ''", name="rejection_reason"),
        sa.CheckConstraint("decided_by_id IS NULL OR decided_by_id <> proposed_by_id", name="four_eyes"),
        sa.Index("ix_posting_proposal_state", "state", "proposed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    taxpayer_id: Mapped[int] = mapped_column(sa.ForeignKey("taxpayer.id"), index=True)
    liability_id: Mapped[int | None] = mapped_column(sa.ForeignKey("liability.id"))
    installment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("installment.id"))
    #: one of operations.MANUAL_KINDS
    kind: Mapped[str] = mapped_column(sa.String(20))
    amount: Mapped[Decimal] = mapped_column(Money)
    value_date: Mapped[dt.date]
    reason: Mapped[str] = mapped_column(sa.Text)
    proposed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: proposed, approved or rejected
    state: Mapped[str] = mapped_column(sa.String(10), default="proposed")
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: why it was rejected (required then)
    decision_reason: Mapped[str] = mapped_column(sa.Text, default="")
    #: the posting made on approval
    posting_id: Mapped[int | None] = mapped_column(sa.ForeignKey("posting.id"), unique=True)


@event.listens_for(Session, "before_flush")
def _refuse_posting_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, Posting):
            raise RuntimeError("postings are append-only: add a korekta instead of deleting")
    for obj in session.dirty:
        if isinstance(obj, Posting) and session.is_modified(obj, include_collections=False):
            raise RuntimeError("postings are append-only: add a korekta instead of changing")
        if isinstance(obj, LimitationRecord) and session.is_modified(obj, include_collections=False):
            raise RuntimeError("limitation records are append-only: add a new one")
    for obj in session.deleted:
        if isinstance(obj, LimitationRecord):
            raise RuntimeError("limitation records are append-only: add a new one")
