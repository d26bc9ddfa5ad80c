"""The reads that payment pages, reports and commands need."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.config import Settings
from platforma.payments.models import Payment, PaymentRefund
from platforma.payments.rules import VirtualAccountLayout
from platforma.taxes.account import ZERO, AccountState
from platforma.taxes.models import Posting
from platforma.taxes.queries import account


@dataclass(frozen=True)
class PayableInstallment:
    id: int
    liability_id: int
    tax_kind: str
    year: int
    number: int
    due: dt.date
    left: Decimal
    interest: Decimal
    overdue: bool

    @property
    def to_pay(self) -> Decimal:
        return self.left + self.interest


@dataclass(frozen=True)
class Payable:
    """What a taxpayer can pay today."""

    state: AccountState
    installments: list[PayableInstallment]

    @property
    def overdue(self) -> list[PayableInstallment]:
        return [i for i in self.installments if i.overdue]

    @property
    def overdue_total(self) -> Decimal:
        """Everything overdue with interest as of today, and unpaid reminder costs (art. 55 §1 OP)."""
        return self.chosen_total(self.overdue)

    def chosen_total(self, chosen: list[PayableInstallment]) -> Decimal:
        """What pays the chosen installments in full today: a payment pays the unpaid reminder costs
        first (art. 55 §1 OP), so they are part of it."""
        return sum((i.to_pay for i in chosen), ZERO) + self.state.koszty

    def chosen(self, ids: list[int]) -> list[PayableInstallment]:
        by_id = {i.id: i for i in self.installments}
        return [by_id[i] for i in ids if i in by_id]


def payable(session: Session, taxpayer_id: int, day: dt.date) -> Payable:
    state = account(session, taxpayer_id, day)
    items = []
    for liability in state.liabilities:
        for inst in liability.installments:
            if inst.left > 0 or inst.interest > 0:
                items.append(PayableInstallment(
                    inst.id, liability.id, liability.tax_kind, liability.year, inst.number, inst.due,
                    inst.left, inst.interest, inst.due < day))
    items.sort(key=lambda i: (i.due, i.id))
    return Payable(state, items)


def virtual_layout(settings: Settings) -> VirtualAccountLayout | None:
    va = settings.payments.virtual_accounts
    if not va.enabled:
        return None
    return VirtualAccountLayout(va.sort_code, va.fixed, va.payer_check_digit)


def statement_accounts(settings: Settings) -> frozenset[str] | None:
    """The accounts whose statements post to taxpayers' accounts: every [[gmina.bank_accounts]] but the
    stamp duty's (a transfer there is not a tax). None when the gmina names no account: then no
    statement's account can be checked."""
    accounts = settings.gmina.bank_accounts
    if not accounts:
        return None
    return frozenset(a.nrb for a in accounts if not a.stamp_duty)


def transfer_account(settings: Settings, taxpayer_id: int) -> tuple[str, bool]:
    """The account a taxpayer pays to by transfer: the individual one where the gmina has them
    (True), else the gmina's tax account (False)."""
    layout = virtual_layout(settings)
    if layout is not None:
        return layout.account_for(taxpayer_id), True
    for bank_account in settings.gmina.bank_accounts:
        if not bank_account.stamp_duty:  # listed first or not, a tax paid there would not be a tax
            return bank_account.nrb, False
    return "", False


def payments_of(session: Session, taxpayer_ids: list[int], limit: int = 200) -> list[Payment]:
    if not taxpayer_ids:
        return []
    return list(session.scalars(
        sa.select(Payment).where(Payment.taxpayer_id.in_(taxpayer_ids))
        .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit)
    ))


@dataclass(frozen=True)
class AllocationLine:
    kind: str
    amount: Decimal
    liability_id: int | None
    installment_id: int | None


def allocation_of(session: Session, payment_ref: str) -> list[AllocationLine]:
    """How a posted payment was allocated: its postings in the taxes ledger (a refund's zwrot, which
    carries the same reference, is the refund's, not the allocation's)."""
    return [AllocationLine(*row) for row in session.execute(
        sa.select(Posting.kind, Posting.amount, Posting.liability_id, Posting.installment_id)
        .where(Posting.payment_ref == payment_ref, Posting.kind != "zwrot").order_by(Posting.id)
    )]


def refunds_of(session: Session, payment_id: int) -> list[PaymentRefund]:
    """A payment's refunds, oldest first."""
    return list(session.scalars(sa.select(PaymentRefund).where(PaymentRefund.payment_id == payment_id)
                                .order_by(PaymentRefund.id)))


def refunded_totals(session: Session, payment_ids: list[int]) -> dict[int, Decimal]:
    """Payment id -> the money its completed refunds returned (payments without one are left out)."""
    if not payment_ids:
        return {}
    rows = session.execute(
        sa.select(PaymentRefund.payment_id, sa.func.sum(PaymentRefund.amount))
        .where(PaymentRefund.payment_id.in_(payment_ids), PaymentRefund.state == "completed")
        .group_by(PaymentRefund.payment_id)
    )
    return {payment_id: amount for payment_id, amount in rows}
