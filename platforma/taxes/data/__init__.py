"""Facts shipped with the package: the table of tax-arrears interest rates (art. 56 §1 OP).

interest_rates.csv holds every change of the standard rate since 2014-10-09 with the NBP lombard
rate it follows. Migration 0003 seeds the dated setting "interest.standard_rate" from it; later
changes are added by an administrator (or a later migration), never by editing a stored row.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

INTEREST_RATES_FILE = "interest_rates.csv"


@dataclass(frozen=True)
class InterestRate:
    effective_from: dt.date
    #: the standard rate in percent a year
    rate: Decimal
    #: the NBP lombard rate it follows
    lombard: Decimal
    source_note: str


def interest_rates() -> list[InterestRate]:
    """The rows of interest_rates.csv, oldest first."""
    text = resources.files(__package__).joinpath(INTEREST_RATES_FILE).read_text(encoding="utf-8")
    rows = [
        InterestRate(
            effective_from=dt.date.fromisoformat(row["effective_from"]),
            rate=Decimal(row["rate_percent"]),
            lombard=Decimal(row["lombard_percent"]),
            source_note=row["source_note"],
        )
        for row in csv.DictReader(io.StringIO(text))
    ]
    return sorted(rows, key=lambda r: r.effective_from)
