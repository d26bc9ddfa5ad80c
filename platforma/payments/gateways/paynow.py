"""Paynow by mBank (API v3): payments with an idempotency key, notifications signed with HMAC-SHA256.

Two signatures, both base64(HMAC-SHA256(signature key, text)):
- our requests, API v3: the text is the JSON object
  {"headers":{"Api-Key":..,"Idempotency-Key":..},"parameters":{..},"body":"<raw body>"} written like PHP's
  `json_encode(..., JSON_UNESCAPED_SLASHES)` (no spaces, non-ASCII as \\uXXXX, slashes as they are), with
  each query parameter as a list of values and an empty object when there are none; a GET signs "";
- Paynow's notifications: the text is the raw request body, exactly as received (the same HMAC the
  v2 API used for requests; the published vectors are of this kind).
The notification address is set in the Paynow panel, not per payment: `PaymentRequest.notify_url` is
not sent.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar
from urllib.parse import quote

from pydantic import (
    BaseModel,
)

from platforma.core.registry import CheckResult, registry
from platforma.payments.gateways._http import GatewayHttp
from platforma.payments.gateways._signing import (
    HttpGatewayOptions,
    Key,
    bounded,
    check_source,
    header,
    local_to_utc,
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
    Registration,
)

NAME = "Paynow"
PAYMENTS_PATH = "/v3/payments"

STATUS_OUTCOMES = {
    "NEW": "pending",
    "PENDING": "pending",
    "CONFIRMED": "confirmed",
    "REJECTED": "failed",
    "ERROR": "failed",
    "ABANDONED": "cancelled",
    "EXPIRED": "expired",
}


# -- signatures (pure functions, tested against the published vectors) ----------------------------

def body_signature(signature_key: str, raw_body: bytes) -> str:
    """base64(HMAC-SHA256(key, raw body)): the notifications' `Signature` header."""
    return base64.b64encode(hmac.new(signature_key.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")


def signed_payload_v3(api_key: str, idempotency_key: str, body: str = "",
                      parameters: Mapping[str, str | Sequence[str]] | None = None) -> str:
    """The text an API v3 request signature covers."""
    params = {name: list(value) if isinstance(value, (list, tuple)) else [value] for name, value in (parameters or {}).items()}
    payload = {"headers": {"Api-Key": api_key, "Idempotency-Key": idempotency_key}, "parameters": params, "body": body}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def request_signature_v3(signature_key: str, api_key: str, idempotency_key: str, body: str = "",
                         parameters: Mapping[str, str | Sequence[str]] | None = None) -> str:
    text = signed_payload_v3(api_key, idempotency_key, body, parameters)
    return body_signature(signature_key, text.encode("utf-8"))


# -- the plugin ------------------------------------------------------------------------------------

class PaynowOptions(HttpGatewayOptions):
    #: "Klucz dostępu do API" from the panel
    api_key: Key
    #: "Klucz obliczania podpisu" from the panel
    signature_key: Key
    base_url: str = "https://api.paynow.pl"


@registry.register
class Paynow(PaymentGateway):
    id: ClassVar[str] = "paynow"
    name: ClassVar[str] = "Paynow (mBank)"
    Options: ClassVar[type[BaseModel]] = PaynowOptions
    options: PaynowOptions

    def __init__(self, options: PaynowOptions):
        super().__init__(options)
        self.http = GatewayHttp(NAME, options.base_url, options.timeout_seconds, secrets=(
            options.api_key.get_secret_value(), options.signature_key.get_secret_value()))

    def _headers(self, idempotency_key: str, body: str = "") -> dict[str, str]:
        api_key = self.options.api_key.get_secret_value()
        return {
            "Api-Key": api_key,
            "Idempotency-Key": idempotency_key,
            "Signature": request_signature_v3(self.options.signature_key.get_secret_value(), api_key, idempotency_key, body),
        }

    def check_config(self) -> CheckResult:
        # the list of payment methods is the cheapest signed call: it proves both keys
        try:
            self.http.request("GET", f"{PAYMENTS_PATH}/paymentmethods", headers=self._headers("check-config"))
        except GatewayRejected as exc:
            return CheckResult(False, f"Paynow odrzuciło klucze (klucz API lub klucz podpisu): {exc}")
        except GatewayError as exc:
            return CheckResult(False, f"Nie udało się sprawdzić połączenia z Paynow: {exc}")
        return CheckResult(True, "Paynow: połączenie działa, klucze poprawne; adres powiadomień ustaw w panelu Paynow")

    def register(self, request: PaymentRequest) -> Registration:
        payment = {
            "amount": to_grosze(request.amount),
            "currency": request.currency,
            "externalId": request.reference,
            "description": request.description[:255],
            "continueUrl": request.return_url,
            "buyer": {"email": request.email, "locale": "pl-PL" if request.language == "pl" else "en-GB"},
        }
        # the signed text and the bytes sent must be the very same string
        body = json.dumps(payment, separators=(",", ":"), ensure_ascii=False)
        key = (request.idempotency_key or request.reference)[:45]
        headers = {**self._headers(key, body), "Content-Type": "application/json"}
        response = self.http.request("POST", PAYMENTS_PATH, content=body.encode("utf-8"), headers=headers,
                                     expected=(200, 201))
        data = self.http.json_of(response)
        redirect, payment_id = data.get("redirectUrl"), data.get("paymentId")
        if not isinstance(payment_id, str) or not payment_id:
            raise GatewayRejected("Paynow: odpowiedź nie zawiera identyfikatora płatności")
        if not isinstance(redirect, str) or not redirect.startswith(("https://", "http://")):
            raise GatewayRejected("Paynow: odpowiedź nie zawiera adresu płatności")
        return Registration(redirect_url=redirect, gateway_txn_id=payment_id)

    def parse_notification(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> GatewayReport:
        check_source(remote_addr, self.options.allowed_sources, NAME)
        bounded(body, NAME)
        given = header(headers, "Signature")
        if not given:
            raise InvalidSignature("Paynow: brak nagłówka Signature w powiadomieniu")
        if not same_secret_text(body_signature(self.options.signature_key.get_secret_value(), body), given.strip()):
            raise InvalidSignature("Paynow: niezgodny podpis powiadomienia")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedNotification("Paynow: powiadomienie nie jest poprawnym JSON-em") from None
        if not isinstance(data, dict):
            raise MalformedNotification("Paynow: powiadomienie nie jest obiektem JSON")
        payment_id, reference, status = data.get("paymentId"), data.get("externalId"), data.get("status")
        if not isinstance(payment_id, str) or not payment_id:
            raise MalformedNotification("Paynow: w powiadomieniu brak paymentId")
        if not isinstance(reference, str) or not reference:
            raise MalformedNotification("Paynow: w powiadomieniu brak externalId")
        outcome = STATUS_OUTCOMES.get(status) if isinstance(status, str) else None
        if outcome is None:
            raise MalformedNotification(f"Paynow: nieznany status płatności {str(status)[:30]!r}")
        modified = data.get("modifiedAt")
        paid_at = None
        if outcome == "confirmed" and isinstance(modified, str):
            try:
                paid_at = local_to_utc(datetime.fromisoformat(modified))
            except ValueError:
                paid_at = None
        details = {k: data[k] for k in ("paymentId", "externalId", "status", "modifiedAt") if isinstance(data.get(k), str)}
        # Paynow's notification carries no amount: the core checks it against the registration
        return GatewayReport(reference=reference, outcome=outcome, gateway_txn_id=payment_id,  # type: ignore[arg-type]
                             amount=None, paid_at=paid_at, details=details)

    def status(self, reference: str, gateway_txn_id: str | None) -> GatewayReport | None:
        if not gateway_txn_id:
            return None  # Paynow finds a payment by its own id only
        path = f"{PAYMENTS_PATH}/{quote(gateway_txn_id, safe='')}/status"
        key = hashlib.md5(gateway_txn_id.encode("utf-8")).hexdigest()
        response = self.http.request("GET", path, headers=self._headers(key))
        data = self.http.json_of(response)
        status = data.get("status")
        outcome = STATUS_OUTCOMES.get(status) if isinstance(status, str) else None
        if outcome is None or data.get("paymentId") != gateway_txn_id:
            raise GatewayRejected("Paynow: odpowiedź o stan płatności jest niepełna")
        return GatewayReport(reference=reference, outcome=outcome, gateway_txn_id=gateway_txn_id,  # type: ignore[arg-type]
                             details={"paymentId": gateway_txn_id, "status": status})
