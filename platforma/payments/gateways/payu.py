"""PayU (REST API v2.1): OAuth client credentials, orders, notifications signed in the
`OpenPayu-Signature` header.

The notification's signature is hex(ALGORITHM(raw body + second key)) over the bytes exactly as they
arrived: the body is never re-serialised before the check. The OAuth token is kept until shortly before
it expires and shared by every thread that uses this plugin instance.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import ClassVar
from urllib.parse import quote, quote_plus

from pydantic import (
    BaseModel,
    Field,
)

from platforma.core.registry import CheckResult, registry
from platforma.payments.gateways._http import GatewayHttp
from platforma.payments.gateways._signing import (
    HttpGatewayOptions,
    Key,
    bounded,
    check_source,
    from_grosze,
    header,
    local_to_utc,
    parse_grosze,
    same_secret_text,
    to_grosze,
)
from platforma.payments.gateways.base import (
    GatewayError,
    GatewayRejected,
    GatewayReport,
    InvalidSignature,
    MalformedNotification,
    PaymentGateway,
    PaymentRequest,
    RefundReport,
    Registration,
)

NAME = "PayU"
TOKEN_PATH = "/pl/standard/user/oauth/authorize"
ORDERS_PATH = "/api/v2_1/orders"
#: a token is renewed this many seconds before PayU says it expires
TOKEN_MARGIN_SECONDS = 60

#: tokens shared by every plugin instance of the process with the same credentials (the core may
#: make an instance per call): key -> (token, monotonic time it stops being used)
_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
#: one lock per key, so that only one thread fetches a token for given credentials
_TOKEN_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_TOKEN_LOCKS_GUARD = threading.Lock()

#: names PayU writes in the header's algorithm= part, and the hash each means
ALGORITHMS = {
    "MD5": "md5",
    "SHA": "sha1", "SHA1": "sha1", "SHA-1": "sha1",
    "SHA256": "sha256", "SHA-256": "sha256",
    "SHA384": "sha384", "SHA-384": "sha384",
    "SHA512": "sha512", "SHA-512": "sha512",
}

#: a refund's status in PayU's notification (refunds are ordered in PayU's panel)
_REFUND_OUTCOMES = {"PENDING": "pending", "FINALIZED": "completed", "CANCELED": "cancelled"}

_ORDER_OUTCOMES = {
    "NEW": "pending",
    "PENDING": "pending",
    "WAITING_FOR_CONFIRMATION": "pending",
    "COMPLETED": "confirmed",
    "CANCELED": "cancelled",
}


# -- signatures (pure functions, tested against the published vectors) ----------------------------

def parse_signature_header(value: str | None) -> dict[str, str]:
    """`sender=checkout;signature=...;algorithm=MD5;content=DOCUMENT` as a dict."""
    parts: dict[str, str] = {}
    for item in (value or "").split(";"):
        name, sep, content = item.strip().partition("=")
        if sep:
            parts[name.strip().lower()] = content.strip()
    return parts


def body_signature(body: bytes, second_key: str, algorithm: str) -> str:
    """hex(ALGORITHM(raw body + second key)); `algorithm` as PayU names it (MD5, SHA-256, ...)."""
    name = ALGORITHMS.get(algorithm.upper())
    if name is None:
        raise InvalidSignature(f"PayU: nieobsługiwany algorytm podpisu {algorithm[:20]!r}")
    return hashlib.new(name, body + second_key.encode("utf-8")).hexdigest()


def verify_signature_header(body: bytes, header_value: str | None, second_key: str) -> None:
    """Raise InvalidSignature unless the header signs these exact bytes with the second key."""
    parts = parse_signature_header(header_value)
    signature, algorithm = parts.get("signature"), parts.get("algorithm")
    if not signature or not algorithm:
        raise InvalidSignature("PayU: brak podpisu (OpenPayu-Signature) w powiadomieniu")
    if not same_secret_text(body_signature(body, second_key, algorithm), signature.lower()):
        raise InvalidSignature("PayU: niezgodny podpis powiadomienia")


def _php_urlencode(value: str) -> str:
    # PHP's urlencode(): spaces as "+", everything but letters, digits and "-_." escaped
    return quote_plus(value, safe="").replace("~", "%7E")


def form_signature(data: Mapping[str, str], signature_key: str, pos_id: str, algorithm: str = "SHA-256") -> str:
    """The signature of PayU's hosted payment form (classic integration): fields sorted by name as
    `name=urlencoded(value)&`, then the key, hashed. Kept for the form integration and its vectors."""
    signed = "".join(f"{name}={_php_urlencode(str(data[name]))}&" for name in sorted(data)) + signature_key
    name = ALGORITHMS.get(algorithm.upper())
    if name is None:
        raise ValueError(f"nieobsługiwany algorytm {algorithm!r}")
    digest = hashlib.new(name, signed.encode("utf-8")).hexdigest()
    return f"sender={pos_id};algorithm={algorithm};signature={digest}"


# -- the plugin ------------------------------------------------------------------------------------

class PayUOptions(HttpGatewayOptions):
    #: point of sale id (pos_id / merchantPosId)
    pos_id: str = Field(pattern=r"^\d{1,12}$")
    #: "Drugi klucz (MD5)": the notifications' signature key
    second_key: Key
    #: OAuth client_id (usually equal to pos_id)
    client_id: str = Field(min_length=1, max_length=64)
    client_secret: Key
    base_url: str = "https://secure.payu.com"


@registry.register
class PayU(PaymentGateway):
    id: ClassVar[str] = "payu"
    name: ClassVar[str] = "PayU"
    Options: ClassVar[type[BaseModel]] = PayUOptions
    options: PayUOptions

    def __init__(self, options: PayUOptions):
        super().__init__(options)
        self.http = GatewayHttp(NAME, options.base_url, options.timeout_seconds, secrets=(
            options.second_key.get_secret_value(), options.client_secret.get_secret_value()))
        secret_digest = hashlib.sha256(options.client_secret.get_secret_value().encode("utf-8")).hexdigest()
        self._token_key = (options.base_url, options.client_id, secret_digest)
        with _TOKEN_LOCKS_GUARD:
            self._token_lock = _TOKEN_LOCKS.setdefault(self._token_key, threading.Lock())

    # -- OAuth --

    def access_token(self) -> str:
        """A valid token, fetched once and reused by every thread until shortly before it expires."""
        with self._token_lock:
            now = time.monotonic()
            cached = _TOKENS.get(self._token_key)
            if cached is not None and now < cached[1]:
                return cached[0]
            response = self.http.request("POST", TOKEN_PATH, data={
                "grant_type": "client_credentials",
                "client_id": self.options.client_id,
                "client_secret": self.options.client_secret.get_secret_value(),
            })
            data = self.http.json_of(response)
            token, expires_in = data.get("access_token"), data.get("expires_in")
            if not isinstance(token, str) or not token:
                raise GatewayRejected("PayU: odpowiedź OAuth nie zawiera tokenu")
            lifetime = expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else 0
            _TOKENS[self._token_key] = (token, now + max(lifetime - TOKEN_MARGIN_SECONDS, 0))
            return token

    def _forget_token(self, token: str) -> None:
        with self._token_lock:
            cached = _TOKENS.get(self._token_key)
            if cached is not None and cached[0] == token:
                del _TOKENS[self._token_key]

    def _authorised(self, method: str, path: str, *, expected=(200,), **kwargs):
        """A call with the bearer token; a token PayU no longer accepts is fetched anew once."""
        for attempt in (1, 2):
            token = self.access_token()
            try:
                return self.http.request(method, path, expected=expected,
                                         headers={"Authorization": f"Bearer {token}"}, **kwargs)
            except GatewayRejected as exc:
                if attempt == 2 or getattr(exc, "http_status", None) != 401:
                    raise
                self._forget_token(token)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the interface --

    def check_config(self) -> CheckResult:
        try:
            with self._token_lock:
                _TOKENS.pop(self._token_key, None)
            self.access_token()
        except GatewayRejected as exc:
            return CheckResult(False, f"PayU odrzuciło dane OAuth (client_id, client_secret): {exc}")
        except GatewayError as exc:
            return CheckResult(False, f"Nie udało się sprawdzić połączenia z PayU: {exc}")
        return CheckResult(True, f"PayU: połączenie działa, token OAuth dla punktu {self.options.pos_id} otrzymany")

    def register(self, request: PaymentRequest) -> Registration:
        grosze = str(to_grosze(request.amount))
        body = {
            "notifyUrl": request.notify_url,
            "continueUrl": request.return_url,
            "customerIp": request.customer_ip,
            "merchantPosId": self.options.pos_id,
            "description": request.description[:4000],
            "currencyCode": request.currency,
            "totalAmount": grosze,
            "extOrderId": request.reference,
            "buyer": {"email": request.email, "language": request.language},
            "products": [{"name": request.description[:255], "unitPrice": grosze, "quantity": "1"}],
        }
        # PayU answers 302 with the payer's address in the JSON (and in Location): not followed
        response = self._authorised("POST", ORDERS_PATH, json=body, expected=(200, 201, 302))
        data = self.http.json_of(response)
        status = data.get("status")
        if not isinstance(status, dict) or status.get("statusCode") != "SUCCESS":
            code = status.get("statusCode") if isinstance(status, dict) else None
            raise GatewayRejected(f"PayU: zamówienie nie zostało utworzone (statusCode={code})")
        redirect, order_id = data.get("redirectUri"), data.get("orderId")
        if not isinstance(redirect, str) or not redirect.startswith(("https://", "http://")) or not isinstance(order_id, str):
            raise GatewayRejected("PayU: odpowiedź nie zawiera adresu płatności lub numeru zamówienia")
        return Registration(redirect_url=redirect, gateway_txn_id=order_id)

    def parse_notification(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> GatewayReport | RefundReport:
        check_source(remote_addr, self.options.allowed_sources, NAME)
        bounded(body, NAME)
        signature = header(headers, "OpenPayu-Signature") or header(headers, "X-OpenPayU-Signature")
        verify_signature_header(body, signature, self.options.second_key.get_secret_value())
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedNotification("PayU: powiadomienie nie jest poprawnym JSON-em") from None
        if isinstance(data, dict) and "refund" in data:
            # a refund ordered in PayU's panel: signed like an order's notification
            return _refund_report(data)
        order = data.get("order") if isinstance(data, dict) else None
        if not isinstance(order, dict):
            raise MalformedNotification("PayU: powiadomienie nie dotyczy zamówienia (brak pola order)")
        report = _order_report(order)
        received = _moment(data.get("localReceiptDateTime"))
        if report.outcome == "confirmed" and received is not None:
            report = replace(report, paid_at=received)
        if order.get("merchantPosId") not in (None, self.options.pos_id):
            raise InvalidSignature("PayU: powiadomienie dotyczy innego punktu płatności")
        return report

    def status(self, reference: str, gateway_txn_id: str | None) -> GatewayReport | None:
        if not gateway_txn_id:
            return None  # PayU finds an order by its own id only
        response = self._authorised("GET", f"{ORDERS_PATH}/{quote(gateway_txn_id, safe='')}")
        data = self.http.json_of(response)
        orders = data.get("orders")
        if not isinstance(orders, list) or not orders or not isinstance(orders[0], dict):
            raise GatewayRejected("PayU: odpowiedź nie zawiera zamówienia")
        try:
            report = _order_report(orders[0])
        except MalformedNotification as exc:
            raise GatewayRejected(str(exc)) from None
        if report.reference != reference:
            raise GatewayRejected("PayU: zamówienie należy do innej płatności (extOrderId się nie zgadza)")
        return report


def _order_report(order: Mapping[str, object]) -> GatewayReport:
    order_id, reference, status = order.get("orderId"), order.get("extOrderId"), order.get("status")
    if not isinstance(order_id, str) or not order_id or not isinstance(reference, str) or not reference:
        raise MalformedNotification("PayU: brak orderId lub extOrderId w zamówieniu")
    outcome = _ORDER_OUTCOMES.get(status) if isinstance(status, str) else None
    if outcome is None:
        raise MalformedNotification(f"PayU: nieznany status zamówienia {str(status)[:30]!r}")
    currency = order.get("currencyCode")
    details = {k: order[k] for k in ("orderId", "extOrderId", "orderCreateDate", "merchantPosId", "currencyCode",
                                      "totalAmount", "status") if isinstance(order.get(k), (str, int))}
    pay_method = order.get("payMethod")
    if isinstance(pay_method, dict) and isinstance(pay_method.get("type"), str):
        details["payMethod"] = pay_method["type"]
    return GatewayReport(
        reference=reference,
        outcome=outcome,  # type: ignore[arg-type]
        gateway_txn_id=order_id,
        amount=from_grosze(parse_grosze(order.get("totalAmount"), "totalAmount")),
        currency=currency if isinstance(currency, str) else "PLN",
        details=details,
    )


def _text(value: object, limit: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value[:limit] if isinstance(value, str) and value else None


def _moment(value: object) -> datetime | None:
    """PayU's "2014-08-20T19:43:40.407+02:00" as UTC (a time without a zone is Warsaw's)."""
    if not isinstance(value, str):
        return None
    try:
        return local_to_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _refund_report(data: Mapping[str, object]) -> RefundReport:
    """{"orderId", "extOrderId", "refund": {"refundId", "amount", "currencyCode", "status",
    "statusDateTime", "reason", "reasonDescription", "refundDate"}}."""
    refund = data.get("refund")
    if not isinstance(refund, dict):
        raise MalformedNotification("PayU: pole refund powiadomienia nie jest obiektem")
    order_id, refund_id = _text(data.get("orderId"), 100), _text(refund.get("refundId"), 100)
    if not order_id or not refund_id:
        raise MalformedNotification("PayU: brak orderId lub refundId w powiadomieniu o zwrocie")
    status = refund.get("status")
    outcome = _REFUND_OUTCOMES.get(status) if isinstance(status, str) else None
    if outcome is None:
        raise MalformedNotification(f"PayU: nieznany status zwrotu {str(status)[:30]!r}")
    if "amount" not in refund:
        raise MalformedNotification("PayU: powiadomienie o zwrocie nie podaje kwoty (refund.amount)")
    grosze = parse_grosze(refund.get("amount"), "refund.amount")
    if grosze <= 0:
        raise MalformedNotification("PayU: kwota zwrotu musi być dodatnia")
    currency = refund.get("currencyCode")
    refunded_at = None
    if outcome == "completed":
        # the money left when the refund became FINALIZED
        refunded_at = _moment(refund.get("statusDateTime")) or _moment(refund.get("refundDate"))
    details: dict[str, object] = {"orderId": order_id, "refundId": refund_id}
    for key, limit in (("extOrderId", 100),):
        if (value := _text(data.get(key), limit)) is not None:
            details[key] = value
    for key, limit in (("amount", 20), ("currencyCode", 3), ("status", 20), ("reason", 100),
                       ("reasonDescription", 200), ("refundDate", 40), ("statusDateTime", 40)):
        if (value := _text(refund.get(key), limit)) is not None:
            details[key] = value
    return RefundReport(
        reference=_text(data.get("extOrderId"), 32) or "",
        gateway_txn_id=order_id,
        refund_id=refund_id,
        outcome=outcome,  # type: ignore[arg-type]
        amount=from_grosze(grosze),
        currency=currency if isinstance(currency, str) else "PLN",
        refunded_at=refunded_at,
        details=details,
    )
