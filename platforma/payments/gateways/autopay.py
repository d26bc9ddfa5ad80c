"""Autopay (formerly Blue Media) web API: the payer is sent to Autopay with signed parameters, and
Autopay reports by an ITN (Instant Transaction Notification) that we answer with a signed confirmation.

Every hash is hex(SHA-256(the non-empty values, in their documented or document order, joined by "|",
then "|" and the shared key)). The ITN is a form field `transactions` holding base64 of an XML
`transactionList`; it is parsed with a hardened parser. One ITN may list several transactions: each is
recorded on its own and confirmed on its own in the answer (one `transactionConfirmed` per transaction,
hashed as serviceID, then each orderID and its confirmation, in order), as Autopay's own WooCommerce
plugin answers. Until a transaction is confirmed with CONFIRMED, Autopay keeps sending it. The ITN
address and the return address are set in Autopay's panel for the service.

The status of a transaction is asked with `POST /webapi/transactionStatus` (form ServiceID, OrderID and
their Hash, header `BmHeader: pay-bm`): the answer lists every transaction started with that OrderID,
hashed as serviceID, then for each transaction orderID, remoteID, amount, currency, gatewayID,
paymentDate, paymentStatus, paymentStatusDetails (Autopay's documentation, "Status transakcji").
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import ClassVar, Literal
from urllib.parse import parse_qs, urlencode

from lxml import etree
from pydantic import (
    BaseModel,
    Field,
)

from platforma.core.registry import CheckResult, registry
from platforma.payments.gateways._http import GatewayHttp
from platforma.payments.gateways._signing import (
    HttpGatewayOptions,
    Key,
    amount_text,
    bounded,
    check_source,
    local_to_utc,
    parse_amount_text,
    parse_xml,
    same_secret_text,
)
from platforma.payments.gateways.base import (
    GatewayRejected,
    GatewayReport,
    HttpAnswer,
    InvalidSignature,
    MalformedNotification,
    PaymentGateway,
    PaymentRequest,
    Registration,
    Report,
)

NAME = "Autopay"
#: the start-of-transaction parameters in the order their hash takes them
START_FIELDS = ("ServiceID", "OrderID", "Amount", "Description", "GatewayID", "Currency", "CustomerEmail")
#: what Autopay accepts in a description (letters with Polish diacritics, digits, a few signs)
_DESCRIPTION_DROP = re.compile(r"[^0-9A-Za-zĄĆĘŁŃÓŚŹŻąćęłńóśźż .,:;/_\-]")
_DESCRIPTION_MAX = 79

#: FAILURE is refined by paymentStatusDetails
_FAILURE_DETAILS = {"REJECTED_BY_USER": "cancelled", "CANCELLED": "cancelled", "EXPIRED": "expired"}
#: the transaction fields of an ITN and of a status answer, in the order their hash takes them
TRANSACTION_FIELDS = ("orderID", "remoteID", "amount", "currency", "gatewayID", "paymentDate", "paymentStatus",
                      "paymentStatusDetails")
STATUS_PATH = "/webapi/transactionStatus"


# -- hashes (pure functions, tested against the published vectors) -------------------------------

def hash_values(values: Sequence[str], shared_key: str, separator: str = "|", algorithm: str = "sha256") -> str:
    """hex(ALG(non-empty values joined by the separator + separator + shared key))."""
    text = separator.join([v for v in values if v != ""] + [shared_key])
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def document_values(root: etree._Element) -> list[str]:
    """The text of every leaf element in document order, except `hash`: what an ITN hash covers."""
    values = []
    for element in root.iter():
        if not isinstance(element.tag, str) or len(element) or element.tag == "hash":
            continue
        values.append(element.text or "")
    return values


def confirmation_xml(service_id: str, items: Sequence[tuple[str, bool]], shared_key: str,
                     separator: str = "|", algorithm: str = "sha256") -> bytes:
    """The signed answer to an ITN: each transaction's orderID with CONFIRMED or NOTCONFIRMED, in the
    ITN's order; the hash takes serviceID, then each orderID and its confirmation."""
    root = etree.Element("confirmationList")
    etree.SubElement(root, "serviceID").text = service_id
    confirmations = etree.SubElement(root, "transactionsConfirmations")
    hashed = [service_id]
    for order_id, confirmed in items:
        word = "CONFIRMED" if confirmed else "NOTCONFIRMED"
        confirmed_el = etree.SubElement(confirmations, "transactionConfirmed")
        etree.SubElement(confirmed_el, "orderID").text = order_id
        etree.SubElement(confirmed_el, "confirmation").text = word
        hashed += [order_id, word]
    etree.SubElement(root, "hash").text = hash_values(hashed, shared_key, separator, algorithm)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# -- the plugin ------------------------------------------------------------------------------------

class AutopayOptions(HttpGatewayOptions):
    #: the service id (ServiceID) Autopay gave the gmina
    service_id: str = Field(pattern=r"^\d{1,12}$")
    #: the shared key (klucz współdzielony) of the service
    shared_key: Key
    base_url: str = "https://pay.autopay.eu"
    #: as configured for the service in Autopay's panel
    hash_algorithm: Literal["sha256", "sha512"] = "sha256"
    separator: str = Field(default="|", min_length=1, max_length=1)


@registry.register
class Autopay(PaymentGateway):
    id: ClassVar[str] = "autopay"
    name: ClassVar[str] = "Autopay (Blue Media)"
    Options: ClassVar[type[BaseModel]] = AutopayOptions
    options: AutopayOptions

    def __init__(self, options: AutopayOptions):
        super().__init__(options)
        self.http = GatewayHttp(NAME, options.base_url, options.timeout_seconds,
                                secrets=(options.shared_key.get_secret_value(),))

    def _hash(self, values: Sequence[str]) -> str:
        return hash_values(values, self.options.shared_key.get_secret_value(), self.options.separator,
                           self.options.hash_algorithm)

    def check_config(self) -> CheckResult:
        # options were validated when the plugin was made; Autopay offers no call to test the key with
        if len(self.options.shared_key.get_secret_value()) < 16:
            return CheckResult(False, "Autopay: klucz współdzielony jest podejrzanie krótki (mniej niż 16 znaków)")
        return CheckResult(True, f"Autopay: konfiguracja serwisu {self.options.service_id} poprawna (sprawdzona bez "
                                 "połączenia); adres ITN i adres powrotu ustaw w panelu Autopay")

    def start_parameters(self, request: PaymentRequest) -> list[tuple[str, str]]:
        """The signed parameters of the start of a transaction, in hash order."""
        description = _DESCRIPTION_DROP.sub("", request.description).strip()[:_DESCRIPTION_MAX]
        values = {
            "ServiceID": self.options.service_id,
            "OrderID": request.reference,
            "Amount": amount_text(request.amount),
            "Description": description,
            "GatewayID": "",
            "Currency": request.currency,
            "CustomerEmail": request.email,
        }
        params = [(name, values[name]) for name in START_FIELDS if values[name] != ""]
        return params + [("Hash", self._hash([value for _, value in params]))]

    def register(self, request: PaymentRequest) -> Registration:
        # no call: the resident's browser carries the signed parameters to Autopay
        query = urlencode(self.start_parameters(request))
        return Registration(redirect_url=f"{self.options.base_url}/payment?{query}", gateway_txn_id=None)

    def parse_notification(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> GatewayReport:
        """An ITN of one transaction (an ITN of several: `parse_notification_reports`)."""
        reports = self.parse_notification_reports(headers, body, remote_addr)
        if len(reports) != 1:
            raise MalformedNotification(f"Autopay: powiadomienie ma {len(reports)} transakcji, oczekiwano jednej")
        return reports[0]

    def parse_notification_reports(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> list[Report]:
        check_source(remote_addr, self.options.allowed_sources, NAME)
        root = self.read_itn(body)
        return list(self.reports_from_itn(root))

    def read_itn(self, body: bytes) -> etree._Element:
        """The ITN's XML, its hash checked; raises InvalidSignature or MalformedNotification."""
        bounded(body, NAME)
        try:
            form = parse_qs(body.decode("ascii"), strict_parsing=False, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise MalformedNotification("Autopay: powiadomienie nie jest formularzem") from None
        encoded = form.get("transactions")
        if not encoded or len(encoded) != 1:
            raise MalformedNotification("Autopay: w powiadomieniu brak pola transactions")
        # a "+" not escaped by the sender arrives as a space
        text = re.sub(r"\s", "", encoded[0].replace(" ", "+"))
        try:
            xml = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedNotification("Autopay: pole transactions nie jest w base64") from None
        return self.check_itn_xml(xml)

    def check_itn_xml(self, xml: bytes) -> etree._Element:
        root = parse_xml(xml, NAME)
        if root.tag != "transactionList":
            raise MalformedNotification("Autopay: powiadomienie nie jest listą transakcji (transactionList)")
        given = root.findtext("hash")
        if not given:
            raise InvalidSignature("Autopay: brak skrótu (hash) w powiadomieniu")
        if not same_secret_text(self._hash(document_values(root)), given.strip().lower()):
            raise InvalidSignature("Autopay: niezgodny skrót (hash) powiadomienia")
        if root.findtext("serviceID") != self.options.service_id:
            raise InvalidSignature("Autopay: powiadomienie dotyczy innego serwisu (serviceID)")
        return root

    def reports_from_itn(self, root: etree._Element) -> list[GatewayReport]:
        """Each transaction of an ITN whose hash checked, in the ITN's order."""
        transactions = root.findall("transactions/transaction")
        if not transactions:
            raise MalformedNotification("Autopay: powiadomienie nie zawiera żadnej transakcji")
        return [self.report_of(transaction) for transaction in transactions]

    def report_of(self, transaction: etree._Element) -> GatewayReport:
        """One `transaction` element (of an ITN or a status answer) as a report."""
        fields = {child.tag: (child.text or "") for child in transaction if isinstance(child.tag, str) and not len(child)}
        for name in ("orderID", "remoteID", "amount", "currency", "paymentStatus"):
            if not fields.get(name):
                raise MalformedNotification(f"Autopay: w powiadomieniu brak pola {name}")
        status, status_details = fields["paymentStatus"], fields.get("paymentStatusDetails", "")
        if status == "SUCCESS":
            outcome = "confirmed"
        elif status == "PENDING":
            outcome = "pending"
        elif status == "FAILURE":
            outcome = _FAILURE_DETAILS.get(status_details, "failed")
        else:
            raise MalformedNotification(f"Autopay: nieznany status płatności {status[:30]!r}")
        paid_at = None
        if outcome == "confirmed" and re.fullmatch(r"\d{14}", fields.get("paymentDate", "")):
            paid_at = local_to_utc(datetime.strptime(fields["paymentDate"], "%Y%m%d%H%M%S"))
        details = {k: fields[k] for k in TRANSACTION_FIELDS if k in fields}
        return GatewayReport(
            reference=fields["orderID"],
            outcome=outcome,  # type: ignore[arg-type]
            gateway_txn_id=fields["remoteID"],
            amount=parse_amount_text(fields["amount"]),
            currency=fields["currency"],
            paid_at=paid_at,
            details={"serviceID": self.options.service_id, **details},
        )

    def acknowledge(self, report: Report | None, accepted: bool) -> HttpAnswer:
        if report is None:
            return HttpAnswer(200, b"nieznana transakcja")
        return self.acknowledge_reports([(report, accepted)])

    def acknowledge_reports(self, results: Sequence[tuple[Report, bool]]) -> HttpAnswer:
        """One `transactionConfirmed` per transaction of the ITN: Autopay sends again only those
        answered NOTCONFIRMED (a temporary failure on our side)."""
        if not results:
            return HttpAnswer(200, b"nieznana transakcja")
        body = confirmation_xml(self.options.service_id, [(report.reference, accepted) for report, accepted in results],
                                self.options.shared_key.get_secret_value(), self.options.separator,
                                self.options.hash_algorithm)
        return HttpAnswer(200, body, "application/xml; charset=utf-8")

    # -- the status query (the reconciliation job) --

    def status(self, reference: str, gateway_txn_id: str | None) -> GatewayReport | None:
        """Where the transactions started with this OrderID stand. A paid one wins (several paid: the
        payer paid twice, which the answer's details say); else one still pending; else the last
        failure; no transaction at all: None (the job expires the payment later)."""
        response = self.http.request(
            "POST", STATUS_PATH, headers={"BmHeader": "pay-bm", "Accept": "application/xml"},
            data={"ServiceID": self.options.service_id, "OrderID": reference,
                  "Hash": self._hash([self.options.service_id, reference])})
        try:
            root = parse_xml(response.content, NAME)
        except MalformedNotification as exc:
            raise GatewayRejected(f"Autopay: nieczytelna odpowiedź o status transakcji ({exc})") from None
        transactions = root.findall(".//transaction")
        reason = root.findtext("reason") or root.findtext(".//reason")
        if reason and not any(t.find("orderID") is not None for t in transactions):
            raise GatewayRejected(f"Autopay: zapytanie o status odrzucone ({reason[:100]})")
        given = root.findtext("hash")
        values = [root.findtext("serviceID") or ""]
        for transaction in transactions:
            values += [transaction.findtext(name) or "" for name in TRANSACTION_FIELDS]
        if not given or not same_secret_text(self._hash(values), given.strip().lower()):
            raise GatewayRejected("Autopay: niezgodny skrót (hash) odpowiedzi o status transakcji")
        if values[0] != self.options.service_id:
            raise GatewayRejected("Autopay: odpowiedź o status dotyczy innego serwisu (serviceID)")
        try:
            reports = [self.report_of(transaction) for transaction in transactions]
        except MalformedNotification as exc:
            raise GatewayRejected(str(exc)) from None
        if any(report.reference != reference for report in reports):
            raise GatewayRejected("Autopay: odpowiedź o status dotyczy innej transakcji (orderID)")
        paid = [report for report in reports if report.outcome == "confirmed"]
        if paid:
            chosen = next((r for r in paid if r.gateway_txn_id == gateway_txn_id), paid[0])
            if len(paid) > 1:
                chosen = replace(chosen, details={**chosen.details, "paid_transactions": len(paid)})
            return chosen
        pending = [report for report in reports if report.outcome == "pending"]
        if pending:
            return pending[-1]
        return reports[-1] if reports else None
