"""Each gateway plugin against its simulator, over real HTTP on 127.0.0.1.

register -> the payer's page -> pay -> a notification our receiver reads with the plugin -> confirm
(Przelewy24's verify, Autopay's signed confirmation) -> the status query agrees; then forged
notifications, refused credentials, timeouts and 5xx followed by success, and PayU's token cache.
No part of our own code is replaced: the receiver is a real server calling the real plugin.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from platforma.core.registry import registry
from platforma.payments.gateways import autopay, paynow, payu, przelewy24  # noqa: F401 (registers the plugins)
from platforma.payments.gateways.base import (
    GatewayRejected,
    GatewayUnavailable,
    InvalidSignature,
    MalformedNotification,
    PaymentGateway,
    PaymentRequest,
    RefundReport,
)
from tests.simulators.autopay import AutopaySimulator
from tests.simulators.gateways import simulator_class
from tests.simulators.p24 import Przelewy24Simulator
from tests.simulators.paynow import PaynowSimulator
from tests.simulators.payu import PayUSimulator

DATA = Path(__file__).resolve().parents[1] / "data" / "payments"
RETURN_URL = "https://gmina.example/platnosci/powrot"

P24 = {"merchant_id": 64195, "crc": "c0ffee-crc-5f1d2a", "api_key": "p24-api-key-9b8c7d6e5f"}
PAYU = {"pos_id": "300746", "second_key": "b6ca15b0d1020e8094d9b5f8d163db54", "client_id": "300746",
        "client_secret": "2ee86a66e5d97e3fadc400c9f19b065d"}
PAYNOW = {"api_key": "97a55694-5478-43b5-b406-fb49ebfdd2b5", "signature_key": "b305b996-bca5-4404-a0b7-2ccea3d2b64b"}
AUTOPAY = {"service_id": "902145", "shared_key": "QCBm3N0oFjzQAWsTIVN8mPLK12TW6HU6"}
SECRETS = [P24["crc"], P24["api_key"], PAYU["second_key"], PAYU["client_secret"], *PAYNOW.values(), AUTOPAY["shared_key"]]


# -- a tiny webhook: the real plugin reads what the simulator sends ---------------------------------

class NotificationReceiver:
    """A werkzeug server that answers each notification as our webhook does: parse_notification_reports,
    then acknowledge_reports (or 400 for a notification that does not check)."""

    def __init__(self) -> None:
        self.plugin: PaymentGateway | None = None
        #: what acknowledge is told: False stands for "the core could not record it"
        self.accept = True
        #: references whose reports the core "could not record" even when `accept` is True
        self.refuse: set[str] = set()
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/webhook"

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        record: dict[str, Any] = {"headers": dict(request.headers), "body": body, "report": None, "reports": [],
                                  "error": None}
        try:
            assert self.plugin is not None
            reports = self.plugin.parse_notification_reports(dict(request.headers), body, request.remote_addr or "")
        except (InvalidSignature, MalformedNotification) as exc:
            record["error"] = exc
            response = Response(str(exc), status=400)
        else:
            record["reports"], record["report"] = reports, reports[0]
            answer = self.plugin.acknowledge_reports(
                [(report, self.accept and report.reference not in self.refuse) for report in reports])
            response = Response(answer.body, status=answer.status, content_type=answer.content_type)
        with self._lock:
            self.received.append(record)
        return response(environ, start_response)

    def last(self) -> dict[str, Any]:
        with self._lock:
            assert self.received, "no notification arrived"
            return self.received[-1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as r:
        yield r


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, follow_redirects=False, trust_env=False) as client:
        yield client


def plugin_for(gateway: str, sim, **options) -> PaymentGateway:
    base = {"przelewy24": P24, "payu": PAYU, "paynow": PAYNOW, "autopay": AUTOPAY}[gateway]
    values = {**base, "base_url": sim.base_url, **options}
    if gateway != "autopay":
        values.setdefault("timeout_seconds", 5)
    plugin = registry.instantiate(gateway, values)
    assert isinstance(plugin, PaymentGateway)
    return plugin


def payment(receiver: NotificationReceiver, reference: str = "PAY-2026-0001", amount: str = "123.45",
            **fields) -> PaymentRequest:
    values = {"reference": reference, "amount": Decimal(amount), "description": "Podatek od nieruchomości, rata 1/2026",
              "email": "jan.kowalski@example.com", "return_url": RETURN_URL, "notify_url": receiver.url,
              "customer_ip": "127.0.0.1", "idempotency_key": f"idem-{reference}"}
    return PaymentRequest(**{**values, **fields})


def pay_in_browser(browser: httpx.Client, redirect_url: str, decision: str = "pay") -> httpx.Response:
    """What the resident does: open the gateway's page, press a button."""
    page = browser.get(redirect_url)
    assert page.status_code == 200, page.text
    text = page.text
    assert '<html lang="pl">' in text
    assert re.search(r"<button[^>]*>Zapłać</button>", text)
    assert re.search(r"<button[^>]*>Anuluj płatność</button>", text)
    action = re.search(r'<form method="post" action="([^"]+)"', text).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', text))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(redirect_url))
    return browser.post(origin + action, data={**hidden, "decision": decision})


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text)


# -- Przelewy24 ------------------------------------------------------------------------------------

@pytest.fixture
def p24_sim() -> Iterator[Przelewy24Simulator]:
    with Przelewy24Simulator(**P24, timeout_delay=3.0) as sim:
        yield sim


def test_p24_register_pay_notify_verify_status(p24_sim, receiver, browser):
    plugin = plugin_for("przelewy24", p24_sim)
    receiver.plugin = plugin
    assert plugin.check_config().ok
    registration = plugin.register(payment(receiver))
    assert registration.redirect_url == f"{p24_sim.base_url}/trnRequest/{registration.gateway_txn_id}"
    assert plugin.status("PAY-2026-0001", None).outcome == "pending"

    back = pay_in_browser(browser, registration.redirect_url)
    assert back.status_code == 303 and back.headers["Location"] == RETURN_URL

    got = receiver.last()
    assert got["error"] is None
    report = got["report"]
    txn = p24_sim.transaction("PAY-2026-0001")
    assert (report.reference, report.outcome, report.amount, report.gateway_txn_id) == \
        ("PAY-2026-0001", "confirmed", Decimal("123.45"), txn["gateway_id"])
    assert txn["verified"] is False
    before = plugin.status("PAY-2026-0001", None)
    assert before.outcome == "confirmed" and before.details["verified"] is False

    confirmed = plugin.confirm(report, Decimal("123.45"))
    assert confirmed.details["verified"] is True
    assert p24_sim.transaction("PAY-2026-0001")["verified"] is True
    after = plugin.status("PAY-2026-0001", report.gateway_txn_id)
    assert (after.outcome, after.amount, after.gateway_txn_id, after.details["verified"]) == \
        ("confirmed", Decimal("123.45"), report.gateway_txn_id, True)
    # an already verified status answer is not verified twice
    assert plugin.confirm(after, Decimal("123.45")) is after
    assert p24_sim.calls("verify") == 1
    assert_no_secret(report.details, confirmed.details, after.details)


def test_p24_control_api_and_repeated_notifications(p24_sim, receiver):
    plugin = plugin_for("przelewy24", p24_sim)
    receiver.plugin = plugin
    plugin.register(payment(receiver, reference="PAY-2"))
    assert p24_sim.pay("PAY-2") == 200
    assert p24_sim.notify("PAY-2", times=2) == [200, 200]
    reports = [r["report"] for r in receiver.received]
    assert len(reports) == 3 and len({r.gateway_txn_id for r in reports}) == 1
    headers, body = p24_sim.notification_for("PAY-2")
    assert plugin.parse_notification(headers, body, "127.0.0.1").gateway_txn_id == reports[0].gateway_txn_id
    # Przelewy24 sends nothing for a payment that was not made
    plugin.register(payment(receiver, reference="PAY-3"))
    assert p24_sim.pay("PAY-3", outcome="cancelled") is None
    assert plugin.status("PAY-3", None).outcome == "pending"


def test_p24_verify_refused_for_another_amount(p24_sim, receiver):
    plugin = plugin_for("przelewy24", p24_sim)
    receiver.plugin = plugin
    plugin.register(payment(receiver, amount="50.00"))
    p24_sim.pay("PAY-2026-0001")
    report = receiver.last()["report"]
    with pytest.raises(GatewayRejected, match="różni się"):
        plugin.confirm(report, Decimal("50.01"))
    assert p24_sim.calls("verify") == 0 and p24_sim.transaction("PAY-2026-0001")["verified"] is False


def test_p24_verify_with_wrong_crc_is_refused_and_money_not_kept(p24_sim, receiver):
    plugin = plugin_for("przelewy24", p24_sim)
    receiver.plugin = plugin
    plugin.register(payment(receiver))
    headers, body = p24_sim.notification_for("PAY-2026-0001")
    report = plugin.parse_notification(headers, body, "127.0.0.1")
    other = plugin_for("przelewy24", p24_sim, crc="inny-crc")
    with pytest.raises(GatewayRejected) as caught:
        other.confirm(report, Decimal("123.45"))
    assert p24_sim.transaction("PAY-2026-0001")["verify_rejected"] == 1
    assert p24_sim.transaction("PAY-2026-0001")["verified"] is False
    assert_no_secret(caught.value)


def test_p24_forged_notifications(p24_sim, receiver):
    plugin = plugin_for("przelewy24", p24_sim)
    receiver.plugin = plugin
    plugin.register(payment(receiver))
    headers, body = p24_sim.notification_for("PAY-2026-0001")
    forged = json.loads(body)
    forged["amount"] = 1
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, json.dumps(forged).encode(), "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin_for("przelewy24", p24_sim, crc="inny-crc").parse_notification(headers, body, "127.0.0.1")
    # over HTTP: a simulator that signs with another CRC gets 400 from our webhook
    with Przelewy24Simulator(**{**P24, "crc": "podrobiony"}) as impostor:
        impostor.notify_url = receiver.url
        plugin_for("przelewy24", impostor, crc="podrobiony").register(payment(receiver, reference="FAKE-1"))
        assert impostor.pay("FAKE-1") == 400
    assert isinstance(receiver.last()["error"], InvalidSignature)


def test_p24_notification_source_networks(p24_sim, receiver):
    receiver.plugin = plugin_for("przelewy24", p24_sim, allowed_sources=["91.216.191.181/32", "5.252.202.0/24"])
    plugin_for("przelewy24", p24_sim).register(payment(receiver))
    assert p24_sim.pay("PAY-2026-0001") == 400
    assert "spoza" in str(receiver.last()["error"])
    receiver.plugin = plugin_for("przelewy24", p24_sim, allowed_sources=["127.0.0.0/8"])
    assert p24_sim.notify("PAY-2026-0001") == [200]


def test_p24_refused_credentials(p24_sim, receiver):
    wrong_key = plugin_for("przelewy24", p24_sim, api_key="zly-klucz-api")
    with pytest.raises(GatewayRejected, match="HTTP 401") as caught:
        wrong_key.register(payment(receiver))
    assert_no_secret(caught.value)
    assert "zly-klucz-api" not in str(caught.value)
    result = wrong_key.check_config()
    assert not result.ok and "odrzuciło" in result.message and "zly-klucz-api" not in result.message
    wrong_crc = plugin_for("przelewy24", p24_sim, crc="zly-crc")
    with pytest.raises(GatewayRejected, match="HTTP 400"):
        wrong_crc.register(payment(receiver))


@pytest.mark.parametrize("kind", ["timeout", "503"])
def test_p24_unavailable_then_working(p24_sim, receiver, kind):
    plugin = plugin_for("przelewy24", p24_sim, timeout_seconds=1.0)
    receiver.plugin = plugin
    p24_sim.fail_next("register", kind)
    with pytest.raises(GatewayUnavailable) as caught:
        plugin.register(payment(receiver))
    assert ("brak odpowiedzi" if kind == "timeout" else "HTTP 503") in str(caught.value)
    assert_no_secret(caught.value)
    registration = plugin.register(payment(receiver))
    assert registration.gateway_txn_id
    p24_sim.pay("PAY-2026-0001")
    report = receiver.last()["report"]
    p24_sim.fail_next("verify", kind)
    with pytest.raises(GatewayUnavailable):
        plugin.confirm(report, Decimal("123.45"))
    assert plugin.confirm(report, Decimal("123.45")).details["verified"] is True
    p24_sim.fail_next("status", kind)
    with pytest.raises(GatewayUnavailable):
        plugin.status("PAY-2026-0001", None)
    assert plugin.status("PAY-2026-0001", None).outcome == "confirmed"
    assert p24_sim.calls("register") == 2 and p24_sim.calls("verify") == 2


def test_p24_gateway_down_is_unavailable_and_check_config_does_not_raise(receiver):
    with Przelewy24Simulator(**P24) as sim:
        base_url = sim.base_url
    plugin = registry.instantiate("przelewy24", {**P24, "base_url": base_url, "timeout_seconds": 1})
    with pytest.raises(GatewayUnavailable, match="nie udało się połączyć"):
        plugin.register(payment(receiver))
    result = plugin.check_config()
    assert not result.ok and "Przelewy24" in result.message


# -- PayU ------------------------------------------------------------------------------------------

@pytest.fixture
def payu_sim() -> Iterator[PayUSimulator]:
    with PayUSimulator(**PAYU, timeout_delay=3.0) as sim:
        yield sim


def test_payu_register_pay_notify_status(payu_sim, receiver, browser):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    assert plugin.check_config().ok
    registration = plugin.register(payment(receiver))
    assert registration.redirect_url.startswith(f"{payu_sim.base_url}/pay/?orderId={registration.gateway_txn_id}")
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == "pending"

    back = pay_in_browser(browser, registration.redirect_url)
    assert back.status_code == 303 and back.headers["Location"] == RETURN_URL
    report = receiver.last()["report"]
    assert (report.reference, report.outcome, report.amount, report.gateway_txn_id) == \
        ("PAY-2026-0001", "confirmed", Decimal("123.45"), registration.gateway_txn_id)
    assert report.paid_at is not None
    assert plugin.confirm(report, Decimal("123.45")) is report
    status = plugin.status("PAY-2026-0001", registration.gateway_txn_id)
    assert (status.outcome, status.amount, status.gateway_txn_id) == ("confirmed", Decimal("123.45"), registration.gateway_txn_id)
    assert plugin.status("PAY-2026-0001", None) is None
    assert_no_secret(report.details, status.details)


def test_payu_cancelled_and_pending(payu_sim, receiver, browser):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    registration = plugin.register(payment(receiver))
    assert payu_sim.pay(registration.gateway_txn_id, outcome="pending") == 200
    assert receiver.last()["report"].outcome == "pending"
    back = pay_in_browser(browser, registration.redirect_url, decision="cancel")
    assert back.status_code == 303
    assert receiver.last()["report"].outcome == "cancelled"
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == "cancelled"


def test_payu_token_is_cached_and_renewed(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    first = plugin.register(payment(receiver, reference="PAY-A"))
    second = plugin.register(payment(receiver, reference="PAY-B"))
    assert first.gateway_txn_id != second.gateway_txn_id
    assert payu_sim.calls("oauth") == 1 and payu_sim.calls("orders") == 2
    # threads share the one token
    results: list[str] = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        plugin.register(payment(receiver, reference=f"PAY-T{i}")).gateway_txn_id)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 6 and payu_sim.calls("oauth") == 1
    # so do other instances with the same credentials (the core may make one per call)
    plugin_for("payu", payu_sim).register(payment(receiver, reference="PAY-C"))
    assert payu_sim.calls("oauth") == 1
    # a token PayU stopped accepting is replaced once, without failing the call
    payu_sim.expire_tokens()
    assert plugin.status("PAY-A", first.gateway_txn_id).outcome == "pending"
    assert payu_sim.calls("oauth") == 2


def test_payu_token_expiry_is_respected(receiver):
    # a lifetime within the renewal margin: every call fetches a new token
    with PayUSimulator(**PAYU, token_lifetime=30) as sim:
        plugin = plugin_for("payu", sim)
        plugin.register(payment(receiver, reference="PAY-A"))
        plugin.register(payment(receiver, reference="PAY-B"))
        assert sim.calls("oauth") == 2


def test_payu_sha256_notifications(receiver):
    with PayUSimulator(**PAYU, signature_algorithm="SHA-256") as sim:
        plugin = plugin_for("payu", sim)
        receiver.plugin = plugin
        registration = plugin.register(payment(receiver))
        assert sim.pay(registration.gateway_txn_id) == 200
        assert "algorithm=SHA-256" in receiver.last()["headers"]["Openpayu-Signature"]
        assert receiver.last()["report"].outcome == "confirmed"


def test_payu_forged_notifications(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    registration = plugin.register(payment(receiver))
    headers, body = payu_sim.notification_for(registration.gateway_txn_id)
    assert plugin.parse_notification(headers, body, "127.0.0.1").outcome == "confirmed"
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, body.replace(b'"12345"', b'"12346"'), "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, body.replace(b"COMPLETED", b"COMPLETEE"), "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin_for("payu", payu_sim, second_key="inny-drugi-klucz").parse_notification(headers, body, "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification({}, body, "127.0.0.1")


def test_payu_refused_credentials(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim, client_secret="zly-sekret-klienta")
    with pytest.raises(GatewayRejected, match="HTTP 401") as caught:
        plugin.register(payment(receiver))
    assert "zly-sekret-klienta" not in str(caught.value)
    assert_no_secret(caught.value)
    result = plugin.check_config()
    assert not result.ok and "OAuth" in result.message and "zly-sekret-klienta" not in result.message
    assert payu_sim.calls("orders") == 0


def test_payu_order_refused(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim, pos_id="999999")
    with pytest.raises(GatewayRejected, match="ERROR_INCONSISTENT_MERCHANT_POS_ID"):
        plugin.register(payment(receiver))
    plugin = plugin_for("payu", payu_sim)
    plugin.register(payment(receiver))
    with pytest.raises(GatewayRejected, match="ERROR_ORDER_NOT_UNIQUE"):
        plugin.register(payment(receiver))
    with pytest.raises(GatewayRejected, match="więcej niż dwa miejsca"):
        plugin.register(payment(receiver, reference="PAY-X", amount="1.001"))


@pytest.mark.parametrize("kind", ["timeout", "503"])
def test_payu_unavailable_then_working(payu_sim, receiver, kind):
    plugin = plugin_for("payu", payu_sim, timeout_seconds=1.0)
    payu_sim.fail_next("oauth", kind)
    with pytest.raises(GatewayUnavailable):
        plugin.register(payment(receiver))
    payu_sim.fail_next("orders", kind)
    with pytest.raises(GatewayUnavailable):
        plugin.register(payment(receiver))
    registration = plugin.register(payment(receiver))
    payu_sim.fail_next("status", kind)
    with pytest.raises(GatewayUnavailable):
        plugin.status("PAY-2026-0001", registration.gateway_txn_id)
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == "pending"
    assert payu_sim.calls("oauth") == 2 and payu_sim.calls("orders") == 2


# -- Paynow ----------------------------------------------------------------------------------------

@pytest.fixture
def paynow_sim(receiver) -> Iterator[PaynowSimulator]:
    with PaynowSimulator(**PAYNOW, notify_url=receiver.url, timeout_delay=3.0) as sim:
        yield sim


def test_paynow_register_pay_notify_status(paynow_sim, receiver, browser):
    plugin = plugin_for("paynow", paynow_sim)
    receiver.plugin = plugin
    assert plugin.check_config().ok
    registration = plugin.register(payment(receiver))
    assert registration.redirect_url == f"{paynow_sim.base_url}/paywall/{registration.gateway_txn_id}"
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == "pending"

    back = pay_in_browser(browser, registration.redirect_url)
    assert back.status_code == 303
    location = urlsplit(back.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    assert parse_qs(location.query) == {"paymentId": [registration.gateway_txn_id], "paymentStatus": ["CONFIRMED"]}
    report = receiver.last()["report"]
    assert (report.reference, report.outcome, report.gateway_txn_id) == \
        ("PAY-2026-0001", "confirmed", registration.gateway_txn_id)
    assert report.amount is None  # Paynow's notification carries none; the core knows what it registered
    assert paynow_sim.transaction("PAY-2026-0001")["amount"] == 12345
    assert plugin.confirm(report, Decimal("123.45")) is report
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == "confirmed"
    assert plugin.status("PAY-2026-0001", None) is None


def test_paynow_messages_have_the_sdk_samples_fields(paynow_sim, receiver):
    """Our payment carries every field of the official SDK's sample request, and the answer the simulator
    gives has exactly the fields of the SDK's sample answer."""
    plugin = plugin_for("paynow", paynow_sim)
    registration = plugin.register(payment(receiver))
    sample_request = json.loads((DATA / "paynow_payment_request.json").read_text(encoding="utf-8"))
    sample_answer = json.loads((DATA / "paynow_payment_success.json").read_text(encoding="utf-8"))
    sent = paynow_sim.transaction("PAY-2026-0001")
    assert sent["amount"] == 12345 and sent["currency"] == "PLN" and sent["email"] == "jan.kowalski@example.com"
    with httpx.Client(base_url=paynow_sim.base_url, trust_env=False) as client:
        key = "idem-PAY-2026-0001"
        raw = json.dumps({"amount": 12345, "currency": "PLN", "externalId": "PAY-2026-0001",
                          "description": "Podatek od nieruchomości, rata 1/2026", "continueUrl": RETURN_URL,
                          "buyer": {"email": "jan.kowalski@example.com", "locale": "pl-PL"}},
                         separators=(",", ":"), ensure_ascii=False)
        signature = paynow.request_signature_v3(PAYNOW["signature_key"], PAYNOW["api_key"], key, raw)
        answer = client.post("/v3/payments", content=raw.encode(), headers={
            "Api-Key": PAYNOW["api_key"], "Idempotency-Key": key, "Signature": signature,
            "Content-Type": "application/json"})
    # the same key and the same bytes: the same payment, as the plugin's own request got
    assert answer.status_code == 201 and answer.json()["paymentId"] == registration.gateway_txn_id
    assert set(answer.json()) == set(sample_answer)
    assert set(sample_request) <= set(json.loads(raw)) and set(sample_request["buyer"]) <= set(json.loads(raw)["buyer"])


def test_paynow_idempotency_key(paynow_sim, receiver):
    plugin = plugin_for("paynow", paynow_sim)
    first = plugin.register(payment(receiver))
    again = plugin.register(payment(receiver))
    assert first == again and paynow_sim.calls("payments") == 2
    with pytest.raises(GatewayRejected, match="HTTP 409"):
        plugin.register(payment(receiver, amount="1.00"))


@pytest.mark.parametrize(("outcome", "expected"), [("failed", "failed"), ("cancelled", "cancelled"),
                                                   ("expired", "expired"), ("pending", "pending")])
def test_paynow_outcomes(paynow_sim, receiver, outcome, expected):
    plugin = plugin_for("paynow", paynow_sim)
    receiver.plugin = plugin
    registration = plugin.register(payment(receiver))
    assert paynow_sim.pay("PAY-2026-0001", outcome=outcome) == 200
    assert receiver.last()["report"].outcome == expected
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == expected


def test_paynow_forged_notifications(paynow_sim, receiver):
    plugin = plugin_for("paynow", paynow_sim)
    receiver.plugin = plugin
    plugin.register(payment(receiver))
    headers, body = paynow_sim.notification_for("PAY-2026-0001")
    assert plugin.parse_notification(headers, body, "127.0.0.1").outcome == "confirmed"
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, body.replace(b"CONFIRMED", b"CONFIRMEE"), "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, body + b" ", "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin_for("paynow", paynow_sim, signature_key="inny-klucz").parse_notification(headers, body, "127.0.0.1")
    receiver.plugin = plugin_for("paynow", paynow_sim, signature_key="inny-klucz")
    assert paynow_sim.notify("PAY-2026-0001") == [400]


def test_paynow_refused_keys(paynow_sim, receiver):
    for options in ({"api_key": "zly-klucz-api"}, {"signature_key": "zly-klucz-podpisu"}):
        plugin = plugin_for("paynow", paynow_sim, **options)
        with pytest.raises(GatewayRejected, match="HTTP 401") as caught:
            plugin.register(payment(receiver))
        assert_no_secret(caught.value)
        assert next(iter(options.values())) not in str(caught.value)
        result = plugin.check_config()
        assert not result.ok and "Paynow odrzuciło" in result.message


@pytest.mark.parametrize("kind", ["timeout", "503"])
def test_paynow_unavailable_then_working(paynow_sim, receiver, kind):
    plugin = plugin_for("paynow", paynow_sim, timeout_seconds=1.0)
    paynow_sim.fail_next("payments", kind)
    with pytest.raises(GatewayUnavailable):
        plugin.register(payment(receiver))
    registration = plugin.register(payment(receiver))
    paynow_sim.fail_next("status", kind, count=2)
    for _ in range(2):
        with pytest.raises(GatewayUnavailable):
            plugin.status("PAY-2026-0001", registration.gateway_txn_id)
    assert plugin.status("PAY-2026-0001", registration.gateway_txn_id).outcome == "pending"
    assert paynow_sim.calls("status") == 3


# -- Autopay ---------------------------------------------------------------------------------------

@pytest.fixture
def autopay_sim(receiver) -> Iterator[AutopaySimulator]:
    with AutopaySimulator(**AUTOPAY, notify_url=receiver.url, return_url=RETURN_URL) as sim:
        yield sim


def test_autopay_redirect_pay_itn_confirmation(autopay_sim, receiver, browser):
    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    assert plugin.check_config().ok
    registration = plugin.register(payment(receiver))
    assert registration.gateway_txn_id is None
    assert registration.redirect_url.startswith(f"{autopay_sim.base_url}/payment?ServiceID=902145&OrderID=PAY-2026-0001&Amount=123.45&")

    back = pay_in_browser(browser, registration.redirect_url)
    assert back.status_code == 303
    location = urlsplit(back.headers["Location"])
    assert parse_qs(location.query)["OrderID"] == ["PAY-2026-0001"]
    got = receiver.last()
    assert got["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    report = got["report"]
    txn = autopay_sim.transaction("PAY-2026-0001")
    assert (report.reference, report.outcome, report.amount, report.gateway_txn_id) == \
        ("PAY-2026-0001", "confirmed", Decimal("123.45"), txn["gateway_id"])
    assert report.paid_at is not None
    # our signed confirmation was read and accepted by the simulator
    assert txn["itn_confirmation"] == "CONFIRMED" and txn["itn_confirmed"] is True
    assert plugin.confirm(report, Decimal("123.45")) is report
    status = plugin.status("PAY-2026-0001", None)
    assert (status.outcome, status.amount, status.gateway_txn_id) == ("confirmed", Decimal("123.45"), txn["gateway_id"])
    assert_no_secret(report.details, status.details)


def test_autopay_not_confirmed_itn_is_sent_again(autopay_sim, receiver):
    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    httpx.get(plugin.register(payment(receiver)).redirect_url, trust_env=False).raise_for_status()
    receiver.accept = False
    assert autopay_sim.pay("PAY-2026-0001") == 200
    assert autopay_sim.transaction("PAY-2026-0001")["itn_confirmation"] == "NOTCONFIRMED"
    assert autopay_sim.transaction("PAY-2026-0001")["itn_confirmed"] is False
    receiver.accept = True
    assert autopay_sim.notify("PAY-2026-0001") == [200]
    assert autopay_sim.transaction("PAY-2026-0001")["itn_confirmed"] is True


@pytest.mark.parametrize(("outcome", "expected"), [("failed", "failed"), ("cancelled", "cancelled"),
                                                   ("expired", "expired"), ("pending", "pending")])
def test_autopay_outcomes(autopay_sim, receiver, outcome, expected):
    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    httpx.get(plugin.register(payment(receiver)).redirect_url, trust_env=False).raise_for_status()
    assert autopay_sim.pay("PAY-2026-0001", outcome=outcome) == 200
    assert receiver.last()["report"].outcome == expected


def test_autopay_start_with_wrong_key_is_refused(autopay_sim, receiver, browser):
    plugin = plugin_for("autopay", autopay_sim, shared_key="inny-klucz-wspoldzielony")
    page = browser.get(plugin.register(payment(receiver)).redirect_url)
    assert page.status_code == 400 and "Hash" in page.text and '<html lang="pl">' in page.text
    tampered = plugin_for("autopay", autopay_sim).register(payment(receiver)).redirect_url.replace("Amount=123.45", "Amount=1.45")
    assert browser.get(tampered).status_code == 400


def test_autopay_forged_itn(autopay_sim, receiver):
    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    httpx.get(plugin.register(payment(receiver)).redirect_url, trust_env=False).raise_for_status()
    headers, body = autopay_sim.notification_for("PAY-2026-0001")
    assert plugin.parse_notification(headers, body, "127.0.0.1").outcome == "confirmed"
    with pytest.raises(InvalidSignature):
        plugin_for("autopay", autopay_sim, shared_key="inny-klucz-wspoldzielony").parse_notification(headers, body, "127.0.0.1")
    import base64
    from urllib.parse import urlencode

    xml = base64.b64decode(parse_qs(body.decode())["transactions"][0])
    forged = urlencode({"transactions": base64.b64encode(xml.replace(b"123.45", b"923.45")).decode()}).encode()
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, forged, "127.0.0.1")
    receiver.plugin = plugin_for("autopay", autopay_sim, shared_key="inny-klucz-wspoldzielony")
    assert autopay_sim.notify("PAY-2026-0001") == [400]
    assert autopay_sim.transaction("PAY-2026-0001")["itn_confirmed"] is False


# -- all four --------------------------------------------------------------------------------------

@pytest.mark.parametrize("gateway", ["przelewy24", "payu", "paynow", "autopay"])
def test_plugins_are_registered_with_polish_names(gateway):
    cls = registry.get(gateway)
    assert cls.kind == "PaymentGateway" and cls.id == gateway and cls.name


@pytest.mark.parametrize("gateway", ["przelewy24", "payu", "paynow", "autopay"])
def test_simulators_run_standalone(gateway):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "tests.simulators.gateways", "--gateway", gateway],
                               cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("READY "), line
        port = int(line.split()[1])
        cls = simulator_class(gateway)
        endpoint = {"przelewy24": "/api/v1/testAccess", "payu": "/api/v2_1/orders/X",
                    "paynow": "/v3/payments/X/status", "autopay": "/payment"}[gateway]
        answer = httpx.get(f"http://127.0.0.1:{port}{endpoint}", trust_env=False, timeout=5)
        # without credentials each refuses, as the real gateway does
        assert answer.status_code in (400, 401), (cls.__name__, answer.status_code)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# -- PayU refunds (ordered in PayU's panel; PayU notifies them) -------------------------------------

def _paid_payu_order(payu_sim, receiver, plugin, reference: str = "PAY-2026-0001", amount: str = "123.45") -> str:
    registration = plugin.register(payment(receiver, reference=reference, amount=amount))
    assert payu_sim.pay(registration.gateway_txn_id) == 200
    return registration.gateway_txn_id


def test_payu_refund_notifications(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    order_id = _paid_payu_order(payu_sim, receiver, plugin)
    refund_id, answered = payu_sim.refund(order_id, amount=2345, status="PENDING")
    assert answered == 200
    report = receiver.last()["report"]
    assert isinstance(report, RefundReport)
    assert (report.reference, report.gateway_txn_id, report.refund_id, report.outcome, report.amount, report.currency) == \
        ("PAY-2026-0001", order_id, refund_id, "pending", Decimal("23.45"), "PLN")
    assert report.refunded_at is None
    assert payu_sim.refund(order_id, refund_id=refund_id, status="FINALIZED")[1] == 200
    done = receiver.last()["report"]
    assert (done.refund_id, done.outcome, done.amount) == (refund_id, "completed", Decimal("23.45"))
    assert done.refunded_at is not None and done.refunded_at.tzinfo is not None
    assert done.details["reasonDescription"] == "Zwrot nadpłaty"
    # the rest of the order, ordered and then withdrawn in the panel
    second, _ = payu_sim.refund(order_id, status="CANCELED")
    cancelled = receiver.last()["report"]
    assert (cancelled.refund_id, cancelled.outcome, cancelled.amount) == (second, "cancelled", Decimal("100.00"))
    assert_no_secret(report.details, done.details, cancelled.details)


def test_payu_refunds_only_what_payu_allows(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    unpaid = plugin.register(payment(receiver, reference="PAY-UNPAID")).gateway_txn_id
    with pytest.raises(ValueError, match="COMPLETED"):
        payu_sim.refund(unpaid)
    order_id = _paid_payu_order(payu_sim, receiver, plugin)
    payu_sim.refund(order_id, amount=10000)
    with pytest.raises(ValueError, match="poza zakresem"):
        payu_sim.refund(order_id, amount=2346)
    payu_sim.refund(order_id, amount=2345)
    with pytest.raises(ValueError, match="poza zakresem"):
        payu_sim.refund(order_id, amount=1)


@pytest.mark.parametrize("change", ["no amount", "zero amount", "negative amount", "unknown status", "no order",
                                    "refund not an object"])
def test_payu_refund_notification_that_cannot_be_read_is_malformed(payu_sim, receiver, change):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    order_id = _paid_payu_order(payu_sim, receiver, plugin)
    payu_sim.refund(order_id, amount=500)
    data = json.loads(receiver.last()["body"])
    if change == "no amount":
        del data["refund"]["amount"]
    elif change == "zero amount":
        data["refund"]["amount"] = "0"
    elif change == "negative amount":
        data["refund"]["amount"] = "-500"
    elif change == "unknown status":
        data["refund"]["status"] = "DONE"
    elif change == "no order":
        del data["orderId"]
    else:
        data["refund"] = "500"
    headers, body = payu_sim._signed(data)  # signed correctly: only the content is wrong
    with pytest.raises(MalformedNotification):
        plugin.parse_notification(headers, body, "127.0.0.1")


def test_payu_forged_refund_notifications(payu_sim, receiver):
    plugin = plugin_for("payu", payu_sim)
    receiver.plugin = plugin
    order_id = _paid_payu_order(payu_sim, receiver, plugin)
    payu_sim.refund(order_id, amount=500)
    headers, body = receiver.last()["headers"], receiver.last()["body"]
    assert plugin.parse_notification(headers, body, "127.0.0.1").outcome == "completed"
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, body.replace(b'"500"', b'"12345"'), "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin_for("payu", payu_sim, second_key="inny-drugi-klucz").parse_notification(headers, body, "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification({}, body, "127.0.0.1")


# -- Autopay: an ITN of several transactions, the status query ---------------------------------------

def _started_autopay(plugin, receiver, *references: str) -> None:
    for reference in references:
        httpx.get(plugin.register(payment(receiver, reference=reference)).redirect_url, trust_env=False).raise_for_status()


def test_autopay_itn_of_several_transactions_is_confirmed_one_by_one(autopay_sim, receiver):
    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    _started_autopay(plugin, receiver, "PAY-A", "PAY-B", "PAY-C")
    receiver.refuse = {"PAY-B"}  # the core could not record this one now
    assert autopay_sim.notify_many([("PAY-A", "confirmed"), ("PAY-B", "confirmed"), ("PAY-C", "cancelled")]) == 200
    got = receiver.last()
    assert [(r.reference, r.outcome) for r in got["reports"]] == [
        ("PAY-A", "confirmed"), ("PAY-B", "confirmed"), ("PAY-C", "cancelled")]
    assert len({r.gateway_txn_id for r in got["reports"]}) == 3
    assert [autopay_sim.transaction(r)["itn_confirmation"] for r in ("PAY-A", "PAY-B", "PAY-C")] == [
        "CONFIRMED", "NOTCONFIRMED", "CONFIRMED"]
    assert [autopay_sim.transaction(r)["itn_confirmed"] for r in ("PAY-A", "PAY-B", "PAY-C")] == [True, False, True]
    # Autopay sends again the one not confirmed
    receiver.refuse = set()
    assert autopay_sim.notify_many([("PAY-B", None)]) == 200
    assert autopay_sim.transaction("PAY-B")["itn_confirmed"] is True
    # parse_notification reads an ITN of one transaction only
    with pytest.raises(MalformedNotification, match="3 transakcji"):
        plugin.parse_notification(got["headers"], got["body"], "127.0.0.1")


def test_autopay_forged_itn_of_several_transactions_is_refused_whole(autopay_sim, receiver):
    import base64
    from urllib.parse import urlencode

    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    _started_autopay(plugin, receiver, "PAY-A", "PAY-B")
    autopay_sim.notify_many([("PAY-A", "confirmed"), ("PAY-B", "confirmed")])
    xml = base64.b64decode(parse_qs(receiver.last()["body"].decode())["transactions"][0])
    assert xml.count(b"<transaction>") == 2
    for forged_xml in (xml.replace(b"<amount>123.45</amount>", b"<amount>1.45</amount>", 1),
                       xml.replace(b"<orderID>PAY-B</orderID>", b"<orderID>PAY-X</orderID>")):
        forged = urlencode({"transactions": base64.b64encode(forged_xml).decode()}).encode()
        with pytest.raises(InvalidSignature):
            plugin.parse_notification_reports({}, forged, "127.0.0.1")


def test_autopay_status_query(autopay_sim, receiver):
    plugin = plugin_for("autopay", autopay_sim)
    receiver.plugin = plugin
    _started_autopay(plugin, receiver, "PAY-A", "PAY-C")
    assert plugin.status("PAY-A", None).outcome == "pending"
    assert plugin.status("PAY-NIEZNANA", None) is None
    assert autopay_sim.pay("PAY-A") == 200
    first = autopay_sim.transaction("PAY-A")["gateway_id"]
    paid = plugin.status("PAY-A", None)
    assert (paid.outcome, paid.amount, paid.gateway_txn_id, paid.reference) == ("confirmed", Decimal("123.45"), first, "PAY-A")
    assert paid.paid_at is not None and "paid_transactions" not in paid.details
    # the payer paid the same order twice: the answer lists both; the one we know is preferred
    second = autopay_sim.pay_again("PAY-A")
    twice = plugin.status("PAY-A", first)
    assert (twice.outcome, twice.gateway_txn_id, twice.details["paid_transactions"]) == ("confirmed", first, 2)
    assert plugin.status("PAY-A", second).gateway_txn_id == second
    assert autopay_sim.pay("PAY-C", outcome="cancelled") == 200
    assert plugin.status("PAY-C", None).outcome == "cancelled"
    assert autopay_sim.calls("status") == 6
    assert_no_secret(paid.details, twice.details)


def test_autopay_status_refused_forged_or_unavailable(autopay_sim, receiver):
    plugin = plugin_for("autopay", autopay_sim, timeout_seconds=1.0)
    receiver.plugin = plugin
    _started_autopay(plugin, receiver, "PAY-A")
    with pytest.raises(GatewayRejected, match="HTTP 403") as refused:
        plugin_for("autopay", autopay_sim, shared_key="inny-klucz-wspoldzielony").status("PAY-A", None)
    assert_no_secret(refused.value)
    autopay_sim.tamper_status = True
    with pytest.raises(GatewayRejected, match="skrót"):
        plugin.status("PAY-A", None)
    autopay_sim.tamper_status = False
    for kind in ("timeout", "503"):
        autopay_sim.fail_next("status", kind)
        with pytest.raises(GatewayUnavailable):
            plugin.status("PAY-A", None)
    assert plugin.status("PAY-A", None).outcome == "pending"
