"""Random ledgers: every grosz of a payment lands once, and a batch posts what payments one by one post.

Hypothesis draws a small gmina's accounts (liabilities with 1-4 installments, some co-owned, some
decisions delivered after the first due date; earlier payments on any day, some designated;
reminder costs) and a batch of payments on any day of the year, some designated, some repeating a
reference already posted. Each example is built inside one transaction on both databases and rolled
back; the batch (`post_payments_batch`, what a statement import uses) and the same payments one by one
(`post_payment`, what a gateway's confirmation uses) each run in a savepoint of it. Then:

* both post the same postings and give the same results (the batch reads only the installments that
  may still be open: this is the claim its docstring makes, checked on ledgers nobody wrote by hand);
* every payment posted is all there: its wpłata (costs and installments) and nadpłata add up to its
  amount, and odsetki never exceed the wpłata they are part of;
* no installment is paid beyond what it owes: its charges (przypis, odsetki) are never less than
  the wpłata on it, whatever the order of the days of payment (art. 62 §1, art. 55 §2 OP: what is
  left over is a nadpłata, art. 73 §1 pkt 1 OP);
* payments posted in the order of their days replay, in the account page's replay, exactly as they
  were allocated: no payment on an installment carries more interest than the installment owed on its
  day (interest paid twice would vanish there, neither owed nor a nadpłata);
* a reference already posted posts nothing.

A second test sets off, ex officio, whatever overpayment such payments left against decisions issued
after them (art. 76 §1 OP), then refunds what is left (art. 77 OP): money moves from the overpayment
and is never made. A third pays what the payment page asks (everything overdue, chosen installments)
and finds it paid in full, with no nadpłata. A fourth has the treasury refund parts of a gateway
payment: a zwrot never takes more than the nadpłata there is.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from platforma.payments import operations
from platforma.payments.gateways.base import GatewayReport, RefundReport
from platforma.payments.models import PaymentRefund
from platforma.payments.queries import payable
from platforma.taxes import operations as tax_ops, rules
from platforma.taxes.account import _payments_on, rounded_interest
from platforma.taxes.models import Installment, Posting
from platforma.taxes.queries import account_records
from platforma.taxes.settings import interest_threshold, rate_table
from tests.integration.test_payments_batch_posting import PAYMENTS, _postings
from tests.integration.test_payments_batch_posting import _liability as assessed

D = dt.date
#: the statutory days of a year's four installments (art. 6 ust. 7 u.p.o.l.), month and day
DUE_DAYS = ((3, 15), (5, 15), (9, 15), (11, 15))
PEOPLE = 3


@pytest.fixture
def settings(settings_factory, database_url):
    return settings_factory(database_url, payments=PAYMENTS)


@pytest.fixture
def clerk(create_user):
    return create_user("clerk")


@pytest.fixture
def people(create_taxpayer):
    return [create_taxpayer().id for _ in range(PEOPLE)]


def _grosze(n: int) -> Decimal:
    return Decimal(n).scaleb(-2)


days = st.dates(D(2025, 1, 2), D(2026, 12, 30))
liabilities = st.lists(
    st.fixed_dictionaries({
        "owners": st.lists(st.integers(0, PEOPLE - 1), min_size=1, max_size=2, unique=True),
        # 2020: time-barred from 2026 on (art. 70 §1 OP), still owed in 2025
        "year": st.sampled_from((2020, 2025, 2026)),
        "installments": st.lists(st.tuples(st.sampled_from(DUE_DAYS), st.integers(100, 300_000)),
                                 min_size=1, max_size=4, unique_by=lambda item: item[0]),
        "delivered_late": st.booleans(),
        # a part of the first installment written off (odpis), in grosze
        "written_off": st.integers(0, 5_000),
    }),
    min_size=1, max_size=3)
#: (payer, grosze, day, designation: None or an index into the payer's installments)
payments = st.tuples(st.integers(0, PEOPLE - 1), st.integers(1, 900_000), days, st.none() | st.integers(0, 11))
costs = st.lists(st.tuples(st.integers(0, PEOPLE - 1), days), max_size=2)


def _build(session, people, ledger, earlier, reminders):
    """The accounts, with the earlier payments posted one by one; the installments of each person."""
    installments_of: dict[int, list[int]] = defaultdict(list)
    for n, item in enumerate(ledger):
        owners = [people[i] for i in item["owners"]]
        ids = _liability(session, owners, n, item)
        for owner in owners:
            installments_of[owner].extend(ids)
    for n, (who, day) in enumerate(reminders):
        session.add(Posting(taxpayer_id=people[who], liability_id=None, kind="koszty_upomnienia",
                            amount=Decimal("16.60"), booked_on=day, value_date=day, origin="system", source="local",
                            source_key=f"K{n}"))
    session.flush()
    for n, payment in enumerate(earlier):
        p = _to_post(people, installments_of, payment, f"E{n}")
        tax_ops.post_payment(session, taxpayer_id=p.taxpayer_id, amount=p.amount, paid_on=p.paid_on,
                             payment_ref=p.payment_ref, designated_installment_ids=list(p.designated_installment_ids))
    return installments_of


def _liability(session, owners, n, item) -> list[int]:
    """The drawn liability (`liabilities`), with a part of its first installment written off."""
    year = item["year"]
    delivered = D(year, 3, 25) if item["delivered_late"] else D(year, 2, 10)
    ids = assessed(session, owners, n, sorted((D(year, *due), _grosze(g)) for due, g in item["installments"]),
                   delivered=delivered, year=year)
    first = session.get(Installment, ids[0])
    written_off = min(_grosze(item["written_off"]), first.amount)
    if written_off > 0:
        session.add(Posting(taxpayer_id=owners[0], liability_id=first.liability_id, installment_id=first.id,
                            kind="odpis", amount=written_off, booked_on=delivered, value_date=delivered,
                            origin="manual", reason="umorzenie (test)", source="local", source_key=f"O{n}"))
    return ids


def _to_post(people, installments_of, payment, ref) -> tax_ops.PaymentToPost:
    who, grosze, day, designation = payment
    own = installments_of.get(people[who], [])
    designated = (own[designation % len(own)],) if designation is not None and own else ()
    return tax_ops.PaymentToPost(people[who], _grosze(grosze), day, ref, designated)


def _old(grosze: int, *, owners=(0,)) -> dict:
    """A 2020 liability of one installment due on 16 March 2020."""
    return {"owners": list(owners), "year": 2020, "installments": [((3, 15), grosze)], "delivered_late": False,
            "written_off": 0}


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# found by this test: B2, dated the day before E1 but posted after it, paid interest grown on the
# principal E1 had left, from the due date, instead of the interest E1 had left unpaid, and left 0.22 zł
# over; the batch then set it off only after B3, which one by one came after the set-off (B3 paid
# 0.01 zł of interest in the batch, none one by one)
@example(ledger=[_old(100), _old(25386, owners=(0, 1))],
         earlier=[(0, 1, D(2025, 1, 2), None), (1, 33196, D(2025, 1, 3), None)], reminders=[],
         batch=[(0, 1, D(2025, 1, 2), None), (0, 1, D(2025, 1, 2), None), (1, 7090, D(2025, 1, 2), 0),
                (1, 1, D(2025, 1, 2), None)], repeats=[])
@given(ledger=liabilities, earlier=st.lists(payments, max_size=4), reminders=costs,
       batch=st.lists(payments, min_size=1, max_size=6), repeats=st.lists(st.integers(0, 9), max_size=2))
def test_random_ledgers_post_every_payment_once_and_whole(runtime, people, ledger, earlier, reminders, batch,
                                                          repeats):
    with runtime.session_factory() as session:
        installments_of = _build(session, people, ledger, earlier, reminders)
        to_post = [_to_post(people, installments_of, payment, f"B{n}") for n, payment in enumerate(batch)]
        # a reference posted before (an earlier payment) or earlier in the batch comes again
        posted_before = [f"E{n}" for n in range(len(earlier))] + [p.payment_ref for p in to_post]
        for k in repeats:
            to_post.append(tax_ops.PaymentToPost(to_post[0].taxpayer_id, Decimal("5.00"), D(2026, 12, 1),
                                                 posted_before[k % len(posted_before)]))
        refs = {p.payment_ref for p in to_post}

        with session.begin_nested() as savepoint:
            single = [tax_ops.post_payment(
                session, taxpayer_id=p.taxpayer_id, amount=p.amount, paid_on=p.paid_on, payment_ref=p.payment_ref,
                designated_installment_ids=list(p.designated_installment_ids)) for p in to_post]
            session.flush()
            one_by_one = _postings(session, refs)
            owed = _installment_balances(session)
            vanished = _interest_paid_beyond_owed(session, people)
            savepoint.rollback()
        with session.begin_nested() as savepoint:
            batched = tax_ops.post_payments_batch(session, to_post)
            session.flush()
            in_batch = _postings(session, refs)
            savepoint.rollback()
        session.expunge_all()  # (the ORM objects of the example go with it: none is restored on rollback)
        session.rollback()

    assert in_batch == one_by_one
    assert batched == single

    # exactly the references that came again post nothing anew
    assert [result.repeated for result in single] == [False] * len(batch) + [True] * len(to_post[len(batch):])
    for p, result in zip(to_post[:len(batch)], single):
        rows = [row for row in one_by_one if row[7] == p.payment_ref]
        assert sum(row[4] for row in rows if row[3] in ("wplata", "nadplata")) == p.amount, rows
        assert result.overpayment == sum((row[4] for row in rows if row[3] == "nadplata"), Decimal(0))
        for row in rows:
            if row[3] == "odsetki":
                paid = [r for r in rows if r[3] == "wplata" and r[2] == row[2]]
                assert paid and row[4] <= paid[0][4]
    for installment_id, balance in owed.items():
        assert balance >= 0, f"installment {installment_id} paid {-balance} beyond what it owes"
    days = [day for _who, _grosze, day, _designation in earlier] + [p.paid_on for p in to_post[:len(batch)]]
    if days == sorted(days):
        # posted in the order of their days, the payments replay exactly as they were allocated. (A
        # payment dated before one already posted pays only what that one left open; the interest the
        # later one paid on the principal the earlier one has now paid since its day stays with it.)
        assert vanished == {}


def _interest_paid_beyond_owed(session, people) -> dict[tuple[int, dt.date], Decimal]:
    """(installment, day): interest a payment carried beyond what the installment owed that day, in
    the account's replay (`account.replay`, which would silently drop it)."""
    rates = rate_table(session)
    beyond = {}
    seen = set()
    for taxpayer_id in people:
        liabilities, postings = account_records(session, taxpayer_id)
        for liability in liabilities:
            for installment in liability.installments:
                if installment.id in seen:
                    continue
                seen.add(installment.id)
                own = [p for p in postings if p.installment_id == installment.id]
                due = rules.effective_due(installment.nominal_due, liability.delivered_on)
                principal = sum((p.signed for p in own if p.kind not in ("wplata", "odsetki")), Decimal(0))
                unpaid, since = Decimal(0), due
                for day, _ref, principal_part, interest_part in _payments_on(own):
                    owed = unpaid
                    if day > since and principal > 0:
                        owed += rounded_interest(principal, since, day, rates)
                        owed = owed if owed > interest_threshold(session, day) else Decimal(0)
                        since = day
                    if interest_part > owed:
                        beyond[(installment.id, day)] = interest_part - owed
                    unpaid = max(owed - interest_part, Decimal(0))
                    principal -= principal_part
    return beyond


def _installment_balances(session) -> dict[int, Decimal]:
    """Per installment: przypis + odsetki - odpis - wpłata (what is still owed, never below zero)."""
    grosze = sa.type_coerce(Posting.amount, sa.BigInteger)
    signed = sa.case((Posting.kind.in_(("odpis", "wplata", "nadplata")), -grosze), else_=grosze)
    return {row[0]: _grosze(row[1]) for row in session.execute(
        sa.select(Posting.installment_id, sa.func.sum(signed)).where(Posting.installment_id.is_not(None))
        .group_by(Posting.installment_id))}


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledger=liabilities, earlier=st.lists(payments, max_size=4), reminders=costs,
       batch=st.lists(payments, min_size=1, max_size=6), later=liabilities, day=st.dates(D(2026, 3, 1), D(2026, 12, 31)))
def test_set_offs_of_random_overpayments_move_money_and_never_make_it(runtime, people, clerk, ledger, earlier,
                                                                      reminders, batch, later, day):
    """The ex officio set-off (art. 76 §1 OP, the nightly `platforma taxes offsets` job) of whatever
    overpayment random payments left: each set-off takes from the overpayment exactly what it pays
    (its zwrot equals its wpłata), never more than the overpayment there is, pays no installment beyond
    what it owes, and run again it sets off nothing more. Decisions issued after the payments give
    the overpayments something to be set off against. What is left a clerk may refund (art. 77 OP),
    not a grosz more."""
    with runtime.session_factory() as session:
        installments_of = _build(session, people, ledger, earlier + batch, reminders)
        for n, item in enumerate(later):
            ids = _liability(session, [people[i] for i in item["owners"]], 50 + n, item)
            for owner in item["owners"]:
                installments_of[people[owner]].extend(ids)
        offsets = {taxpayer_id: tax_ops.offset_overpayments(session, taxpayer_id=taxpayer_id, as_of=day)
                   for taxpayer_id in people}
        again = [tax_ops.offset_overpayments(session, taxpayer_id=taxpayer_id, as_of=day) for taxpayer_id in people]
        session.flush()
        rows = _postings(session, {o.payment_ref for found in offsets.values() for o in found})
        for taxpayer_id in people:
            refundable = tax_ops.refundable_overpayment(session, taxpayer_id, day)
            if refundable > 0:
                tax_ops.manual_posting(session, taxpayer_id=taxpayer_id, kind="zwrot", amount=refundable,
                                       value_date=day, reason="zwrot nadpłaty (test)", author=clerk)
            with pytest.raises(tax_ops.PostingError):
                tax_ops.manual_posting(session, taxpayer_id=taxpayer_id, kind="zwrot", amount=Decimal("0.01"),
                                       value_date=day, reason="o grosz za dużo", author=clerk)
        left = {taxpayer_id: tax_ops.refundable_overpayment(session, taxpayer_id, day) for taxpayer_id in people}
        loose = _overpayment_left(session)
        owed = _installment_balances(session)
        session.expunge_all()
        session.rollback()
    assert again == [[]] * len(people)
    for found in offsets.values():
        for offset in found:
            own = [row for row in rows if row[7] == offset.payment_ref]
            assert offset.installment_id in installments_of[own[0][0]]
            assert sum(row[4] for row in own if row[3] == "zwrot") == sum(row[4] for row in own if row[3] == "wplata")
            assert sum(row[4] for row in own if row[3] == "wplata") == offset.principal + offset.interest > 0
    assert all(balance >= 0 for balance in loose.values()), loose
    assert left == {taxpayer_id: Decimal(0) for taxpayer_id in people}
    assert all(balance >= 0 for balance in owed.values()), owed


def _overpayment_left(session) -> dict[int, Decimal]:
    """Per taxpayer: nadpłata - zwrot outside liabilities (what is left of their overpayments)."""
    grosze = sa.type_coerce(Posting.amount, sa.BigInteger)
    signed = sa.case((Posting.kind == "nadplata", grosze), (Posting.kind == "zwrot", -grosze), else_=0)
    return {row[0]: _grosze(row[1]) for row in session.execute(
        sa.select(Posting.taxpayer_id, sa.func.sum(signed)).where(Posting.liability_id.is_(None))
        .group_by(Posting.taxpayer_id))}


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledger=liabilities, earlier=st.lists(payments, max_size=4), reminders=costs, later_by=st.integers(0, 400),
       who=st.integers(0, PEOPLE - 1), picks=st.lists(st.integers(0, 11), min_size=1, max_size=3))
def test_what_the_payment_page_asks_pays_it_in_full(runtime, people, ledger, earlier, reminders, later_by, who,
                                                    picks):
    """A resident who pays what the page asks, on the day it asks it, owes nothing more of it and leaves
    no nadpłata: "everything overdue with interest as of today", and chosen installments (with the
    reminder costs a payment pays first, art. 55 §1 OP)."""
    taxpayer_id = people[who]
    last = max([day for _who, _grosze, day, _designation in earlier] + [day for _who, day in reminders],
               default=D(2025, 1, 2))
    day = last + dt.timedelta(days=later_by)
    for mode in ("overdue", "installments"):
        with runtime.session_factory() as session:
            _build(session, people, ledger, earlier, reminders)
            before = payable(session, taxpayer_id, day)
            chosen = before.overdue if mode == "overdue" else [
                before.installments[k % len(before.installments)] for k in picks] if before.installments else []
            chosen = list({item.id: item for item in chosen}.values())
            amount = before.overdue_total if mode == "overdue" else before.chosen_total(chosen)
            if amount > 0:
                posted = tax_ops.post_payment(session, taxpayer_id=taxpayer_id, amount=amount, paid_on=day,
                                              payment_ref="P", designated_installment_ids=[i.id for i in chosen])
                after = payable(session, taxpayer_id, day)
                left = {i.id: i.to_pay for i in after.installments}
                assert posted.overpayment == 0, (mode, chosen, posted)
                assert after.state.koszty == 0
                assert all(item.id not in left for item in chosen), (mode, chosen, left)
            session.expunge_all()
            session.rollback()


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledger=liabilities, earlier=st.lists(payments, max_size=4), reminders=costs, who=st.integers(0, PEOPLE - 1),
       paid=st.integers(1, 900_000), refunds=st.lists(st.tuples(st.integers(1, 900_000), st.booleans()), min_size=1,
                                                        max_size=3))
def test_gateway_refunds_take_back_no_more_than_was_overpaid(runtime, people, ledger, earlier, reminders, who, paid,
                                                            refunds):
    """Refunds the treasury orders in a gateway's panel (ADR 0011), reported completed, some twice: their
    sum never exceeds the payment, each posts as a zwrot no more than the nadpłata standing then (the
    rest waits for a clerk, never guessed), and a repeated report posts nothing."""
    taxpayer_id = people[who]
    day = dt.date(2026, 12, 1)
    with runtime.session_factory() as session:
        _build(session, people, ledger, earlier, reminders)
        payment, _created = operations.create_payment(
            session, taxpayer_id=taxpayer_id, user_id=None, gateway="sandbox", amount=_grosze(paid), mode="amount",
            designation=[], description="Podatki", idempotency_key="K")
        confirmed = operations.apply_report(session, "sandbox", GatewayReport(
            reference=payment.reference, outcome="confirmed", gateway_txn_id="T1", amount=payment.amount,
            paid_at=dt.datetime(2026, 11, 30, 10, tzinfo=dt.timezone.utc)))
        assert confirmed.result == "confirmed"
        accepted = Decimal(0)
        for n, (grosze, repeated) in enumerate(refunds):
            report = RefundReport(reference=payment.reference, gateway_txn_id="T1", refund_id=f"R{n}",
                                  outcome="completed", amount=_grosze(grosze),
                                  refunded_at=dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc))
            outcome = operations.apply_refund(session, "sandbox", report)
            if accepted + report.amount > payment.amount:
                assert outcome.result == "refused"
                continue
            assert outcome.result == "moved"
            accepted += report.amount
            if repeated:
                before = len(_postings(session, {payment.reference}))
                assert operations.apply_refund(session, "sandbox", report).result == "unchanged"
                assert len(_postings(session, {payment.reference})) == before
        session.flush()
        zwroty = [row for row in _postings(session, {payment.reference}) if row[3] == "zwrot"]
        settled = session.execute(sa.select(PaymentRefund.amount, PaymentRefund.posted_amount, PaymentRefund.settled_at)
                                  .where(PaymentRefund.payment_id == payment.id)).all()
        loose = _overpayment_left(session)
        left = tax_ops.refundable_overpayment(session, taxpayer_id, day)
        session.expunge_all()
        session.rollback()
    assert sum(row.amount for row in settled) == accepted <= _grosze(paid)
    assert all(row.settled_at is not None and Decimal(0) <= row.posted_amount <= row.amount for row in settled)
    assert sum(row[4] for row in zwroty) == sum(row.posted_amount for row in settled)
    assert all(balance >= 0 for balance in loose.values()), loose
    # a refund posted less than its amount only when no nadpłata was left to take
    assert all(row.posted_amount == row.amount for row in settled) or left == 0
