"""Reads for the taxpayer's account, shaped for few round trips: column selects, no ORM entities.

An account is three queries: its liabilities with their decisions and installments, the parties of
those liabilities, and their postings with the taxpayer's own loose ones. `account_fingerprint`
says, in a few index probes, whether anything an account shows may have changed since it was read
(the account page's cache key, see `platforma.taxes.views`).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.taxes.account import (
    AccountState, InstallmentRecord, LiabilityRecord, PostingRecord, account_as_of, limitation_events,
)
from platforma.taxes.models import Decision, Installment, Liability, LiabilityParty, LimitationRecord, Posting
from platforma.taxes.rules import LimitationEvent
from platforma.taxes.settings import interest_threshold, rate_table


def _liabilities_of(taxpayer_id: int | sa.ColumnElement[int]) -> sa.Select:
    """The ids of the liabilities the taxpayer is liable for, alone or as a co-owner (a subquery)."""
    return sa.select(LiabilityParty.liability_id).where(LiabilityParty.taxpayer_id == taxpayer_id)


def liability_ids_of(session: Session, taxpayer_id: int) -> list[int]:
    """Liabilities the taxpayer is liable for, alone or as a co-owner."""
    return list(session.scalars(_liabilities_of(taxpayer_id)))


_LIABILITY_COLUMNS = (
    Liability.id, Liability.tax_kind, Liability.year, Liability.description, Liability.amount, Liability.created_at,
    Decision.number, Decision.document_type, Decision.delivered_on,
    Installment.id.label("installment_id"), Installment.number.label("installment_number"), Installment.due_on,
    Installment.amount.label("installment_amount"),
    # whether a clerk recorded anything about its limitation period (art. 70 OP): an index probe of a
    # small table, so that an account without such records needs no query more
    sa.exists().where(LimitationRecord.liability_id == Liability.id).label("has_limitation"),
)

LIMITATION_COLUMNS = (LimitationRecord.id, LimitationRecord.liability_id, LimitationRecord.kind,
                      LimitationRecord.occurred_on, LimitationRecord.until, LimitationRecord.ends_id)


def limitation_of(session: Session, liability_ids: list[int]) -> dict[int, tuple[LimitationEvent, ...]]:
    """The limitation events of these liabilities (`account.limitation_events`)."""
    if not liability_ids:
        return {}
    return limitation_events(session.execute(
        sa.select(*LIMITATION_COLUMNS).where(LimitationRecord.liability_id.in_(liability_ids))
        .order_by(LimitationRecord.id)).all())


def _liability_statements(condition: sa.ColumnElement[bool]) -> tuple[sa.Select, sa.Select]:
    rows = (sa.select(*_LIABILITY_COLUMNS)
            .outerjoin(Decision, Decision.id == Liability.decision_id)
            .outerjoin(Installment, Installment.liability_id == Liability.id)
            .where(condition).order_by(Liability.id, Installment.number))
    parties = (sa.select(LiabilityParty.liability_id, LiabilityParty.taxpayer_id)
               .where(LiabilityParty.liability_id.in_(_liability_subquery(condition)))
               .order_by(LiabilityParty.liability_id, LiabilityParty.role.desc(), LiabilityParty.id))  # "principal" first
    return rows, parties


def _liability_rows(session: Session, condition: sa.ColumnElement[bool], params: dict[str, Any] | None = None,
                    statements: tuple[sa.Select, sa.Select] | None = None) -> list[LiabilityRecord]:
    """Liabilities with their decision and installments in one query (a row per installment), then
    their parties (the principal first) in a second (`statements`: the two built beforehand)."""
    statements = statements or _liability_statements(condition)
    rows = session.execute(statements[0], params).all()
    if not rows:
        return []
    parties: dict[int, list[int]] = defaultdict(list)
    for liability_id, party_id in session.execute(statements[1], params):
        parties[liability_id].append(party_id)
    limitation = limitation_of(session, sorted({row.id for row in rows if row.has_limitation}))
    records: list[LiabilityRecord] = []
    current = None
    installments: list[InstallmentRecord] = []
    for row in rows:
        if current is None or current.id != row.id:
            if current is not None:
                records.append(_record(current, parties, installments, limitation))
            current, installments = row, []
        if row.installment_id is not None:
            installments.append(InstallmentRecord(row.installment_id, row.id, row.installment_number, row.due_on,
                                                  row.installment_amount))
    records.append(_record(current, parties, installments, limitation))
    return records


def _liability_subquery(condition: sa.ColumnElement[bool]) -> sa.Select:
    return sa.select(Liability.id).where(condition)


def _record(row: sa.Row, parties: dict[int, list[int]], installments: list[InstallmentRecord],
            limitation: dict[int, tuple[LimitationEvent, ...]]) -> LiabilityRecord:
    return LiabilityRecord(row.id, row.tax_kind, row.year, row.description, row.amount, row.number, row.delivered_on,
                           tuple(parties[row.id]), tuple(installments), row.document_type, row.created_at,
                           limitation.get(row.id, ()))


def liability_records(session: Session, ids: list[int]) -> list[LiabilityRecord]:
    """The liabilities with their parties (the principal first) and installments, by column selects."""
    if not ids:
        return []
    return _liability_rows(session, Liability.id.in_(ids))


_POSTING_COLUMNS = (Posting.id, Posting.kind, Posting.amount, Posting.value_date, Posting.liability_id,
                    Posting.installment_id, Posting.payment_ref, Posting.corrects_id)


def posting_records(session: Session, condition: sa.ColumnElement[bool]) -> list[PostingRecord]:
    return [PostingRecord(*row) for row in session.execute(
        sa.select(*_POSTING_COLUMNS).where(condition).order_by(Posting.value_date, Posting.id)
    )]


def _account_postings(taxpayer_id: int) -> sa.CompoundSelect:
    """The postings of the taxpayer's liabilities (a co-owner's payment on a shared liability counts
    for everyone liable) and the taxpayer's own postings outside liabilities (nadpłata, costs).

    Two index scans joined by UNION ALL rather than one OR, so the plan does not depend on the
    statistics (an OR was planned as a BitmapAnd reading every `liability_id IS NULL` row)."""
    shared = sa.select(*_POSTING_COLUMNS).where(Posting.liability_id.in_(_liabilities_of(taxpayer_id)))
    loose = sa.select(*_POSTING_COLUMNS).where(Posting.liability_id.is_(None), Posting.taxpayer_id == taxpayer_id)
    return sa.union_all(shared, loose)


#: the statements of `account_records`, built once with the taxpayer as a parameter (building them
#: anew for every payment posted cost as much as running them)
_ACCOUNT_TAXPAYER = sa.bindparam("account_taxpayer_id", type_=sa.Integer)
_ACCOUNT_LIABILITIES = Liability.id.in_(_liabilities_of(_ACCOUNT_TAXPAYER))
_ACCOUNT_POSTINGS = _account_postings(_ACCOUNT_TAXPAYER).subquery()
_ACCOUNT_POSTINGS_ORDERED = sa.select(_ACCOUNT_POSTINGS).order_by(_ACCOUNT_POSTINGS.c.value_date,
                                                                  _ACCOUNT_POSTINGS.c.id)
_ACCOUNT_STATEMENTS = _liability_statements(_ACCOUNT_LIABILITIES)


def account_records(session: Session, taxpayer_id: int) -> tuple[list[LiabilityRecord], list[PostingRecord]]:
    """Every liability of the taxpayer (newest year first, then kind) and every posting that concerns
    the account, in date order (future-dated ones too: the caller decides the day)."""
    params = {"account_taxpayer_id": taxpayer_id}
    liabilities = _liability_rows(session, _ACCOUNT_LIABILITIES, params, _ACCOUNT_STATEMENTS)
    return (sorted(liabilities, key=lambda l: (-l.year, l.tax_kind, l.id)),
            [PostingRecord(*row) for row in session.execute(_ACCOUNT_POSTINGS_ORDERED, params)])


def account(session: Session, taxpayer_id: int, day: dt.date) -> AccountState:
    liabilities, postings = account_records(session, taxpayer_id)
    return account_as_of(liabilities, postings, day, rate_table(session), interest_threshold(session, day))


def newest_posting_at(session: Session, taxpayer_id: int, liability_ids: list[int]) -> dt.datetime | None:
    """When the newest posting of the account was written (its own or on its liabilities)."""
    condition = Posting.taxpayer_id == taxpayer_id
    if liability_ids:
        condition = sa.or_(condition, Posting.liability_id.in_(liability_ids))
    return session.scalar(sa.select(sa.func.max(Posting.created_at)).where(condition))


# -- has the account changed? ------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountFingerprint:
    """What changes whenever anything the account shows may have changed.

    Postings are append-only (the database refuses UPDATE and DELETE), so their number only grows:
    every new posting, committed in whatever order, changes the count. Which liabilities the
    taxpayer is liable for: their number and the newest party row. Liabilities, their installments
    and decisions may be corrected in place: a trigger (migration 0005) raises the liability's
    `revision` on every such change. The dated settings (interest rates, threshold) are
    `settings.SettingsVersion`. `taxpayer_created_at` tells apart taxpayers of different databases
    that share an id (tests, a restored backup).
    """

    liabilities: int
    newest_party_id: int
    revisions: int
    postings: int
    loose_postings: int
    taxpayer_created_at: dt.datetime | None


#: the fingerprint of the taxpayer `:taxpayer_id` as columns of a query that reads it together with
#: other things (`taxes.access.account_for_current_user`: the access check and the fingerprint are one
#: round trip). Plain SQL, the same on PostgreSQL and SQLite: each subquery is one index scan (the
#: loose postings: `ix_posting_taxpayer_loose`), and SQLAlchemy need not build and key a statement
#: of five subqueries on every request.
FINGERPRINT_SQL = """
    (SELECT count(*) FROM liability_party WHERE taxpayer_id = :taxpayer_id) AS fp_liabilities,
    (SELECT coalesce(max(id), 0) FROM liability_party WHERE taxpayer_id = :taxpayer_id) AS fp_newest_party,
    (SELECT coalesce(sum(revision), 0) FROM liability
        WHERE id IN (SELECT liability_id FROM liability_party WHERE taxpayer_id = :taxpayer_id)) AS fp_revisions,
    (SELECT count(*) FROM posting
        WHERE liability_id IN (SELECT liability_id FROM liability_party WHERE taxpayer_id = :taxpayer_id)) AS fp_postings,
    (SELECT count(*) FROM posting WHERE liability_id IS NULL AND taxpayer_id = :taxpayer_id) AS fp_loose"""


FINGERPRINT_COLUMNS = ("fp_liabilities", "fp_newest_party", "fp_revisions", "fp_postings", "fp_loose")


def fingerprint_of(row: Any, taxpayer_created_at: dt.datetime | None) -> AccountFingerprint:
    return AccountFingerprint(row.fp_liabilities, row.fp_newest_party, int(row.fp_revisions), row.fp_postings,
                              row.fp_loose, taxpayer_created_at)
