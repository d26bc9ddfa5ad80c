"""Paying through each real gateway protocol, end to end over HTTP on 127.0.0.1: the resident starts the
payment in the app, the plugin registers it with the gateway's simulator, the simulator sends its signed
notification to the app's webhook (a real HTTP server), and the payment is posted once.

Also: a gateway that times out, then succeeds; a server killed with SIGKILL between the gateway's
confirmation (Przelewy24's verify) and our commit.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from platforma.core.db import transaction
from platforma.payments.models import Payment, PaymentEvent
from platforma.taxes.models import Posting
from tests.conftest import ROOT, csrf_from
from tests.integration.test_payments_online import resident_with_arrears  # noqa: F401  (fixture)
from tests.simulators.gateways import DEMO_OPTIONS, simulator_class

GATEWAYS = ["przelewy24", "payu", "paynow", "autopay"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """The app served over HTTP in a thread, so that simulators can reach its webhook."""

    def __init__(self, app):
        port = int(app.extensions["platforma"].settings.server.base_url.rsplit(":", 1)[1])
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway_setup(request, settings_factory, database_url, tmp_path):
    """A simulator of the gateway, and settings whose plugin options point at it."""
    gateway = request.param
    options = dict(DEMO_OPTIONS[gateway])
    simulator = simulator_class(gateway)(timeout_delay=3.0, **options).start()
    plugin_options = {**options, "base_url": simulator.base_url}
    if gateway != "autopay":  # Autopay's registration is a redirect: no call to time out
        plugin_options["timeout_seconds"] = 1.5
    settings = settings_factory(database_url, payments={"gateways": [gateway]},
                                plugins={"options": {gateway: plugin_options}},
                                server={"base_url": f"http://127.0.0.1:{_free_port()}"})
    yield gateway, simulator, settings
    simulator.stop()


@pytest.fixture
def settings(gateway_setup):
    return gateway_setup[2]


def _start_payment(client, taxpayer_id, **form):
    page = client.get(f"/podatki/{taxpayer_id}/zaplac")
    preview = client.post(f"/podatki/{taxpayer_id}/zaplac", data={"csrf_token": csrf_from(page.data), **form})
    assert preview.status_code == 200, preview.data[:2000]
    html = preview.data.decode()
    data = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    data["installment"] = re.findall(r'<input type="hidden" name="installment" value="(\d+)"', html)
    return client.post(f"/podatki/{taxpayer_id}/zaplac/start", data=data)


def _pending_payment(runtime, client, logged_in, user, taxpayer, amount: str) -> str:
    """The resident starts paying `amount` zł; the reference of the payment the gateway now has."""
    logged_in(user)
    assert _start_payment(client, taxpayer.id, mode="amount", amount=amount).status_code == 303
    with runtime.session_factory() as session:
        return session.scalars(sa.select(Payment.reference)).one()


def _ledger(runtime, reference):
    with runtime.session_factory() as session:
        payment = session.scalars(sa.select(Payment).where(Payment.reference == reference)).one()
        posted = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Posting.amount), 0)).where(
            Posting.payment_ref == reference, Posting.kind.in_(("wplata", "nadplata"))))
        events = session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent).where(
            PaymentEvent.payment_id == payment.id, PaymentEvent.kind == "posted"))
    return payment, Decimal(posted), events


@pytest.mark.parametrize("gateway_setup", GATEWAYS, indirect=True)
def test_each_gateway_end_to_end(gateway_setup, runtime, app, client, logged_in, resident_with_arrears):  # noqa: F811
    gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with AppServer(app) as server:
        simulator.notify_url = f"{server.base_url}/platnosci/powiadomienia/{gateway}"
        logged_in(user)
        started = _start_payment(client, taxpayer.id, mode="amount", amount="123,45")
        assert started.status_code == 303, started.data[:2000]
        redirect = started.headers["Location"]
        assert redirect.startswith(simulator.base_url)
        payer_page = httpx.get(redirect, trust_env=False)
        assert payer_page.status_code == 200 and "Zapłać" in payer_page.text
        with runtime.session_factory() as session:
            reference = session.scalars(sa.select(Payment.reference)).one()
        assert _ledger(runtime, reference)[0].state == "pending"

        assert simulator.pay(reference) == 200
        payment, posted, events = _ledger(runtime, reference)
        assert payment.state == "confirmed" and posted == Decimal("123.45") and events == 1
        # the gateway repeats itself: nothing changes
        assert simulator.notify(reference, times=2) == [200, 200]
        assert _ledger(runtime, reference)[1:] == (Decimal("123.45"), 1)
        if gateway == "przelewy24":
            assert simulator.transaction(reference)["verified"]
        page = client.get(f"/platnosci/{reference}/powrot").data.decode()
        assert "Płatność zaksięgowana" in page
        if gateway == "autopay":  # the panel's one return address, with the order in the query
            back = client.get(f"/platnosci/powrot?ServiceID=123456&OrderID={reference}&Hash=x")
            assert back.status_code == 303 and back.headers["Location"].endswith(f"/platnosci/{reference}/powrot")


@pytest.mark.parametrize("gateway_setup", ["przelewy24"], indirect=True)
def test_a_verify_that_times_out_is_retried_and_posted_once(gateway_setup, runtime, app, client, logged_in,
                                                             resident_with_arrears):  # noqa: F811
    gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with AppServer(app):
        reference = _pending_payment(runtime, client, logged_in, user, taxpayer, "50")
        simulator.fail_next("verify", "timeout")
        assert simulator.pay(reference) == 503  # we could not confirm with the gateway: it must retry
        assert _ledger(runtime, reference)[0].state == "pending"
        simulator.fail_next("verify", "503")
        assert simulator.notify(reference) == [503]
        assert simulator.notify(reference, times=2) == [200, 200]
        payment, posted, events = _ledger(runtime, reference)
        assert payment.state == "confirmed" and posted == Decimal("50.00") and events == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks: PostgreSQL
@pytest.mark.parametrize("gateway_setup", ["przelewy24"], indirect=True)
def test_a_notification_for_an_account_locked_for_long_is_answered_503(gateway_setup, runtime, app, client, logged_in,
                                                                     resident_with_arrears, monkeypatch):  # noqa: F811
    """A statement import holds its taxpayers' rows until it commits: a notification for one of them
    waits a bounded time, is answered 503 with nothing changed, and is posted once when sent again."""
    from platforma.payments import flows

    monkeypatch.setattr(flows, "NOTIFICATION_LOCK_TIMEOUT_MS", 300)
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with AppServer(app):
        reference = _pending_payment(runtime, client, logged_in, user, taxpayer, "70")
        with runtime.engine.connect() as importer:
            importer.execute(sa.text("SELECT id FROM taxpayer WHERE id = :id FOR UPDATE"), {"id": taxpayer.id})
            started = time.monotonic()
            assert simulator.pay(reference) == 503
            assert time.monotonic() - started < 5
            assert _ledger(runtime, reference)[1:] == (Decimal("0"), 0)
            importer.rollback()
        assert simulator.notify(reference, times=2) == [200, 200]
        payment, posted, events = _ledger(runtime, reference)
        assert payment.state == "confirmed" and posted == Decimal("70.00") and events == 1


@pytest.mark.parametrize("gateway_setup", ["przelewy24"], indirect=True)
def test_a_registration_that_times_out_tells_the_resident_and_stores_a_failed_payment(
        gateway_setup, runtime, app, client, logged_in, resident_with_arrears):  # noqa: F811
    _gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    simulator.fail_next("register", "timeout")
    response = _start_payment(client, taxpayer.id, mode="amount", amount="50")
    assert response.status_code == 502 and "chwilowo nie odpowiada" in response.data.decode()
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(Payment.state)).one() == "failed"


def _write_config(path: Path, database_url: str, port: int, p24: dict) -> None:
    options = "\n".join(f'{k} = {v!r}'.replace("'", '"') if isinstance(v, str) else f"{k} = {v}" for k, v in p24.items())
    path.write_text(f"""demo = true
[gmina]
name = "Gmina Testowo"
teryt = "3021052"
nip = "7794242429"
[[gmina.bank_accounts]]
name = "Podatki"
nrb = "49909000042001000000001234"
[server]
secret_key = "{'s' * 48}"
base_url = "http://127.0.0.1:{port}"
[database]
url = "{database_url}"
[payments]
gateways = ["przelewy24"]
[plugins.options.przelewy24]
{options}
""", encoding="utf-8")


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("gateway_setup", ["przelewy24"], indirect=True)
def test_a_server_killed_between_the_gateways_confirmation_and_our_commit(
        gateway_setup, database_url, runtime, resident_with_arrears, tmp_path):  # noqa: F811
    """SIGKILL while the worker waits for Przelewy24's verify answer: the verify reached the gateway
    (it now counts the money as kept), our commit never happened. The gateway notifies again; the
    restarted server posts the payment, once."""
    gateway, simulator, settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    from platforma.payments import operations
    from platforma.payments.flows import register_with_gateway

    with transaction(runtime.session_factory) as session:
        payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway=gateway,
                                               amount=Decimal("77.00"), mode="amount", designation=[],
                                               description="test", idempotency_key="s" * 20)
        payment_id, reference = payment.id, payment.reference
    port = _free_port()
    options = {**DEMO_OPTIONS[gateway], "base_url": simulator.base_url, "timeout_seconds": 30}
    config = tmp_path / "gmina.toml"
    _write_config(config, database_url, port, options)
    started = register_with_gateway(runtime, payment_id, email="a@example.com", return_url="http://127.0.0.1/x",
                                    notify_url=f"http://127.0.0.1:{port}/platnosci/powiadomienia/{gateway}",
                                    customer_ip="127.0.0.1")
    assert started.redirect_url

    def serve():
        env = {**os.environ, "PLATFORMA_CONFIG": str(config)}
        process = subprocess.Popen([sys.executable, "-m", "platforma.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).status_code == 200:
                    return process
            except httpx.HTTPError:
                time.sleep(0.2)
        process.kill()
        raise AssertionError(process.stderr.read().decode()[-2000:])

    server = serve()
    simulator.timeout_delay = 20
    simulator.fail_next("verify", "timeout")  # the verify hangs: the worker is inside it when it dies
    answers = []
    sender = threading.Thread(target=lambda: answers.append(simulator.pay(reference)))
    sender.start()
    deadline = time.monotonic() + 10
    while simulator.calls("verify") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert simulator.calls("verify") == 1
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    sender.join(timeout=30)
    assert answers == [None]  # the gateway got no answer: it will notify again
    assert _ledger(runtime, reference)[0].state == "pending"

    server = serve()
    try:
        assert simulator.notify(reference) == [200]
        assert simulator.notify(reference) == [200]
    finally:
        server.terminate()
        server.wait(timeout=10)
    payment, posted, events = _ledger(runtime, reference)
    assert payment.state == "confirmed" and posted == Decimal("77.00") and events == 1
    assert simulator.transaction(reference)["verified"]


@pytest.mark.parametrize("gateway_setup", ["przelewy24"], indirect=True)
def test_the_reconciliation_job_asks_the_gateway_about_a_payment_whose_notification_never_came(
        gateway_setup, runtime, resident_with_arrears):  # noqa: F811
    """The payer paid, but the notification never reached us (our server was down): the job asks
    Przelewy24, verifies the transaction and posts it, once."""
    import datetime as dt

    from platforma.payments import operations
    from platforma.payments.flows import reconcile_pending, register_with_gateway

    gateway, simulator, _settings = gateway_setup
    user, taxpayer, _ids = resident_with_arrears
    with transaction(runtime.session_factory) as session:
        payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway=gateway,
                                               amount=Decimal("88.00"), mode="amount", designation=[],
                                               description="test", idempotency_key="r" * 20)
        payment_id, reference = payment.id, payment.reference
    unreachable = f"http://127.0.0.1:{_free_port()}/platnosci/powiadomienia/{gateway}"
    assert register_with_gateway(runtime, payment_id, email="a@example.com", return_url="http://127.0.0.1/x",
                                 notify_url=unreachable, customer_ip="127.0.0.1").redirect_url
    assert simulator.pay(reference) is None  # nobody answered
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)
    counts = reconcile_pending(runtime, now=later)
    assert counts["asked"] == 1 and counts["confirmed"] == 1
    assert reconcile_pending(runtime, now=later)["asked"] == 0
    payment, posted, events = _ledger(runtime, reference)
    assert payment.state == "confirmed" and posted == Decimal("88.00") and events == 1
    assert simulator.transaction(reference)["verified"]
