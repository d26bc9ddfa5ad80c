"""Przelewy24 simulator: REST API v1 (testAccess, transaction/register, transaction/verify,
transaction/by/sessionId), the payer's page at /trnRequest/{token} and signed status notifications.

As with the real Przelewy24: every API call needs HTTP Basic posId:apiKey; a bad `sign` gets 400; a
notification is sent only for a paid transaction; a paid transaction counts as kept ("verified") only
after a correctly signed verify call, otherwise it is returned to the payer.

Endpoint names for `calls()` / `fail_next()`: test_access, register, verify, status, payer_page.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.simulators.gateways import GatewaySimulator, json_response

_WARSAW = ZoneInfo("Europe/Warsaw")


def _sign(pairs: list[tuple[str, Any]]) -> str:
    text = json.dumps(dict(pairs), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha384(text.encode("utf-8")).hexdigest()


def _error(message: str, code: int) -> Response:
    return json_response({"error": message, "code": code}, status=code)


class Przelewy24Simulator(GatewaySimulator):
    title = "Przelewy24"
    endpoints = ("test_access", "register", "verify", "status", "payer_page")

    def __init__(self, *, merchant_id: int, crc: str, api_key: str, pos_id: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.merchant_id = int(merchant_id)
        self.pos_id = int(pos_id or merchant_id)
        self.crc = crc
        self.api_key = api_key
        self._order_ids = itertools.count(300_000_001)

    def rules(self):
        return [
            Rule("/api/v1/testAccess", methods=["GET"], endpoint="test_access"),
            Rule("/api/v1/transaction/register", methods=["POST"], endpoint="register"),
            Rule("/api/v1/transaction/verify", methods=["PUT"], endpoint="verify"),
            Rule("/api/v1/transaction/by/sessionId/<path:session_id>", methods=["GET"], endpoint="status"),
            Rule("/trnRequest/<token>", methods=["GET", "POST"], endpoint="payer_page"),
        ]

    # -- API -------------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        value = request.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(value[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == str(self.pos_id) and hmac.compare_digest(password.encode(), self.api_key.encode())

    def _json(self, request: Request) -> dict[str, Any] | None:
        try:
            data = json.loads(request.get_data())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def on_test_access(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error("Incorrect authentication", 401)
        return json_response({"data": True, "error": ""})

    def on_register(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error("Incorrect authentication", 401)
        data = self._json(request)
        if data is None:
            return _error("Invalid input data", 400)
        required = {"merchantId": int, "posId": int, "sessionId": str, "amount": int, "currency": str,
                    "description": str, "email": str, "country": str, "language": str, "urlReturn": str, "sign": str}
        for name, kind in required.items():
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                return _error(f"Invalid {name}", 400)
        if data["merchantId"] != self.merchant_id or data["posId"] != self.pos_id:
            return _error("Invalid merchantId or posId", 400)
        if data["amount"] <= 0 or not 1 <= len(data["sessionId"]) <= 100:
            return _error("Invalid amount or sessionId", 400)
        expected = _sign([("sessionId", data["sessionId"]), ("merchantId", data["merchantId"]),
                          ("amount", data["amount"]), ("currency", data["currency"]), ("crc", self.crc)])
        if not hmac.compare_digest(expected, data["sign"]):
            return _error("Incorrect sign", 400)
        with self._lock:
            txn = self._transactions.get(data["sessionId"])
            if txn is not None and (txn["amount"] != data["amount"] or txn["outcome"] != "pending"):
                return _error("sessionId already used", 400)
            if txn is None:
                txn = self._transactions[data["sessionId"]] = {
                    "reference": data["sessionId"], "token": str(uuid.uuid4()).upper(), "gateway_id": None,
                    "amount": data["amount"], "currency": data["currency"], "description": data["description"],
                    "email": data["email"], "return_url": data["urlReturn"], "notify_url": data.get("urlStatus"),
                    "outcome": "pending", "verified": False, "verify_calls": 0, "verify_rejected": 0,
                    "method_id": 25, "statement": None, "paid_at": None,
                }
            token = txn["token"]
        return json_response({"data": {"token": token}, "responseCode": 0})

    def on_verify(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error("Incorrect authentication", 401)
        data = self._json(request)
        if data is None:
            return _error("Invalid input data", 400)
        for name, kind in {"merchantId": int, "posId": int, "sessionId": str, "amount": int, "currency": str,
                           "orderId": int, "sign": str}.items():
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                return _error(f"Invalid {name}", 400)
        with self._lock:
            txn = self._transactions.get(data["sessionId"])
            if txn is None or txn["gateway_id"] != str(data["orderId"]) or txn["outcome"] != "confirmed":
                return _error("Transaction not found", 400)
            txn["verify_calls"] += 1
            expected = _sign([("sessionId", data["sessionId"]), ("orderId", data["orderId"]), ("amount", data["amount"]),
                              ("currency", data["currency"]), ("crc", self.crc)])
            if not hmac.compare_digest(expected, data["sign"]):
                txn["verify_rejected"] += 1
                return _error("Incorrect sign", 400)
            if data["amount"] != txn["amount"] or data["currency"] != txn["currency"] \
                    or data["merchantId"] != self.merchant_id or data["posId"] != self.pos_id:
                txn["verify_rejected"] += 1
                return _error("Transaction data mismatch", 400)
            txn["verified"] = True
        return json_response({"data": {"status": "success"}, "responseCode": 0})

    def on_status(self, request: Request, session_id: str) -> Response:
        if not self._authorised(request):
            return _error("Incorrect authentication", 401)
        with self._lock:
            txn = self._transactions.get(session_id)
            if txn is None:
                return _error("Transaction not found", 404)
            status = 0
            if txn["outcome"] == "confirmed":
                status = 2 if txn["verified"] else 1
            paid = txn["paid_at"]
            data = {
                "statement": txn["statement"] or "", "orderId": int(txn["gateway_id"] or 0),
                "sessionId": txn["reference"], "status": status, "amount": txn["amount"],
                "currency": txn["currency"], "date": paid or "", "dateOfTransaction": paid or "",
                "clientEmail": txn["email"], "accountMD5": "", "paymentMethod": txn["method_id"] if paid else 0,
                "description": txn["description"], "clientName": "", "clientAddress": "", "clientCity": "",
                "clientPostcode": "", "batchId": 0, "fee": "0",
            }
        return json_response({"data": data, "responseCode": 0})

    # -- the payer -------------------------------------------------------------------------------

    def on_payer_page(self, request: Request, token: str) -> Response:
        with self._lock:
            try:
                txn = self._find(token)
            except KeyError:
                return Response("Nieznana transakcja.", status=404, content_type="text/plain; charset=utf-8")
            if request.method == "GET":
                return self.payer_page(txn, f"/trnRequest/{token}")
        return self.payer_decision(request, token)

    def _mark(self, txn: dict[str, Any], outcome: str) -> None:
        txn["outcome"] = outcome
        if outcome == "confirmed" and txn["gateway_id"] is None:
            txn["gateway_id"] = str(next(self._order_ids))
            txn["statement"] = "p24-" + "-".join(secrets.token_hex(2).upper()[:3] for _ in range(3))
            txn["paid_at"] = datetime.now(_WARSAW).strftime("%Y-%m-%d %H:%M:%S")

    def _build_notification(self, txn: dict[str, Any]):
        if txn["outcome"] != "confirmed":
            return None  # Przelewy24 notifies paid transactions only
        fields = [("merchantId", self.merchant_id), ("posId", self.pos_id), ("sessionId", txn["reference"]),
                  ("amount", txn["amount"]), ("originAmount", txn["amount"]), ("currency", txn["currency"]),
                  ("orderId", int(txn["gateway_id"])), ("methodId", txn["method_id"]), ("statement", txn["statement"])]
        body = dict(fields)
        body["sign"] = _sign(fields + [("crc", self.crc)])
        return {"Content-Type": "application/json"}, json.dumps(body, ensure_ascii=False).encode("utf-8")
