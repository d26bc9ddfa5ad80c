"""Autopay (Blue Media) simulator: the start of a transaction at /payment (signed parameters in the
query or a form), the payer's page, the ITN (form field `transactions` = base64 of a hashed XML
`transactionList`) and the check of the merchant's signed confirmation. As in Autopay, the ITN address
and the return address are the service's panel settings (`notify_url`, `return_url`).

A transaction counts as confirmed ("itn_confirmed") only once our answer to its ITN was a correctly
hashed `confirmationList` saying CONFIRMED for its orderID. One ITN may carry several transactions
(`notify_many`): the answer must confirm each, one `transactionConfirmed` per transaction in the ITN's
order, hashed as serviceID, then each orderID and its confirmation.

A payer may pay the same order twice (`pay_again`: a second transaction, with its own remoteID, of the
same OrderID). `POST /webapi/transactionStatus` (form ServiceID, OrderID, Hash; header
`BmHeader: pay-bm`) answers every transaction of an OrderID, hashed as serviceID, then per transaction
orderID, remoteID, amount, currency, gatewayID, paymentDate, paymentStatus, paymentStatusDetails, as
Autopay's documentation ("Status transakcji") describes. What the documentation does not show, the
simulator chooses and says so: the answer's root element (`transactionList`, as in the ITN), the
answer for an OrderID with no transaction (the same document with no `transaction`), and the answer
to a wrong hash or a missing header (HTTP 403 with `<transaction><reason>`, the shape of the one error
the documentation shows).

Endpoint names for `calls()` / `fail_next()`: payment, payer_page, status.
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
    endpoints = ("payment", "payer_page", "status")

    def __init__(self, *, service_id: str, shared_key: str, return_url: str | None = None,
                 hash_algorithm: str = "sha256", **kwargs: Any):
        super().__init__(**kwargs)
        self.service_id = str(service_id)
        self.shared_key = shared_key
        self.return_url = return_url
        self.hash_algorithm = hash_algorithm
        #: when True, the status answer's amounts are changed after hashing (a forged answer)
        self.tamper_status = False
        self._remote_ids = itertools.count(102_686)

    def _hash(self, values: list[str]) -> str:
        text = "|".join([v for v in values if v] + [self.shared_key])
        return hashlib.new(self.hash_algorithm, text.encode("utf-8")).hexdigest()

    def rules(self):
        return [
            Rule("/payment", methods=["GET", "POST"], endpoint="payment"),
            Rule("/payment/<order_id>/decision", methods=["POST"], endpoint="payer_page"),
            Rule("/webapi/transactionStatus", methods=["POST"], endpoint="status"),
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

    def _fields(self, txn: dict[str, Any], remote: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        """A transaction's fields in hash order: the order's own, or one of its further payments."""
        remote = remote or {"remote_id": txn["gateway_id"], "outcome": txn["outcome"], "paid_at": txn["paid_at"]}
        status, details = _STATUSES[remote["outcome"]]
        return [("orderID", txn["reference"]), ("remoteID", remote["remote_id"]),
                ("amount", f"{txn['amount'] // 100}.{txn['amount'] % 100:02d}"), ("currency", txn["currency"]),
                ("gatewayID", "106"),
                ("paymentDate", remote["paid_at"] or datetime.now(_WARSAW).strftime("%Y%m%d%H%M%S")),
                ("paymentStatus", status), ("paymentStatusDetails", details)]

    def _transaction_list(self, entries: list[list[tuple[str, str]]]) -> bytes:
        """A hashed `transactionList` of transactions (each its fields in hash order)."""
        digest = self._hash([self.service_id] + [value for fields in entries for _, value in fields])
        inner = "".join("<transaction>" + "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields if value)
                        + "</transaction>" for fields in entries)
        document = (f'<?xml version="1.0" encoding="UTF-8"?>\n<transactionList><serviceID>{self.service_id}</serviceID>'
                    f"<transactions>{inner}</transactions><hash>{digest}</hash></transactionList>")
        return document.encode("utf-8")

    def itn_xml(self, txn: dict[str, Any]) -> bytes:
        return self._transaction_list([self._fields(txn)])

    def _itn_form(self, xml: bytes) -> tuple[dict[str, str], bytes]:
        encoded = base64.b64encode(xml).decode("ascii")
        return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode({"transactions": encoded}).encode("ascii")

    def _build_notification(self, txn: dict[str, Any]):
        return self._itn_form(self.itn_xml(txn))

    def pay_again(self, key: str) -> str:
        """The payer pays the same order a second time (its page again, from the browser's history):
        a further transaction with its own remoteID, paid. Returns its remoteID; no ITN is sent."""
        with self._lock:
            txn = self._find(key)
            remote_id = str(next(self._remote_ids))
            txn.setdefault("further", []).append({"remote_id": remote_id, "outcome": "confirmed",
                                                  "paid_at": datetime.now(_WARSAW).strftime("%Y%m%d%H%M%S")})
            return remote_id

    def notify_many(self, items: list[tuple[str, str | None]]) -> int | None:
        """One ITN listing several transactions: (our reference or a remoteID of `pay_again`, the
        outcome to give it, or None to keep its own). Our answer is read per transaction. Returns the
        HTTP status our webhook answered."""
        with self._lock:
            entries, references = [], []
            for key, outcome in items:
                try:
                    txn, remote = self._find(key), None
                except KeyError:
                    txn, remote = next((t, r) for t in self._transactions.values() for r in t.get("further", [])
                                       if r["remote_id"] == key)
                if outcome is not None and remote is None:
                    self._mark(txn, outcome)
                entries.append(self._fields(txn, remote))
                references.append(txn["reference"])
            url = self.notify_url
        assert url, "Autopay: adres ITN ustawia się w panelu (notify_url)"
        headers, body = self._itn_form(self._transaction_list(entries))
        assert self._sender is not None, "symulator nie działa"
        try:
            response = self._sender.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            return None
        self._read_confirmations(references, response)
        return response.status_code

    # -- the status query --------------------------------------------------------------------------

    def on_status(self, request: Request) -> Response:
        form = request.form
        service_id, order_id, given = form.get("ServiceID", ""), form.get("OrderID", ""), form.get("Hash", "")
        expected = self._hash([service_id, order_id])
        if (request.headers.get("BmHeader") != "pay-bm" or service_id != self.service_id or not order_id
                or not hmac.compare_digest(expected.encode(), given.lower().encode())):
            body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<transaction><reason>'
                    "INVALID_HASH_OR_HEADER</reason><description>Nieprawidłowe parametry zapytania</description>"
                    "</transaction>")
            return Response(body, status=403, content_type="application/xml; charset=utf-8")
        with self._lock:
            txn = self._transactions.get(order_id)
            entries = []
            if txn is not None:
                entries.append(self._fields(txn))
                entries += [self._fields(txn, remote) for remote in txn.get("further", [])]
            document = self._transaction_list(entries)
        if self.tamper_status:
            document = document.replace(b"<amount>", b"<amount>1")
        return Response(document, content_type="application/xml; charset=utf-8")

    def _after_delivery(self, reference: str, response: httpx.Response) -> None:
        """Autopay reads the answer: a hashed confirmationList naming the order, or it sends the ITN again."""
        self._read_confirmations([reference], response)

    def _read_confirmations(self, references: list[str], response: httpx.Response) -> None:
        """Our answer to an ITN of these transactions: each `transactionConfirmed` in turn, the hash over
        serviceID and every orderID and confirmation. A transaction counts as confirmed only when the
        whole answer checks and says CONFIRMED for it."""
        words: list[str | None] = [None] * len(references)
        try:
            root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
            confirmed = root.findall("transactionsConfirmations/transactionConfirmed")
            pairs = [(c.findtext("orderID") or "", c.findtext("confirmation") or "") for c in confirmed]
            values = [root.findtext("serviceID") or ""] + [v for pair in pairs for v in pair]
            if (root.tag == "confirmationList" and values[0] == self.service_id
                    and [order for order, _ in pairs] == references
                    and hmac.compare_digest(self._hash(values).encode(), (root.findtext("hash") or "").encode())):
                words = [word for _, word in pairs]
        except (etree.XMLSyntaxError, ValueError):
            pass
        with self._lock:
            for reference, word in zip(references, words):
                txn = self._transactions.get(reference)
                if txn is not None:
                    txn["itn_confirmation"] = word or "INVALID"
                    txn["itn_confirmed"] = word == "CONFIRMED" and response.status_code == 200
