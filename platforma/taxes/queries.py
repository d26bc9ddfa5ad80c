"""Reads for the taxpayer's account, shaped for few round trips (three queries per account)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.taxes.account import AccountState, InstallmentRecord, LiabilityRecord, PostingRecord, account_as_of
from platforma.taxes.models import Decision, Installment, Liability, LiabilityParty, Posting
from platforma.taxes.settings import interest_threshold, rate_table


def liability_ids_of(session: Session, taxpayer_id: int) -> list[int]:
    """Liabilities the taxpayer is liable for, alone or as a co-owner."""
    return list(session.scalars(sa.select(LiabilityParty.liability_id).where(LiabilityParty.taxpayer_id == taxpayer_id)))


def liability_records(session: Session, ids: list[int]) -> list[LiabilityRecord]:
    """The liabilities with their parties (the principal first) and installments, by column selects."""
    if not ids:
        return []
    parties: dict[int, list[int]] = defaultdict(list)
    for liability_id, party_id in session.execute(
        sa.select(LiabilityParty.liability_id, LiabilityParty.taxpayer_id)
        .where(LiabilityParty.liability_id.in_(ids))
        .order_by(LiabilityParty.liability_id, LiabilityParty.role.desc(), LiabilityParty.id)  # "principal" first
    ):
        parties[liability_id].append(party_id)
    installments: dict[int, list[InstallmentRecord]] = defaultdict(list)
    for row in session.execute(
        sa.select(Installment.id, Installment.liability_id, Installment.number, Installment.due_on, Installment.amount)
        .where(Installment.liability_id.in_(ids)).order_by(Installment.liability_id, Installment.number)
    ):
        installments[row.liability_id].append(InstallmentRecord(row.id, row.liability_id, row.number, row.due_on, row.amount))
    rows = session.execute(
        sa.select(Liability.id, Liability.tax_kind, Liability.year, Liability.description, Liability.amount,
                  Decision.number, Decision.delivered_on)
        .outerjoin(Decision, Decision.id == Liability.decision_id)
        .where(Liability.id.in_(ids)).order_by(Liability.id)
    )
    return [
        LiabilityRecord(row.id, row.tax_kind, row.year, row.description, row.amount, row.number, row.delivered_on,
                        tuple(parties[row.id]), tuple(installments[row.id]))
        for row in rows
    ]


_POSTING_COLUMNS = (Posting.id, Posting.kind, Posting.amount, Posting.value_date, Posting.liability_id,
                    Posting.installment_id, Posting.payment_ref, Posting.corrects_id)


def posting_records(session: Session, condition: sa.ColumnElement[bool]) -> list[PostingRecord]:
    return [PostingRecord(*row) for row in session.execute(
        sa.select(*_POSTING_COLUMNS).where(condition).order_by(Posting.value_date, Posting.id)
    )]


def account_records(session: Session, taxpayer_id: int) -> tuple[list[LiabilityRecord], list[PostingRecord]]:
    ids = liability_ids_of(session, taxpayer_id)
    liabilities = liability_records(session, ids)
    condition = Posting.taxpayer_id == taxpayer_id
    if ids:
        # a co-owner's payment on a shared liability counts for everyone liable
        condition = sa.or_(sa.and_(Posting.liability_id.is_(None), condition), Posting.liability_id.in_(ids))
    else:
        condition = sa.and_(Posting.liability_id.is_(None), condition)
    return sorted(liabilities, key=lambda l: (-l.year, l.tax_kind, l.id)), posting_records(session, condition)


def account(session: Session, taxpayer_id: int, day: dt.date) -> AccountState:
    liabilities, postings = account_records(session, taxpayer_id)
    return account_as_of(liabilities, postings, day, rate_table(session), interest_threshold(session, day))
