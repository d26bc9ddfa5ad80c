"""Autopay (Blue Media) simulator: the start of a transaction at /payment (signed parameters in the
query or a form), the payer's page, the ITN (form field `transactions` = base64 of a hashed XML
`transactionList`) and the check of the merchant's signed confirmation. As in Autopay, the ITN address
and the return address are the service's panel settings (`notify_url`, `return_url`).

A transaction counts as confirmed ("itn_confirmed") only once our answer to its ITN was a correctly
hashed `confirmationList` saying CONFIRMED for its orderID.

Endpoint names for `calls()` / `fail_next()`: payment, payer_page.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx
from lxml import etree
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.simulators.gateways import GatewaySimulator

_WARSAW = ZoneInfo("Europe/Warsaw")
_START_ORDER = ("ServiceID", "OrderID", "Amount", "Description", "GatewayID", "Currency", "CustomerEmail")
_STATUSES = {"pending": ("PENDING", ""), "confirmed": ("SUCCESS", "ACCEPTED"), "failed": ("FAILURE", "REJECTED"),
             "cancelled": ("FAILURE", "REJECTED_BY_USER"), "expired": ("FAILURE", "EXPIRED")}


def _error_page(message: str, status: int = 400) -> Response:
    page = (f'<!DOCTYPE html><html lang="pl"><head><meta charset="utf-8"><title>Błąd – Autopay (symulator)</title>'
            f'</head><body><main><h1>Nie można rozpocząć płatności</h1><p>{escape(message)}</p></main></body></html>')
    return Response(page, status=status, content_type="text/html; charset=utf-8")


class AutopaySimulator(GatewaySimulator):
    title = "Autopay"
    endpoints = ("payment", "payer_page")

    def __init__(self, *, service_id: str, shared_key: str, return_url: str | None = None,
                 hash_algorithm: str = "sha256", **kwargs: Any):
        super().__init__(**kwargs)
        self.service_id = str(service_id)
        self.shared_key = shared_key
        self.return_url = return_url
        self.hash_algorithm = hash_algorithm
        self._remote_ids = itertools.count(102_686)

    def _hash(self, values: list[str]) -> str:
        text = "|".join([v for v in values if v] + [self.shared_key])
        return hashlib.new(self.hash_algorithm, text.encode("utf-8")).hexdigest()

    def rules(self):
        return [
            Rule("/payment", methods=["GET", "POST"], endpoint="payment"),
            Rule("/payment/<order_id>/decision", methods=["POST"], endpoint="payer_page"),
        ]

    # -- the start of a transaction (the payer's browser brings the signed parameters) -------------

    def on_payment(self, request: Request) -> Response:
        params = request.values
        if params.get("ServiceID") != self.service_id:
            return _error_page("Nieznany serwis (ServiceID).")
        for name in ("OrderID", "Amount", "Hash"):
            if not params.get(name):
                return _error_page(f"Brak parametru {name}.")
        expected = self._hash([params.get(name, "") for name in _START_ORDER])
        if not hmac.compare_digest(expected.encode(), params["Hash"].lower().encode()):
            return _error_page("Nieprawidłowy skrót parametrów (Hash).")
        amount_text = params["Amount"]
        whole, dot, cents = amount_text.partition(".")
        if not (whole.isdigit() and dot and len(cents) == 2 and cents.isdigit()):
            return _error_page("Nieprawidłowa kwota (Amount).")
        amount = int(whole) * 100 + int(cents)
        reference = params["OrderID"]
        with self._lock:
            txn = self._transactions.get(reference)
            if txn is not None and txn["amount"] != amount:
                return _error_page("Ten numer zamówienia (OrderID) był już użyty z inną kwotą.")
            if txn is None:
                txn = self._transactions[reference] = {
                    "reference": reference, "gateway_id": str(next(self._remote_ids)), "amount": amount,
                    "currency": params.get("Currency") or "PLN", "description": params.get("Description", ""),
                    "email": params.get("CustomerEmail"), "outcome": "pending", "paid_at": None,
                    "itn_confirmed": False, "itn_confirmation": None,
                }
            return self.payer_page(txn, f"/payment/{reference}/decision")

    def on_payer_page(self, request: Request, order_id: str) -> Response:
        with self._lock:
            try:
                self._find(order_id)
            except KeyError:
                return _error_page("Nieznane zamówienie.", status=404)
        return self.payer_decision(request, order_id)

    def _return_url(self, txn: dict[str, Any]) -> str | None:
        if not self.return_url:
            return None
        query = {"ServiceID": self.service_id, "OrderID": txn["reference"],
                 "Hash": self._hash([self.service_id, txn["reference"]])}
        separator = "&" if "?" in self.return_url else "?"
        return self.return_url + separator + urlencode(query)

    # -- ITN -------------------------------------------------------------------------------------

    def _mark(self, txn: dict[str, Any], outcome: str) -> None:
        txn["outcome"] = outcome
        if outcome == "confirmed" and not txn["paid_at"]:
            txn["paid_at"] = datetime.now(_WARSAW).strftime("%Y%m%d%H%M%S")

    def itn_xml(self, txn: dict[str, Any]) -> bytes:
        status, details = _STATUSES[txn["outcome"]]
        fields = [("orderID", txn["reference"]), ("remoteID", txn["gateway_id"]),
                  ("amount", f"{txn['amount'] // 100}.{txn['amount'] % 100:02d}"), ("currency", txn["currency"]),
                  ("gatewayID", "106"), ("paymentDate", txn["paid_at"] or datetime.now(_WARSAW).strftime("%Y%m%d%H%M%S")),
                  ("paymentStatus", status), ("paymentStatusDetails", details)]
        digest = self._hash([self.service_id] + [value for _, value in fields])
        inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields if value)
        document = (f'<?xml version="1.0" encoding="UTF-8"?>\n<transactionList><serviceID>{self.service_id}</serviceID>'
                    f"<transactions><transaction>{inner}</transaction></transactions><hash>{digest}</hash></transactionList>")
        return document.encode("utf-8")

    def _build_notification(self, txn: dict[str, Any]):
        encoded = base64.b64encode(self.itn_xml(txn)).decode("ascii")
        return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode({"transactions": encoded}).encode("ascii")

    def _after_delivery(self, reference: str, response: httpx.Response) -> None:
        """Autopay reads the answer: a hashed confirmationList naming the order, or it sends the ITN again."""
        word = None
        try:
            root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
            confirmed = root.find("transactionsConfirmations/transactionConfirmed")
            values = [root.findtext("serviceID") or "", confirmed.findtext("orderID") or "",
                      confirmed.findtext("confirmation") or ""]
            if root.tag == "confirmationList" and values[0] == self.service_id and values[1] == reference \
                    and hmac.compare_digest(self._hash(values).encode(), (root.findtext("hash") or "").encode()):
                word = values[2]
        except (etree.XMLSyntaxError, AttributeError, ValueError):
            word = None
        with self._lock:
            txn = self._transactions.get(reference)
            if txn is not None:
                txn["itn_confirmation"] = word or "INVALID"
                txn["itn_confirmed"] = word == "CONFIRMED" and response.status_code == 200
