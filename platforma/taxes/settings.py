"""The taxes module's dated settings, read into the plain values the rules take."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from platforma.core.settings import decimal_on, history
from platforma.taxes.rules import RateTable


def rate_table(session: Session) -> RateTable:
    """Every standard interest rate the administrator has set (art. 56 §1 OP), by date.

    Read once per transaction (see `core.db.clear_caches`).
    """
    cached = session.info.get("cache.taxes.rate_table")
    if cached is None:
        cached = RateTable.from_rows((row.effective_from, row.value) for row in history(session, "interest.standard_rate"))
        session.info["cache.taxes.rate_table"] = cached
    return cached


def interest_threshold(session: Session, day: dt.date) -> Decimal:
    """Art. 54 §1 pkt 5 OP: interest up to this amount is not charged."""
    return decimal_on(session, "interest.threshold", day)


def reminder_cost(session: Session, day: dt.date) -> Decimal:
    return decimal_on(session, "reminder.cost", day)
