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

from platforma.core.db import utcnow
from platforma.payments.gateways.base import GatewayReport, Registration
from platforma.payments.models import FINAL_STATES, TRANSITIONS, IdempotencyKey, Payment, PaymentEvent
from platforma.taxes import operations as tax_operations

log = logging.getLogger("platforma.payments")
WARSAW = ZoneInfo("Europe/Warsaw")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U to misread


class PaymentError(ValueError):
    """A refused request, with a message for the resident (Polish)."""


def new_reference() -> str:
    return "PF-" + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def warsaw_today() -> dt.date:
    return dt.datetime.now(WARSAW).date()


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
    session.refresh(payment)
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
        return Outcome("confirmed", payment)
    if payment.state in FINAL_STATES:
        return Outcome("unchanged", payment)
    moved = move(session, payment, report.outcome, actor, details=dict(report.details))
    return Outcome("moved" if moved else "unchanged", payment)


def post_confirmed(session: Session, payment: Payment) -> None:
    """Post a confirmed payment to the taxes ledger, once: its reference is the postings' key."""
    assert payment.state == "confirmed" and payment.paid_on is not None
    posted = tax_operations.post_payment(
        session, taxpayer_id=payment.taxpayer_id, amount=payment.amount, paid_on=payment.paid_on,
        payment_ref=payment.reference, designated_installment_ids=list(payment.designation or []),
        source=payment.gateway,
    )
    if not posted.repeated:
        session.execute(sa.update(Payment).where(Payment.id == payment.id).values(posted_at=utcnow())
                        .execution_options(synchronize_session=False))
        add_event(session, payment, "posted", "system", details={
            "overpayment": posted.overpayment, "costs": posted.costs,
            "parts": [{"installment": p.key, "principal": p.principal, "interest": p.interest} for p in posted.parts]})
    session.refresh(payment)


def expire_or_query_due(session: Session, older_than: dt.datetime, limit: int = 500) -> list[tuple[int, str, str, str | None]]:
    """Payments left created or pending since before `older_than`: (id, gateway, reference, txn id)."""
    rows = session.execute(
        sa.select(Payment.id, Payment.gateway, Payment.reference, Payment.gateway_txn_id)
        .where(Payment.state.in_(("created", "pending")), Payment.updated_at < older_than)
        .order_by(Payment.updated_at).limit(limit)
    ).all()
    return [tuple(r) for r in rows]
