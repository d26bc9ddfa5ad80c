"""The gateways' signatures against the vectors published in their own SDKs' test suites.

Every vector is checked both ways: the published value is accepted (or computed), and the same input
with one byte changed is not. MIT and Apache-2.0 vectors are copied in tests/data/payments/; the
LGPL-3.0 Autopay fixtures and the Przelewy24 documentation profiles (licence unknown) are read from
shared/reference-data/payments/, and their tests are skipped, saying where they looked, when it is absent.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree

from platforma.payments.gateways import autopay, paynow, payu, przelewy24
from platforma.payments.gateways._signing import amount_text, from_grosze, to_grosze
from platforma.payments.gateways.base import (
    GatewayRejected,
    InvalidSignature,
    MalformedNotification,
    PaymentRequest,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "payments"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference-data" / "payments"
VECTORS = json.loads((DATA / "signature_vectors.json").read_text(encoding="utf-8"))


def shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{name} (LGPL-3.0 or unknown licence, not copied here) not found at {path}")
    return path


def changed(text: str, index: int = -1) -> str:
    """The same text with one character changed."""
    ch = text[index]
    return text[:index] + ("0" if ch != "0" else "1") + (text[index + 1:] if index != -1 else "")


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def request(**fields) -> PaymentRequest:
    values = {"reference": "PAY-1", "amount": Decimal("12.00"), "description": "Podatek od nieruchomości",
              "email": "jan@example.com", "return_url": "https://gmina.example/powrot",
              "notify_url": "https://gmina.example/webhook"}
    return PaymentRequest(**{**values, **fields})


# -- amounts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "grosze"), [("0.01", 1), ("12", 1200), ("12.3", 1230), ("1234567.89", 123456789),
                                                ("100.00", 10000)])
def test_grosze_are_exact(amount, grosze):
    assert to_grosze(Decimal(amount)) == grosze
    assert from_grosze(grosze) == Decimal(amount)


@pytest.mark.parametrize("amount", ["12.001", "0", "-1.00", "NaN", "Infinity"])
def test_amounts_a_gateway_would_round_are_refused(amount):
    with pytest.raises(GatewayRejected):
        to_grosze(Decimal(amount))


def test_floats_are_refused():
    with pytest.raises(GatewayRejected):
        to_grosze(12.0)  # type: ignore[arg-type]


def test_autopay_amount_text():
    assert amount_text(Decimal(12)) == "12.00"
    assert amount_text(Decimal("1234.5")) == "1234.50"


# -- Przelewy24 ------------------------------------------------------------------------------------

P24 = VECTORS["przelewy24"]
P24_SIGNED = [v for v in P24["vectors"] if v["kind"] != "negative"]


@pytest.mark.parametrize("vector", P24_SIGNED, ids=[v["label"] for v in P24_SIGNED])
def test_p24_sign_of_published_json(vector):
    assert przelewy24.sign_text(vector["json_signed"]) == vector["expected_sign"]
    assert przelewy24.sign_text(changed(vector["json_signed"], -3)) != vector["expected_sign"]


@pytest.mark.parametrize("vector", P24_SIGNED, ids=[v["label"] for v in P24_SIGNED])
def test_p24_json_is_written_as_php_writes_it(vector):
    """From the fields alone we write byte for byte the JSON the PHP library signed."""
    fields = list(json.loads(vector["json_signed"]).items())
    assert przelewy24.p24_json(fields) == vector["json_signed"]


def test_p24_escaped_json_gives_another_sign():
    negative = next(v for v in P24["vectors"] if v["kind"] == "negative")
    unicode_vector = P24["vectors"][0]
    assert przelewy24.sign_text(negative["json_signed"]) == negative["expected_sign"]
    assert negative["expected_sign"] != unicode_vector["expected_sign"]
    # we never write the escaped form
    fields = list(json.loads(negative["json_signed"]).items())
    assert przelewy24.p24_json(fields) == unicode_vector["json_signed"] != negative["json_signed"]


def _vector(label_start: str) -> dict:
    return next(v for v in P24["vectors"] if v["label"].startswith(label_start))


def test_p24_named_signing_functions():
    register = json.loads(_vector("register (DERIVED)")["json_signed"])
    assert przelewy24.register_sign(session_id=register["sessionId"], merchant_id=register["merchantId"],
                                    amount=register["amount"], currency=register["currency"],
                                    crc=register["crc"]) == _vector("register (DERIVED)")["expected_sign"]
    polish = json.loads(_vector("register with Polish")["json_signed"])
    assert przelewy24.register_sign(session_id=polish["sessionId"], merchant_id=polish["merchantId"],
                                    amount=polish["amount"], currency=polish["currency"],
                                    crc=polish["crc"]) == _vector("register with Polish")["expected_sign"]
    verify = json.loads(_vector("verify (DERIVED)")["json_signed"])
    assert przelewy24.verify_sign(session_id=verify["sessionId"], order_id=verify["orderId"], amount=verify["amount"],
                                  currency=verify["currency"], crc=verify["crc"]) == _vector("verify (DERIVED)")["expected_sign"]
    assert przelewy24.verify_sign(session_id=verify["sessionId"], order_id=verify["orderId"] + 1, amount=verify["amount"],
                                  currency=verify["currency"], crc=verify["crc"]) != _vector("verify (DERIVED)")["expected_sign"]
    refund = json.loads(_vector("refund notification")["json_signed"])
    crc = refund.pop("crc")
    assert przelewy24.refund_notification_sign(refund, crc) == _vector("refund notification")["expected_sign"]
    assert przelewy24.refund_notification_sign({**refund, "status": 1}, crc) != _vector("refund notification")["expected_sign"]


def test_p24_documented_field_orders_are_ours():
    orders = {name: re.findall(r'"(\w+)":', text) for name, text in P24["doc_field_orders"].items()}
    assert tuple(orders["transaction/register"]) == przelewy24.REGISTER_FIELDS
    assert tuple(orders["transaction/verify"]) == przelewy24.VERIFY_FIELDS
    assert tuple(orders["status notification"]) == przelewy24.NOTIFICATION_FIELDS
    assert tuple(orders["refund notification"]) == przelewy24.REFUND_NOTIFICATION_FIELDS


@pytest.mark.parametrize(("name", "fields"), [
    ("p24_TransactionResult.json", przelewy24.NOTIFICATION_FIELDS),
    ("p24_TransactionVerificationBody.json", przelewy24.VERIFY_FIELDS),
    ("p24_extended_TransactionVerificationBody.json", przelewy24.VERIFY_FIELDS),
])
def test_p24_schema_profiles_sign_the_fields_we_sign(name, fields):
    schema = json.loads(shared_file(name).read_text(encoding="utf-8"))
    description = re.sub(r"<[^>]+>", "", schema["properties"]["sign"]["description"])
    assert tuple(re.findall(r'"(\w+)":', description)) == fields
    # the notification carries every signed field (but the crc); the verify body has what we send
    assert set(fields) - {"crc"} <= set(schema["properties"])


def test_p24_card_notification_profile_is_not_a_status_notification():
    """Card notifications (extN) sign other fields: the plugin does not take them for payments."""
    schema = json.loads(shared_file("p24_CardNotificationExtN.json").read_text(encoding="utf-8"))
    description = re.sub(r"<[^>]+>", "", schema["properties"]["sign"]["description"])
    assert tuple(re.findall(r'"(\w+)":', description)) != przelewy24.NOTIFICATION_FIELDS


def _p24_plugin(**options) -> przelewy24.Przelewy24:
    values = {"merchant_id": 12345, "pos_id": 123, "crc": "bar", "api_key": "klucz-api"}
    values.update(options)
    return przelewy24.Przelewy24(przelewy24.Przelewy24Options(**values))


def _p24_notification_body() -> tuple[dict, bytes]:
    vector = _vector("status notification")
    fields = json.loads(vector["json_signed"])
    fields.pop("crc")
    body = {**fields, "sign": vector["expected_sign"]}
    return body, json.dumps(body).encode()


def test_p24_published_notification_is_accepted():
    _, raw = _p24_notification_body()
    report = _p24_plugin().parse_notification({"Content-Type": "application/json"}, raw, "127.0.0.1")
    assert report.outcome == "confirmed"
    assert report.reference == "0beec7"
    assert report.gateway_txn_id == "123456789"
    assert report.amount == Decimal("15.00")
    assert "bar" not in json.dumps(dict(report.details), default=str)


@pytest.mark.parametrize("change", ["amount", "statement", "sign", "crc"])
def test_p24_changed_notification_is_refused(change):
    body, _ = _p24_notification_body()
    plugin = _p24_plugin()
    if change == "amount":
        body["amount"] += 1
    elif change == "statement":
        body["statement"] = changed(body["statement"])
    elif change == "sign":
        body["sign"] = changed(body["sign"], 0)
    else:
        plugin = _p24_plugin(crc="baz")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification({}, json.dumps(body).encode(), "127.0.0.1")


def test_p24_notification_for_another_shop_is_refused():
    _, raw = _p24_notification_body()
    with pytest.raises(InvalidSignature):
        _p24_plugin(pos_id=124).parse_notification({}, raw, "127.0.0.1")


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"merchantId": 12345}', b"{" * 70000])
def test_p24_unreadable_notification(raw):
    with pytest.raises(MalformedNotification):
        _p24_plugin().parse_notification({}, raw, "127.0.0.1")


def test_p24_source_networks_are_checked_first():
    _, raw = _p24_notification_body()
    plugin = _p24_plugin(allowed_sources=["91.216.191.181/32", "5.252.202.0/24"])
    with pytest.raises(InvalidSignature, match="spoza"):
        plugin.parse_notification({}, raw, "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification({}, b"not even json", "10.0.0.1")
    assert plugin.parse_notification({}, raw, "5.252.202.7").outcome == "confirmed"


# -- Paynow ----------------------------------------------------------------------------------------

PAYNOW = VECTORS["paynow_mbank"]["vectors"]


def test_paynow_notification_vector_signature():
    vector = PAYNOW[0]
    raw = vector["raw_body"].encode()
    assert raw == (DATA / "paynow_notification.json").read_bytes()
    assert paynow.body_signature(vector["signature_key"], raw) == vector["expected_Signature_header"]
    assert paynow.body_signature(vector["signature_key"], flip(raw, 20)) != vector["expected_Signature_header"]


@pytest.mark.parametrize("header_name", ["Signature", "signature"])
def test_paynow_published_notification_passes_the_signature_check(header_name):
    """The SDK's sample notification predates `externalId`: it passes the signature check (which comes
    first) and is then refused as incomplete, not as forged."""
    vector = PAYNOW[0]
    plugin = paynow.Paynow(paynow.PaynowOptions(api_key="klucz", signature_key=vector["signature_key"]))
    raw = (DATA / "paynow_notification.json").read_bytes()
    with pytest.raises(MalformedNotification, match="externalId"):
        plugin.parse_notification({header_name: vector["expected_Signature_header"]}, raw, "127.0.0.1")


@pytest.mark.parametrize("variant", ["negative header", "changed body", "no header"])
def test_paynow_forged_notification_is_refused(variant):
    vector = PAYNOW[0]
    plugin = paynow.Paynow(paynow.PaynowOptions(api_key="klucz", signature_key=vector["signature_key"]))
    raw = (DATA / "paynow_notification.json").read_bytes()
    headers = {"Signature": vector["expected_Signature_header"]}
    if variant == "negative header":
        headers = {"Signature": vector["negative_header"].split()[0]}
    elif variant == "changed body":
        raw = raw.replace(b"CONFIRMED", b"CONFIRMEE")
    else:
        headers = {}
    with pytest.raises(InvalidSignature):
        plugin.parse_notification(headers, raw, "127.0.0.1")


def test_paynow_signature_calculator_vector():
    vector = PAYNOW[1]
    assert paynow.body_signature(vector["signature_key"], vector["raw_body"].encode()) == vector["expected"]
    assert paynow.body_signature(vector["signature_key"], flip(vector["raw_body"].encode(), 3)) != vector["expected"]
    assert paynow.body_signature(changed(vector["signature_key"]), vector["raw_body"].encode()) != vector["expected"]


@pytest.mark.parametrize(("status", "outcome"), [("NEW", "pending"), ("PENDING", "pending"), ("CONFIRMED", "confirmed"),
                                                 ("REJECTED", "failed"), ("ERROR", "failed"), ("ABANDONED", "cancelled"),
                                                 ("EXPIRED", "expired")])
def test_paynow_notification_outcomes(status, outcome):
    key = PAYNOW[0]["signature_key"]
    plugin = paynow.Paynow(paynow.PaynowOptions(api_key="klucz", signature_key=key))
    raw = json.dumps({"paymentId": "NOLV-8F9-08K-WGD", "externalId": "PAY-1", "status": status,
                      "modifiedAt": "2018-12-12T13:24:52"}, indent=2).encode()
    report = plugin.parse_notification({"Signature": paynow.body_signature(key, raw)}, raw, "127.0.0.1")
    assert (report.reference, report.outcome, report.gateway_txn_id) == ("PAY-1", outcome, "NOLV-8F9-08K-WGD")
    if outcome == "confirmed":
        assert report.paid_at is not None and report.paid_at.isoformat() == "2018-12-12T12:24:52+00:00"


def test_paynow_v3_request_signature_structure():
    """API v3 signs a JSON object of the headers, the query parameters and the raw body, written as the
    official SDK writes it (json_encode with JSON_UNESCAPED_SLASHES). No published vector exists for v3:
    this pins the text, and its HMAC is the published SignatureCalculator's HMAC over that text."""
    body = '{"continueUrl":"https://gmina.example/powrót"}'
    text = paynow.signed_payload_v3("api-key", "idem-1", body)
    assert text == ('{"headers":{"Api-Key":"api-key","Idempotency-Key":"idem-1"},"parameters":{},'
                    '"body":"{\\"continueUrl\\":\\"https://gmina.example/powr\\u00f3t\\"}"}')
    assert paynow.signed_payload_v3("k", "i", "", {"amount": "100", "x": ["a", "b"]}) == \
        '{"headers":{"Api-Key":"k","Idempotency-Key":"i"},"parameters":{"amount":["100"],"x":["a","b"]},"body":""}'
    key = PAYNOW[1]["signature_key"]
    expected = base64.b64encode(__import__("hmac").new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()
    assert paynow.request_signature_v3(key, "api-key", "idem-1", body) == expected
    assert paynow.request_signature_v3(key, "api-key", "idem-2", body) != expected


# -- PayU ------------------------------------------------------------------------------------------

PAYU = VECTORS["payu"]["vectors"]


def test_payu_notification_vector():
    vector = PAYU[0]
    payu.verify_signature_header(vector["raw_body"].encode(), vector["header"], vector["second_key"])


@pytest.mark.parametrize("variant", ["TEST_FAIL", "no signature", "no algorithm", "changed signature", "other key", "empty"])
def test_payu_notification_vector_negative(variant):
    vector = PAYU[0]
    body, header, key = vector["raw_body"].encode(), vector["header"], vector["second_key"]
    if variant == "TEST_FAIL":
        body = b"TEST_FAIL"
    elif variant == "no signature":
        header = re.sub(r"signature=[0-9a-f]+;?", "", header)
    elif variant == "no algorithm":
        header = re.sub(r"algorithm=[^;]+;?", "", header)
    elif variant == "changed signature":
        header = changed(header)
    elif variant == "other key":
        key = changed(key)
    else:
        header = ""
    with pytest.raises(InvalidSignature):
        payu.verify_signature_header(body, header, key)


@pytest.mark.parametrize("vector", PAYU[1:], ids=[v["label"] for v in PAYU[1:]])
def test_payu_form_signature_vectors(vector):
    algorithm = payu.parse_signature_header(vector["expected"])["algorithm"]
    assert payu.form_signature(vector["data"], vector["signature_key"], vector["pos_id"], algorithm) == vector["expected"]
    assert payu.form_signature({"test": "OpenPayUDatb"}, vector["signature_key"], vector["pos_id"], algorithm) != vector["expected"]


def _payu_plugin() -> payu.PayU:
    return payu.PayU(payu.PayUOptions(pos_id="145227", second_key=PAYU[0]["second_key"], client_id="145227",
                                      client_secret="sekret-klienta"))


def _payu_notification(status: str = "COMPLETED") -> bytes:
    return json.dumps({"order": {"orderId": "LDLW5N7MF4140324GUEST000P01", "extOrderId": "PAY-1",
                                 "orderCreateDate": "2026-03-02T12:58:14.828+01:00", "merchantPosId": "145227",
                                 "currencyCode": "PLN", "totalAmount": "21000", "status": status},
                       "localReceiptDateTime": "2026-03-02T13:00:00.000+01:00"}).encode()


@pytest.mark.parametrize("algorithm", ["MD5", "SHA256", "SHA-256"])
def test_payu_notification_signed_over_raw_body(algorithm):
    raw = _payu_notification()
    name = {"MD5": "md5"}.get(algorithm, "sha256")
    signature = hashlib.new(name, raw + PAYU[0]["second_key"].encode()).hexdigest()
    header = f"sender=checkout;signature={signature};algorithm={algorithm};content=DOCUMENT"
    report = _payu_plugin().parse_notification({"OpenPayu-Signature": header}, raw, "127.0.0.1")
    assert (report.reference, report.outcome, report.gateway_txn_id, report.amount) == \
        ("PAY-1", "confirmed", "LDLW5N7MF4140324GUEST000P01", Decimal("210.00"))
    assert report.paid_at is not None and report.paid_at.isoformat() == "2026-03-02T12:00:00+00:00"
    # the same JSON written with other spacing is other bytes: refused
    respaced = json.dumps(json.loads(raw), indent=1).encode()
    with pytest.raises(InvalidSignature):
        _payu_plugin().parse_notification({"OpenPayu-Signature": header}, respaced, "127.0.0.1")
    with pytest.raises(InvalidSignature):
        _payu_plugin().parse_notification({"OpenPayu-Signature": header}, flip(raw, 40), "127.0.0.1")


@pytest.mark.parametrize(("status", "outcome"), [("COMPLETED", "confirmed"), ("CANCELED", "cancelled"),
                                                 ("PENDING", "pending"), ("WAITING_FOR_CONFIRMATION", "pending")])
def test_payu_notification_outcomes(status, outcome):
    raw = _payu_notification(status)
    header = f"sender=checkout;signature={hashlib.md5(raw + PAYU[0]['second_key'].encode()).hexdigest()};algorithm=MD5"
    assert _payu_plugin().parse_notification({"openpayu-signature": header}, raw, "127.0.0.1").outcome == outcome


def _payu_refund_notification(status: str = "FINALIZED", **order) -> bytes:
    """The shape of PayU's refund notification (a refund ordered in PayU's panel)."""
    return json.dumps({**{"orderId": "DHRGFXKV5B201103GUEST000P01", "extOrderId": "PAY-1"}, **order,
                       "refund": {"refundId": "5000024357", "amount": "15516", "currencyCode": "PLN", "status": status,
                                  "statusDateTime": "2026-03-02T23:30:40.407+01:00", "reason": "refund",
                                  "reasonDescription": "Zwrot nadpłaty", "refundDate": "2026-03-02T19:43:36.974+01:00"}}
                      ).encode()


@pytest.mark.parametrize(("status", "outcome"), [("PENDING", "pending"), ("FINALIZED", "completed"),
                                                 ("CANCELED", "cancelled")])
def test_payu_refund_notification_outcomes(status, outcome):
    raw = _payu_refund_notification(status)
    header = f"sender=checkout;signature={hashlib.md5(raw + PAYU[0]['second_key'].encode()).hexdigest()};algorithm=MD5"
    report = _payu_plugin().parse_notification({"OpenPayu-Signature": header}, raw, "127.0.0.1")
    assert (report.reference, report.gateway_txn_id, report.refund_id, report.outcome, report.amount) == \
        ("PAY-1", "DHRGFXKV5B201103GUEST000P01", "5000024357", outcome, Decimal("155.16"))
    if outcome == "completed":
        # FINALIZED at 23:30 Warsaw time on 2 March: 22:30 UTC, still 2 March in Warsaw
        assert report.refunded_at.isoformat() == "2026-03-02T22:30:40.407000+00:00"
    else:
        assert report.refunded_at is None
    with pytest.raises(InvalidSignature):
        _payu_plugin().parse_notification({"OpenPayu-Signature": header}, raw.replace(b"15516", b"15517"), "127.0.0.1")


def test_payu_refund_notification_without_our_reference_names_the_order():
    data = json.loads(_payu_refund_notification())
    del data["extOrderId"]
    raw = json.dumps(data).encode()
    header = f"sender=checkout;signature={hashlib.md5(raw + PAYU[0]['second_key'].encode()).hexdigest()};algorithm=MD5"
    report = _payu_plugin().parse_notification({"OpenPayu-Signature": header}, raw, "127.0.0.1")
    assert (report.reference, report.gateway_txn_id) == ("", "DHRGFXKV5B201103GUEST000P01")


# -- Autopay ---------------------------------------------------------------------------------------

AUTOPAY_KEY = "QCBm3N0oFjzQAWsTIVN8mPLK12TW6HU6InSfjvnF"


def _autopay_vectors() -> list[dict]:
    data = json.loads(shared_file("payment_signature_vectors.json").read_text(encoding="utf-8"))
    return data["autopay_bluemedia"]["vectors"]


def _autopay_plugin(key: str = AUTOPAY_KEY, service_id: str = "123456") -> autopay.Autopay:
    return autopay.Autopay(autopay.AutopayOptions(service_id=service_id, shared_key=key))


def _itn_form(xml: bytes) -> bytes:
    return b"transactions=" + quote(base64.b64encode(xml).decode()).encode()


def test_autopay_hash_vectors():
    for vector in _autopay_vectors()[:2]:
        assert autopay.hash_values(vector["values_in_order"], vector["shared_key"]) == vector["expected_hash"]
        assert hashlib.sha256(vector["string_hashed"].encode()).hexdigest() == vector["expected_hash"]
        assert autopay.hash_values(vector["values_in_order"][:-1] + [changed(vector["values_in_order"][-1])],
                                   vector["shared_key"]) != vector["expected_hash"]


def test_autopay_itn_vector_is_accepted():
    xml = shared_file("autopay_ItnInRequest.xml").read_bytes()
    plugin = _autopay_plugin()
    root = plugin.check_itn_xml(xml)
    assert autopay.document_values(root) == _autopay_vectors()[0]["values_in_order"]
    report = plugin.parse_notification({"Content-Type": "application/x-www-form-urlencoded"}, _itn_form(xml), "127.0.0.1")
    assert (report.reference, report.outcome, report.gateway_txn_id, report.amount, report.currency) == \
        ("123", "confirmed", "102686", Decimal("500.00"), "PLN")
    assert report.paid_at is not None and report.paid_at.isoformat() == "2020-06-21T15:12:38+00:00"
    assert AUTOPAY_KEY not in json.dumps(dict(report.details))


def test_autopay_itn_with_unescaped_plus_is_read():
    """A sender that forgets to escape "+" in the form: the base64 still decodes."""
    xml = shared_file("autopay_ItnInRequest.xml").read_bytes()
    raw = b"transactions=" + base64.b64encode(xml)
    assert _autopay_plugin().parse_notification({}, raw, "127.0.0.1").reference == "123"


def test_autopay_wrong_hash_vector_is_refused():
    xml = shared_file("autopay_ItnInWrongHashRequest.xml").read_bytes()
    with pytest.raises(InvalidSignature):
        _autopay_plugin().parse_notification({}, _itn_form(xml), "127.0.0.1")


@pytest.mark.parametrize("variant", ["amount", "status", "other key", "other service"])
def test_autopay_changed_itn_is_refused(variant):
    xml = shared_file("autopay_ItnInRequest.xml").read_bytes()
    plugin = _autopay_plugin()
    if variant == "amount":
        xml = xml.replace(b"500.00", b"500.01")
    elif variant == "status":
        xml = xml.replace(b"<paymentStatus>SUCCESS", b"<paymentStatus>FAILURE")
    elif variant == "other key":
        plugin = _autopay_plugin(key=changed(AUTOPAY_KEY))
    else:
        plugin = _autopay_plugin(service_id="123457")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification({}, _itn_form(xml), "127.0.0.1")


def test_autopay_confirmation_matches_the_vector():
    expected = etree.fromstring(shared_file("autopay_ItnResponse.xml").read_bytes())
    xml = shared_file("autopay_ItnInRequest.xml").read_bytes()
    plugin = _autopay_plugin()
    report = plugin.parse_notification({}, _itn_form(xml), "127.0.0.1")
    answer = plugin.acknowledge(report, accepted=True)
    assert answer.status == 200 and answer.content_type.startswith("application/xml")
    ours = etree.fromstring(answer.body)

    def leaves(root):
        return [(el.tag, (el.text or "").strip()) for el in root.iter() if not len(el)]

    assert leaves(ours) == leaves(expected)
    assert ours.findtext("hash") == _autopay_vectors()[1]["expected_hash"]
    refused = etree.fromstring(plugin.acknowledge(report, accepted=False).body)
    assert refused.findtext("transactionsConfirmations/transactionConfirmed/confirmation") == "NOTCONFIRMED"
    assert refused.findtext("hash") == autopay.hash_values(["123456", "123", "NOTCONFIRMED"], AUTOPAY_KEY)
    unknown = plugin.acknowledge(None, accepted=True)
    assert unknown.status == 200 and b"<" not in unknown.body


@pytest.mark.parametrize("xml", [
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><transactionList>&x;</transactionList>',
    b'<?xml version="1.0"?><!DOCTYPE transactionList><transactionList/>',
    b"<transactionList><unclosed></transactionList>",
    b"<confirmationList/>",
])
def test_autopay_hostile_or_broken_xml_is_refused(xml):
    with pytest.raises(MalformedNotification):
        _autopay_plugin().parse_notification({}, _itn_form(xml), "127.0.0.1")


@pytest.mark.parametrize("raw", [b"", b"transactions=%%%", b"other=1", b"transactions=bm90IHhtbA=="])
def test_autopay_unreadable_form(raw):
    with pytest.raises(MalformedNotification):
        _autopay_plugin().parse_notification({}, raw, "127.0.0.1")


def test_autopay_start_hash_in_documented_order():
    plugin = _autopay_plugin()
    params = plugin.start_parameters(request(reference="PAY-7", amount=Decimal(12), description="Opłata (śmieci) #3"))
    assert [name for name, _ in params] == ["ServiceID", "OrderID", "Amount", "Description", "Currency", "CustomerEmail", "Hash"]
    values = dict(params)
    assert values["Amount"] == "12.00" and values["Description"] == "Opłata śmieci 3"
    signed = "|".join(v for k, v in params if k != "Hash") + "|" + AUTOPAY_KEY
    assert values["Hash"] == hashlib.sha256(signed.encode()).hexdigest()
    url = plugin.register(request(reference="PAY-7", amount=Decimal(12))).redirect_url
    assert url.startswith("https://pay.autopay.eu/payment?ServiceID=123456&OrderID=PAY-7&Amount=12.00&")


# -- secrets stay out of messages and reports ------------------------------------------------------

def test_options_do_not_show_secrets():
    plugin = _p24_plugin(crc="tajny-crc-123", api_key="tajny-klucz-456")
    assert "tajny" not in repr(plugin.options) and "tajny" not in str(plugin.options.model_dump())


@pytest.mark.parametrize("url", ["http://secure.przelewy24.pl", "ftp://x", "https://x.pl/?a=1", "nie-adres"])
def test_base_url_must_be_https(url):
    with pytest.raises(ValueError):
        przelewy24.Przelewy24Options(merchant_id=1, crc="c", api_key="k", base_url=url)


def _itn_of(service_id: str, transactions: list[list[tuple[str, str]]], key: str = AUTOPAY_KEY) -> bytes:
    """An ITN of several transactions, hashed here as the documentation orders it: serviceID, then
    each transaction's values in document order (independently of the plugin's code)."""
    values = [service_id] + [value for fields in transactions for _, value in fields]
    digest = hashlib.sha256("|".join(values + [key]).encode()).hexdigest()
    inner = "".join("<transaction>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields) + "</transaction>"
                    for fields in transactions)
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><transactionList><serviceID>{service_id}</serviceID>"
            f"<transactions>{inner}</transactions><hash>{digest}</hash></transactionList>").encode()


def _transaction(order_id: str, remote_id: str, status: str = "SUCCESS", details: str = "ACCEPTED") -> list[tuple[str, str]]:
    return [("orderID", order_id), ("remoteID", remote_id), ("amount", "500.00"), ("currency", "PLN"),
            ("gatewayID", "106"), ("paymentDate", "20200621171238"), ("paymentStatus", status),
            ("paymentStatusDetails", details)]


def test_autopay_itn_of_several_transactions():
    xml = _itn_of("123456", [_transaction("123", "102686"), _transaction("124", "102687", "FAILURE", "REJECTED_BY_USER"),
                             _transaction("123", "102688")])
    plugin = _autopay_plugin()
    reports = plugin.parse_notification_reports({}, _itn_form(xml), "127.0.0.1")
    assert [(r.reference, r.gateway_txn_id, r.outcome) for r in reports] == [
        ("123", "102686", "confirmed"), ("124", "102687", "cancelled"), ("123", "102688", "confirmed")]
    with pytest.raises(MalformedNotification):
        plugin.parse_notification({}, _itn_form(xml), "127.0.0.1")
    with pytest.raises(InvalidSignature):
        plugin.parse_notification_reports({}, _itn_form(xml.replace(b"102687", b"102689")), "127.0.0.1")
    empty = _itn_of("123456", [])
    with pytest.raises(MalformedNotification):
        plugin.parse_notification_reports({}, _itn_form(empty), "127.0.0.1")


def test_autopay_confirmation_of_several_transactions():
    """One transactionConfirmed per transaction, in the ITN's order; the hash takes serviceID, then each
    orderID and its confirmation (as Autopay's own WooCommerce plugin answers)."""
    plugin = _autopay_plugin()
    reports = plugin.parse_notification_reports({}, _itn_form(_itn_of("123456", [
        _transaction("123", "102686"), _transaction("124", "102687")])), "127.0.0.1")
    answer = plugin.acknowledge_reports([(reports[0], True), (reports[1], False)])
    root = etree.fromstring(answer.body)
    assert [(c.findtext("orderID"), c.findtext("confirmation"))
            for c in root.findall("transactionsConfirmations/transactionConfirmed")] == [
        ("123", "CONFIRMED"), ("124", "NOTCONFIRMED")]
    expected = hashlib.sha256("|".join(["123456", "123", "CONFIRMED", "124", "NOTCONFIRMED", AUTOPAY_KEY]).encode())
    assert root.findtext("hash") == expected.hexdigest()
    # one transaction: the same answer as the SDK's vector
    single = etree.fromstring(plugin.acknowledge_reports([(reports[0], True)]).body)
    assert single.findtext("hash") == autopay.hash_values(["123456", "123", "CONFIRMED"], AUTOPAY_KEY)
