"""`post_payments_batch` posts exactly what `post_payment` posts line by line, on both databases.

The statement import posts its matched lines in batches; these tests run the same payments through
both functions, each in a transaction that is rolled back afterwards, and compare every posting
(ids and creation times aside) and every result: accounts with arrears and interest, interest left
unpaid by a late payment, reminder costs, co-owners paying the same liability in one batch, several
payments of one taxpayer, designated installments, a posting dated after some of the payments,
repeated and already posted references.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.core.db import transaction
from platforma.payments import reconciliation
from platforma.payments.models import StatementLine
from platforma.payments.queries import virtual_layout
from platforma.taxes import operations as tax_ops
from platforma.taxes.models import Decision, Installment, Posting
from tests.integration.test_payments_statements import camt053

D = dt.date
PAYMENTS = {"gateways": ["sandbox"], "virtual_accounts": {"enabled": True, "sort_code": "90900004", "fixed": "2001"}}
COLUMNS = (Posting.taxpayer_id, Posting.liability_id, Posting.installment_id, Posting.kind, Posting.amount,
           Posting.booked_on, Posting.value_date, Posting.payment_ref, Posting.origin, Posting.reason,
           Posting.created_by_id, Posting.source, Posting.source_key, Posting.corrects_id)


@pytest.fixture
def settings(settings_factory, database_url):
    return settings_factory(database_url, payments=PAYMENTS)


DELIVERED = D(2026, 2, 10)


def _liability(session, taxpayer_ids, n, installments, *, delivered=DELIVERED, year=2026):
    """A property tax liability of `year` (the first taxpayer its principal, the rest co-owners), its
    decision issued on 1 February; the installments' ids in order."""
    decision = Decision(number=f"FN.3120.{n}.{year}", document_type="decyzja", year=year, issued_on=D(year, 2, 1),
                        delivered_on=delivered, source="local", source_key=f"D{n}")
    parties = [(taxpayer_ids[0], "principal")] + [(t, "co_owner") for t in taxpayer_ids[1:]]
    liability = tax_ops.assess_liability(
        session, tax_kind="nieruchomosci", payer_type="natural", year=year,
        amount=sum((Decimal(a) for _, a in installments), Decimal(0)), parties=parties,
        installments=[(due, Decimal(a)) for due, a in installments], booked_on=delivered, source="local",
        source_key=f"L{n}", decision=decision, description=f"Podatek {n}")
    return [i.id for i in sorted(liability.installments, key=lambda i: i.number)]


@pytest.fixture
def ledger(runtime, create_taxpayer):
    """Seven taxpayers whose accounts cover the cases the batch must get right."""
    people = [create_taxpayer() for _ in range(7)]
    ids = [p.id for p in people]
    q = [(D(2026, 3, 16), "1500"), (D(2026, 5, 15), "1500"), (D(2026, 9, 15), "1500"), (D(2026, 11, 16), "1500")]
    with transaction(runtime.session_factory) as session:
        # 0: arrears since March, a late partial payment in June (interest fixed then, partly unpaid)
        a = _liability(session, [ids[0]], 1, q)
        tax_ops.post_payment(session, taxpayer_id=ids[0], amount=Decimal("700.00"), paid_on=D(2026, 6, 20),
                             payment_ref="H0", source="local")
        # 1 and 2: a co-owned liability, nothing paid; 2 also has one of its own, paid on time
        _liability(session, [ids[1], ids[2]], 2, q)
        own = _liability(session, [ids[2]], 3, [(D(2026, 3, 16), "80"), (D(2026, 5, 15), "80")])
        for n, installment_id in enumerate(own):
            tax_ops.post_payment(session, taxpayer_id=ids[2], amount=Decimal("80.00"), paid_on=D(2026, 3, 1 + n),
                                 payment_ref=f"H2-{n}", designated_installment_ids=[installment_id])
        # 3: everything paid on time: a batch payment is a nadpłata
        paid = _liability(session, [ids[3]], 4, [(D(2026, 3, 16), "300"), (D(2026, 5, 15), "300")])
        for n, installment_id in enumerate(paid):
            tax_ops.post_payment(session, taxpayer_id=ids[3], amount=Decimal("300.00"), paid_on=D(2026, 3, 10),
                                 payment_ref=f"H3-{n}", designated_installment_ids=[installment_id])
        # 4: principal paid late without the interest (as a domain system's import may post it): no
        # principal left, interest left unpaid
        late = _liability(session, [ids[4]], 5, [(D(2026, 3, 16), "4000")])
        session.add(Posting(taxpayer_id=ids[4], liability_id=session.get(Installment, late[0]).liability_id,
                            installment_id=late[0], kind="wplata", amount=Decimal("4000.00"), booked_on=D(2026, 4, 30),
                            value_date=D(2026, 4, 30), payment_ref="H4", origin="import", source="local",
                            source_key="H4"))
        session.add(Posting(taxpayer_id=ids[4], liability_id=None, kind="koszty_upomnienia", amount=Decimal("16.60"),
                            booked_on=D(2026, 4, 1), value_date=D(2026, 4, 1), origin="system", source="local",
                            source_key="K4"))
        # 5: a payment dated after the batch's first day of payment already stands on the account
        b = _liability(session, [ids[5]], 6, q)
        tax_ops.post_payment(session, taxpayer_id=ids[5], amount=Decimal("1000.00"), paid_on=D(2026, 11, 25),
                             payment_ref="H5", source="local")
        # ... and an installment not yet due, paid in full on that later day
        ahead = _liability(session, [ids[5]], 8, [(D(2026, 12, 15), "700")])
        tax_ops.post_payment(session, taxpayer_id=ids[5], amount=Decimal("700.00"), paid_on=D(2026, 11, 25),
                             payment_ref="H5b", source="local", designated_installment_ids=ahead)
        # 6: reminder costs, a decision delivered late (art. 47 §2 OP moves the first due date)
        _liability(session, [ids[6]], 7, q, delivered=D(2026, 3, 10))
        session.add(Posting(taxpayer_id=ids[6], liability_id=None, kind="koszty_upomnienia", amount=Decimal("16.60"),
                            booked_on=D(2026, 4, 1), value_date=D(2026, 4, 1), origin="system", source="local",
                            source_key="K6"))
        session.flush()
        assert session.scalar(sa.select(sa.func.count()).select_from(Installment)) > 0
    return ids, a, b, ahead[0]


def _batch(ids, a, b, _ahead=None):
    P = tax_ops.PaymentToPost
    return [
        P(ids[0], Decimal("500.00"), D(2026, 11, 20), "B1"),
        P(ids[1], Decimal("2000.00"), D(2026, 11, 21), "B2"),
        P(ids[2], Decimal("1800.00"), D(2026, 11, 21), "B3"),  # the co-owner, same liability, after B2
        P(ids[3], Decimal("123.45"), D(2026, 11, 20), "B4", source="bank"),
        P(ids[4], Decimal("50.00"), D(2026, 11, 19), "B5"),
        P(ids[5], Decimal("8000.00"), D(2026, 11, 19), "B6"),  # before H5's day: H5 and H5b do not count yet
        P(ids[6], Decimal("10.00"), D(2026, 11, 20), "B7"),  # less than the reminder costs
        P(ids[6], Decimal("4000.00"), D(2026, 11, 20), "B8"),
        P(ids[0], Decimal("2500.00"), D(2026, 11, 22), "B9", designated_installment_ids=(a[3], a[1])),
        P(ids[0], Decimal("9000.00"), D(2026, 11, 23), "B10", origin="manual", reason="przypisanie", created_by_id=None),
        P(ids[1], Decimal("0.01"), D(2026, 11, 23), "B11"),
        P(ids[5], Decimal("100.00"), D(2026, 11, 26), "B12", designated_installment_ids=(b[0],)),
        P(ids[2], Decimal("10.00"), D(2026, 11, 24), "B3"),  # the same reference again: not posted
        P(ids[3], Decimal("10.00"), D(2026, 11, 24), "H3-0"),  # posted before the batch: not posted
    ]


def _postings(session, refs):
    return [tuple(row) for row in session.execute(
        sa.select(*COLUMNS).where(Posting.payment_ref.in_(refs)).order_by(Posting.id))]


def _one_by_one(runtime, payments):
    with runtime.session_factory() as session:
        results = [tax_ops.post_payment(
            session, taxpayer_id=p.taxpayer_id, amount=p.amount, paid_on=p.paid_on, payment_ref=p.payment_ref,
            designated_installment_ids=list(p.designated_installment_ids), source=p.source, origin=p.origin,
            created_by_id=p.created_by_id, reason=p.reason) for p in payments]
        postings = _postings(session, {p.payment_ref for p in payments})
        session.rollback()
    return results, postings


def _batched(runtime, payments):
    with runtime.session_factory() as session:
        results = tax_ops.post_payments_batch(session, payments)
        session.flush()
        postings = _postings(session, {p.payment_ref for p in payments})
        session.rollback()
    return results, postings


@pytest.mark.parametrize("chunk", [None, 2], ids=["one_query", "chunked"])
def test_a_batch_posts_what_payments_one_by_one_post(runtime, ledger, chunk, monkeypatch):
    """`chunked`: the batch's taxpayers are read two at a time, co-owners in different chunks."""
    payments = _batch(*ledger)
    single_results, single = _one_by_one(runtime, payments)
    if chunk:
        monkeypatch.setattr(tax_ops, "_IN_CHUNK", chunk)
    batch_results, batched = _batched(runtime, payments)
    assert batched == single
    assert batch_results == single_results
    # the cases are really there: interest, costs, nadpłata, a co-owner's second payment, repeats
    kinds = {(row[7], row[3]) for row in single}
    assert {("B1", "odsetki"), ("B7", "wplata"), ("B4", "nadplata"), ("B10", "nadplata")} <= kinds
    assert [r.repeated for r in single_results][-2:] == [True, True]
    assert not any(r.repeated for r in single_results[:-2])
    # the co-owner's payment (B3) reached the installments B2 left open on the shared liability
    shared = {row[1] for row in single if row[7] == "B2" and row[1] is not None}
    assert shared and shared & {row[1] for row in single if row[7] == "B3"}
    # B6, dated before H5 and H5b, paid only what was still open after them: not the installment
    # H5b paid in full (it would have been paid twice), the rest a nadpłata
    b6 = [row for row in single if row[7] == "B6"]
    assert b6 and not any(row[2] == ledger[3] for row in b6)
    assert any(row[3] == "nadplata" for row in b6)
    assert sum(row[4] for row in b6 if row[3] in ("wplata", "nadplata")) == Decimal("8000.00")
    # B5 paid the reminder costs, then the interest the late payment left unpaid (no principal was left)
    assert [(row[3], row[2] is None) for row in single if row[7] == "B5"] == [
        ("wplata", True), ("wplata", False), ("odsetki", False)]


def test_the_other_way_round_one_by_one_after_a_batch_finds_nothing_to_post(runtime, ledger):
    """What a batch posted, `post_payment` then sees as posted, and the reverse."""
    payments = _batch(*ledger)[:12]
    with runtime.session_factory() as session:
        tax_ops.post_payments_batch(session, payments)
        again = [tax_ops.post_payment(session, taxpayer_id=p.taxpayer_id, amount=p.amount, paid_on=p.paid_on,
                                      payment_ref=p.payment_ref) for p in payments]
        assert all(r.repeated for r in again)
        session.rollback()
    with runtime.session_factory() as session:
        for p in payments:
            tax_ops.post_payment(session, taxpayer_id=p.taxpayer_id, amount=p.amount, paid_on=p.paid_on,
                                 payment_ref=p.payment_ref)
        assert all(r.repeated for r in tax_ops.post_payments_batch(session, payments))
        session.rollback()


def test_a_statement_posts_what_its_lines_posted_one_by_one_would(runtime, ledger):
    ids = ledger[0]
    layout = virtual_layout(runtime.settings)
    entries = []
    for n in range(40):
        taxpayer = ids[(n * 3) % len(ids)]
        entries.append((f"{100 + 37 * n}.{n % 100:02d}", True, f"wplata {n}", layout.account_for(taxpayer), "WPLACAJACY"))
    entries.insert(5, ("12.00", False, "oplata", "", "BANK"))
    entries.insert(9, ("35.00", True, "nieznany", "", "KTOS"))
    data = camt053(entries)
    with runtime.session_factory() as session:
        result = reconciliation.import_statement(session, data, file_name="w.xml", layout=layout)
        assert result.matched == 40 and result.debits == 1 and result.unmatched == 1
        lines = session.execute(
            sa.select(StatementLine.taxpayer_id, StatementLine.amount, StatementLine.booking_date,
                      StatementLine.value_date, StatementLine.payment_ref, StatementLine.id)
            .where(StatementLine.status == "matched").order_by(StatementLine.sequence)).all()
        assert all(line.payment_ref == f"W{line.id}" for line in lines)
        refs = {line.payment_ref for line in lines}
        imported = _postings(session, refs)
        session.rollback()
    with runtime.session_factory() as session:
        for line in lines:
            tax_ops.post_payment(session, taxpayer_id=line.taxpayer_id, amount=line.amount,
                                 paid_on=line.value_date or line.booking_date, payment_ref=line.payment_ref,
                                 source="bank", origin="system")
        one_by_one = _postings(session, refs)
        session.rollback()
    assert imported == one_by_one
    assert sum(row[4] for row in imported if row[3] in ("wplata", "nadplata")) == result.posted_total


def test_a_confirmation_that_cannot_be_stored_is_not_acknowledged(runtime, create_taxpayer):
    """Found by the notification storm: a notification whose transaction id another payment already
    holds (a simulator restarted against the same database) failed on the unique (gateway,
    gateway_txn_id) and was answered 200 as if a racing twin had stored it: the gateway would never
    send it again and the payment would stay unposted. It gets 503 now; a real twin still gets 200."""
    import json

    from platforma.payments import flows, operations
    from platforma.payments.models import Payment

    taxpayer = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        made = [operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=None, gateway="sandbox",
                                          amount=Decimal("40.00"), mode="amount", designation=[], description="t",
                                          idempotency_key=f"dup-txn-{n}" + "x" * 12)[0].reference for n in range(2)]
    gateway = flows.configured_gateways(runtime)["sandbox"]

    def notify(reference, transaction_id):
        body = json.dumps({"reference": reference, "amount": "40.00", "outcome": "confirmed",
                           "transaction": transaction_id}, separators=(",", ":")).encode()
        return flows.handle_notification(runtime, "sandbox", {"Signature": gateway.sign(body)}, body, "127.0.0.1").status

    assert notify(made[0], "TXN-1") == 200
    assert notify(made[1], "TXN-1") == 503
    assert notify(made[0], "TXN-1") == 200
    with runtime.session_factory() as session:
        states = dict(session.execute(sa.select(Payment.reference, Payment.state)).all())
    assert states == {made[0]: "confirmed", made[1]: "pending"} or states == {made[0]: "confirmed", made[1]: "created"}
    assert notify(made[1], "TXN-2") == 200
