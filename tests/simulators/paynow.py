"""Paynow (mBank) simulator: API v3 payments with Api-Key, Idempotency-Key and the v3 request Signature,
payment status, payment methods, the payer's page at /paywall/{paymentId} and notifications signed
with HMAC-SHA256 over the raw body (the `Signature` header). As in Paynow, the notification address is
the panel's setting (`notify_url`), not a field of the payment.

Endpoint names for `calls()` / `fail_next()`: payments, status, paymentmethods, payer_page.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.simulators.gateways import GatewaySimulator, json_response

_WARSAW = ZoneInfo("Europe/Warsaw")
_STATUSES = {"pending": "PENDING", "confirmed": "CONFIRMED", "failed": "REJECTED", "cancelled": "ABANDONED",
             "expired": "EXPIRED"}


def _hmac(key: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), data, hashlib.sha256).digest()).decode("ascii")


def _errors(http: int, kind: str, message: str) -> Response:
    return json_response({"statusCode": http, "errors": [{"errorType": kind, "message": message}]}, status=http)


def _payment_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(n)) for n in (4, 3, 3, 3))


class PaynowSimulator(GatewaySimulator):
    title = "Paynow"
    endpoints = ("payments", "status", "paymentmethods", "payer_page")

    def __init__(self, *, api_key: str, signature_key: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.api_key = api_key
        self.signature_key = signature_key
        #: Idempotency-Key -> (the request body, the answer given)
        self._idempotent: dict[str, tuple[bytes, dict[str, Any]]] = {}

    def rules(self):
        return [
            Rule("/v3/payments", methods=["POST"], endpoint="payments"),
            Rule("/v3/payments/paymentmethods", methods=["GET"], endpoint="paymentmethods"),
            Rule("/v3/payments/<payment_id>/status", methods=["GET"], endpoint="status"),
            Rule("/paywall/<payment_id>", methods=["GET", "POST"], endpoint="payer_page"),
        ]

    # -- API -------------------------------------------------------------------------------------

    def _auth_error(self, request: Request) -> Response | None:
        api_key = request.headers.get("Api-Key", "")
        if not hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            return _errors(401, "UNAUTHORIZED", "Unauthorized")
        idempotency_key = request.headers.get("Idempotency-Key", "")
        if not 1 <= len(idempotency_key) <= 45:
            return _errors(400, "VALIDATION_ERROR", "Idempotency-Key is required (1-45 characters)")
        try:
            body = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            return _errors(400, "VALIDATION_ERROR", "Body is not UTF-8")
        parameters = {name: request.args.getlist(name) for name in request.args}
        signed = json.dumps({"headers": {"Api-Key": api_key, "Idempotency-Key": idempotency_key},
                             "parameters": parameters, "body": body}, separators=(",", ":"))
        given = request.headers.get("Signature", "")
        if not hmac.compare_digest(_hmac(self.signature_key, signed.encode("utf-8")).encode(), given.encode()):
            return _errors(401, "UNAUTHORIZED", "Invalid signature")
        return None

    def on_payments(self, request: Request) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        raw = request.get_data()
        key = request.headers["Idempotency-Key"]
        with self._lock:
            if key in self._idempotent:
                seen_body, answer = self._idempotent[key]
                if seen_body != raw:
                    return _errors(409, "IDEMPOTENCY_KEY_CONFLICT", "Idempotency-Key used with a different request")
                return json_response(answer, status=201)
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _errors(400, "VALIDATION_ERROR", "Invalid JSON")
        if not isinstance(data, dict):
            return _errors(400, "VALIDATION_ERROR", "Invalid JSON")
        amount = data.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _errors(400, "VALIDATION_ERROR", "amount must be a positive integer")
        for name in ("externalId", "description"):
            if not isinstance(data.get(name), str) or not data[name]:
                return _errors(400, "VALIDATION_ERROR", f"{name} is required")
        buyer = data.get("buyer")
        if not isinstance(buyer, dict) or not isinstance(buyer.get("email"), str):
            return _errors(400, "VALIDATION_ERROR", "buyer.email is required")
        reference = data["externalId"]
        with self._lock:
            if reference in self._transactions:
                return _errors(400, "VALIDATION_ERROR", "externalId already used")
            payment_id = _payment_id()
            self._transactions[reference] = {
                "reference": reference, "gateway_id": payment_id, "amount": amount,
                "currency": data.get("currency") or "PLN", "description": data["description"],
                "email": buyer["email"], "return_url": data.get("continueUrl"), "outcome": "pending",
                "status": "NEW", "modified_at": datetime.now(_WARSAW).strftime("%Y-%m-%dT%H:%M:%S"),
            }
            answer = {"redirectUrl": f"{self.base_url}/paywall/{payment_id}", "paymentId": payment_id, "status": "NEW"}
            self._idempotent[key] = (raw, answer)
        return json_response(answer, status=201)

    def on_status(self, request: Request, payment_id: str) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        with self._lock:
            try:
                txn = self._find(payment_id)
            except KeyError:
                return _errors(404, "NOT_FOUND", "Could not find payment")
            return json_response({"paymentId": txn["gateway_id"], "status": txn["status"]})

    def on_paymentmethods(self, request: Request) -> Response:
        if (error := self._auth_error(request)) is not None:
            return error
        return json_response([{"type": "PBL", "paymentMethods": [
            {"id": 2007, "name": "mBank", "description": "mTransfer", "image": "", "status": "ENABLED",
             "authorizationType": "REDIRECT"}]}])

    # -- the payer -------------------------------------------------------------------------------

    def on_payer_page(self, request: Request, payment_id: str) -> Response:
        with self._lock:
            try:
                txn = self._find(payment_id)
            except KeyError:
                return Response("Nieznana płatność.", status=404, content_type="text/plain; charset=utf-8")
            if request.method == "GET":
                return self.payer_page(txn, f"/paywall/{payment_id}")
        return self.payer_decision(request, payment_id)

    def _return_url(self, txn: dict[str, Any]) -> str | None:
        url = txn.get("return_url")
        if not url:
            return None
        separator = "&" if "?" in url else "?"
        return url + separator + urlencode({"paymentId": txn["gateway_id"], "paymentStatus": txn["status"]})

    def _mark(self, txn: dict[str, Any], outcome: str) -> None:
        txn["outcome"] = outcome
        txn["status"] = _STATUSES[outcome]
        txn["modified_at"] = datetime.now(_WARSAW).strftime("%Y-%m-%dT%H:%M:%S")

    def _build_notification(self, txn: dict[str, Any]):
        body = json.dumps({"paymentId": txn["gateway_id"], "externalId": txn["reference"], "status": txn["status"],
                           "modifiedAt": txn["modified_at"]}, indent=2).encode("utf-8")
        return {"Content-Type": "application/json", "Signature": _hmac(self.signature_key, body)}, body
