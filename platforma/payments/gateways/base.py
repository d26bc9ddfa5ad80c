"""The one interface every payment gateway plugin implements.

Plugins report, the core decides (DESIGN.md, rule 6): a gateway turns what it saw into a
`GatewayReport`; only `platforma.payments.operations` moves a payment's state. A plugin never touches
the database and never commits; its HTTP calls are made outside any transaction.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal, Mapping, Sequence

from platforma.core.registry import Plugin

Outcome = Literal["pending", "confirmed", "failed", "cancelled", "expired"]
#: a refund: ordered (pending), money returned to the payer (completed), withdrawn (cancelled)
RefundOutcome = Literal["pending", "completed", "cancelled"]


class GatewayError(Exception):
    """Base of the errors a gateway raises; `str()` is a Polish message fit for a log and a clerk."""


class GatewayUnavailable(GatewayError):
    """A temporary failure (timeout, connection refused, 5xx): try again later."""


class GatewayRejected(GatewayError):
    """The gateway refused the request for good (4xx, bad credentials, invalid amount)."""


class InvalidSignature(GatewayError):
    """A notification whose signature (or source) does not check: answered 400, logged, ignored."""


class MalformedNotification(GatewayError):
    """A notification that cannot be read (not JSON/XML, missing fields): answered 400."""


@dataclass(frozen=True)
class PaymentRequest:
    #: our own reference of the payment, unique, at most 32 characters of [A-Za-z0-9-]:
    #: sent as P24's sessionId, PayU's extOrderId, Paynow's externalId, Autopay's OrderID
    reference: str
    amount: Decimal
    description: str
    email: str
    #: where the resident's browser comes back to after paying
    return_url: str
    #: where the gateway sends its notifications (our webhook for this gateway)
    notify_url: str
    customer_ip: str = "127.0.0.1"
    currency: str = "PLN"
    language: str = "pl"
    #: the idempotency key of this registration (Paynow's Idempotency-Key header)
    idempotency_key: str = ""


@dataclass(frozen=True)
class Registration:
    """The answer to a registration: where to send the resident, and the gateway's id if known yet."""

    redirect_url: str
    #: P24: the token; PayU: orderId; Paynow: paymentId; Autopay: None until the ITN
    gateway_txn_id: str | None = None


@dataclass(frozen=True)
class GatewayReport:
    """What the gateway says about one payment (from a notification or a status query)."""

    reference: str
    outcome: Outcome
    #: the gateway's own id of the transaction (P24 orderId, PayU orderId, Paynow paymentId,
    #: Autopay RemoteID): unique per gateway, under a database constraint
    gateway_txn_id: str | None
    amount: Decimal | None = None
    currency: str = "PLN"
    #: when the gateway says the money was paid (UTC), if it says
    paid_at: datetime | None = None
    #: the notification's or answer's fields, for the payment's event history (no secrets)
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundReport:
    """What the gateway says about a refund of a payment. The treasury orders refunds in the gateway's
    panel; we only learn of them (PayU notifies each refund's status)."""

    #: our payment's reference, or "" when the gateway names only its own transaction id
    reference: str
    #: the gateway's id of the refunded transaction (PayU orderId)
    gateway_txn_id: str | None
    #: the gateway's id of the refund: unique per gateway, under a database constraint
    refund_id: str
    outcome: RefundOutcome
    amount: Decimal
    currency: str = "PLN"
    #: when the money went back to the payer (UTC), for a completed refund, if the gateway says
    refunded_at: datetime | None = None
    #: the notification's fields, for the payment's event history (no secrets)
    details: Mapping[str, object] = field(default_factory=dict)


#: what one notification reports: a payment's state or a refund's
Report = GatewayReport | RefundReport


@dataclass(frozen=True)
class HttpAnswer:
    """What our webhook answers the gateway (Autopay expects a signed XML confirmation)."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


class PaymentGateway(Plugin, ABC):
    kind: ClassVar[str] = "PaymentGateway"
    #: notifications are authenticated by a signature; where a gateway signs nothing, by source address
    #: (`allowed_sources` option)

    @abstractmethod
    def register(self, request: PaymentRequest) -> Registration:
        """Register the payment with the gateway (an HTTP call). Raises GatewayUnavailable or
        GatewayRejected."""

    @abstractmethod
    def parse_notification(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> Report:
        """Authenticate and read one notification. Raises InvalidSignature (nothing is trusted before
        this passes) or MalformedNotification. Makes no HTTP call."""

    def parse_notification_reports(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> list[Report]:
        """Every report one notification carries, in its order: one for most gateways; an Autopay ITN
        may list several transactions. The core records each independently."""
        return [self.parse_notification(headers, body, remote_addr)]

    def confirm(self, report: GatewayReport, expected_amount: Decimal) -> GatewayReport:
        """Called for a notification that reports money paid, before the core records it as confirmed.
        Przelewy24 must verify the transaction (PUT /api/v1/transaction/verify) or it is returned to the
        payer; other gateways return the report as it is. Raises GatewayUnavailable (the core answers 503
        so the gateway retries) or GatewayRejected (the verify failed: the payment is failed)."""
        return report

    def acknowledge(self, report: Report | None, accepted: bool) -> HttpAnswer:
        """The webhook's answer once the core has recorded the report (accepted) or could not (a
        temporary failure: 503 so the gateway retries). An unknown payment is accepted too (logged):
        the gateway must stop sending it."""
        if accepted:
            return HttpAnswer(200, b"OK")
        return HttpAnswer(503, b"retry")

    def acknowledge_reports(self, results: Sequence[tuple[Report, bool]]) -> HttpAnswer:
        """The answer to a notification whose reports the core recorded (True) or could not (False):
        a gateway that cannot confirm them one by one sends the whole notification again."""
        first = results[0][0] if results else None
        return self.acknowledge(first, all(accepted for _, accepted in results))

    def status(self, reference: str, gateway_txn_id: str | None) -> GatewayReport | None:
        """Ask the gateway where a payment stands (the reconciliation job), or None where the gateway
        offers no such query. Raises GatewayUnavailable."""
        return None
