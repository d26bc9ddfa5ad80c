"""The reminders run (upomnienia): arrears as of a day for every liability, in bounded memory.

Liabilities with a positive balance and an installment past its nominal date are found by one
aggregate query; their accounts are then computed in chunks, so memory does not grow with the
number of taxpayers. Issuing reminders posts the reminder cost (koszty upomnienia, art. 15 §1 and
§4 of the ustawa o postępowaniu egzekucyjnym w administracji) once per taxpayer and day.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.taxes.account import ZERO, LiabilityRecord, LiabilityState, PostingRecord, account_as_of
from platforma.taxes.models import Installment, Posting, Taxpayer
from platforma.taxes.queries import liability_records, posting_records
from platforma.taxes.settings import interest_threshold, rate_table, reminder_cost

CHUNK = 2000


def liabilities_in_arrears(session: Session, day: dt.date) -> list[int]:
    """Ids of liabilities with something still owed and an installment nominally due before `day`."""
    balance = sa.func.sum(Posting.signed_amount_sql())
    owed = (
        sa.select(Posting.liability_id)
        .where(Posting.liability_id.isnot(None), Posting.value_date <= day)
        .group_by(Posting.liability_id)
        .having(balance > 0)
        .subquery()
    )
    due = sa.select(Installment.liability_id).where(Installment.due_on < day).distinct().subquery()
    return list(session.scalars(
        sa.select(owed.c.liability_id).join(due, due.c.liability_id == owed.c.liability_id).order_by(owed.c.liability_id)
    ))


def liability_states(session: Session, day: dt.date, ids: list[int]) -> Iterator[tuple[LiabilityRecord, LiabilityState]]:
    """Each liability's state on `day`, computed chunk by chunk (plain records, nothing kept between chunks)."""
    rates = rate_table(session)
    threshold = interest_threshold(session, day)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        postings: dict[int, list[PostingRecord]] = defaultdict(list)
        for posting in posting_records(session, sa.and_(Posting.liability_id.in_(chunk), Posting.value_date <= day)):
            postings[posting.liability_id].append(posting)
        for record in liability_records(session, chunk):
            yield record, account_as_of([record], postings[record.id], day, rates, threshold).liabilities[0]


@dataclass(frozen=True)
class OverdueLiability:
    """What a reminder names about one liability (kept small: a run may list a hundred thousand)."""

    tax_kind: str
    year: int
    description: str
    decision_number: str | None
    zaleglosc: Decimal
    odsetki: Decimal


@dataclass
class ReminderLine:
    taxpayer_id: int
    name: str
    address: str
    identifier: str
    liabilities: list[OverdueLiability] = field(default_factory=list)

    @property
    def zaleglosc(self) -> Decimal:
        return sum((item.zaleglosc for item in self.liabilities), ZERO)

    @property
    def odsetki(self) -> Decimal:
        return sum((item.odsetki for item in self.liabilities), ZERO)


def reminder_lines(session: Session, day: dt.date, minimum: Decimal = ZERO) -> list[ReminderLine]:
    """One line per taxpayer (the first party named on the liability) whose overdue arrears with
    interest exceed `minimum` on `day`."""
    by_taxpayer: dict[int, list[OverdueLiability]] = defaultdict(list)
    for record, state in liability_states(session, day, liabilities_in_arrears(session, day)):
        if state.zaleglosc > 0:
            by_taxpayer[record.party_ids[0]].append(OverdueLiability(
                state.tax_kind, state.year, state.description, state.decision_number, state.zaleglosc, state.odsetki))
    lines = []
    taxpayer_ids = sorted(by_taxpayer)
    for start in range(0, len(taxpayer_ids), CHUNK):
        for taxpayer in session.scalars(sa.select(Taxpayer).where(Taxpayer.id.in_(taxpayer_ids[start:start + CHUNK]))):
            line = ReminderLine(taxpayer.id, taxpayer.display_name, taxpayer.address, taxpayer.identifier_label, by_taxpayer[taxpayer.id])
            if line.zaleglosc + line.odsetki > minimum:
                lines.append(line)
    return sorted(lines, key=lambda l: (l.name, l.taxpayer_id))


def issue_reminders(session: Session, day: dt.date, lines: list[ReminderLine], author_id: int) -> tuple[Decimal, int]:
    """Post the reminder cost once per taxpayer and day; returns (cost, how many were newly posted)."""
    cost = reminder_cost(session, day)
    existing = set(session.scalars(
        sa.select(Posting.source_key).where(Posting.source == "reminders", Posting.value_date == day)
    ))
    posted = 0
    for line in lines:
        key = f"upomnienie:{line.taxpayer_id}:{day.isoformat()}"
        if key in existing:
            continue
        names = ", ".join(f"{item.description or item.tax_kind} {item.year}" for item in line.liabilities)
        session.add(Posting(
            taxpayer_id=line.taxpayer_id, kind="koszty_upomnienia", amount=cost, booked_on=day, value_date=day,
            origin="system", reason=f"upomnienie z {day:%d.%m.%Y}: {names}"[:2000], created_by_id=author_id,
            source="reminders", source_key=key,
        ))
        posted += 1
    session.flush()
    return cost, posted


def reminders_csv(lines: list[ReminderLine], day: dt.date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["numer podatnika", "podatnik", "identyfikator", "adres", "zobowiązania", "zaległość", "odsetki na dzień " + day.isoformat(), "razem"])
    for line in lines:
        names = " | ".join(f"{item.description or item.tax_kind} ({item.decision_number or '-'})" for item in line.liabilities)
        writer.writerow([line.taxpayer_id, line.name, line.identifier, line.address, names,
                         str(line.zaleglosc).replace(".", ","), str(line.odsetki).replace(".", ","),
                         str(line.zaleglosc + line.odsetki).replace(".", ",")])
    return out.getvalue()
