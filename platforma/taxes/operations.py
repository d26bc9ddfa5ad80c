"""The verbs that change a taxpayer's account. They take a session and never commit."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.core import audit
from platforma.taxes import rules
from platforma.taxes.account import ZERO, installment_arrear
from platforma.taxes.models import Decision, Installment, Liability, LiabilityParty, Posting, Taxpayer
from platforma.taxes.queries import account_records
from platforma.taxes.settings import interest_threshold, rate_table


class PostingError(ValueError):
    """A refused change, with a message for the clerk (Polish)."""


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
    amount = rules.money(amount)
    rates = rate_table(session)
    threshold = interest_threshold(session, paid_on)
    liabilities, postings = account_records(session, taxpayer_id)
    remaining = amount
    loose = [p for p in postings if p.liability_id is None and p.value_date <= paid_on]
    costs_open = sum((p.signed for p in loose if p.kind == "koszty_upomnienia"), ZERO) - sum(
        (p.amount for p in loose if p.kind == "wplata"), ZERO)
    costs_paid = min(max(costs_open, ZERO), remaining)
    remaining -= costs_paid
    parts: tuple[rules.AllocatedPart, ...] = ()
    liability_of: dict[str, int] = {}
    overpayment = remaining
    if remaining > 0:
        arrears = []
        by_installment: dict[int, list] = {}
        for posting in postings:
            if posting.installment_id is not None:
                by_installment.setdefault(posting.installment_id, []).append(posting)
        for liability in liabilities:
            for installment in liability.installments:
                due = rules.effective_due(installment.nominal_due, liability.delivered_on)
                own = by_installment.get(installment.id, [])
                arrear, _assessed, _paid, _interest_paid = installment_arrear(installment, due, own, paid_on, rates, threshold)
                if arrear.principal > 0 or arrear.interest_unpaid > 0:
                    arrears.append(arrear)
                    liability_of[arrear.key] = liability.id
        designated = [str(i) for i in designated_installment_ids or []]
        allocation = rules.allocate_payment(remaining, paid_on, arrears, rates, threshold, designated)
        parts, overpayment = allocation.parts, allocation.overpayment
    return AllocationPlan(amount, costs_paid, parts, liability_of, overpayment)


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
    session.execute(sa.select(Taxpayer.id).where(Taxpayer.id == taxpayer_id).with_for_update())
    already = session.scalars(sa.select(Posting).where(Posting.payment_ref == payment_ref)).all()
    if already:
        return PostedPayment(payment_ref, (), ZERO, ZERO, repeated=True)
    plan = plan_allocation(session, taxpayer_id=taxpayer_id, amount=amount, paid_on=paid_on,
                           designated_installment_ids=designated_installment_ids)

    def add(kind: str, value: Decimal, n: int, liability_id: int | None = None, installment_id: int | None = None) -> None:
        session.add(Posting(
            taxpayer_id=taxpayer_id, liability_id=liability_id, installment_id=installment_id, kind=kind, amount=value,
            booked_on=paid_on, value_date=paid_on, payment_ref=payment_ref, origin=origin, reason=reason,
            created_by_id=created_by_id, source=source, source_key=f"{payment_ref}:{n}",
        ))

    counter = iter(range(1, 10_000))
    if plan.costs > 0:
        add("wplata", plan.costs, next(counter))
    for part in plan.parts:
        add("wplata", part.principal + part.interest, next(counter), plan.liability_of[part.key], int(part.key))
        if part.interest > 0:
            add("odsetki", part.interest, next(counter), plan.liability_of[part.key], int(part.key))
    parts, overpayment, costs_paid = plan.parts, plan.overpayment, plan.costs
    if overpayment > 0:
        add("nadplata", overpayment, next(counter))
    session.flush()
    return PostedPayment(payment_ref, parts, overpayment, costs_paid, repeated=False)


MANUAL_KINDS = ("przypis", "odpis", "koszty_upomnienia", "zwrot")


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
    posting = Posting(
        taxpayer_id=taxpayer_id, liability_id=liability_id, installment_id=installment_id, kind=kind, amount=amount,
        booked_on=value_date, value_date=value_date, origin="manual", reason=reason.strip(), created_by_id=author.id,
    )
    session.add(posting)
    session.flush()
    audit.record(
        session, "posting.manual", actor=author, object_type="posting", object_id=posting.id, taxpayer_id=taxpayer_id,
        details={"kind": kind, "amount": str(amount), "value_date": value_date.isoformat(), "reason": posting.reason},
        ip=ip, user_agent=user_agent,
    )
    return posting
