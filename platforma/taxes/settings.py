"""The taxes module's dated settings, read into the plain values the rules take.

The values are read once per process for each version of the dated settings: `settings_version`
is one small aggregate query per transaction (or none, when the caller has already read it, as
the account page does with its access check), and the rate table and thresholds built from a
version are kept in bounded process caches (a new value, added by `core.settings.set_value`,
makes a new version).
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Hashable, NamedTuple, TypeVar

from sqlalchemy.orm import Session

from platforma.core.db import DriverQuery
from platforma.core.settings import decimal_on, history
from platforma.taxes.account import computed_interest
from platforma.taxes.rules import RateTable

T = TypeVar("T")
VERSION_KEY = "cache.taxes.settings_version"


class SettingsVersion(NamedTuple):
    """Which dated settings exist: rows are only ever added (`set_value`), so their number, the
    newest id and the newest creation time change with every new value, and differ between two
    databases that reached the same count by different values."""

    count: int
    newest_id: int
    newest_at: dt.datetime | None


#: the version as columns of another query (read in the same round trip)
VERSION_SQL = """
    (SELECT count(*) FROM dated_setting) AS sv_count,
    (SELECT coalesce(max(id), 0) FROM dated_setting) AS sv_newest_id,
    (SELECT max(created_at) FROM dated_setting) AS sv_newest_at"""
VERSION_COLUMNS = ("sv_count", "sv_newest_id", "sv_newest_at")
VERSION_TIMESTAMPS = ("sv_newest_at",)
_VERSION = DriverQuery("SELECT" + VERSION_SQL, VERSION_COLUMNS, timestamps=VERSION_TIMESTAMPS)


def version_of(row: Any) -> SettingsVersion:
    """The version from the `VERSION_SQL` columns of another query."""
    return SettingsVersion(row.sv_count, row.sv_newest_id, row.sv_newest_at)


def keep_version(session: Session, version: SettingsVersion) -> SettingsVersion:
    """Use `version` for the rest of the session's transaction (read with the query that checked access)."""
    session.info[VERSION_KEY] = version
    return version


def remember_version(session: Session, row: Any) -> SettingsVersion:
    """Keep the version read by `version_columns` for the rest of the transaction."""
    return keep_version(session, version_of(row))


def settings_version(session: Session) -> SettingsVersion:
    """The version of the dated settings, read once per transaction (see `core.db.clear_caches`)."""
    version = session.info.get(VERSION_KEY)
    if version is None:
        version = remember_version(session, _VERSION.first(session))
    return version


class _Cache:
    """A small thread-safe LRU of values derived from one settings version."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: OrderedDict[Hashable, object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self.lock:
            if key in self.values:
                self.values.move_to_end(key)
                return self.values[key]  # type: ignore[return-value]
        value = make()
        with self.lock:
            self.values[key] = value
            while len(self.values) > self.size:
                self.values.popitem(last=False)
        return value


@dataclass(frozen=True)
class RememberingRateTable(RateTable):
    """A `RateTable` that keeps the periods it has cut and the interest it has computed: most
    installments fall due on a few dates and are asked about on the same day, many for the same
    amount (a reminders run asks about a million of them). Both are pure functions of the table."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_periods", {})
        object.__setattr__(self, "_interest", {})

    def periods(self, first: dt.date, last: dt.date) -> tuple[tuple[dt.date, dt.date, Decimal], ...]:  # type: ignore[override]
        """As `RateTable.periods`, as a tuple (kept: not to be changed)."""
        key = (first, last)
        found = self._periods.get(key)
        if found is None:
            found = tuple(super().periods(first, last))
            if len(self._periods) < KEPT:
                self._periods[key] = found
        return found

    def remembered_interest(self, principal: Decimal, due: dt.date, paid_on: dt.date) -> Decimal:
        """`account.computed_interest` with this table, remembered. (Equal principals written with more
        or fewer decimal places give the same whole złoty: the same exact value is rounded.)"""
        key = (principal, due, paid_on)
        found = self._interest.get(key)
        if found is None:
            found = computed_interest(principal, due, paid_on, self)
            if len(self._interest) < KEPT:
                self._interest[key] = found
        return found


#: periods and interest results kept per rate table (about a hundred bytes each)
KEPT = 50_000
_rate_tables = _Cache(8)
_decimals = _Cache(512)


def rate_table(session: Session) -> RateTable:
    """Every standard interest rate the administrator has set (art. 56 §1 OP), by date."""
    return _rate_tables.get(settings_version(session), lambda: RememberingRateTable.from_rows(
        (row.effective_from, row.value) for row in history(session, "interest.standard_rate")))


def interest_threshold(session: Session, day: dt.date) -> Decimal:
    """Art. 54 §1 pkt 5 OP: interest up to this amount is not charged."""
    return _decimals.get((settings_version(session), "interest.threshold", day),
                         lambda: decimal_on(session, "interest.threshold", day))


def reminder_cost(session: Session, day: dt.date) -> Decimal:
    return _decimals.get((settings_version(session), "reminder.cost", day),
                         lambda: decimal_on(session, "reminder.cost", day))
