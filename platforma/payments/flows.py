"""What spans more than one transaction: registering with a gateway, handling its notification,
asking it about payments left pending. The gateway's HTTP calls happen between transactions, never
inside one (DESIGN.md, rule 3); every state change goes through `operations`.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.config import Settings
from platforma.core.db import DriverQuery, transaction, utcnow
from platforma.core.registry import registry
from platforma.core.runtime import Runtime
from platforma.payments import operations
from platforma.payments.gateways import load_built_in
from platforma.payments.gateways.base import (
    GatewayError,
    GatewayRejected,
    GatewayReport,
    GatewayUnavailable,
    HttpAnswer,
    InvalidSignature,
    MalformedNotification,
    PaymentGateway,
    PaymentRequest,
    RefundReport,
)
from platforma.payments.models import Payment, PaymentRefund

log = logging.getLogger("platforma.payments")


def configured_gateways(runtime: Runtime) -> dict[str, PaymentGateway]:
    """The gateways this instance offers, instantiated once per process, in the configured order."""
    cached = runtime.extras.get("payments.gateways")
    if cached is None:
        cached = build_gateways(runtime.settings)
        runtime.extras["payments.gateways"] = cached
    return cached


def build_gateways(settings: Settings) -> dict[str, PaymentGateway]:
    load_built_in()
    out: dict[str, PaymentGateway] = {}
    for gateway_id in settings.payments.gateways:
        plugin = registry.instantiate(gateway_id, settings.plugins.options.get(gateway_id, {}))
        if not isinstance(plugin, PaymentGateway):
            raise ValueError(f"wtyczka {gateway_id} nie jest bramką płatności")
        out[gateway_id] = plugin
    return out


def gateway_problems(settings: Settings) -> list[str]:
    """Configuration problems of the payments section, for start-up (ConfigError)."""
    problems = []
    if "sandbox" in settings.payments.gateways and not settings.demo:
        problems.append("payments.gateways: piaskownica (sandbox) jest dostępna tylko w instancji demonstracyjnej (demo = true)")
    try:
        build_gateways(settings)
    except (KeyError, ValueError) as exc:
        problems.append(f"payments.gateways: {exc.args[0]}")
    return problems


@dataclass(frozen=True)
class Started:
    payment_id: int
    reference: str
    redirect_url: str | None
    #: Polish message when the gateway could not take the payment
    error: str = ""


def register_with_gateway(runtime: Runtime, payment_id: int, *, email: str, return_url: str, notify_url: str,
                          customer_ip: str) -> Started:
    """Called after the transaction that created the payment committed: ask the gateway, then record
    its answer in a new transaction."""
    with transaction(runtime.session_factory) as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None
        request = PaymentRequest(reference=payment.reference, amount=payment.amount, description=payment.description,
                                 email=email, return_url=return_url, notify_url=notify_url, customer_ip=customer_ip,
                                 idempotency_key=payment.reference)
        gateway_id, reference, state = payment.gateway, payment.reference, payment.state
    if state != "created":
        # a repeated form: the payment is already with the gateway
        return Started(payment_id, reference, None)
    gateway = configured_gateways(runtime)[gateway_id]
    try:
        registration = gateway.register(request)
    except GatewayError as exc:
        with transaction(runtime.session_factory) as session:
            payment = session.get(Payment, payment_id)
            operations.record_registration_failure(session, payment, str(exc))
        log.warning("bramka %s: rejestracja płatności %s nieudana: %s", gateway_id, reference, exc)
        temporary = isinstance(exc, GatewayUnavailable)
        return Started(payment_id, reference, None, error=(
            "Operator płatności chwilowo nie odpowiada. Spróbuj ponownie za kilka minut albo zapłać przelewem."
            if temporary else "Operator płatności odrzucił płatność. Zapłać przelewem albo wybierz innego operatora."))
    with transaction(runtime.session_factory) as session:
        payment = session.get(Payment, payment_id)
        operations.record_registration(session, payment, registration)
    return Started(payment_id, reference, registration.redirect_url)


def handle_notification(runtime: Runtime, gateway_id: str, headers: Mapping[str, str], body: bytes,
                        remote_addr: str) -> HttpAnswer:
    """A gateway's notification, from authentication to the answer the gateway expects.

    Unknown payment: 200 and a log line (the gateway stops retrying something we never sent).
    Wrong signature: 403, logged, nothing changed. Malformed: 400. A temporary failure (the gateway's
    verify call, our database): 503, so that the gateway sends it again. A repeated notification
    changes nothing and gets the same answer as the first. A notification that reports several
    transactions (an Autopay ITN) has each recorded on its own, in its own transaction, and the answer
    says which were recorded.
    """
    gateway = configured_gateways(runtime).get(gateway_id)
    if gateway is None:
        return HttpAnswer(404, b"unknown gateway")
    try:
        reports = gateway.parse_notification_reports(headers, body, remote_addr)
    except InvalidSignature as exc:
        log.warning("bramka %s: odrzucono powiadomienie z %s: %s", gateway_id, remote_addr, exc)
        return HttpAnswer(403, b"invalid signature")
    except MalformedNotification as exc:
        log.warning("bramka %s: nieczytelne powiadomienie z %s: %s", gateway_id, remote_addr, exc)
        return HttpAnswer(400, b"malformed notification")
    results = []
    for report in reports:
        if isinstance(report, RefundReport):
            recorded = _record_refund(runtime, gateway_id, report)
        else:
            recorded = _record_report(runtime, gateway, gateway_id, report)
        results.append((report, recorded))
    return gateway.acknowledge_reports(results)


#: what a notification needs to know before deciding anything: read outside a transaction (money.Money
#: keeps integer grosze)
_PAYMENT_STATE = DriverQuery(
    "SELECT amount, state, gateway_txn_id FROM payment WHERE reference = :reference AND gateway = :gateway",
    ("amount", "state", "gateway_txn_id"))


def _record_report(runtime: Runtime, gateway: PaymentGateway, gateway_id: str, report: GatewayReport) -> bool:
    """One payment's report: confirmed with the gateway where it must be (outside any transaction),
    then recorded. False: a temporary failure, the gateway must send it again."""
    label = f"bramka {gateway_id}: płatność {report.reference}"
    try:
        found = _PAYMENT_STATE.read(runtime.engine, reference=report.reference, gateway=gateway_id)
    except (sa.exc.OperationalError, sa.exc.DBAPIError) as exc:
        log.error("%s: błąd bazy danych, bramka ponowi: %s", label, exc)
        return False
    if found is None:
        log.warning("bramka %s: powiadomienie o nieznanej płatności %s", gateway_id, report.reference)
        return True
    expected, state = Decimal(found.amount) / 100, found.state
    if state == "confirmed" and report.outcome == "confirmed" and report.gateway_txn_id in (None, found.gateway_txn_id):
        return True  # the same confirmation again (the gateway repeats itself): nothing to change
    if report.outcome == "confirmed" and state != "confirmed":
        try:
            report = gateway.confirm(report, expected)
        except GatewayUnavailable as exc:
            log.warning("%s: potwierdzenie chwilowo niemożliwe: %s", label, exc)
            return False
        except GatewayRejected as exc:
            log.error("%s: bramka nie potwierdziła transakcji: %s", label, exc)
            report = GatewayReport(reference=report.reference, outcome="failed", gateway_txn_id=report.gateway_txn_id,
                                   amount=report.amount, details={"verify": str(exc)})

    def twin_recorded(session) -> bool:
        # another payment holding this transaction id is no twin: not acknowledged, or the gateway
        # would never send it again and the money would be lost to the ledger
        state = session.scalar(sa.select(Payment.state).where(
            Payment.reference == report.reference, Payment.gateway == gateway_id))
        return not (report.outcome == "confirmed" and state != "confirmed")

    return _recorded(runtime, label, lambda session: operations.apply_report(session, gateway_id, report), twin_recorded)


def _record_refund(runtime: Runtime, gateway_id: str, report: RefundReport) -> bool:
    """One refund's report, recorded in its own transaction. False: a temporary failure."""
    return _recorded(
        runtime, f"bramka {gateway_id}: zwrot {report.refund_id}",
        lambda session: operations.apply_refund(session, gateway_id, report),
        lambda session: session.scalar(sa.select(PaymentRefund.state).where(
            PaymentRefund.gateway == gateway_id, PaymentRefund.gateway_refund_id == report.refund_id)) is not None)


#: how long a notification waits for a payment's or an account's lock before it is answered 503
NOTIFICATION_LOCK_TIMEOUT_MS = 5000


def _recorded(runtime: Runtime, label: str, record: Callable[[Session], object],
              twin_recorded: Callable[[Session], bool]) -> bool:
    """Run `record` in a transaction of its own. False (the gateway must send it again) on a database
    error, and on a uniqueness error unless a racing twin committed the same work first (unique
    postings, transaction or refund ids), which then stands."""
    try:
        with transaction(runtime.session_factory) as session:
            if session.get_bind().dialect.name == "postgresql":
                # an account locked for long (a statement import posting to it) is not waited for: the
                # gateway is answered 503 and sends the notification again, and the web server's threads
                # are not all left waiting on one import
                session.execute(sa.text(f"SET LOCAL lock_timeout = {int(NOTIFICATION_LOCK_TIMEOUT_MS)}"))
            record(session)
    except sa.exc.OperationalError as exc:
        log.error("%s: błąd bazy danych, bramka ponowi: %s", label, exc)
        return False
    except sa.exc.IntegrityError as exc:
        with transaction(runtime.session_factory) as session:
            done = twin_recorded(session)
        if not done:
            log.error("%s: nie zapisano (%s), bramka ponowi: %s", label, exc.orig.__class__.__name__, exc.orig)
            return False
        log.info("%s: równoległe powiadomienie już zapisane (%s)", label, exc.orig.__class__.__name__)
    return True


def reconcile_pending(runtime: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """The job for payments left created or pending: ask the gateway where it can; a payment still
    unconfirmed well after the expiry time is expired (a later confirmation still wins)."""
    now = now or utcnow()
    expiry = dt.timedelta(minutes=runtime.settings.payments.pending_expiry_minutes)
    counts = {"asked": 0, "confirmed": 0, "expired": 0, "unchanged": 0, "unavailable": 0}
    with transaction(runtime.session_factory) as session:
        due = operations.expire_or_query_due(session, now - expiry)
    gateways = configured_gateways(runtime)
    for payment_id, gateway_id, reference, txn_id in due:
        gateway = gateways.get(gateway_id)
        report = None
        if gateway is not None:
            counts["asked"] += 1
            try:
                report = gateway.status(reference, txn_id)
                if report is not None and report.outcome == "confirmed":
                    with transaction(runtime.session_factory) as session:
                        expected = session.get(Payment, payment_id).amount
                    report = gateway.confirm(report, expected)
            except GatewayUnavailable:
                counts["unavailable"] += 1
                continue
            except GatewayRejected as exc:
                report = GatewayReport(reference=reference, outcome="failed", gateway_txn_id=txn_id, details={"query": str(exc)})
        with transaction(runtime.session_factory) as session:
            if report is not None and report.outcome != "pending":
                outcome = operations.apply_report(session, gateway_id, report, actor="job")
                counts["confirmed" if outcome.result == "confirmed" else "unchanged"] += 1
                continue
            payment = session.get(Payment, payment_id)
            # never expire within the hour after creation whatever the setting: the resident may be paying
            if payment.updated_at < now - max(expiry, dt.timedelta(hours=1)) and operations.move(
                    session, payment, "expired", "job", details={"after_minutes": int(expiry.total_seconds() // 60)}):
                counts["expired"] += 1
            else:
                counts["unchanged"] += 1
    return counts
