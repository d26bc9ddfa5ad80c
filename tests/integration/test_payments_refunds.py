"""Refunds the treasury orders in PayU's panel, end to end over HTTP on both databases: PayU's simulator
notifies the app's webhook, the refund is recorded in the payment's history, the payment shows it, and
the money is reflected in the taxes ledger once (ADR 0011): a zwrot against the taxpayer's nadpłata,
never more; what exceeds it waits for a clerk.
"""
from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from platforma.payments.models import Payment, PaymentEvent, PaymentRefund
from platforma.taxes.models import Posting
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw
from tests.conftest import login
from tests.integration.test_payments_gateways_http import (  # noqa: F401  (fixtures)
    AppServer,
    _ledger,
    _start_payment,
    gateway_setup,
    settings,
)
from tests.integration.test_payments_online import deliver_at_once, resident_with_arrears  # noqa: F401  (fixture)

pytestmark = pytest.mark.parametrize("gateway_setup", ["payu"], indirect=True)


def _owed(runtime, taxpayer_id: int) -> Decimal:
    with runtime.session_factory() as session:
        state = account(session, taxpayer_id, today_warsaw())
    return state.zaleglosc + state.odsetki + sum((item.biezace for item in state.liabilities), Decimal(0))


def _pay(client, runtime, simulator, taxpayer_id: int, notify: bool = True, **form) -> tuple[str, str]:
    """The resident pays through PayU: (our reference, PayU's orderId)."""
    started = _start_payment(client, taxpayer_id, **form)
    assert started.status_code == 303, started.data[:2000]
    with runtime.session_factory() as session:
        reference = session.scalars(sa.select(Payment.reference).order_by(Payment.id.desc())).first()
    assert simulator.pay(reference) == (200 if notify else None)
    return reference, simulator.transaction(reference)["gateway_id"]


def _refunds(runtime, reference: str) -> tuple[list[PaymentRefund], list[Posting], list[tuple[str, str | None]]]:
    """The payment's refunds, the zwrot postings under its reference and its refund events."""
    with runtime.session_factory() as session:
        payment = session.scalars(sa.select(Payment).where(Payment.reference == reference)).one()
        refunds = list(session.scalars(sa.select(PaymentRefund).where(PaymentRefund.payment_id == payment.id)))
        zwroty = list(session.scalars(sa.select(Posting).where(Posting.payment_ref == reference, Posting.kind == "zwrot")))
        events = [(e.kind, e.to_state) for e in session.scalars(
            sa.select(PaymentEvent).where(PaymentEvent.payment_id == payment.id,
                                          PaymentEvent.kind.in_(("refund", "refund_posted", "refused")))
            .order_by(PaymentEvent.id))]
    return refunds, zwroty, events


def _nadplata(runtime, taxpayer_id: int) -> Decimal:
    with runtime.session_factory() as session:
        return account(session, taxpayer_id, today_warsaw()).nadplata


def test_a_refund_of_the_overpayment_is_posted_once_as_a_zwrot(gateway_setup, runtime, app, client, logged_in,
                                                                 resident_with_arrears):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    owed = _owed(runtime, taxpayer.id)
    with AppServer(app):
        reference, order_id = _pay(client, runtime, simulator, taxpayer.id, mode="amount", amount=str(owed + Decimal("150.00")))
        assert _nadplata(runtime, taxpayer.id) == Decimal("150.00")

        refund_id, answered = simulator.refund(order_id, amount=15000, status="PENDING")
        assert answered == 200
        refunds, zwroty, events = _refunds(runtime, reference)
        assert [(r.state, r.amount, r.settled_at) for r in refunds] == [("pending", Decimal("150.00"), None)]
        assert zwroty == [] and events == [("refund", "pending")]

        assert simulator.refund(order_id, refund_id=refund_id, status="FINALIZED")[1] == 200
        # PayU repeats itself, and a late PENDING or CANCELED arrives after the FINALIZED: nothing changes
        assert simulator.refund(order_id, refund_id=refund_id, status="FINALIZED")[1] == 200
        assert simulator.refund(order_id, refund_id=refund_id, status="PENDING")[1] == 200
        assert simulator.refund(order_id, refund_id=refund_id, status="CANCELED")[1] == 200

    refunds, zwroty, events = _refunds(runtime, reference)
    today = today_warsaw()
    assert [(r.state, r.refunded_on, r.posted_amount, r.unposted_amount) for r in refunds] == [
        ("completed", today, Decimal("150.00"), Decimal("0.00"))]
    assert [(p.amount, p.value_date, p.liability_id, p.source, p.source_key) for p in zwroty] == [
        (Decimal("150.00"), today, None, "payu", f"{reference}:zwrot:{refund_id}")]
    assert events == [("refund", "pending"), ("refund", "completed"), ("refund_posted", None)]
    assert _nadplata(runtime, taxpayer.id) == Decimal("0.00")
    payment, posted, posted_events = _ledger(runtime, reference)
    assert payment.state == "confirmed" and posted == owed + Decimal("150.00") and posted_events == 1

    # the resident sees the refund; the allocation still shows what the payment paid
    mine = client.get("/platnosci/").data.decode()
    assert "zwrócona częściowo: 150,00" in mine
    detail = client.get(f"/platnosci/{reference}").data.decode()
    assert "Zwroty" in detail and refund_id in detail and "zwrócono" in detail
    assert "Nadpłata (zostaje na koncie)" in detail
    pdf = client.get(f"/platnosci/{reference}/potwierdzenie.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_a_refund_beyond_the_overpayment_waits_for_a_clerk(gateway_setup, runtime, app, client, logged_in, create_user,
                                                           resident_with_arrears, caplog):  # noqa: F811
    """The payment paid an installment and left no nadpłata: the money refunded is not guessed off an
    installment; the refund shows it as not yet in the ledger, for a clerk's correction."""
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, installment_ids = resident_with_arrears
    logged_in(user)
    with AppServer(app):
        reference, order_id = _pay(client, runtime, simulator, taxpayer.id, mode="installments",
                                   installment=[str(installment_ids[0])])
        before = _owed(runtime, taxpayer.id)
        refund_id, answered = simulator.refund(order_id, amount=10000, status="FINALIZED")
        assert answered == 200
    refunds, zwroty, events = _refunds(runtime, reference)
    assert [(r.state, r.posted_amount, r.unposted_amount) for r in refunds] == [
        ("completed", Decimal("0.00"), Decimal("100.00"))]
    assert refunds[0].settled_at is not None
    assert zwroty == [] and events == [("refund", "completed"), ("refund_posted", None)]
    assert _owed(runtime, taxpayer.id) == before and _nadplata(runtime, taxpayer.id) == 0
    assert "czeka na korektę konta" in caplog.text

    assert "zwrócona częściowo: 100,00" in client.get("/platnosci/").data.decode()
    clerk = create_user("clerk")
    office = client.application.test_client()
    assert login(office, clerk).status_code == 302
    page = office.get(f"/urzad/platnosci/{reference}").data.decode()
    assert "Zwroty" in page and "100,00" in page and "czeka na korektę konta" in page


def test_a_refund_reported_before_the_confirmation_is_posted_with_it(gateway_setup, runtime, app, client, logged_in,
                                                                     resident_with_arrears):  # noqa: F811
    """PayU's COMPLETED notification did not reach us (our server was down), the refund's did: it is
    recorded and waits; the confirmation that comes later posts the payment and then the refund."""
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    owed = _owed(runtime, taxpayer.id)
    reference, order_id = _pay(client, runtime, simulator, taxpayer.id, notify=False, mode="amount",
                               amount=str(owed + Decimal("40.00")))
    with AppServer(app):
        assert simulator.refund(order_id, amount=4000, status="FINALIZED")[1] == 200
        refunds, zwroty, events = _refunds(runtime, reference)
        assert [(r.state, r.settled_at) for r in refunds] == [("completed", None)] and zwroty == []
        assert _ledger(runtime, reference)[0].state == "pending"
        assert simulator.notify(reference) == [200]
    payment, posted, posted_events = _ledger(runtime, reference)
    assert payment.state == "confirmed" and posted_events == 1
    refunds, zwroty, events = _refunds(runtime, reference)
    assert [(r.posted_amount, r.unposted_amount) for r in refunds] == [(Decimal("40.00"), Decimal("0.00"))]
    assert [p.amount for p in zwroty] == [Decimal("40.00")]
    assert events == [("refund", "completed"), ("refund_posted", None)]
    assert _nadplata(runtime, taxpayer.id) == 0


def test_the_same_refund_notification_at_once_posts_once(gateway_setup, runtime, app, client, logged_in,
                                                         resident_with_arrears):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    owed = _owed(runtime, taxpayer.id)
    with AppServer(app):
        reference, order_id = _pay(client, runtime, simulator, taxpayer.id, mode="amount", amount=str(owed + Decimal("75.00")))
    refund_id, _ = simulator.refund(order_id, amount=7500, status="FINALIZED", deliver=False)
    headers, body = simulator.refund_notification_for(order_id, refund_id)
    deliver_at_once(runtime, "payu", headers, body, 6)
    refunds, zwroty, events = _refunds(runtime, reference)
    assert len(refunds) == 1 and [p.amount for p in zwroty] == [Decimal("75.00")]
    assert events == [("refund", "completed"), ("refund_posted", None)]


def test_refund_notifications_that_cannot_be_believed_change_nothing(gateway_setup, runtime, app, client, logged_in,
                                                                     resident_with_arrears, caplog):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    with AppServer(app) as server:
        reference, order_id = _pay(client, runtime, simulator, taxpayer.id, mode="amount", amount="60,00")
        refund_id, _ = simulator.refund(order_id, amount=1000, status="PENDING", deliver=False)
        headers, body = simulator.refund_notification_for(order_id, refund_id)
        webhook = f"{server.base_url}/platnosci/powiadomienia/payu"
        # a changed amount: the signature no longer checks
        forged = httpx.post(webhook, content=body.replace(b'"1000"', b'"6000"'), headers=headers, trust_env=False)
        assert forged.status_code == 403
        # signed, but more than the payment brought in, or in another currency: refused and noted
        too_much = {"orderId": order_id, "extOrderId": reference,
                    "refund": {"refundId": "9000000001", "amount": "6001", "currencyCode": "PLN", "status": "FINALIZED",
                               "statusDateTime": "2026-12-01T10:00:00.000+01:00"}}
        other_currency = {**too_much, "refund": {**too_much["refund"], "refundId": "9000000002", "amount": "100",
                                                 "currencyCode": "EUR"}}
        for message in (too_much, other_currency):
            signed_headers, signed_body = simulator._signed(message)
            assert httpx.post(webhook, content=signed_body, headers=signed_headers, trust_env=False).status_code == 200
        # a refund of a payment we do not know: 200 (PayU must stop) and a log line
        unknown = {**too_much, "orderId": "NIEZNANE", "extOrderId": "PF-NIEZNANA", "refund": {
            **too_much["refund"], "refundId": "9000000003", "amount": "100"}}
        signed_headers, signed_body = simulator._signed(unknown)
        assert httpx.post(webhook, content=signed_body, headers=signed_headers, trust_env=False).status_code == 200
    refunds, zwroty, events = _refunds(runtime, reference)
    assert refunds == [] and zwroty == [] and events == [("refused", None), ("refused", None)]
    assert "zwrot 9000000003 nieznanej płatności PF-NIEZNANA" in caplog.text
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PaymentRefund)) == 0
