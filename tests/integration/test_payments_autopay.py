"""Autopay end to end over HTTP on both databases: an ITN that lists several transactions (each recorded
once, each confirmed on its own in the signed answer), a payer who pays the same order twice, and the
reconciliation job asking Autopay's transactionStatus about a payment whose ITN never came.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from platforma.core.db import transaction
from platforma.payments import flows, operations
from platforma.payments.gateways.base import PaymentRequest
from platforma.payments.models import Payment, PaymentEvent
from tests.integration.test_payments_gateways_http import (  # noqa: F401  (fixtures)
    AppServer,
    _ledger,
    _start_payment,
    gateway_setup,
    settings,
)
from tests.integration.test_payments_online import resident_with_arrears  # noqa: F401  (fixture)

pytestmark = pytest.mark.parametrize("gateway_setup", ["autopay"], indirect=True)


def _started(client, runtime, taxpayer_id: int, amount: str) -> str:
    """The resident starts a payment and opens Autopay's page (Autopay learns of the order there)."""
    started = _start_payment(client, taxpayer_id, mode="amount", amount=amount)
    assert started.status_code == 303, started.data[:2000]
    assert httpx.get(started.headers["Location"], trust_env=False).status_code == 200
    with runtime.session_factory() as session:
        return session.scalars(sa.select(Payment.reference).order_by(Payment.id.desc())).first()


def _events(runtime, reference: str, kind: str) -> int:
    with runtime.session_factory() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent).join(Payment).where(
            Payment.reference == reference, PaymentEvent.kind == kind))


def test_an_itn_of_several_transactions_records_each_once(gateway_setup, runtime, app, client, logged_in,
                                                          resident_with_arrears):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with AppServer(app) as server:
        simulator.notify_url = f"{server.base_url}/platnosci/powiadomienia/autopay"
        logged_in(user)
        first = _started(client, runtime, taxpayer.id, "40,00")
        second = _started(client, runtime, taxpayer.id, "60,00")
        third = _started(client, runtime, taxpayer.id, "10,00")
        # an order Autopay knows and we do not: confirmed too, so that Autopay stops sending it
        plugin = flows.configured_gateways(runtime)["autopay"]
        stranger = plugin.register(PaymentRequest(reference="PF-NIEZNANA", amount=Decimal("5.00"), description="x",
                                                  email="a@example.com", return_url="", notify_url=""))
        httpx.get(stranger.redirect_url, trust_env=False).raise_for_status()

        items = [(first, "confirmed"), (second, "confirmed"), (third, "cancelled"), ("PF-NIEZNANA", "confirmed")]
        assert simulator.notify_many(items) == 200
        assert [simulator.transaction(r)["itn_confirmation"] for r, _ in items] == ["CONFIRMED"] * 4
        # Autopay repeats the ITN: nothing changes
        assert simulator.notify_many([(r, None) for r, _ in items]) == 200
    for reference, amount in ((first, "40.00"), (second, "60.00")):
        payment, posted, events = _ledger(runtime, reference)
        assert payment.state == "confirmed" and posted == Decimal(amount) and events == 1
    assert _ledger(runtime, third)[0].state == "cancelled" and _ledger(runtime, third)[1] == 0
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 3


def test_an_order_paid_twice_is_posted_once_and_noted(gateway_setup, runtime, app, client, logged_in,
                                                      resident_with_arrears, caplog):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with AppServer(app) as server:
        simulator.notify_url = f"{server.base_url}/platnosci/powiadomienia/autopay"
        logged_in(user)
        reference = _started(client, runtime, taxpayer.id, "25,00")
        assert simulator.pay(reference) == 200
        again = simulator.pay_again(reference)
        # the second transaction comes alone, then with the first in one ITN, twice
        assert simulator.notify_many([(again, None)]) == 200
        assert simulator.notify_many([(reference, None), (again, None)]) == 200
        assert simulator.notify_many([(again, None)]) == 200
        assert simulator.transaction(reference)["itn_confirmation"] == "CONFIRMED"
    payment, posted, events = _ledger(runtime, reference)
    assert payment.state == "confirmed" and posted == Decimal("25.00") and events == 1
    assert payment.gateway_txn_id == simulator.transaction(reference)["gateway_id"]
    assert _events(runtime, reference, "second_payment") == 1
    assert f"płatność {reference} opłacona drugi raz (transakcja {again}" in caplog.text


def test_the_reconciliation_job_asks_autopay(gateway_setup, runtime, resident_with_arrears):  # noqa: F811
    """The payer paid, the ITN never reached us: the job asks Autopay's transactionStatus and posts the
    payment once; a payment never started at Autopay (no transaction there) is expired."""
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    references = []
    for key, amount in (("p" * 20, Decimal("33.00")), ("q" * 20, Decimal("44.00"))):
        with transaction(runtime.session_factory) as session:
            payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway="autopay",
                                                   amount=amount, mode="amount", designation=[], description="test",
                                                   idempotency_key=key)
            payment_id, reference = payment.id, payment.reference
        started = flows.register_with_gateway(runtime, payment_id, email="a@example.com", return_url="http://127.0.0.1/x",
                                              notify_url="http://127.0.0.1/unused", customer_ip="127.0.0.1")
        references.append((reference, started.redirect_url))
    (paid, paid_url), (abandoned, _never_opened) = references
    httpx.get(paid_url, trust_env=False).raise_for_status()
    assert simulator.notify_url is None and simulator.pay(paid) is None  # no ITN address set: nothing sent
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)
    counts = flows.reconcile_pending(runtime, now=later)
    assert (counts["asked"], counts["confirmed"], counts["expired"]) == (2, 1, 1)
    assert simulator.calls("status") == 2
    assert flows.reconcile_pending(runtime, now=later)["asked"] == 0
    payment, posted, events = _ledger(runtime, paid)
    assert payment.state == "confirmed" and posted == Decimal("33.00") and events == 1
    assert payment.gateway_txn_id == simulator.transaction(paid)["gateway_id"]
    assert _ledger(runtime, abandoned)[0].state == "expired"


def test_the_reconciliation_job_waits_when_autopay_does_not_answer(gateway_setup, runtime, resident_with_arrears):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with transaction(runtime.session_factory) as session:
        payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway="autopay",
                                               amount=Decimal("12.00"), mode="amount", designation=[], description="test",
                                               idempotency_key="w" * 20)
        payment_id, reference = payment.id, payment.reference
    flows.register_with_gateway(runtime, payment_id, email="a@example.com", return_url="http://127.0.0.1/x",
                                notify_url="http://127.0.0.1/unused", customer_ip="127.0.0.1")
    simulator.fail_next("status", "503")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)
    assert flows.reconcile_pending(runtime, now=later)["unavailable"] == 1
    assert _ledger(runtime, reference)[0].state == "pending"
