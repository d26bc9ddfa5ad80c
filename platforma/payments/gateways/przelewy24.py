"""Przelewy24 (REST API v1): register, redirect, notification, then the mandatory verify call.

Every signature is SHA-384 (hex) over a JSON object of fixed fields in a fixed order, written as PHP's
`json_encode(..., JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES)` writes it: no spaces, Polish
letters and slashes as they are. A transaction that is paid but never verified is returned to the
payer by Przelewy24, so `confirm()` is where the money is actually kept.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

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

NAME = "Przelewy24"

#: the fields of each signed object, in the order the documentation gives
REGISTER_FIELDS = ("sessionId", "merchantId", "amount", "currency", "crc")
VERIFY_FIELDS = ("sessionId", "orderId", "amount", "currency", "crc")
NOTIFICATION_FIELDS = ("merchantId", "posId", "sessionId", "amount", "originAmount", "currency", "orderId",
                       "methodId", "statement", "crc")
REFUND_NOTIFICATION_FIELDS = ("orderId", "sessionId", "refundsUuid", "merchantId", "amount", "currency", "status", "crc")

_NOTIFICATION_TYPES: dict[str, type] = {
    "merchantId": int, "posId": int, "sessionId": str, "amount": int, "originAmount": int, "currency": str,
    "orderId": int, "methodId": int, "statement": str, "sign": str,
}

#: status of a transaction in GET /api/v1/transaction/by/sessionId: 0 no payment yet, 1 paid but not
#: verified ("advance payment"), 2 paid and verified, 3 returned to the payer
_STATUS_OUTCOMES = {0: "pending", 1: "confirmed", 2: "confirmed", 3: "failed"}


# -- signatures (pure functions, tested against the published vectors) ----------------------------

def p24_json(pairs: Sequence[tuple[str, object]]) -> str:
    """The JSON text Przelewy24 signs: fields in the given order, no spaces, unescaped Unicode and
    slashes (like PHP's JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES, which still escapes the two
    line separators U+2028 and U+2029)."""
    text = json.dumps(dict(pairs), separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def sign_text(json_text: str) -> str:
    return hashlib.sha384(json_text.encode("utf-8")).hexdigest()


def sign_fields(fields: Mapping[str, object], order: Sequence[str]) -> str:
    return sign_text(p24_json([(name, fields[name]) for name in order]))


def register_sign(*, session_id: str, merchant_id: int, amount: int, currency: str, crc: str) -> str:
    return sign_fields({"sessionId": session_id, "merchantId": merchant_id, "amount": amount,
                        "currency": currency, "crc": crc}, REGISTER_FIELDS)


def verify_sign(*, session_id: str, order_id: int, amount: int, currency: str, crc: str) -> str:
    return sign_fields({"sessionId": session_id, "orderId": order_id, "amount": amount,
                        "currency": currency, "crc": crc}, VERIFY_FIELDS)


def notification_sign(notification: Mapping[str, object], crc: str) -> str:
    """The sign of a transaction status notification (the `sign` field itself is not signed)."""
    return sign_fields({**notification, "crc": crc}, NOTIFICATION_FIELDS)


def refund_notification_sign(notification: Mapping[str, object], crc: str) -> str:
    """The sign of a refund notification (refunds are made in the Przelewy24 panel for now)."""
    return sign_fields({**notification, "crc": crc}, REFUND_NOTIFICATION_FIELDS)


# -- the plugin ------------------------------------------------------------------------------------

class Przelewy24Options(HttpGatewayOptions):
    #: merchant id (ID sprzedawcy)
    merchant_id: int = Field(gt=0)
    #: shop id (ID sklepu); Przelewy24 uses the merchant id when the shop has none of its own
    pos_id: int | None = Field(default=None, gt=0)
    #: the CRC key from the panel: the signatures' secret
    crc: Key
    #: the API key (klucz do raportów / secret id): HTTP Basic password with pos_id as the user
    api_key: Key
    base_url: str = "https://secure.przelewy24.pl"

    @property
    def effective_pos_id(self) -> int:
        return self.pos_id or self.merchant_id


@registry.register
class Przelewy24(PaymentGateway):
    id: ClassVar[str] = "przelewy24"
    name: ClassVar[str] = "Przelewy24"
    Options: ClassVar[type[BaseModel]] = Przelewy24Options
    options: Przelewy24Options

    def __init__(self, options: Przelewy24Options):
        super().__init__(options)
        self.http = GatewayHttp(NAME, options.base_url, options.timeout_seconds,
                                secrets=(options.crc.get_secret_value(), options.api_key.get_secret_value()))

    # -- helpers --

    @property
    def _crc(self) -> str:
        return self.options.crc.get_secret_value()

    @property
    def _auth(self) -> tuple[str, str]:
        return str(self.options.effective_pos_id), self.options.api_key.get_secret_value()

    # -- the interface --

    def check_config(self) -> CheckResult:
        try:
            response = self.http.request("GET", "/api/v1/testAccess", auth=self._auth)
            data = self.http.json_of(response)
        except GatewayRejected as exc:
            return CheckResult(False, f"Przelewy24 odrzuciło dane dostępowe (ID sklepu lub klucz API): {exc}")
        except GatewayError as exc:
            return CheckResult(False, f"Nie udało się sprawdzić połączenia z Przelewy24: {exc}")
        if data.get("data") is not True:
            return CheckResult(False, "Przelewy24 nie potwierdziło dostępu (testAccess nie zwrócił true)")
        return CheckResult(True, f"Przelewy24: połączenie działa, dane dostępowe sklepu {self.options.effective_pos_id} poprawne")

    def register(self, request: PaymentRequest) -> Registration:
        amount = to_grosze(request.amount)
        body = {
            "merchantId": self.options.merchant_id,
            "posId": self.options.effective_pos_id,
            "sessionId": request.reference,
            "amount": amount,
            "currency": request.currency,
            "description": request.description[:1024],
            "email": request.email,
            "country": "PL",
            "language": request.language,
            "urlReturn": request.return_url,
            "urlStatus": request.notify_url,
            "encoding": "UTF-8",
            "sign": register_sign(session_id=request.reference, merchant_id=self.options.merchant_id,
                                  amount=amount, currency=request.currency, crc=self._crc),
        }
        response = self.http.request("POST", "/api/v1/transaction/register", json=body, auth=self._auth)
        data = self.http.json_of(response).get("data")
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or not token.replace("-", "").isalnum():
            raise GatewayRejected("Przelewy24: odpowiedź na rejestrację transakcji nie zawiera tokenu")
        return Registration(redirect_url=f"{self.options.base_url}/trnRequest/{token}", gateway_txn_id=token)

    def parse_notification(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> GatewayReport:
        check_source(remote_addr, self.options.allowed_sources, NAME)
        try:
            data = json.loads(bounded(body, NAME))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MalformedNotification("Przelewy24: powiadomienie nie jest poprawnym JSON-em") from None
        if not isinstance(data, dict):
            raise MalformedNotification("Przelewy24: powiadomienie nie jest obiektem JSON")
        for field, kind in _NOTIFICATION_TYPES.items():
            value = data.get(field)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise MalformedNotification(f"Przelewy24: w powiadomieniu brak pola {field} albo ma zły typ")
        if not same_secret_text(notification_sign(data, self._crc), data["sign"]):
            raise InvalidSignature("Przelewy24: niezgodny podpis (sign) powiadomienia")
        if data["merchantId"] != self.options.merchant_id or data["posId"] != self.options.effective_pos_id:
            raise InvalidSignature("Przelewy24: powiadomienie dotyczy innego sprzedawcy lub sklepu")
        details = {field: data[field] for field in NOTIFICATION_FIELDS if field != "crc"}
        return GatewayReport(
            reference=data["sessionId"],
            outcome="confirmed",
            gateway_txn_id=str(data["orderId"]),
            amount=from_grosze(data["amount"]),
            currency=data["currency"],
            details={**details, "verified": False},
        )

    def confirm(self, report: GatewayReport, expected_amount: Decimal) -> GatewayReport:
        if report.details.get("verified") is True:
            return report  # a status answer saying Przelewy24 has verified it already
        if report.amount is None or report.amount != expected_amount:
            raise GatewayRejected(
                f"Przelewy24: kwota z powiadomienia ({report.amount}) różni się od oczekiwanej ({expected_amount}); "
                "transakcja nie zostanie zweryfikowana")
        if not report.gateway_txn_id or not report.gateway_txn_id.isdigit():
            raise GatewayRejected("Przelewy24: brak numeru transakcji (orderId) do weryfikacji")
        order_id = int(report.gateway_txn_id)
        amount = to_grosze(report.amount)
        body = {
            "merchantId": self.options.merchant_id,
            "posId": self.options.effective_pos_id,
            "sessionId": report.reference,
            "amount": amount,
            "currency": report.currency,
            "orderId": order_id,
            "sign": verify_sign(session_id=report.reference, order_id=order_id, amount=amount,
                                currency=report.currency, crc=self._crc),
        }
        response = self.http.request("PUT", "/api/v1/transaction/verify", json=body, auth=self._auth)
        data = self.http.json_of(response).get("data")
        if not isinstance(data, dict) or data.get("status") != "success":
            raise GatewayRejected("Przelewy24: weryfikacja transakcji nie zakończyła się sukcesem")
        return replace(report, details={**report.details, "verified": True})

    def status(self, reference: str, gateway_txn_id: str | None) -> GatewayReport | None:
        path = f"/api/v1/transaction/by/sessionId/{quote(reference, safe='')}"
        response = self.http.request("GET", path, auth=self._auth)
        data = self.http.json_of(response).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("status"), int):
            raise GatewayRejected("Przelewy24: odpowiedź o stan transakcji nie zawiera jej statusu")
        status = data["status"]
        outcome = _STATUS_OUTCOMES.get(status)
        if outcome is None:
            raise GatewayRejected(f"Przelewy24: nieznany status transakcji {status}")
        order_id = data.get("orderId")
        amount = data.get("amount")
        details = {k: v for k, v in data.items() if isinstance(v, (str, int)) and k not in ("clientEmail", "accountMD5")}
        return GatewayReport(
            reference=reference,
            outcome=outcome,  # type: ignore[arg-type]
            gateway_txn_id=str(order_id) if isinstance(order_id, int) and order_id else gateway_txn_id,
            amount=from_grosze(amount) if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=data.get("currency") if isinstance(data.get("currency"), str) else "PLN",
            paid_at=_paid_at(data) if outcome == "confirmed" else None,
            details={**details, "verified": status == 2},
        )


def _paid_at(data: Mapping[str, Any]) -> datetime | None:
    value = data.get("dateOfTransaction") or data.get("date")
    if not isinstance(value, str):
        return None
    try:
        return local_to_utc(datetime.fromisoformat(value))
    except ValueError:
        return None
