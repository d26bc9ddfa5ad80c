"""A taxpayer's account as of a day: what was assessed, paid and is owed, with interest.

Pure computation over plain records (no session): `queries.account_records` loads them, the pages,
`platforma taxes balance` and the reminders run call `account_as_of`, so they show the same numbers.

How the ledger is read (platforma.taxes.models.Posting):
- przypis (+) and odpis (−) on an installment set what it asks for;
- a payment leaves, per installment it reached, a wpłata (−) for the whole part it took and, for the
  interest within that part, an odsetki (+) with the same payment_ref: the principal falls by the
  wpłata less the odsetki, and the odsetki record the interest collected (art. 55 §2 OP);
- korekta carries its own sign; a payment no liability took is a nadpłata (−) on the taxpayer's
  account (liability_id empty); zwrot (+) is an overpayment refunded; koszty upomnienia (+) stand
  on their own.
Interest is never stored ahead: it is recomputed for the day asked by replaying the payments.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from platforma.taxes.rules import DAYS_IN_YEAR, ZLOTY, Arrear, LimitationEvent, RateTable, effective_due, limitation_date

ZERO = Decimal(0)
ONE_DAY = dt.timedelta(days=1)
#: the payment_ref of a set-off of an overpayment (`operations.offset_overpayments`)
OFFSET_REF_PREFIX = "zaliczenie:"


@dataclass(frozen=True)
class PostingRecord:
    id: int
    kind: str
    #: the amount as stored: positive, except a korekta, which carries its sign
    amount: Decimal
    value_date: dt.date
    liability_id: int | None = None
    installment_id: int | None = None
    payment_ref: str | None = None
    corrects_id: int | None = None

    @property
    def signed(self) -> Decimal:
        """What the line does to the amount owed: + charges, − credits (korekta: its own sign)."""
        return -self.amount if self.kind in ("odpis", "wplata", "nadplata") else self.amount


@dataclass(frozen=True)
class InstallmentRecord:
    id: int
    liability_id: int
    number: int
    nominal_due: dt.date
    amount: Decimal


@dataclass(frozen=True)
class LiabilityRecord:
    id: int
    tax_kind: str
    year: int
    description: str
    amount: Decimal
    decision_number: str | None
    delivered_on: dt.date | None
    #: the taxpayers liable (co-owners each see the whole liability)
    party_ids: tuple[int, ...]
    installments: tuple[InstallmentRecord, ...]
    #: decyzja, deklaracja or informacja (None without a document)
    document_type: str | None = None
    #: when the liability reached the platform (the account page's "data as of")
    created_at: dt.datetime | None = None
    #: what was recorded about its limitation period (art. 70 OP), for `rules.limitation_date`
    limitation: tuple[LimitationEvent, ...] = ()


@dataclass
class InstallmentState:
    id: int
    number: int
    nominal_due: dt.date
    due: dt.date
    #: przypis less odpis and corrections
    assessed: Decimal
    paid: Decimal
    left: Decimal
    #: interest charged on the day asked (whole złoty, 0 under the threshold)
    interest: Decimal
    interest_paid: Decimal
    #: paid, partly_paid, overdue, due (not yet due, nothing paid), expired (przedawniona: what was
    #: left of it, and its interest, expired with the liability, art. 59 §1 pkt 9 OP; left and
    #: interest are then 0 and the amounts that expired are in expired_principal and expired_interest)
    status: str
    #: the last day the liability of this installment exists (art. 70 OP); None: it does not expire
    limitation_date: dt.date | None = None
    expired_principal: Decimal = ZERO
    #: the interest it carried on its limitation date
    expired_interest: Decimal = ZERO

    @property
    def to_pay(self) -> Decimal:
        return self.left + self.interest


@dataclass
class LiabilityState:
    id: int
    tax_kind: str
    year: int
    description: str
    decision_number: str | None
    przypis: Decimal
    odpis: Decimal
    #: payments that reached it (principal and interest)
    wplaty: Decimal
    #: overdue principal on the day asked
    zaleglosc: Decimal
    #: interest on the overdue principal on the day asked
    odsetki: Decimal
    #: principal not yet due
    biezace: Decimal
    installments: list[InstallmentState]
    #: korekty: corrections posted on it (each names the posting it corrects), with their signs
    korekty: Decimal = ZERO
    #: principal and interest that expired (art. 70 OP) and are no longer owed
    przedawnione: Decimal = ZERO
    przedawnione_odsetki: Decimal = ZERO
    #: the last limitation date among its expired installments (it expired the next day)
    przedawnione_on: dt.date | None = None

    @property
    def do_zaplaty(self) -> Decimal:
        """What clears the overdue part today: arrears and their interest."""
        return self.zaleglosc + self.odsetki

    @property
    def archived(self) -> bool:
        """Only in the archive of expired liabilities: something expired and nothing else is open."""
        return self.przedawnione_on is not None and not (self.zaleglosc or self.odsetki or self.biezace)


@dataclass
class PaymentRecord:
    """A payment as the taxpayer sees it: one line per payment_ref."""

    ref: str
    paid_on: dt.date
    total: Decimal
    interest: Decimal
    overpayment: Decimal
    liabilities: list[int] = field(default_factory=list)
    #: a set-off of the taxpayer's overpayment (art. 76 OP), not money received
    offset: bool = False


@dataclass
class AccountState:
    as_of: dt.date
    liabilities: list[LiabilityState]
    #: overpayment standing on the account (nadpłata), never negative
    nadplata: Decimal
    #: reminder costs and other charges outside liabilities, still unpaid
    koszty: Decimal
    payments: list[PaymentRecord]

    @property
    def zaleglosc(self) -> Decimal:
        return sum((item.zaleglosc for item in self.liabilities), ZERO)

    @property
    def odsetki(self) -> Decimal:
        return sum((item.odsetki for item in self.liabilities), ZERO)

    @property
    def do_zaplaty(self) -> Decimal:
        """Arrears, interest and costs, less the overpayment that can be set against them."""
        return max(self.zaleglosc + self.odsetki + self.koszty - self.nadplata, ZERO)

    @property
    def przedawnione(self) -> Decimal:
        return sum((item.przedawnione + item.przedawnione_odsetki for item in self.liabilities), ZERO)

    def by_year(self) -> dict[int, list[LiabilityState]]:
        """The liabilities still shown as the account's, by year (the archived ones are in `archive`)."""
        grouped: dict[int, list[LiabilityState]] = defaultdict(list)
        for item in sorted(self.liabilities, key=lambda i: (-i.year, i.tax_kind, i.id)):
            if not item.archived:
                grouped[item.year].append(item)
        return dict(grouped)

    def archive(self) -> list[LiabilityState]:
        """Archiwum: the liabilities with something that expired (art. 70 OP), newest year first."""
        return sorted((item for item in self.liabilities if item.przedawnione_on is not None),
                      key=lambda i: (-i.year, i.tax_kind, i.id))


# -- the interest state of one installment -------------------------------------------------------

def _payments_on(postings: list[PostingRecord]) -> list[tuple[dt.date, str, Decimal, Decimal]]:
    """(day, ref, principal part, interest part) of each payment that reached an installment."""
    grouped: dict[tuple[dt.date, str], list[Decimal]] = {}
    for posting in postings:
        if posting.kind not in ("wplata", "odsetki"):
            continue
        key = (posting.value_date, posting.payment_ref or f"#{posting.id}")
        total, interest = grouped.setdefault(key, [ZERO, ZERO])
        if posting.kind == "wplata":
            grouped[key][0] = total + posting.amount
        else:
            grouped[key][1] = interest + posting.amount
    return sorted((day, ref, total - interest, interest) for (day, ref), (total, interest) in grouped.items())


def rounded_interest(principal: Decimal, due: dt.date, paid_on: dt.date, rates: RateTable) -> Decimal:
    """`rules.arrears_interest(principal, due, paid_on, rates, ...).rounded` at the standard rate: the
    same Decimal operations in the same order (Kz × L × O / 365 per rate period, their sum rounded
    once to złoty, art. 63 OP), without the objects that describe the computation. An account
    replays it for every installment paid late or still open (a reminders run: a million times);
    `tests/unit/test_tax_account_interest.py` checks it against the rule. A rate table that
    remembers results (`settings.RememberingRateTable`) answers a repeated question from memory."""
    remembered = getattr(rates, "remembered_interest", None)
    if remembered is not None:
        return remembered(principal, due, paid_on)
    return computed_interest(principal, due, paid_on, rates)


def computed_interest(principal: Decimal, due: dt.date, paid_on: dt.date, rates: RateTable) -> Decimal:
    if principal < 0:
        raise ValueError("arrears cannot be negative")
    unrounded = Decimal(0)
    first = due + ONE_DAY
    if paid_on >= first and principal > 0:
        for start, end, rate in rates.periods(first, paid_on):
            unrounded += principal * ((end - start).days + 1) * rate / 100 / DAYS_IN_YEAR
    return unrounded.quantize(ZLOTY, rounding=ROUND_HALF_UP)  # rules.round_to_zloty


def installment_arrear(
    installment: InstallmentRecord, due: dt.date, postings: list[PostingRecord], day: dt.date,
    rates: RateTable, threshold: Decimal,
) -> tuple[Arrear, Decimal, Decimal, Decimal]:
    """The installment as an open arrear on `day` (before any payment of that day is counted beyond
    what is already posted): (arrear, assessed, principal paid, interest paid)."""
    dated = [p for p in postings if p.value_date <= day]
    assessed = sum((p.signed for p in dated if p.kind not in ("wplata", "odsetki")), ZERO)
    payments = [(paid_on, principal, interest) for paid_on, _ref, principal, interest in _payments_on(dated)]
    return replay(str(installment.id), due, assessed, payments, rates, threshold)


def replay(
    key: str, due: dt.date, assessed: Decimal, payments: list[tuple[dt.date, Decimal, Decimal]],
    rates: RateTable, threshold: Decimal,
) -> tuple[Arrear, Decimal, Decimal, Decimal]:
    """Replay the payments of an installment, in date order, each (day, principal part, interest part):
    the interest is fixed at each payment made after the due date (art. 55 §2 OP) and runs from
    there on what is left. Returns (arrear, assessed, principal paid, interest paid)."""
    principal = assessed
    interest_unpaid = ZERO
    interest_from = due
    paid = interest_paid = ZERO
    for paid_on, principal_part, interest_part in payments:
        if paid_on > interest_from and principal > 0:
            grown = rounded_interest(principal, interest_from, paid_on, rates)
            owed = interest_unpaid + grown
            owed = owed if owed > threshold else ZERO
            interest_unpaid = max(owed - interest_part, ZERO)
            interest_from = paid_on
        else:
            interest_unpaid = max(interest_unpaid - interest_part, ZERO)
        principal -= principal_part
        paid += principal_part
        interest_paid += interest_part
    arrear = Arrear(key, due, principal, interest_unpaid, interest_from)
    return arrear, assessed, paid, interest_paid


def interest_due(arrear: Arrear, day: dt.date, rates: RateTable, threshold: Decimal) -> Decimal:
    if day <= arrear.due or (arrear.principal <= 0 and arrear.interest_unpaid <= 0):
        return arrear.interest_unpaid if day > arrear.due else ZERO
    grown = rounded_interest(max(arrear.principal, ZERO), arrear.interest_from or arrear.due, day, rates)
    total = arrear.interest_unpaid + grown
    return total if total > threshold else ZERO


# -- the whole account ---------------------------------------------------------------------------

def account_as_of(
    liabilities: list[LiabilityRecord], postings: list[PostingRecord], day: dt.date, rates: RateTable, threshold: Decimal,
) -> AccountState:
    """The account on `day`: every posting dated up to that day, interest up to and including it."""
    by_installment: dict[int, list[PostingRecord]] = defaultdict(list)
    by_liability: dict[int, list[PostingRecord]] = defaultdict(list)
    loose: list[PostingRecord] = []
    for posting in postings:
        if posting.value_date > day:
            continue
        if posting.installment_id is not None:
            by_installment[posting.installment_id].append(posting)
        if posting.liability_id is not None:
            by_liability[posting.liability_id].append(posting)
        else:
            loose.append(posting)

    states = []
    for liability in liabilities:
        items = []
        for installment in liability.installments:
            due = effective_due(installment.nominal_due, liability.delivered_on)
            own = by_installment.get(installment.id, [])
            arrear, assessed, paid, interest_paid = installment_arrear(installment, due, own, day, rates, threshold)
            interest = interest_due(arrear, day, rates, threshold)
            left = max(arrear.principal, ZERO)
            last_day = limitation_date(due, liability.limitation)
            if last_day is not None and day > last_day and (left > 0 or interest > 0):
                # art. 70 §1 and art. 59 §1 pkt 9 OP: expired, no longer owed; kept for the archive
                expired = interest_due(arrear, last_day, rates, threshold)
                items.append(InstallmentState(installment.id, installment.number, installment.nominal_due, due,
                                              assessed, paid, ZERO, ZERO, interest_paid, "expired", last_day, left, expired))
                continue
            if left == 0:
                # nothing left of the installment (paid or written off); unpaid interest keeps it overdue
                status = "paid" if interest == 0 else "overdue"
            elif day > due:
                status = "overdue"
            elif paid > 0:
                status = "partly_paid"
            else:
                status = "due"
            items.append(InstallmentState(installment.id, installment.number, installment.nominal_due, due,
                                          assessed, paid, left, interest, interest_paid, status, last_day))
        lines = by_liability.get(liability.id, [])
        expired = [i for i in items if i.status == "expired"]
        states.append(LiabilityState(
            id=liability.id, tax_kind=liability.tax_kind, year=liability.year, description=liability.description,
            decision_number=liability.decision_number,
            przypis=sum((p.amount for p in lines if p.kind == "przypis"), ZERO),
            odpis=sum((p.amount for p in lines if p.kind == "odpis"), ZERO),
            wplaty=sum((p.amount for p in lines if p.kind == "wplata"), ZERO),
            zaleglosc=sum((i.left for i in items if i.status == "overdue"), ZERO),
            odsetki=sum((i.interest for i in items), ZERO),
            biezace=sum((i.left for i in items if i.status != "overdue"), ZERO),
            installments=items,
            korekty=sum((p.amount for p in lines if p.kind == "korekta"), ZERO),
            przedawnione=sum((i.expired_principal for i in expired), ZERO),
            przedawnione_odsetki=sum((i.expired_interest for i in expired), ZERO),
            przedawnione_on=max((i.limitation_date for i in expired), default=None),
        ))

    overpayment_balance = -sum((p.signed for p in loose if p.kind in ("nadplata", "zwrot", "korekta")), ZERO)
    costs = sum((p.signed for p in loose if p.kind == "koszty_upomnienia"), ZERO)
    costs -= sum((p.amount for p in loose if p.kind == "wplata"), ZERO)

    payments: dict[str, PaymentRecord] = {}
    for posting in sorted(postings, key=lambda p: (p.value_date, p.id)):
        if posting.value_date > day or posting.kind not in ("wplata", "odsetki", "nadplata") or not posting.payment_ref:
            continue
        record = payments.setdefault(posting.payment_ref, PaymentRecord(
            posting.payment_ref, posting.value_date, ZERO, ZERO, ZERO,
            offset=posting.payment_ref.startswith(OFFSET_REF_PREFIX)))
        if posting.kind == "wplata":
            record.total += posting.amount
            if posting.liability_id is not None and posting.liability_id not in record.liabilities:
                record.liabilities.append(posting.liability_id)
        elif posting.kind == "odsetki":
            record.interest += posting.amount
        else:
            record.total += posting.amount
            record.overpayment += posting.amount
    return AccountState(day, states, max(overpayment_balance, ZERO), max(costs, ZERO),
                        sorted(payments.values(), key=lambda p: (p.paid_on, p.ref), reverse=True))


def limitation_events(rows) -> dict[int, tuple[LimitationEvent, ...]]:
    """The limitation records of liabilities, as `rules.LimitationEvent`s per liability id.

    `rows`: (id, liability_id, kind, occurred_on, until, ends_id) of `models.LimitationRecord`. A
    suspension without a last day ends on the day of a koniec_zawieszenia that names it (the latest,
    if a clerk recorded more than one: the longer suspension, never hiding what is owed)."""
    ends: dict[int, dt.date] = {}
    for _id, _liability, kind, occurred_on, _until, ends_id in rows:
        if kind == "koniec_zawieszenia" and ends_id is not None:
            ends[ends_id] = max(ends.get(ends_id, occurred_on), occurred_on)
    found: dict[int, list[LimitationEvent]] = defaultdict(list)
    for record_id, liability_id, kind, occurred_on, until, _ends in rows:
        if kind == "koniec_zawieszenia":
            continue
        last = max((d for d in (until, ends.get(record_id)) if d is not None), default=None)
        if kind == "zawieszenie" and last is not None and last < occurred_on:
            last = occurred_on
        found[liability_id].append(LimitationEvent(kind, occurred_on, last if kind == "zawieszenie" else None))
    return {key: tuple(sorted(events, key=lambda e: (e.on, e.kind))) for key, events in found.items()}
