"""A letter's stamp duty (opłata skarbowa) paid online through the payments module.

The stamp duty is not a tax liability in the taxpayer's account, so a confirmed payment of it is not
posted to the ledger: it is recorded with the letter (``letter_fee``) and the letter's history says it
was paid, exactly once (the payment moves to confirmed once; the event is written by that move).
"""
from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.core.db import utcnow
from platforma.episma.models import Letter, LetterEvent, LetterFee


def start_fee_payment(session: Session, letter: Letter, *, user_id: int, gateway: str, idempotency_key: str):
    """The payment of the letter's stamp duty, written before the gateway is called (its intent)."""
    from platforma.payments import operations as payment_ops

    if letter.stamp_duty is None or letter.status == "draft":
        raise payment_ops.PaymentError("To pismo nie wymaga opłaty skarbowej.")
    if letter.taxpayer_id is None:
        raise payment_ops.PaymentError("Opłatę za pismo złożone bez wskazania podatnika zapłać przelewem.")
    if fee_paid(session, letter):
        raise payment_ops.PaymentError("Opłata skarbowa za to pismo jest już zapłacona.")
    payment, created = payment_ops.create_payment(
        session, taxpayer_id=letter.taxpayer_id, user_id=user_id, gateway=gateway, amount=letter.stamp_duty,
        mode="amount", designation=[], description=f"Opłata skarbowa, pismo {letter.registration_number}",
        idempotency_key=idempotency_key)
    if created:
        session.add(LetterFee(letter_id=letter.id, payment_id=payment.id))
        session.flush()
    return payment


def settle_fee(session: Session, payment) -> bool:
    """True when the confirmed payment is a letter's stamp duty (then recorded with the letter, once)."""
    letter_id = session.scalar(sa.select(LetterFee.letter_id).where(LetterFee.payment_id == payment.id))
    if letter_id is None:
        return False
    from platforma.payments import operations as payment_ops

    changed = session.execute(sa.update(type(payment)).where(type(payment).id == payment.id,
                                                             type(payment).posted_at.is_(None))
                              .values(posted_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if changed:
        session.add(LetterEvent(letter_id=letter_id, kind="fee_paid",
                                details={"payment": payment.reference, "amount": str(payment.amount),
                                         "paid_on": payment.paid_on.isoformat()}))
        payment_ops.add_event(session, payment, "posted", "system", details={"letter_id": letter_id,
                                                                              "stamp_duty": True})
    session.refresh(payment)
    return True


def settle_fee_refund(session: Session, payment, refund) -> bool:
    """True when the refunded payment is a letter's stamp duty: the refund goes into the letter's history
    (the duty is then unpaid again), never into the taxpayer's tax ledger."""
    letter_id = session.scalar(sa.select(LetterFee.letter_id).where(LetterFee.payment_id == payment.id))
    if letter_id is None:
        return False
    session.add(LetterEvent(letter_id=letter_id, kind="fee_refunded",
                            details={"payment": payment.reference, "amount": str(refund.amount),
                                     "refund": refund.gateway_refund_id}))
    return True


def fee_paid(session: Session, letter: Letter, payments: list | None = None) -> bool:
    return amount_paid(session, letter, payments) >= letter.stamp_duty


def fee_payments(session: Session, letter: Letter) -> list:
    from platforma.payments.models import Payment

    return list(session.scalars(sa.select(Payment).join(LetterFee, LetterFee.payment_id == Payment.id)
                                .where(LetterFee.letter_id == letter.id).order_by(Payment.id)))


def amount_paid(session: Session, letter: Letter, payments: list | None = None) -> Decimal:
    """What the confirmed payments of the letter's stamp duty (`payments`: `fee_payments`, if read
    already) brought in, less what was refunded."""
    from platforma.payments.models import PaymentRefund

    payments = [p for p in (fee_payments(session, letter) if payments is None else payments) if p.state == "confirmed"]
    refunded = session.scalars(sa.select(PaymentRefund.amount).where(
        PaymentRefund.payment_id.in_([p.id for p in payments] or [0]), PaymentRefund.state == "completed")).all()
    return sum((p.amount for p in payments), Decimal("0.00")) - sum(refunded, Decimal("0.00"))
