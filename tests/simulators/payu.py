"""PayU simulator: OAuth client credentials, REST API v2.1 orders (create answers 302 with JSON, as PayU
does), order retrieval, the payer's page at /pay/?orderId=... and notifications signed in the
`OpenPayu-Signature` header (hash of the raw body + second key).

Refunds are ordered in PayU's panel, which `refund()` stands for: only a COMPLETED order is refunded,
never for more than is left of it; PayU then notifies the order's notifyUrl of the refund
(`{"orderId", "extOrderId", "refund": {"refundId", "amount", "currencyCode", "status", ...}}`,
PENDING, then FINALIZED or CANCELED), signed like every notification.

Endpoint names for `calls()` / `fail_next()`: oauth, orders, status, payer_page.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.simulators.gateways import GatewaySimulator, json_response

_WARSAW = ZoneInfo("Europe/Warsaw")
_STATUSES = {"pending": "PENDING", "confirmed": "COMPLETED", "failed": "CANCELED", "cancelled": "CANCELED",
             "expired": "CANCELED"}
_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA256": "sha256"}


def _status_error(http: int, code: str, desc: str) -> Response:
    return json_response({"status": {"statusCode": code, "severity": "ERROR", "statusDesc": desc}}, status=http)


class PayUSimulator(GatewaySimulator):
    title = "PayU"
    endpoints = ("oauth", "orders", "status", "payer_page")

    def __init__(self, *, pos_id: str, second_key: str, client_id: str, client_secret: str,
                 token_lifetime: int = 43199, signature_algorithm: str = "MD5", **kwargs: Any):
        super().__init__(**kwargs)
        self.pos_id = str(pos_id)
        self.second_key = second_key
        self.client_id = str(client_id)
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        if signature_algorithm not in _HASHES:
            raise ValueError("algorytm podpisu: MD5 albo SHA-256")
        self.signature_algorithm = signature_algorithm
        #: token -> monotonic expiry
        self._tokens: dict[str, float] = {}

    def rules(self):
        return [
            Rule("/pl/standard/user/oauth/authorize", methods=["POST"], endpoint="oauth"),
            Rule("/api/v2_1/orders", methods=["POST"], endpoint="orders"),
            Rule("/api/v2_1/orders/<order_id>", methods=["GET"], endpoint="status"),
            Rule("/pay/", methods=["GET", "POST"], endpoint="payer_page"),
        ]

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as when PayU's token lifetime runs out)."""
        with self._lock:
            self._tokens.clear()

    # -- API -------------------------------------------------------------------------------------

    def on_oauth(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "Unsupported grant type"}, status=400)
        if form.get("client_id") != self.client_id or not hmac.compare_digest(
                (form.get("client_secret") or "").encode(), self.client_secret.encode()):
            return json_response({"error": "invalid_client", "error_description": "Bad client credentials"}, status=401)
        token = secrets.token_hex(18)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
        return json_response({"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime,
                              "grant_type": "client_credentials"})

    def _token_error(self, request: Request) -> Response | None:
        value = request.headers.get("Authorization", "")
        token = value[7:] if value.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry < time.monotonic():
            return json_response({"error": "invalid_token", "error_description": "Access token expired"}, status=401)
        return None

    def on_orders(self, request: Request) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        try:
            data = json.loads(request.get_data())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _status_error(400, "ERROR_SYNTAX", "Invalid JSON")
        if not isinstance(data, dict):
            return _status_error(400, "ERROR_SYNTAX", "Invalid JSON")
        for name in ("customerIp", "merchantPosId", "description", "currencyCode", "totalAmount", "products"):
            if not data.get(name):
                return _status_error(400, "ERROR_VALUE_MISSING", f"Missing required field: {name}")
        if str(data["merchantPosId"]) != self.pos_id:
            return _status_error(400, "ERROR_INCONSISTENT_MERCHANT_POS_ID", "Inconsistent merchantPosId")
        total = data["totalAmount"]
        if not isinstance(total, str) or not total.isdigit() or int(total) <= 0:
            return _status_error(400, "ERROR_VALUE_INVALID", "Invalid totalAmount")
        try:
            products_total = sum(int(p["unitPrice"]) * int(p["quantity"]) for p in data["products"])
        except (KeyError, TypeError, ValueError):
            return _status_error(400, "ERROR_VALUE_INVALID", "Invalid products")
        if products_total != int(total):
            return _status_error(400, "ERROR_VALUE_INVALID", "Sum of products differs from totalAmount")
        reference = data.get("extOrderId") or secrets.token_hex(8)
        with self._lock:
            if reference in self._transactions:
                return _status_error(400, "ERROR_ORDER_NOT_UNIQUE", "Order with given extOrderId already exists")
            order_id = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20))
            self._transactions[reference] = {
                "reference": reference, "gateway_id": order_id, "amount": int(total),
                "currency": data["currencyCode"], "description": data["description"],
                "email": (data.get("buyer") or {}).get("email"), "notify_url": data.get("notifyUrl"),
                "return_url": data.get("continueUrl"), "customer_ip": data["customerIp"],
                "created_at": datetime.now(_WARSAW).isoformat(timespec="milliseconds"),
                "outcome": "pending", "status": "NEW", "paid_at": None,
            }
        redirect = f"{self.base_url}/pay/?{urlencode({'orderId': order_id, 'token': secrets.token_hex(8)})}"
        return json_response({"status": {"statusCode": "SUCCESS"}, "redirectUri": redirect, "orderId": order_id,
                              "extOrderId": reference}, status=302, headers={"Location": redirect})

    def _order(self, txn: dict[str, Any]) -> dict[str, Any]:
        return {
            "orderId": txn["gateway_id"], "extOrderId": txn["reference"], "orderCreateDate": txn["created_at"],
            "notifyUrl": txn["notify_url"], "customerIp": txn["customer_ip"], "merchantPosId": self.pos_id,
            "description": txn["description"], "currencyCode": txn["currency"], "totalAmount": str(txn["amount"]),
            "buyer": {"email": txn["email"], "language": "pl"},
            "payMethod": {"type": "PBL"},
            "products": [{"name": txn["description"], "unitPrice": str(txn["amount"]), "quantity": "1"}],
            "status": txn["status"],
        }

    def on_status(self, request: Request, order_id: str) -> Response:
        if (error := self._token_error(request)) is not None:
            return error
        with self._lock:
            try:
                txn = self._find(order_id)
            except KeyError:
                return json_response({"status": {"statusCode": "DATA_NOT_FOUND", "severity": "INFO",
                                                  "statusDesc": "Could not find data for given criteria."}}, status=404)
            order = self._order(txn)
        return json_response({"orders": [order], "status": {"statusCode": "SUCCESS",
                                                            "statusDesc": "Request processing successful"}})

    # -- the payer -------------------------------------------------------------------------------

    def on_payer_page(self, request: Request) -> Response:
        order_id = request.values.get("orderId", "")
        with self._lock:
            try:
                txn = self._find(order_id)
            except KeyError:
                return Response("Nieznane zamówienie.", status=404, content_type="text/plain; charset=utf-8")
            if request.method == "GET":
                return self.payer_page(txn, "/pay/", hidden={"orderId": order_id})
        return self.payer_decision(request, order_id)

    def _mark(self, txn: dict[str, Any], outcome: str) -> None:
        txn["outcome"] = outcome
        txn["status"] = _STATUSES[outcome]
        if outcome == "confirmed" and not txn["paid_at"]:
            txn["paid_at"] = datetime.now(_WARSAW).isoformat(timespec="milliseconds")
            txn["payment_id"] = str(1_000_000_000 + secrets.randbelow(9 * 10**9))

    def _build_notification(self, txn: dict[str, Any]):
        body: dict[str, Any] = {"order": self._order(txn)}
        if txn["status"] == "COMPLETED":
            body["localReceiptDateTime"] = txn["paid_at"]
            body["properties"] = [{"name": "PAYMENT_ID", "value": txn["payment_id"]}]
        return self._signed(body)

    def _signed(self, body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        digest = hashlib.new(_HASHES[self.signature_algorithm], raw + self.second_key.encode("utf-8")).hexdigest()
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "OpenPayu-Signature": f"sender=checkout;signature={digest};algorithm={self.signature_algorithm};content=DOCUMENT",
        }
        return headers, raw

    # -- refunds (ordered in PayU's panel) ----------------------------------------------------------

    def refund(self, key: str, amount: int | None = None, status: str = "FINALIZED", refund_id: str | None = None,
               reason_description: str = "Zwrot nadpłaty", deliver: bool = True) -> tuple[str, int | None]:
        """The merchant orders a refund of `amount` grosze (all that is left when None) in the panel;
        PayU notifies it with `status` (PENDING, FINALIZED or CANCELED). Returns (refundId, the HTTP
        status our webhook answered, None when unreachable or not sent). Calling it again with the
        same refund_id reports that refund's next status; `deliver=False` only changes it (the tests
        then send `refund_notification_for` themselves)."""
        if status not in ("PENDING", "FINALIZED", "CANCELED"):
            raise ValueError("status zwrotu: PENDING, FINALIZED albo CANCELED")
        with self._lock:
            txn = self._find(key)
            if txn["status"] != "COMPLETED":
                raise ValueError("PayU zwraca tylko zamówienia COMPLETED")
            refunds = txn.setdefault("refunds", {})
            if refund_id in refunds:
                item = refunds[refund_id]
            else:
                left = txn["amount"] - sum(r["amount"] for r in refunds.values() if r["status"] != "CANCELED")
                wanted = left if amount is None else amount
                if not 0 < wanted <= left:
                    raise ValueError(f"kwota zwrotu {wanted} gr poza zakresem (zostało {left} gr)")
                refund_id = refund_id or str(5_000_000_000 + secrets.randbelow(10**9))
                now = datetime.now(_WARSAW).isoformat(timespec="milliseconds")
                item = refunds[refund_id] = {"refundId": refund_id, "amount": wanted, "status": "PENDING",
                                             "refundDate": now, "statusDateTime": now,
                                             "reasonDescription": reason_description}
            item["status"] = status
            item["statusDateTime"] = datetime.now(_WARSAW).isoformat(timespec="milliseconds")
            url = self._notify_url_of(txn)
            built = (url, *self.refund_notification(txn, item)) if url and deliver else None
        return refund_id, (self._deliver(txn["reference"], built) if built else None)

    def refund_notification_for(self, key: str, refund_id: str) -> tuple[dict[str, str], bytes]:
        """The signed notification of a refund's current status, not sent."""
        with self._lock:
            txn = self._find(key)
            return self.refund_notification(txn, txn["refunds"][refund_id])

    def refund_notification(self, txn: dict[str, Any], item: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """The signed notification of a refund's status (caller holds the lock)."""
        return self._signed({
            "orderId": txn["gateway_id"], "extOrderId": txn["reference"],
            "refund": {"refundId": item["refundId"], "amount": str(item["amount"]), "currencyCode": txn["currency"],
                       "status": item["status"], "statusDateTime": item["statusDateTime"], "reason": "refund",
                       "reasonDescription": item["reasonDescription"], "refundDate": item["refundDate"]},
        })
