"""The reminders run (upomnienia): arrears with interest as of a day for every taxpayer, in flat memory.

1. The database sums every liability's postings up to the day (one pass over the ledger) and
   hands over, in the order of their ids, those with something owed.
2. A batch at a time (ids in order: neighbouring pages of the ledger), their installments and
   postings are read and each installment is replayed exactly as the account page replays it
   (`account.replay`, `account.interest_due`): payments made by the nominal due date were on time
   and only their sum matters; only a later payment fixes interest (art. 55 §2 OP). On
   PostgreSQL a reader thread fetches the next batch while this one is computed.
3. What is overdue is kept in a temporary table of the transaction and read back in the order
   of the taxpayers' names; each line is yielded as soon as it is complete.

Memory holds a batch or two, never the gmina.

Issuing reminders posts the reminder cost (koszty upomnienia, art. 15 §1 and §4 of the ustawa o
postępowaniu egzekucyjnym w administracji) once per taxpayer and day.
"""
from __future__ import annotations

import datetime as dt
import queue
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable, Iterator

import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.orm import Session

from platforma.core.csvfile import csv_text
from platforma.taxes.account import ZERO, interest_due, limitation_events, replay
from platforma.taxes.models import Installment, Liability, Posting, Taxpayer
from platforma.taxes.rules import LimitationEvent, RateTable, effective_due, is_time_barred
from platforma.taxes.settings import interest_threshold, rate_table, reminder_cost

#: rows fetched at a time from a server-side cursor (PostgreSQL)
FETCH = 10000
#: liabilities whose installments and postings are read together
BATCH = 2000


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


# -- the queries -------------------------------------------------------------------------------------
# Amounts stay integer grosze (the Money column's storage) until an installment is replayed. Signs
# as in Posting.signed_amount_sql: odpis, wpłata and nadpłata lower what is owed, korekta has its own.

_SIGNED = "CASE WHEN p.kind IN ('odpis', 'wplata', 'nadplata') THEN -p.amount ELSE p.amount END"

#: the liabilities with something owed on the day (of those with ids from low to high), in the order of their ids
_OWED_SQL = f"""
SELECT p.liability_id FROM posting p
WHERE p.liability_id BETWEEN :low AND :high AND p.value_date <= :day
GROUP BY p.liability_id
HAVING sum({_SIGNED}) > 0
ORDER BY p.liability_id
"""

#: for a batch of them: the delivery of the decision (art. 47 §2 OP), whose they are (the first party
#: named) and whether a clerk recorded anything about their limitation period (art. 70 OP)
_LIABILITIES_SQL = """
SELECT l.id, d.delivered_on,
    (SELECT lp.taxpayer_id FROM liability_party lp WHERE lp.liability_id = l.id ORDER BY lp.role DESC, lp.id LIMIT 1),
    l.tax_kind, l.year, l.description, d.number,
    CASE WHEN EXISTS (SELECT 1 FROM limitation_record r WHERE r.liability_id = l.id) THEN 1 ELSE 0 END
FROM liability l LEFT JOIN decision d ON d.id = l.decision_id
WHERE l.id {ids}
"""

#: ... and, for those that have some, the records
_LIMITATION_SQL = """
SELECT id, liability_id, kind, occurred_on, until, ends_id FROM limitation_record WHERE liability_id {ids} ORDER BY id
"""

#: ... and of their installments due before the day those that may owe something on it, with what
#: was assessed on each and paid by its nominal due date (payments then were on time: the effective
#: date is never earlier, so only their sum matters): one row, or one per posting of a payment made
#: later (only such a payment fixes interest, art. 55 §2 OP), each with those sums. An installment
#: paid in full by its nominal due date, or not due yet, owes nothing on the day and is left out.
_ASSESSED = "CASE WHEN p.kind IN ('wplata', 'odsetki') THEN 0 WHEN p.kind IN ('odpis', 'nadplata') THEN -p.amount ELSE p.amount END"
_PAID_EARLY = ("CASE WHEN p.value_date > i.due_on THEN 0 WHEN p.kind = 'wplata' THEN p.amount "
               "WHEN p.kind = 'odsetki' THEN -p.amount ELSE 0 END")
_LATE = "CASE WHEN p.value_date > i.due_on AND p.kind IN ('wplata', 'odsetki') THEN 1 ELSE 0 END"
_INSTALLMENTS_SQL = f"""
SELECT liability_id, id, due_on, assessed, paid_early, late, posting_id, kind, amount, value_date, payment_ref
FROM (
    SELECT i.liability_id, i.id, i.due_on, p.id AS posting_id, p.kind, p.amount, p.value_date, p.payment_ref,
        CAST(sum({_ASSESSED}) OVER installment AS BIGINT) AS assessed,
        CAST(sum({_PAID_EARLY}) OVER installment AS BIGINT) AS paid_early,
        sum({_LATE}) OVER installment AS late, {_LATE} AS is_late, row_number() OVER installment AS n
    FROM installment i LEFT JOIN posting p ON p.installment_id = i.id AND p.value_date <= :day
    WHERE i.liability_id {{ids}} AND i.due_on < :day
    WINDOW installment AS (PARTITION BY i.liability_id, i.id)
) postings
WHERE (assessed > paid_early OR late > 0) AND (is_late = 1 OR (late = 0 AND n = 1))
ORDER BY liability_id, id
"""

#: what the run found, kept by the database until it is read back in the order of the lines
_RESULTS = "reminders_run"
_RESULTS_SQL = f"""
SELECT t.id, t.kind, t.first_name, t.last_name, t.name, t.pesel, t.nip, t.street, t.postal_code, t.city,
    r.tax_kind, r.year, r.description, r.decision_number, r.zaleglosc, r.odsetki
FROM {_RESULTS} r
JOIN taxpayer t ON t.id = r.taxpayer_id
ORDER BY (CASE WHEN t.kind = 'legal' THEN t.name ELSE trim(t.first_name || ' ' || t.last_name) END) {{collate}},
    t.id, r.liability_id
"""


@dataclass
class _Batch:
    #: (liability id, delivered on, taxpayer id, tax kind, year, description, decision number, has limitation records)
    liabilities: list[tuple]
    #: rows of their installments that may owe something (`_INSTALLMENTS_SQL`), by liability and installment
    installments: list[tuple]
    #: liability id -> its limitation events (art. 70 OP), for those that have any
    limitation: dict[int, tuple[LimitationEvent, ...]] = field(default_factory=dict)


class _Driver:
    """A DBAPI connection, for a run that reads millions of rows (SQLAlchemy's row machinery would
    cost more than the computation): PostgreSQL with a server-side cursor and an array parameter per
    batch, SQLite with its own cursors (dates come back as ISO text)."""

    def __init__(self, raw: Any, postgresql: bool) -> None:
        self.raw, self.postgresql = raw, postgresql
        if postgresql:
            cursor = raw.cursor()
            try:
                # a batch job: memory enough to sum the ledger in one hash, and no JIT (compiling
                # cost more than it saved on these plans); for this transaction only
                for setting in ("SET LOCAL work_mem = '256MB'", "SET LOCAL jit = off"):
                    cursor.execute(setting)
            finally:
                cursor.close()
        self.collate = 'COLLATE "C"' if postgresql else "COLLATE BINARY"

    @classmethod
    def of(cls, session: Session) -> "_Driver":
        """The session's own connection (its transaction, and its temporary table)."""
        connection = session.connection()
        return cls(connection.connection.driver_connection, connection.dialect.name == "postgresql")

    def sql(self, text: str) -> str:
        return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", text) if self.postgresql else text

    def stream(self, sql: str, params: dict, name: str) -> Iterator[tuple]:
        cursor = self.raw.cursor(name=name) if self.postgresql else self.raw.cursor()
        if self.postgresql:
            cursor.itersize = FETCH
        try:
            cursor.execute(self.sql(sql), params)
            yield from cursor
        finally:
            cursor.close()

    def _fetch(self, sql: str, ids: list[int], params: dict) -> list[tuple]:
        cursor = self.raw.cursor()
        try:
            if self.postgresql:
                # binary results: numbers and dates without parsing text
                cursor.execute(self.sql(sql.format(ids="= ANY(:ids)")), {**params, "ids": ids}, binary=True)
            else:
                marks = ", ".join(f":id{n}" for n in range(len(ids)))
                cursor.execute(sql.format(ids=f"IN ({marks})"), {**params, **{f"id{n}": v for n, v in enumerate(ids)}})
            return cursor.fetchall()
        finally:
            cursor.close()

    def batches(self, day: dt.date, low: int, high: int) -> Iterator[_Batch]:
        owed = (row[0] for row in self.stream(_OWED_SQL, {"day": day, "low": low, "high": high}, "reminders_owed"))
        for ids in _chunks(owed, BATCH):
            liabilities = self._fetch(_LIABILITIES_SQL, ids, {})
            installments = self._fetch(_INSTALLMENTS_SQL, ids, {"day": day})
            limited = [row[0] for row in liabilities if row[7]]
            records = self._fetch(_LIMITATION_SQL, limited, {}) if limited else []
            if not self.postgresql:
                liabilities = [(row[0], None if row[1] is None else _date(row[1]), *row[2:]) for row in liabilities]
                installments = [(*row[:2], _date(row[2]), *row[3:9], None if row[9] is None else _date(row[9]), row[10])
                                for row in installments]
                records = [(*row[:3], _date(row[3]), None if row[4] is None else _date(row[4]), row[5]) for row in records]
            yield _Batch(sorted(liabilities), installments, limitation_events(records))

    def create_results(self) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.execute(f"DROP TABLE IF EXISTS {_RESULTS}")
            # amounts as the Decimals' text: read back as the very same Decimals. PostgreSQL drops the
            # table with the transaction whatever happens; on SQLite `drop_results` does
            cursor.execute(f"CREATE TEMPORARY TABLE {_RESULTS} (taxpayer_id BIGINT NOT NULL, liability_id BIGINT NOT NULL, "
                           "tax_kind VARCHAR(24) NOT NULL, year INTEGER NOT NULL, description VARCHAR(300) NOT NULL, "
                           "decision_number VARCHAR(64), zaleglosc VARCHAR(40) NOT NULL, odsetki VARCHAR(40) NOT NULL)"
                           + (" ON COMMIT DROP" if self.postgresql else ""))
        finally:
            cursor.close()

    def keep(self, results: list[tuple]) -> None:
        if not results:
            return
        cursor = self.raw.cursor()
        try:
            if self.postgresql:
                with cursor.copy(f"COPY {_RESULTS} FROM STDIN") as copy:
                    for row in results:
                        copy.write_row(row)
            else:
                cursor.executemany(f"INSERT INTO {_RESULTS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", results)
        finally:
            cursor.close()

    def drop_results(self) -> None:
        if self.postgresql and self.raw.info.transaction_status != TransactionStatus.INTRANS:
            return  # a failed transaction: its rollback drops the table
        cursor = self.raw.cursor()
        try:
            cursor.execute(f"DROP TABLE IF EXISTS {_RESULTS}")
        finally:
            cursor.close()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _zl(grosze: int) -> Decimal:
    return Decimal(grosze).scaleb(-2)


def _date(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


@lru_cache(maxsize=8192)
def _due(nominal: dt.date, delivered: dt.date | None) -> dt.date:
    return effective_due(nominal, delivered)


class _Taxpayer:
    """The columns of a row that `Taxpayer`'s display properties read."""

    __slots__ = ("kind", "first_name", "last_name", "name", "pesel", "nip", "street", "postal_code", "city")

    display_name = Taxpayer.display_name
    identifier_label = Taxpayer.identifier_label
    address = Taxpayer.address

    def __init__(self, row: tuple) -> None:
        (self.kind, self.first_name, self.last_name, self.name, self.pesel, self.nip, self.street, self.postal_code,
         self.city) = row[1:10]


# -- the computation ------------------------------------------------------------------------------

def _installment(rows: list[tuple], delivered: dt.date | None, day: dt.date, rates: RateTable,
                 threshold: Decimal, limitation: tuple[LimitationEvent, ...] = ()) -> tuple[Decimal, Decimal]:
    """(overdue principal, interest) of one installment on `day`, as `account.account_as_of` has them.

    `rows`: the installment's rows of `_INSTALLMENTS_SQL` (the sums, and the later payments' postings).
    An installment whose liability expired (art. 70 OP) owes nothing: no reminder for it."""
    _liability, _id, nominal, assessed, paid_early, late = rows[0][:6]
    due = _due(nominal, delivered)
    if is_time_barred(due, day, limitation):
        return ZERO, ZERO
    payments: list[tuple[dt.date, Decimal, Decimal]] = []
    if paid_early:
        payments.append((nominal, _zl(paid_early), ZERO))
    if late:
        # a later payment's wpłata and odsetki lines (same day and reference) are one payment; the
        # sums start from a bare zero, as in `account._payments_on`: the same Decimals, exponents too
        grouped: dict[tuple[dt.date, str], list[Decimal]] = {}
        for row in rows:
            parts = grouped.setdefault((row[9], row[10] or f"#{row[6]}"), [ZERO, ZERO])
            parts[0 if row[7] == "wplata" else 1] += _zl(row[8])
        for (paid_on, _ref), (total, interest) in sorted(grouped.items()):
            payments.append((paid_on, total - interest, interest))
    arrear, *_ = replay("", due, _zl(assessed), payments, rates, threshold)
    interest = interest_due(arrear, day, rates, threshold)
    return (arrear.principal if arrear.principal > 0 and day > due else ZERO), interest


def _overdue(batch: _Batch, day: dt.date, rates: RateTable, threshold: Decimal) -> list[tuple]:
    """Each liability of the batch with something overdue (one with an installment nominally due
    before the day and a zaleglosc on it), as a row of the results table."""
    found = []
    rows = batch.installments
    count = len(rows)
    start = 0
    for liability_id, delivered, taxpayer_id, tax_kind, year, description, number, _limited in batch.liabilities:
        limitation = batch.limitation.get(liability_id, ())
        while start < count and rows[start][0] < liability_id:  # (none: every row is of the batch)
            start += 1
        zaleglosc = odsetki = ZERO
        while start < count and rows[start][0] == liability_id:
            installment_id = rows[start][1]
            end = start + 1
            while end < count and rows[end][1] == installment_id:
                end += 1
            overdue, interest = _installment(rows[start:end], delivered, day, rates, threshold, limitation)
            zaleglosc += overdue
            odsetki += interest
            start = end
        # (an installment due before the day came, or nothing would: the liability is "in arrears")
        if zaleglosc > 0:
            found.append((taxpayer_id, liability_id, tax_kind, year, description, number, str(zaleglosc), str(odsetki)))
    return found


class _Reader(threading.Thread):
    """Reads the batches of a range of liabilities into `batches` while the caller computes, and
    (the one on the session's connection) stores what the caller found. Bounded: a few batches wait."""

    def __init__(self, driver: _Driver, day: dt.date, low: int, high: int, batches: queue.Queue,
                 found: queue.Queue | None) -> None:
        super().__init__(name=f"reminders-reader-{low}", daemon=True)
        self.driver, self.day, self.low, self.high = driver, day, low, high
        self.batches, self.found = batches, found
        self.stopping = threading.Event()

    def run(self) -> None:
        batches = self.driver.batches(self.day, self.low, self.high)
        try:
            for batch in batches:
                self._store(block=False)
                if not self._put(batch):
                    return
            self._put(None)
            self._store(block=True)
        except BaseException as error:  # handed to the caller, who raises it
            self._put(error)
        finally:
            batches.close()  # the server-side cursor, in this thread

    def _put(self, item: Any) -> bool:
        while not self.stopping.is_set():
            try:
                self.batches.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _store(self, *, block: bool) -> None:
        while self.found is not None:
            try:
                found = self.found.get(block=block)
            except queue.Empty:
                return
            if found is None:
                return
            self.driver.keep(found)

    def stop(self) -> None:
        self.stopping.set()
        if self.found is not None:
            self.found.put(None)
        self.join()


def _computed(session: Session, driver: _Driver, day: dt.date, rates: RateTable, threshold: Decimal) -> None:
    """Steps 1 and 2: every liability with something overdue, into the temporary table.

    PostgreSQL: two readers, each on its own connection and half of the liabilities (by id), so that
    the database works on both CPUs while this thread computes."""
    newest = session.scalar(sa.select(sa.func.max(Liability.id))) or 0
    if not driver.postgresql:  # SQLite: a connection per thread, and small gminas
        for batch in driver.batches(day, 0, newest):
            driver.keep(_overdue(batch, day, rates, threshold))
        return
    middle = newest // 2
    batches: queue.Queue = queue.Queue(maxsize=4)
    found: queue.Queue = queue.Queue()
    second = session.get_bind().raw_connection()
    readers = [_Reader(driver, day, 0, middle, batches, found),
               _Reader(_Driver(second.driver_connection, True), day, middle + 1, newest, batches, None)]
    try:
        for reader in readers:
            reader.start()
        running = len(readers)
        while running:
            batch = batches.get()
            if batch is None:
                running -= 1
            elif isinstance(batch, BaseException):
                raise batch
            else:
                found.put(_overdue(batch, day, rates, threshold))
        found.put(None)
        readers[0].join()
        if not batches.empty():  # storing the last results failed
            error = batches.get()
            if isinstance(error, BaseException):
                raise error
    finally:
        for reader in readers:
            if reader.is_alive():
                reader.stop()
        second.rollback()  # it only read
        second.close()


def iter_reminder_lines(session: Session, day: dt.date, minimum: Decimal = ZERO) -> Iterator[ReminderLine]:
    """One line per taxpayer (the first party named on the liability) whose overdue arrears with
    interest exceed `minimum` on `day`, in the order of their names (compared as Python compares
    strings) and ids; each line is yielded as soon as it is complete."""
    rates = rate_table(session)
    threshold = interest_threshold(session, day)
    driver = _Driver.of(session)
    driver.create_results()
    try:
        _computed(session, driver, day, rates, threshold)
        line: ReminderLine | None = None
        for row in driver.stream(_RESULTS_SQL.format(collate=driver.collate), {}, "reminders_lines"):
            if line is None or row[0] != line.taxpayer_id:
                if line is not None and line.zaleglosc + line.odsetki > minimum:
                    yield line
                taxpayer = _Taxpayer(row)
                line = ReminderLine(row[0], taxpayer.display_name, taxpayer.address, taxpayer.identifier_label)
            line.liabilities.append(OverdueLiability(row[10], row[11], row[12], row[13], Decimal(row[14]), Decimal(row[15])))
        if line is not None and line.zaleglosc + line.odsetki > minimum:
            yield line
    finally:
        driver.drop_results()


def reminder_lines(session: Session, day: dt.date, minimum: Decimal = ZERO) -> list[ReminderLine]:
    """`iter_reminder_lines` as a list (the reminders page shows them all at once)."""
    return list(iter_reminder_lines(session, day, minimum))


def issue_reminders(session: Session, day: dt.date, lines: Iterable[ReminderLine], author_id: int) -> tuple[Decimal, int]:
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


def reminders_csv(lines: Iterable[ReminderLine], day: dt.date) -> str:
    def row(line: ReminderLine) -> list:
        names = " | ".join(f"{item.description or item.tax_kind} ({item.decision_number or '-'})" for item in line.liabilities)
        return [line.taxpayer_id, line.name, line.identifier, line.address, names, str(line.zaleglosc).replace(".", ","),
                str(line.odsetki).replace(".", ","), str(line.zaleglosc + line.odsetki).replace(".", ",")]

    return csv_text(["numer podatnika", "podatnik", "identyfikator", "adres", "zobowiązania", "zaległość",
                     "odsetki na dzień " + day.isoformat(), "razem"], (row(line) for line in lines), bom=False)
