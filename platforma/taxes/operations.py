"""The verbs that change a taxpayer's account. They take a session and never commit."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.accounts.models import User
from platforma.core import audit
from platforma.core.db import insert_rows, utcnow
from platforma.taxes import rules
from platforma.taxes.account import (
    OFFSET_REF_PREFIX, ZERO, InstallmentRecord, PostingRecord, installment_arrear, interest_due,
)
from platforma.taxes.models import (
    LIMITATION_RECORD_KINDS, Decision, Installment, Liability, LiabilityParty, LimitationRecord, Posting, PostingProposal,
    Taxpayer,
)
from platforma.taxes.queries import account_records, limitation_of
from platforma.taxes.settings import interest_threshold, rate_table


WARSAW = ZoneInfo("Europe/Warsaw")


class PostingError(ValueError):
    """A refused change, with a message for the clerk (Polish)."""


#: an installment that an allocation may reach: (installment, its decision's delivery day, the
#: limitation events of its liability)
OpenInstallment = tuple[InstallmentRecord, "dt.date | None", "tuple[rules.LimitationEvent, ...]"]


def assess_liability(
    session: Session,
    *,
    tax_kind: str,
    payer_type: str,
    year: int,
    amount: Decimal,
    parties: list[tuple[int, str]],
    installments: list[tuple[dt.date, Decimal]],
    booked_on: dt.date,
    source: str,
    source_key: str,
    decision: Decision | None = None,
    description: str = "",
    period: tuple[dt.date, dt.date] | None = None,
) -> Liability:
    """A liability with its parties and installments, and a przypis on each installment.

    `parties` are (taxpayer id, "principal" | "co_owner"); `installments` (nominal due, amount) must
    sum to `amount`. The przypis is dated `booked_on` (the day the decision or declaration counts from).
    """
    amount = rules.money(amount)
    if sum((rules.money(a) for _, a in installments), ZERO) != amount:
        raise PostingError("raty muszą sumować się do kwoty zobowiązania")
    start, end = period or (dt.date(year, 1, 1), dt.date(year, 12, 31))
    liability = Liability(
        decision=decision, tax_kind=tax_kind, payer_type=payer_type, year=year, period_from=start, period_to=end,
        amount=amount, description=description, source=source, source_key=source_key,
    )
    session.add(liability)
    for taxpayer_id, role in parties:
        liability.parties.append(LiabilityParty(taxpayer_id=taxpayer_id, role=role))
    for number, (due, part) in enumerate(installments, start=1):
        liability.installments.append(Installment(number=number, due_on=due, amount=part))
    session.flush()
    principal_id = next((t for t, role in parties if role == "principal"), parties[0][0])
    for installment in liability.installments:
        session.add(Posting(
            taxpayer_id=principal_id, liability_id=liability.id, installment_id=installment.id, kind="przypis",
            amount=installment.amount, booked_on=booked_on, value_date=booked_on, origin="system",
            source=source, source_key=f"{source_key}:przypis:{installment.number}",
        ))
    session.flush()
    # a new przypis may meet an overpayment of one of those liable (art. 76 §1 OP)
    for taxpayer_id in taxpayers_with_overpayment(session, booked_on, among=[t for t, _role in parties]):
        offset_overpayments(session, taxpayer_id=taxpayer_id, as_of=booked_on)
    return liability


@dataclass(frozen=True)
class PostedPayment:
    payment_ref: str
    parts: tuple[rules.AllocatedPart, ...]
    overpayment: Decimal
    costs: Decimal
    repeated: bool


@dataclass(frozen=True)
class AllocationPlan:
    """How a payment would be allocated on a given day, before anything is written."""

    amount: Decimal
    #: reminder costs paid first (art. 55 §1 OP)
    costs: Decimal
    parts: tuple[rules.AllocatedPart, ...]
    #: installment id (as the part's key) -> liability id
    liability_of: dict[str, int]
    overpayment: Decimal


def plan_allocation(
    session: Session,
    *,
    taxpayer_id: int,
    amount: Decimal,
    paid_on: dt.date,
    designated_installment_ids: list[int] | None = None,
) -> AllocationPlan:
    """Art. 55 §1 OP: reminder costs first; then art. 62 §1 and art. 55 §2 OP through
    `rules.allocate_payment`; what remains is a nadpłata. Reads only: the preview a resident sees
    before paying is the same computation that posts the payment."""
    rates = rate_table(session)
    threshold = interest_threshold(session, paid_on)
    liabilities, postings = account_records(session, taxpayer_id)
    loose = [p for p in postings if p.liability_id is None]
    by_installment: dict[int, list[PostingRecord]] = {}
    for posting in postings:
        if posting.installment_id is not None:
            by_installment.setdefault(posting.installment_id, []).append(posting)
    installments = [(installment, liability.delivered_on, liability.limitation) for liability in liabilities
                    for installment in liability.installments]
    return _allocation(amount, paid_on, installments, by_installment, loose, rates, threshold,
                       designated_installment_ids)


def _allocation(
    amount: Decimal,
    paid_on: dt.date,
    installments: Iterable[OpenInstallment],
    by_installment: Mapping[int, list[PostingRecord]],
    loose: Iterable[PostingRecord],
    rates: rules.RateTable,
    threshold: Decimal,
    designated_installment_ids: Sequence[int] | None,
) -> AllocationPlan:
    """The allocation itself, over plain records: the installments that may be open (with their
    decision's delivery day and limitation events), the postings of each installment, the taxpayer's
    postings outside liabilities. `plan_allocation` passes the whole account; `post_payments_batch`
    only the installments that can still be open, which gives the same plan (see there). An
    installment whose liability expired by the day of payment (art. 70 OP) is not chosen: it no
    longer exists (art. 59 §1 pkt 9 OP), so what would have paid it goes on, or is a nadpłata."""
    amount = rules.money(amount)
    remaining = amount
    loose = [p for p in loose if p.value_date <= paid_on]
    costs_open = sum((p.signed for p in loose if p.kind == "koszty_upomnienia"), ZERO) - sum(
        (p.amount for p in loose if p.kind == "wplata"), ZERO)
    costs_paid = min(max(costs_open, ZERO), remaining)
    remaining -= costs_paid
    parts: tuple[rules.AllocatedPart, ...] = ()
    liability_of: dict[str, int] = {}
    overpayment = remaining
    if remaining > 0:
        arrears = []
        for installment, delivered_on, limitation in installments:
            due = rules.effective_due(installment.nominal_due, delivered_on)
            if rules.is_time_barred(due, paid_on, limitation):
                continue
            own = by_installment.get(installment.id, [])
            arrear, _assessed, _paid, _interest_paid = installment_arrear(installment, due, own, paid_on, rates, threshold)
            last = max((p.value_date for p in own), default=paid_on)
            if last > paid_on and (arrear.principal > 0 or arrear.interest_unpaid > 0):
                # a payment dated before postings already made (a statement line arriving days after the
                # day it was paid, after a set-off or another payment): it may pay only what is still
                # open after all of them, the principal and the interest alike, or the installment or its
                # interest would be paid twice (a later payment has already paid the interest that grew
                # on the whole principal until its day)
                after_all, *_ = installment_arrear(installment, due, own, last, rates, threshold)
                interest = min(interest_due(arrear, paid_on, rates, threshold),
                               interest_due(after_all, paid_on, rates, threshold))
                arrear = replace(arrear, principal=min(arrear.principal, max(after_all.principal, ZERO)),
                                 interest_unpaid=interest, interest_from=max(paid_on, arrear.due))
            if arrear.principal > 0 or (arrear.interest_unpaid > 0 and arrear.principal >= 0):
                arrears.append(arrear)
                liability_of[arrear.key] = installment.liability_id
        designated = [str(i) for i in designated_installment_ids or []]
        allocation = rules.allocate_payment(remaining, paid_on, arrears, rates, threshold, designated)
        parts, overpayment = allocation.parts, allocation.overpayment
    return AllocationPlan(amount, costs_paid, parts, liability_of, overpayment)


#: named once: a statement built on aliases made per call is compiled afresh every time (3x the CPU)
_MINE = sa.orm.aliased(LiabilityParty, name="mine")
_CO_OWNER = sa.orm.aliased(LiabilityParty, name="co_owner")
_LISTED = sa.orm.aliased(Taxpayer, name="listed")


def lock_accounts(session: Session, taxpayer_ids: Iterable[int]) -> None:
    """Lock the taxpayers' rows, and those of everyone who shares a liability with them, in id order.

    Whoever posts to an account (a payment, a batch of statement lines, a set-off, a refund) takes
    this lock first: a co-owner's payment and a set-off of the other co-owner's overpayment on the
    same installment then run one after the other, the second seeing the first's postings (each
    taking only its own taxpayer's row let both pay the installment). Always ascending ids, so two
    writers cannot wait for each other."""
    ids = set(taxpayer_ids)
    if not ids:
        return
    sqlite = session.get_bind().dialect.name == "sqlite"
    if not sqlite and len(ids) <= _IN_CHUNK:
        # one round trip: the co-owners found and every row locked in id order (the sort runs below the lock)
        # (a UNION, not an OR of two IN lists: PostgreSQL would scan every taxpayer for the OR)
        everyone = sa.union(
            sa.select(_CO_OWNER.taxpayer_id).join(_MINE, _MINE.liability_id == _CO_OWNER.liability_id)
            .where(_MINE.taxpayer_id.in_(sorted(ids))),
            sa.select(_LISTED.id).where(_LISTED.id.in_(sorted(ids))))
        session.execute(sa.select(Taxpayer.id).where(Taxpayer.id.in_(everyone)).order_by(Taxpayer.id).with_for_update())
        return
    for chunk in _chunks(sorted(ids)):
        ids.update(session.scalars(sa.select(_CO_OWNER.taxpayer_id).distinct()
                                   .join(_MINE, _MINE.liability_id == _CO_OWNER.liability_id)
                                   .where(_MINE.taxpayer_id.in_(chunk))))
    for chunk in _chunks(sorted(ids)):
        if sqlite:
            # SQLite has no row locks and reads outside a transaction until the first write: writing
            # first takes the database's write lock, so what is read next is what other writers committed
            session.execute(sa.update(Taxpayer).where(Taxpayer.id.in_(chunk)).values(id=Taxpayer.id)
                            .execution_options(synchronize_session=False))
        else:
            session.execute(sa.select(Taxpayer.id).where(Taxpayer.id.in_(chunk)).order_by(Taxpayer.id).with_for_update())


def post_payment(
    session: Session,
    *,
    taxpayer_id: int,
    amount: Decimal,
    paid_on: dt.date,
    payment_ref: str,
    designated_installment_ids: list[int] | None = None,
    source: str = "local",
    origin: str = "system",
    created_by_id: int | None = None,
    reason: str = "",
) -> PostedPayment:
    """Post a payment to the ledger exactly once (the payment_ref is its key).

    Art. 55 §1 OP: reminder costs are paid first; then art. 62 §1 and art. 55 §2 OP through
    `rules.allocate_payment`; what remains is a nadpłata. A payment already posted under the same
    payment_ref is not posted again.
    """
    amount = rules.money(amount)
    # one payment of a taxpayer is allocated at a time: a second waits here for the first to commit,
    # then sees its postings (PostgreSQL; SQLite serialises writers anyway)
    lock_accounts(session, [taxpayer_id])
    already = session.scalars(sa.select(Posting).where(Posting.payment_ref == payment_ref)).all()
    if already:
        return PostedPayment(payment_ref, (), ZERO, ZERO, repeated=True)
    plan = plan_allocation(session, taxpayer_id=taxpayer_id, amount=amount, paid_on=paid_on,
                           designated_installment_ids=designated_installment_ids)
    payment = PaymentToPost(taxpayer_id, amount, paid_on, payment_ref, tuple(designated_installment_ids or ()),
                            source, origin, created_by_id, reason)
    rows = _payment_rows(payment, plan)
    if rows:
        insert_rows(session, Posting.__table__, rows)  # as the batch does: a third of the ORM's flush
    if plan.overpayment > 0 and designated_installment_ids:
        # art. 76 §1 OP. Only a designated payment can leave an overpayment while something is open: an
        # undesignated one pays everything open, oldest first (art. 62 §1), before anything is left over
        offset_overpayments(session, taxpayer_id=taxpayer_id, as_of=paid_on)
    return PostedPayment(payment_ref, plan.parts, plan.overpayment, plan.costs, repeated=False)


@dataclass(frozen=True)
class PaymentToPost:
    """One payment for `post_payments_batch`: the arguments of `post_payment`."""

    taxpayer_id: int
    amount: Decimal
    paid_on: dt.date
    payment_ref: str
    designated_installment_ids: tuple[int, ...] = ()
    source: str = "local"
    origin: str = "system"
    created_by_id: int | None = None
    reason: str = ""


def _payment_rows(payment: PaymentToPost, plan: AllocationPlan) -> list[dict]:
    """The postings of an allocated payment, in order: costs, per installment a wpłata (and the
    odsetki within it), the nadpłata; numbered in `source_key` after the payment_ref."""
    rows: list[dict] = []

    def add(kind: str, value: Decimal, liability_id: int | None = None, installment_id: int | None = None) -> None:
        rows.append({
            "taxpayer_id": payment.taxpayer_id, "liability_id": liability_id, "installment_id": installment_id,
            "kind": kind, "amount": value, "booked_on": payment.paid_on, "value_date": payment.paid_on,
            "payment_ref": payment.payment_ref, "origin": payment.origin, "reason": payment.reason,
            "created_by_id": payment.created_by_id, "source": payment.source,
            "source_key": f"{payment.payment_ref}:{len(rows) + 1}",
        })

    if plan.costs > 0:
        add("wplata", plan.costs)
    for part in plan.parts:
        add("wplata", part.principal + part.interest, plan.liability_of[part.key], int(part.key))
        if part.interest > 0:
            add("odsetki", part.interest, plan.liability_of[part.key], int(part.key))
    if plan.overpayment > 0:
        add("nadplata", plan.overpayment)
    return rows


#: placeholders per IN list (SQLite allows 32,766 parameters in a statement)
_IN_CHUNK = 5000


def post_payments_batch(session: Session, payments: Sequence[PaymentToPost]) -> list[PostedPayment]:
    """Post many payments as `post_payment` would post each of them in turn, in a few queries.

    Same postings, same order of allocation: a taxpayer's second payment in the batch (or a
    co-owner's) sees the postings of the first. The accounts are read once for the whole batch, and
    only the installments that can still be open: the database sums each installment's postings and
    leaves out those that are settled for every payment of the batch, i.e. nothing dated after the
    batch's earliest day of payment, nothing left to pay (the signed sum of its postings, which is the
    principal `installment_arrear` replays, is not above zero) and no payment after its nominal due
    date (the effective due date is never earlier, so no interest can have been left unpaid).
    `installment_arrear` would make such an installment no arrear on any day of the batch, and a
    payment of the batch never reaches it. The rest is replayed in memory as `plan_allocation` does.
    The postings are inserted at the end with a few multi-row INSERTs, not as ORM objects. A designated
    payment that leaves an overpayment has it set off right away, as `post_payment` does, and the
    payments after it see the set-off (`tests/integration/test_payments_posting_properties.py` checks
    the whole claim on random ledgers).
    """
    if not payments:
        return []
    taxpayer_ids = sorted({p.taxpayer_id for p in payments})
    lock_accounts(session, taxpayer_ids)  # the lock `post_payment` takes, for the whole batch at once
    refs = sorted({p.payment_ref for p in payments})
    posted_refs: set[str] = set()
    for chunk in _chunks(refs):
        posted_refs.update(session.scalars(sa.select(Posting.payment_ref).where(Posting.payment_ref.in_(chunk)).distinct()))
    first_day = min(p.paid_on for p in payments)
    accounts = _BatchAccounts.load(session, taxpayer_ids, first_day)
    rates = rate_table(session)
    thresholds: dict[dt.date, Decimal] = {}
    results: list[PostedPayment] = []
    rows: list[dict] = []
    for payment in payments:
        if payment.payment_ref in posted_refs:
            results.append(PostedPayment(payment.payment_ref, (), ZERO, ZERO, repeated=True))
            continue
        payment = replace(payment, amount=rules.money(payment.amount))
        threshold = thresholds.get(payment.paid_on)
        if threshold is None:
            threshold = thresholds[payment.paid_on] = interest_threshold(session, payment.paid_on)
        plan = _allocation(payment.amount, payment.paid_on, accounts.installments_of(payment.taxpayer_id),
                           accounts.postings_of, accounts.loose.get(payment.taxpayer_id, ()), rates, threshold,
                           payment.designated_installment_ids)
        new = _payment_rows(payment, plan)
        accounts.add(new)
        rows.extend(new)
        if new:
            posted_refs.add(payment.payment_ref)
        results.append(PostedPayment(payment.payment_ref, plan.parts, plan.overpayment, plan.costs, repeated=False))
        if plan.overpayment > 0 and payment.designated_installment_ids:
            # as post_payment, and at the same point: the ex officio set-off (art. 76 §1 OP), which the
            # payments after it see. Only a designated payment can leave an overpayment while something
            # is open (a statement's lines never are: this is rare), so the accounts are simply read again
            insert_rows(session, Posting.__table__, rows)
            rows = []
            offset_overpayments(session, taxpayer_id=payment.taxpayer_id, as_of=payment.paid_on)
            accounts = _BatchAccounts.load(session, taxpayer_ids, first_day)
    if rows:
        insert_rows(session, Posting.__table__, rows)  # (the ORM would group them by NULLs)
    return results


@dataclass
class _BatchAccounts:
    """The part of the batch's accounts an allocation can touch: the installments that may be open
    (with their postings) and each taxpayer's postings outside liabilities that concern reminder costs."""

    #: taxpayer id -> (installment, its decision's delivery day, limitation events), for the liabilities
    #: they are liable for
    open_installments: dict[int, list[OpenInstallment]]
    #: installment id -> its postings (shared by co-owners)
    postings_of: dict[int, list[PostingRecord]]
    #: taxpayer id -> postings without a liability that count for costs (koszty_upomnienia, wplata)
    loose: dict[int, list[PostingRecord]]

    @classmethod
    def load(cls, session: Session, taxpayer_ids: list[int], first_day: dt.date) -> _BatchAccounts:
        open_installments: dict[int, list[OpenInstallment]] = {}
        postings_of: dict[int, list[PostingRecord]] = {}
        loose: dict[int, list[PostingRecord]] = {}
        loaded: set[int] = set()
        grosze = sa.type_coerce(Posting.amount, sa.BigInteger)
        signed = sa.case((Posting.kind.in_(("odpis", "wplata", "nadplata")), -grosze), else_=grosze)
        paid_day = sa.case((Posting.kind.in_(("wplata", "odsetki")), Posting.value_date))
        for chunk in _chunks(taxpayer_ids):
            liable = sa.select(LiabilityParty.liability_id).where(LiabilityParty.taxpayer_id.in_(chunk))
            # the postings as `account_records` reads them (by liability), summed per installment
            sums = (
                sa.select(Posting.installment_id, sa.func.sum(signed).label("owed"),
                          sa.func.max(Posting.value_date).label("last_day"), sa.func.max(paid_day).label("last_paid"))
                .where(Posting.liability_id.in_(liable), Posting.installment_id.is_not(None))
                .group_by(Posting.installment_id)
                .cte("sums")
            )
            candidates = (
                sa.select(Installment.id, Installment.liability_id, Installment.number, Installment.due_on,
                          Installment.amount, Decision.delivered_on,
                          sa.exists().where(LimitationRecord.liability_id == Installment.liability_id).label("limited"))
                .join(sums, sums.c.installment_id == Installment.id)
                .join(Liability, Liability.id == Installment.liability_id)
                .outerjoin(Decision, Decision.id == Liability.decision_id)
                .where(Installment.liability_id.in_(liable),
                       sa.or_(sums.c.owed > 0, sums.c.last_day > first_day, sums.c.last_paid > Installment.due_on))
            )
            found: dict[int, list[OpenInstallment]] = {}
            rows = session.execute(candidates).all()
            limitation = limitation_of(session, sorted({row.liability_id for row in rows if row.limited}))
            for row in rows:
                record = InstallmentRecord(row.id, row.liability_id, row.number, row.due_on, row.amount)
                found.setdefault(row.liability_id, []).append(
                    (record, row.delivered_on, limitation.get(row.liability_id, ())))
            if found:
                for taxpayer_id, liability_id in session.execute(
                        sa.select(LiabilityParty.taxpayer_id, LiabilityParty.liability_id)
                        .where(LiabilityParty.taxpayer_id.in_(chunk))):
                    if liability_id in found:
                        open_installments.setdefault(taxpayer_id, []).extend(found[liability_id])
                # (an installment shared with a co-owner in an earlier chunk has its postings already)
                ids = [item[0].id for items in found.values() for item in items if item[0].id not in loaded]
                loaded.update(ids)
                for part in _chunks(ids):
                    for row in session.execute(
                        sa.select(Posting.id, Posting.kind, grosze, Posting.value_date, Posting.liability_id,
                                  Posting.installment_id, Posting.payment_ref, Posting.corrects_id)
                        .where(Posting.installment_id.in_(part), Posting.liability_id.in_(liable))
                    ):
                        postings_of.setdefault(row[5], []).append(PostingRecord(
                            row[0], row[1], _from_grosze(row[2]), *row[3:]))
            for taxpayer_id, posting_id, kind, amount, value_date in session.execute(
                sa.select(Posting.taxpayer_id, Posting.id, Posting.kind, grosze, Posting.value_date)
                .where(Posting.liability_id.is_(None), Posting.taxpayer_id.in_(chunk),
                       Posting.kind.in_(("koszty_upomnienia", "wplata")))
            ):
                loose.setdefault(taxpayer_id, []).append(PostingRecord(posting_id, kind, _from_grosze(amount), value_date))
        return cls(open_installments, postings_of, loose)

    def installments_of(self, taxpayer_id: int) -> list[OpenInstallment]:
        return self.open_installments.get(taxpayer_id, [])

    def add(self, rows: list[dict]) -> None:
        """A payment's new postings, seen by the payments after it."""
        for row in rows:
            record = PostingRecord(0, row["kind"], row["amount"], row["value_date"], row["liability_id"],
                                   row["installment_id"], row["payment_ref"])
            if row["installment_id"] is not None:
                self.postings_of.setdefault(row["installment_id"], []).append(record)
            elif row["kind"] == "wplata":
                self.loose.setdefault(row["taxpayer_id"], []).append(record)


def _from_grosze(value: int) -> Decimal:
    """As the Money column reads it (złoty, two places), without its per-value division."""
    return Decimal(value).scaleb(-2)


def _chunks(values: list, size: int | None = None) -> Iterator[list]:
    size = size or _IN_CHUNK
    for start in range(0, len(values), size):
        yield values[start:start + size]


MANUAL_KINDS = ("przypis", "odpis", "koszty_upomnienia", "zwrot")


def _checked_manual(
    session: Session, kind: str, amount: Decimal, reason: str, liability_id: int | None, installment_id: int | None,
) -> tuple[Decimal, int | None, str]:
    """A manual posting's values, or a PostingError for the clerk: (amount, liability id, reason)."""
    if not reason or not reason.strip():
        raise PostingError("Podaj podstawę księgowania (np. numer decyzji zmieniającej).")
    if kind not in MANUAL_KINDS:
        raise PostingError("Tego rodzaju księgowania nie wprowadza się ręcznie.")
    amount = rules.money(amount)
    if amount <= 0 or amount != rules.round_to_grosz(amount):
        raise PostingError("Kwota musi być dodatnia, z dokładnością do grosza.")
    if kind in ("przypis", "odpis") and installment_id is None:
        raise PostingError("Przypis i odpis dotyczą wskazanej raty.")
    if installment_id is not None:
        installment = session.get(Installment, installment_id)
        if installment is None or (liability_id is not None and installment.liability_id != liability_id):
            raise PostingError("Nie ma takiej raty.")
        liability_id = installment.liability_id
    return amount, liability_id, reason.strip()


def refundable_overpayment(session: Session, taxpayer_id: int, refunded_on: dt.date) -> Decimal:
    """The nadpłata a zwrot dated `refunded_on` may take (art. 77 OP): what stands on the account on that
    day and today (a nadpłata set off or refunded since is not there twice). Takes the accounts' lock."""
    from platforma.taxes.queries import account  # the account as the pages show it

    lock_accounts(session, [taxpayer_id])
    days = {refunded_on, max(refunded_on, dt.datetime.now(WARSAW).date())}
    return min(account(session, taxpayer_id, day).nadplata for day in days)


def _check_refund(session: Session, taxpayer_id: int, kind: str, liability_id: int | None, amount: Decimal,
                  value_date: dt.date) -> None:
    """A clerk's zwrot of an overpayment refunds no more than `refundable_overpayment`."""
    if kind != "zwrot" or liability_id is not None:
        return
    standing = refundable_overpayment(session, taxpayer_id, value_date)
    if amount > standing:
        raise PostingError(f"Zwrot {amount} zł przekracza nadpłatę na koncie ({standing} zł).")


def manual_posting(
    session: Session,
    *,
    taxpayer_id: int,
    kind: str,
    amount: Decimal,
    value_date: dt.date,
    reason: str,
    author,
    liability_id: int | None = None,
    installment_id: int | None = None,
    ip: str = "",
    user_agent: str = "",
) -> Posting:
    """A clerk's posting: always with a reason, always audited."""
    amount, liability_id, reason = _checked_manual(session, kind, amount, reason, liability_id, installment_id)
    _check_refund(session, taxpayer_id, kind, liability_id, amount, value_date)
    posting = Posting(
        taxpayer_id=taxpayer_id, liability_id=liability_id, installment_id=installment_id, kind=kind, amount=amount,
        booked_on=value_date, value_date=value_date, origin="manual", reason=reason, created_by_id=author.id,
    )
    session.add(posting)
    session.flush()
    audit.record(
        session, "posting.manual", actor=author, object_type="posting", object_id=posting.id, taxpayer_id=taxpayer_id,
        details={"kind": kind, "amount": str(amount), "value_date": value_date.isoformat(), "reason": posting.reason},
        ip=ip, user_agent=user_agent,
    )
    return posting


# -- the second approval of manual postings ([taxes] manual_posting_approval) -----------------------

def propose_manual_posting(
    session: Session,
    *,
    taxpayer_id: int,
    kind: str,
    amount: Decimal,
    value_date: dt.date,
    reason: str,
    author,
    liability_id: int | None = None,
    installment_id: int | None = None,
    ip: str = "",
    user_agent: str = "",
) -> PostingProposal:
    """A manual posting as a proposal: checked as `manual_posting` checks it, audited, not in the
    ledger until a different clerk approves it."""
    amount, liability_id, reason = _checked_manual(session, kind, amount, reason, liability_id, installment_id)
    proposal = PostingProposal(
        taxpayer_id=taxpayer_id, liability_id=liability_id, installment_id=installment_id, kind=kind, amount=amount,
        value_date=value_date, reason=reason, proposed_by_id=author.id, state="proposed", decision_reason="",
    )
    session.add(proposal)
    session.flush()
    audit.record(
        session, "posting.proposed", actor=author, object_type="posting_proposal", object_id=proposal.id,
        taxpayer_id=taxpayer_id,
        details={"kind": kind, "amount": str(amount), "value_date": value_date.isoformat(), "reason": reason},
        ip=ip, user_agent=user_agent,
    )
    return proposal


def _decide(session: Session, proposal_id: int, decider, state: str, decision_reason: str = "") -> PostingProposal:
    """Move a waiting proposal to `state`, once: a conditional UPDATE that only one of two clerks
    deciding at the same moment wins (PostgreSQL re-reads the row after the first commits; SQLite
    serialises writers)."""
    proposal = session.get(PostingProposal, proposal_id)
    if proposal is None:
        raise PostingError("Nie ma takiego księgowania do zatwierdzenia.")
    if proposal.proposed_by_id == decider.id:
        raise PostingError("Księgowanie, które zaproponowałeś, zatwierdza albo odrzuca inny pracownik.")
    won = session.execute(
        sa.update(PostingProposal)
        .where(PostingProposal.id == proposal_id, PostingProposal.state == "proposed")
        .values(state=state, decided_by_id=decider.id, decided_at=utcnow(), decision_reason=decision_reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise PostingError("To księgowanie zostało już rozpatrzone.")
    session.refresh(proposal)
    return proposal


def approve_proposal(session: Session, *, proposal_id: int, approver, ip: str = "", user_agent: str = "") -> Posting:
    """A different clerk approves: the posting is made (its author the proposer) and both names are
    in the audit log. Exactly once: the state moves once, and the posting's key is the proposal."""
    proposal = _decide(session, proposal_id, approver, "approved")
    # the nadpłata a proposed zwrot would refund may have been set off or refunded while it waited
    _check_refund(session, proposal.taxpayer_id, proposal.kind, proposal.liability_id, proposal.amount,
                  proposal.value_date)
    posting = Posting(
        taxpayer_id=proposal.taxpayer_id, liability_id=proposal.liability_id, installment_id=proposal.installment_id,
        kind=proposal.kind, amount=proposal.amount, booked_on=proposal.value_date, value_date=proposal.value_date,
        origin="manual", reason=proposal.reason, created_by_id=proposal.proposed_by_id,
        source="approval", source_key=f"proposal:{proposal.id}",
    )
    session.add(posting)
    session.flush()
    session.execute(sa.update(PostingProposal).where(PostingProposal.id == proposal.id).values(posting_id=posting.id)
                    .execution_options(synchronize_session=False))
    proposer = session.get(User, proposal.proposed_by_id)
    audit.record(
        session, "posting.approved", actor=approver, object_type="posting", object_id=posting.id,
        taxpayer_id=proposal.taxpayer_id,
        details={"proposal": proposal.id, "kind": proposal.kind, "amount": str(proposal.amount),
                 "value_date": proposal.value_date.isoformat(), "reason": proposal.reason,
                 "proposed_by": {"id": proposer.id, "name": proposer.full_name, "email": proposer.email},
                 "approved_by": {"id": approver.id, "name": approver.full_name, "email": approver.email}},
        ip=ip, user_agent=user_agent,
    )
    return posting


def reject_proposal(session: Session, *, proposal_id: int, rejecter, reason: str, ip: str = "",
                    user_agent: str = "") -> PostingProposal:
    """A different clerk rejects, with a reason; nothing is posted."""
    if not reason or not reason.strip():
        raise PostingError("Podaj powód odrzucenia.")
    proposal = _decide(session, proposal_id, rejecter, "rejected", reason.strip())
    audit.record(
        session, "posting.rejected", actor=rejecter, object_type="posting_proposal", object_id=proposal.id,
        taxpayer_id=proposal.taxpayer_id,
        details={"kind": proposal.kind, "amount": str(proposal.amount), "reason": proposal.reason,
                 "proposed_by": proposal.proposed_by_id, "rejection": proposal.decision_reason},
        ip=ip, user_agent=user_agent,
    )
    return proposal


# -- przedawnienie: what a clerk records about the limitation period (art. 70 OP) -------------------

def record_limitation(
    session: Session,
    *,
    taxpayer_id: int,
    liability_id: int,
    kind: str,
    occurred_on: dt.date,
    reason: str,
    author,
    today: dt.date,
    until: dt.date | None = None,
    ends_id: int | None = None,
    ip: str = "",
    user_agent: str = "",
) -> LimitationRecord:
    """Record an interruption (art. 70 §4), a suspension (§2 pkt 1, §6) or its end (§7), or a tax
    mortgage or pledge (§8) for a liability of the taxpayer: always with a reason, always audited,
    never changed afterwards (a suspension's end is a new record naming it)."""
    if not reason or not reason.strip():
        raise PostingError("Podaj podstawę wpisu (np. tytuł wykonawczy i zastosowany środek egzekucyjny).")
    if kind not in LIMITATION_RECORD_KINDS:
        raise PostingError("Nie ma takiego zdarzenia.")
    liable = session.scalar(sa.select(LiabilityParty.id).where(
        LiabilityParty.liability_id == liability_id, LiabilityParty.taxpayer_id == taxpayer_id))
    if liable is None:
        raise PostingError("To zobowiązanie nie należy do tego podatnika.")
    if occurred_on > today:
        raise PostingError("Data zdarzenia nie może być późniejsza niż dziś.")
    if until is not None and (kind != "zawieszenie" or until < occurred_on):
        raise PostingError("Koniec zawieszenia nie może być wcześniejszy niż jego początek.")
    if kind == "koniec_zawieszenia":
        suspension = session.get(LimitationRecord, ends_id) if ends_id is not None else None
        if suspension is None or suspension.kind != "zawieszenie" or suspension.liability_id != liability_id:
            raise PostingError("Wskaż zawieszenie tego zobowiązania, które się kończy.")
        ended = session.scalar(sa.select(LimitationRecord.id).where(LimitationRecord.ends_id == suspension.id))
        if suspension.until is not None or ended is not None:
            raise PostingError("To zawieszenie ma już datę końca.")
        if occurred_on < suspension.occurred_on:
            raise PostingError("Koniec zawieszenia nie może być wcześniejszy niż jego początek.")
    else:
        ends_id = None
    record = LimitationRecord(liability_id=liability_id, kind=kind, occurred_on=occurred_on, until=until,
                              ends_id=ends_id, reason=reason.strip(), created_by_id=author.id)
    session.add(record)
    session.flush()
    audit.record(
        session, "limitation.recorded", actor=author, object_type="liability", object_id=liability_id,
        taxpayer_id=taxpayer_id,
        details={"record": record.id, "kind": kind, "occurred_on": occurred_on.isoformat(),
                 "until": until.isoformat() if until else None, "ends": ends_id, "reason": record.reason},
        ip=ip, user_agent=user_agent,
    )
    return record


# -- nadpłata: set off ex officio (art. 76 §1, art. 76a OP) ----------------------------------------

@dataclass(frozen=True)
class Offset:
    """One set-off of an overpayment against an installment, with the day it takes effect."""

    payment_ref: str
    effective_on: dt.date
    installment_id: int
    liability_id: int
    principal: Decimal
    interest: Decimal

    @property
    def amount(self) -> Decimal:
        return self.principal + self.interest


def overpayment_lots(loose: Iterable[PostingRecord], day: dt.date) -> list[list]:
    """The overpayment standing on the account on `day`, as [origin posting id, the day it arose
    (art. 73 OP), amount left], oldest first: nadpłata lines (and corrections lowering the balance)
    less what was refunded or set off (zwrot, corrections raising it), taken from the oldest."""
    lots: list[list] = []
    used = ZERO
    for posting in sorted(loose, key=lambda p: (p.value_date, p.id)):
        signed = posting.signed
        if posting.kind in ("nadplata", "zwrot", "korekta"):
            if signed < 0:
                lots.append([posting.id, posting.value_date, -signed])
            else:
                # whatever its date: money refunded or set off later is not there to be set off again
                used += signed
    for lot in lots:
        taken = min(lot[2], used)
        lot[2] -= taken
        used -= taken
    return [lot for lot in lots if lot[2] > 0 and lot[1] <= day]


def offset_overpayments(session: Session, *, taxpayer_id: int, as_of: dt.date, requested_on: dt.date | None = None,
                        author=None, ip: str = "", user_agent: str = "") -> list[Offset]:
    """Set the taxpayer's overpayment off against their liabilities, appending postings; exactly once:
    run again, it finds the overpayment used and does nothing.

    Art. 76 §1 OP: an overpayment is set off ex officio against tax arrears with their interest and
    against current liabilities; what remains is refunded (a clerk's zwrot), unless the taxpayer
    asks for it to be set against future liabilities (`requested_on`: the day of the request, a
    clerk's action, audited). Art. 76a §1: art. 62 §1 (the oldest first) and art. 55 §2 (the
    proportional split with the interest) apply. The day it takes effect (art. 76a §2 pkt 1): for
    arrears, the day the overpayment arose (or, for arrears assessed later, the day they were
    assessed: both must exist); for a current liability, its due date (it is then paid on time);
    for a future one, on request, the day of the request (assumption, ADR 0014). An installment of
    an expired liability (art. 70 OP) is not reached.

    Each set-off is a payment from the overpayment: wpłata (and odsetki) on the installment, and a
    zwrot (the overpayment leaving the account) on the taxpayer's account, all with one
    payment_ref "zaliczenie:…", dated the day it takes effect."""
    lock_accounts(session, [taxpayer_id])
    liabilities, postings = account_records(session, taxpayer_id)
    day = requested_on or as_of
    lots = overpayment_lots((p for p in postings if p.liability_id is None), day)
    if not lots:
        return []
    by_installment: dict[int, list[PostingRecord]] = {}
    for posting in postings:
        if posting.installment_id is not None:
            by_installment.setdefault(posting.installment_id, []).append(posting)
    candidates = sorted(
        ((rules.effective_due(installment.nominal_due, liability.delivered_on), installment.id, installment, liability)
         for liability in liabilities for installment in liability.installments),
        key=lambda item: item[:2])
    rates = rate_table(session)
    existing = {p.payment_ref for p in postings if p.payment_ref}
    offsets: list[Offset] = []
    rows: list[dict] = []
    for due, _id, installment, liability in candidates:
        own = by_installment.get(installment.id, [])
        assessed_on = min((p.value_date for p in own if p.kind == "przypis"), default=None)
        if assessed_on is None or (requested_on is None and due > as_of):
            continue  # a future liability: set off only at the taxpayer's request
        while lots:
            lot_id, arose, amount = lots[0]
            effective = max(arose, assessed_on, due if requested_on is None or due <= requested_on else requested_on)
            if effective > day or rules.is_time_barred(due, effective, liability.limitation):
                break
            own = by_installment.get(installment.id, [])
            now_open, *_ = installment_arrear(installment, due, own, day, rates, interest_threshold(session, day))
            if now_open.principal <= 0 and now_open.interest_unpaid <= 0:
                break  # paid since (in full): nothing is left to set off, the lot goes on
            if any(p.value_date > effective for p in own):
                # the set-off was not made in time and the installment has changed since (paid in part,
                # written down, assessed higher): set off then, it would pay what was paid or written
                # off since, or miss what was assessed since; it is set off now against what is open
                # now (conservative: interest runs until today; ADR 0014)
                effective = day
            open_one = [(installment, liability.delivered_on, liability.limitation)]
            plan = _allocation(amount, effective, open_one, by_installment, (), rates,
                               interest_threshold(session, effective), None)
            used = amount - plan.overpayment
            if used <= 0:
                break
            ref = f"{OFFSET_REF_PREFIX}{lot_id}:{installment.id}:{effective:%Y%m%d}"
            while ref in existing:
                ref += "+"
            existing.add(ref)
            reason = (f"zaliczenie nadpłaty z {arose:%d.%m.%Y} na wniosek z {requested_on:%d.%m.%Y} (art. 76 § 1 OP)"
                      if requested_on is not None and due > requested_on else
                      f"zaliczenie nadpłaty z {arose:%d.%m.%Y} z urzędu (art. 76 § 1, art. 76a OP)")
            payment = PaymentToPost(taxpayer_id, used, effective, ref, (), "offset", "system",
                                    getattr(author, "id", None), reason)
            new = _payment_rows(payment, replace(plan, overpayment=ZERO))
            new.append({**new[0], "liability_id": None, "installment_id": None, "kind": "zwrot", "amount": used,
                        "source_key": f"{ref}:{len(new) + 1}"})
            for row in new[:-1]:
                by_installment.setdefault(installment.id, []).append(PostingRecord(
                    0, row["kind"], row["amount"], effective, row["liability_id"], row["installment_id"], ref))
            rows.extend(new)
            [part] = plan.parts
            offsets.append(Offset(ref, effective, installment.id, installment.liability_id, part.principal, part.interest))
            lots[0][2] -= used
            if lots[0][2] <= 0:
                lots.pop(0)
            if plan.overpayment > 0:
                break  # the installment is settled; what is left of the lot goes on to the next
    if rows:
        insert_rows(session, Posting.__table__, rows)
        audit.record(
            session, "overpayment.offset_requested" if requested_on is not None else "overpayment.offset",
            actor=author, object_type="taxpayer", object_id=taxpayer_id, taxpayer_id=taxpayer_id,
            details={"as_of": day.isoformat(), "requested_on": requested_on.isoformat() if requested_on else None,
                     "offsets": [{"ref": o.payment_ref, "effective_on": o.effective_on.isoformat(),
                                  "installment": o.installment_id, "principal": str(o.principal),
                                  "interest": str(o.interest)} for o in offsets]},
            ip=ip, user_agent=user_agent,
        )
    return offsets


def taxpayers_with_overpayment(session: Session, day: dt.date, among: list[int] | None = None) -> list[int]:
    """Taxpayers (of `among`, or all) whose own postings outside liabilities leave an overpayment on
    `day` (one pass over the index of such postings)."""
    balance = sa.func.sum(Posting.signed_amount_sql())
    condition = sa.and_(Posting.liability_id.is_(None), Posting.value_date <= day,
                        Posting.kind.in_(("nadplata", "zwrot", "korekta")))
    if among is not None:
        condition = sa.and_(condition, Posting.taxpayer_id.in_(among))
    return list(session.scalars(
        sa.select(Posting.taxpayer_id).where(condition).group_by(Posting.taxpayer_id).having(balance < 0)
        .order_by(Posting.taxpayer_id)
    ))
