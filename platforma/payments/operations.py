"""The verbs that move payments. They take a session and never commit; gateway calls happen between
transactions, in the views and jobs that call these (DESIGN.md, rule 3).

Exactly once: a payment moves along `models.TRANSITIONS` by compare-and-set (an UPDATE that names the
state it expects), so of two notifications racing to confirm it one wins and the other changes nothing;
the confirming transaction posts the payment to the taxes ledger under the payment's reference, whose
postings carry a unique (source, source_key).
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from platforma.core.db import utcnow
from platforma.payments.gateways.base import GatewayReport, RefundReport, Registration
from platforma.payments.models import (
    FINAL_STATES,
    REFUND_TRANSITIONS,
    TRANSITIONS,
    IdempotencyKey,
    Payment,
    PaymentEvent,
    PaymentRefund,
)
from platforma.taxes import operations as tax_operations
from platforma.taxes.models import Posting, Taxpayer

log = logging.getLogger("platforma.payments")
WARSAW = ZoneInfo("Europe/Warsaw")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U to misread


class PaymentError(ValueError):
    """A refused request, with a message for the resident (Polish)."""


def new_reference() -> str:
    return "PF-" + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def add_event(session: Session, payment: Payment, kind: str, actor: str, *, from_state: str | None = None,
              to_state: str | None = None, details: dict[str, Any] | None = None) -> None:
    session.add(PaymentEvent(payment_id=payment.id, kind=kind, actor=actor, from_state=from_state,
                             to_state=to_state, details=_jsonable(details or {})))


def _jsonable(value: Any) -> Any:
    """Event details as JSON: amounts and dates as strings (never floats)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool, type(None))):
        return value
    return str(value)


def create_payment(
    session: Session,
    *,
    taxpayer_id: int,
    user_id: int | None,
    gateway: str,
    amount: Decimal,
    mode: str,
    designation: list[int],
    description: str,
    idempotency_key: str,
) -> tuple[Payment, bool]:
    """Write the intent before the gateway is called. Returns (payment, created); a repeated
    idempotency key returns the payment it started the first time."""
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise PaymentError("Kwota płatności musi być dodatnia i mieć najwyżej dwa miejsca po przecinku.")
    existing = session.get(IdempotencyKey, idempotency_key)
    if existing is not None:
        payment = session.get(Payment, existing.payment_id)
        if payment is None or payment.user_id != user_id:
            raise PaymentError("Ten formularz płatności już wykorzystano. Zacznij płatność od nowa.")
        return payment, False
    payment = Payment(reference=new_reference(), taxpayer_id=taxpayer_id, user_id=user_id, gateway=gateway,
                      amount=amount, mode=mode, designation=list(designation), description=description[:200],
                      state="created")
    session.add(payment)
    session.flush()
    session.add(IdempotencyKey(key=idempotency_key, user_id=user_id, payment_id=payment.id))
    add_event(session, payment, "created", "resident", to_state="created",
              details={"amount": amount, "mode": mode, "designation": list(designation), "gateway": gateway})
    session.flush()
    return payment, True


def move(session: Session, payment: Payment, to_state: str, actor: str, kind: str = "state",
         details: dict[str, Any] | None = None, **values: Any) -> bool:
    """Compare-and-set: move the payment from the state it was read in to `to_state`, if the table
    allows it and nobody moved it meanwhile. Returns False (and changes nothing) otherwise."""
    from_state = payment.state
    if to_state not in TRANSITIONS[from_state]:
        return False
    now = utcnow()
    result = session.execute(
        sa.update(Payment)
        .where(Payment.id == payment.id, Payment.state == from_state)
        .values(state=to_state, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(payment)
        return False
    # what the UPDATE wrote, without reading the row again
    for key, value in {"state": to_state, "updated_at": now, **values}.items():
        set_committed_value(payment, key, value)
    add_event(session, payment, kind, actor, from_state=from_state, to_state=to_state, details=details)
    return True


def record_registration(session: Session, payment: Payment, registration: Registration) -> None:
    values: dict[str, Any] = {}
    if registration.gateway_txn_id:
        values["gateway_txn_id"] = registration.gateway_txn_id
    if not move(session, payment, "pending", "gateway", kind="registered",
                details={"gateway_txn_id": registration.gateway_txn_id}, **values):
        add_event(session, payment, "registered", "gateway", details={"gateway_txn_id": registration.gateway_txn_id})


def record_registration_failure(session: Session, payment: Payment, message: str) -> None:
    move(session, payment, "failed", "gateway", kind="refused", details={"message": message})


def lock_payment(session: Session, reference: str, gateway: str) -> Payment | None:
    return session.scalars(
        sa.select(Payment).where(Payment.reference == reference, Payment.gateway == gateway).with_for_update()
    ).one_or_none()


@dataclass(frozen=True)
class Outcome:
    #: "confirmed", "moved", "unchanged", "unknown", "refused"
    result: str
    payment: Payment | None = None
    message: str = ""


def paid_on_of(report: GatewayReport) -> dt.date:
    """Art. 60 §1 OP: an online payment is made on the day the operator confirms it (Warsaw day)."""
    moment = report.paid_at or utcnow()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(WARSAW).date()


def apply_report(session: Session, gateway: str, report: GatewayReport, actor: str = "gateway") -> Outcome:
    """Record what a gateway reported (a notification already authenticated and, for money paid,
    confirmed with the gateway). A confirmation posts the payment to the ledger in this same
    transaction; a repeated report changes nothing."""
    payment = lock_payment(session, report.reference, gateway)
    if payment is None:
        log.warning("bramka %s: powiadomienie o nieznanej płatności %s (txn %s)", gateway, report.reference,
                    report.gateway_txn_id)
        return Outcome("unknown")
    if report.amount is not None and report.outcome == "confirmed" and report.amount != payment.amount:
        add_event(session, payment, "refused", actor, details={
            "reason": "amount", "reported": report.amount, "expected": payment.amount})
        log.error("bramka %s: płatność %s: kwota %s zamiast %s", gateway, payment.reference, report.amount, payment.amount)
        return Outcome("refused", payment, "kwota niezgodna z płatnością")
    if payment.state == "confirmed" and report.outcome == "confirmed" and actor == "gateway":
        note_second_payment(session, payment, report)
    if report.outcome == payment.state or payment.state == "confirmed":
        return Outcome("unchanged", payment)
    if report.outcome == "pending":
        return Outcome("unchanged", payment)
    if report.outcome == "confirmed":
        paid_on = paid_on_of(report)
        values: dict[str, Any] = {"paid_on": paid_on}
        if report.gateway_txn_id:
            values["gateway_txn_id"] = report.gateway_txn_id
        if not move(session, payment, "confirmed", actor, details={"gateway_txn_id": report.gateway_txn_id,
                                                                   **dict(report.details)}, **values):
            return Outcome("unchanged", payment)
        post_confirmed(session, payment)
        # a refund reported before the confirmation reached us waits for the payment's postings
        for refund in session.scalars(sa.select(PaymentRefund).where(
                PaymentRefund.payment_id == payment.id, PaymentRefund.state == "completed",
                PaymentRefund.settled_at.is_(None)).order_by(PaymentRefund.id).with_for_update()).all():
            settle_refund(session, payment, refund)
        return Outcome("confirmed", payment)
    if payment.state in FINAL_STATES:
        return Outcome("unchanged", payment)
    moved = move(session, payment, report.outcome, actor, details=dict(report.details))
    return Outcome("moved" if moved else "unchanged", payment)


def post_confirmed(session: Session, payment: Payment) -> None:
    """Post a confirmed payment to the taxes ledger, once: its reference is the postings' key. A letter's
    stamp duty is not a tax: it is settled with its letter instead (platforma.episma.fees)."""
    assert payment.state == "confirmed" and payment.paid_on is not None
    from platforma.episma.fees import settle_fee

    if settle_fee(session, payment):
        return
    posted = tax_operations.post_payment(
        session, taxpayer_id=payment.taxpayer_id, amount=payment.amount, paid_on=payment.paid_on,
        payment_ref=payment.reference, designated_installment_ids=list(payment.designation or []),
        source=payment.gateway,
    )
    if not posted.repeated:
        now = utcnow()
        session.execute(sa.update(Payment).where(Payment.id == payment.id).values(posted_at=now)
                        .execution_options(synchronize_session=False))
        set_committed_value(payment, "posted_at", now)
        add_event(session, payment, "posted", "system", details={
            "overpayment": posted.overpayment, "costs": posted.costs,
            "parts": [{"installment": p.key, "principal": p.principal, "interest": p.interest} for p in posted.parts]})
    else:
        session.refresh(payment)


def expire_or_query_due(session: Session, older_than: dt.datetime, limit: int = 500) -> list[tuple[int, str, str, str | None]]:
    """Payments left created or pending since before `older_than`: (id, gateway, reference, txn id)."""
    rows = session.execute(
        sa.select(Payment.id, Payment.gateway, Payment.reference, Payment.gateway_txn_id)
        .where(Payment.state.in_(("created", "pending")), Payment.updated_at < older_than)
        .order_by(Payment.updated_at).limit(limit)
    ).all()
    return [tuple(r) for r in rows]


def note_second_payment(session: Session, payment: Payment, report: GatewayReport) -> None:
    """The gateway confirms another transaction of a payment already confirmed (the payer paid twice,
    e.g. from the browser's history): the money is not posted a second time, and the payment's history
    says so once, for a clerk to return or assign it."""
    if not report.gateway_txn_id or not payment.gateway_txn_id or report.gateway_txn_id == payment.gateway_txn_id:
        return
    noted = session.scalars(sa.select(PaymentEvent.details).where(
        PaymentEvent.payment_id == payment.id, PaymentEvent.kind == "second_payment"))
    if any(details.get("gateway_txn_id") == report.gateway_txn_id for details in noted):
        return
    add_event(session, payment, "second_payment", "gateway", details={
        "gateway_txn_id": report.gateway_txn_id, "amount": report.amount, **dict(report.details)})
    log.error("bramka %s: płatność %s opłacona drugi raz (transakcja %s, %s zł): do zwrotu albo przypisania przez "
              "pracownika", payment.gateway, payment.reference, report.gateway_txn_id, report.amount)


# -- refunds -----------------------------------------------------------------------------------------

def refunded_on_of(report: RefundReport) -> dt.date:
    """The Warsaw day the money went back to the payer (the day the gateway says, else today)."""
    moment = report.refunded_at or utcnow()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(WARSAW).date()


def _payment_of_refund(session: Session, gateway: str, report: RefundReport) -> Payment | None:
    condition = (Payment.reference == report.reference) if report.reference else (
        Payment.gateway_txn_id == report.gateway_txn_id)
    return session.scalars(sa.select(Payment).where(condition, Payment.gateway == gateway).with_for_update()).one_or_none()


def apply_refund(session: Session, gateway: str, report: RefundReport, actor: str = "gateway") -> Outcome:
    """Record what a gateway reported about a refund: the refund row moves along REFUND_TRANSITIONS
    (compare-and-set), every report that changes something is an event of the payment, and a completed
    refund of a posted payment is reflected in the taxes ledger in this same transaction, once. A
    repeated or late report (a PENDING after FINALIZED) changes nothing."""
    payment = _payment_of_refund(session, gateway, report)
    if payment is None:
        log.warning("bramka %s: zwrot %s nieznanej płatności %s (txn %s)", gateway, report.refund_id, report.reference,
                    report.gateway_txn_id)
        return Outcome("unknown")
    details = {"refund_id": report.refund_id, "amount": report.amount, "outcome": report.outcome, **dict(report.details)}
    refund = session.scalars(sa.select(PaymentRefund).where(
        PaymentRefund.gateway == gateway, PaymentRefund.gateway_refund_id == report.refund_id).with_for_update()
    ).one_or_none()
    problem = _refund_problem(session, payment, refund, report)
    if problem:
        add_event(session, payment, "refused", actor, details={"reason": problem, **details})
        log.error("bramka %s: płatność %s: zwrot %s odrzucony: %s", gateway, payment.reference, report.refund_id, problem)
        return Outcome("refused", payment, problem)
    refunded_on = refunded_on_of(report) if report.outcome == "completed" else None
    if refund is None:
        refund = PaymentRefund(payment_id=payment.id, gateway=gateway, gateway_refund_id=report.refund_id,
                               amount=report.amount, currency=report.currency, state=report.outcome,
                               refunded_on=refunded_on)
        session.add(refund)
        session.flush()
        add_event(session, payment, "refund", actor, to_state=report.outcome, details=details)
        result = "moved"
    else:
        from_state, result = refund.state, "unchanged"
        if report.outcome in REFUND_TRANSITIONS[from_state] and _move_refund(session, refund, report.outcome, refunded_on):
            add_event(session, payment, "refund", actor, from_state=from_state, to_state=report.outcome, details=details)
            result = "moved"
    if refund.state == "completed":
        settle_refund(session, payment, refund)
    return Outcome(result, payment)


def _move_refund(session: Session, refund: PaymentRefund, to_state: str, refunded_on: dt.date | None) -> bool:
    """Compare-and-set, as `move` does for payments."""
    from_state = refund.state
    moved = session.execute(
        sa.update(PaymentRefund)
        .where(PaymentRefund.id == refund.id, PaymentRefund.state == from_state)
        .values(state=to_state, refunded_on=refunded_on, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(refund)
    return moved == 1


def _refund_problem(session: Session, payment: Payment, refund: PaymentRefund | None, report: RefundReport) -> str:
    """Why a refund report cannot be believed as it stands (empty: it can)."""
    if report.currency != payment.currency:
        return f"waluta zwrotu {report.currency} inna niż płatności {payment.currency}"
    if refund is not None:
        return "" if report.amount == refund.amount else f"kwota zwrotu {report.amount} zamiast {refund.amount}"
    returned = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(PaymentRefund.amount), 0)).where(
        PaymentRefund.payment_id == payment.id, PaymentRefund.state != "cancelled")) or Decimal("0.00")
    if report.outcome != "cancelled" and returned + report.amount > payment.amount:
        return f"zwroty ({returned + report.amount} zł) przekraczają kwotę płatności ({payment.amount} zł)"
    return ""


def settle_refund(session: Session, payment: Payment, refund: PaymentRefund) -> None:
    """Reflect a completed refund in the taxes ledger, once (ADR 0011).

    The money a gmina returns of a tax payment is a nadpłata refunded (art. 72 § 1, art. 77 OP): the
    refund is posted as a zwrot against the taxpayer's nadpłata, keyed by the gateway's refund id
    (unique (source, source_key): a repeat cannot post twice). What exceeds the nadpłata is money the
    ledger still counts as tax paid: which installments become unpaid again is a clerk's correction,
    so that part is not guessed; the refund shows it as not yet in the ledger."""
    if refund.state != "completed" or refund.settled_at is not None:
        return
    if payment.posted_at is None:
        log.warning("bramka %s: płatność %s: zwrot %s czeka na zaksięgowanie płatności", payment.gateway,
                    payment.reference, refund.gateway_refund_id)
        return
    assert refund.refunded_on is not None
    from platforma.episma.fees import settle_fee_refund

    if settle_fee_refund(session, payment, refund):
        # a letter's stamp duty never reached the tax ledger: its refund is recorded with the letter
        session.execute(sa.update(PaymentRefund).where(PaymentRefund.id == refund.id)
                        .values(settled_at=utcnow(), posted_amount=Decimal("0.00"))
                        .execution_options(synchronize_session=False))
        session.flush()
        session.refresh(refund)
        add_event(session, payment, "refund_posted", "system", details={
            "refund_id": refund.gateway_refund_id, "stamp_duty": True, "refunded_on": refund.refunded_on})
        return
    # under the lock post_payment takes; a nadpłata spent later (set off) cannot be refunded again
    overpaid = tax_operations.refundable_overpayment(session, payment.taxpayer_id, refund.refunded_on)
    posted = min(refund.amount, max(overpaid, Decimal("0.00")))
    if posted > 0:
        session.add(Posting(
            taxpayer_id=payment.taxpayer_id, kind="zwrot", amount=posted, booked_on=refund.refunded_on,
            value_date=refund.refunded_on, payment_ref=payment.reference, origin="system",
            reason=f"Zwrot przez operatora płatności {payment.gateway} ({refund.gateway_refund_id})"[:500],
            source=payment.gateway, source_key=f"{payment.reference}:zwrot:{refund.gateway_refund_id}"[:100]))
    session.execute(sa.update(PaymentRefund).where(PaymentRefund.id == refund.id)
                    .values(settled_at=utcnow(), posted_amount=posted).execution_options(synchronize_session=False))
    session.flush()
    session.refresh(refund)
    add_event(session, payment, "refund_posted", "system", details={
        "refund_id": refund.gateway_refund_id, "zwrot": posted, "not_posted": refund.amount - posted,
        "refunded_on": refund.refunded_on})
    if posted < refund.amount:
        log.error("płatność %s: zwrot %s (%s zł) przekracza nadpłatę podatnika %s; %s zł czeka na korektę konta przez "
                  "pracownika", payment.reference, refund.gateway_refund_id, refund.amount, payment.taxpayer_id,
                  refund.amount - posted)
