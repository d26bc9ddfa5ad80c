"""Generate a synthetic gmina for the benchmarks and load it at bulk speed.

    python -m bench.generate --taxpayers 300000 --database postgresql://postgres@127.0.0.1:5432/bench
    python -m bench.generate --taxpayers 300000 --database sqlite:////tmp/bench.sqlite3

PostgreSQL is loaded with binary COPY, SQLite with `executemany` in batches; both one transaction
per table, with every constraint in force when it commits.
The data is a pure function of the options (and the seed), whatever `--batch` is, except the argon2
hash, whose salt is random. Every generated resident logs in with `BENCH_PASSWORD`.

The data set grows with the application: `GENERATORS` is the list of per-table generators, run in
order (parents before children). A generator never holds its table in memory: it yields rows, and
rows of later tables are derived from indices (`Plan`) rather than read back from the database.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import itertools
import json
import operator
import random
import resource
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from platforma.core.db import make_engine, normalise_url
from platforma.core.migrate import upgrade
from platforma.demo.people import Business, Person, businesses, people
from platforma.taxes.rules import RateTable, arrears_interest, effective_due, installment_schedule, waste_fee_schedule

RESULTS = Path(__file__).resolve().parent / "results" / "generate.json"
UTC = dt.UTC
SOURCE = "bench"
#: the password of every generated resident account (hashed once, the hash shared by all of them)
BENCH_PASSWORD = "Bench-Mieszkaniec-2026"
#: `people()` and `businesses()` are called for fixed chunks of this many, so that person n is the
#: same person whichever generator asks for it and whatever --batch is
PEOPLE_CHUNK = 1000
#: `people()` promises unique PESELs only below this index
MAX_NATURAL = 600_000
#: `nip_for()` keeps NIPs distinct only below this number
MAX_LEGAL = 999_999
#: timestamps are spread over fixed periods, so that the data does not depend on the day it is made
TAXPAYERS_FROM = dt.datetime(2012, 1, 2, 7, 0, tzinfo=UTC)
USERS_FROM = dt.datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
GENERATED_UNTIL = dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


# -- the plan: sizes and the index arithmetic shared by all generators ---------------------------

@dataclass(frozen=True)
class Plan:
    """How many of everything, and which row of one table belongs to which row of another.

    Ids are set by the generator. Taxpayer ids 1..taxpayers mix both kinds evenly (`is_legal`), so
    that legal persons are spread over the id range and over the creation dates as in a real
    register; natural person j is the j-th natural taxpayer in id order (`natural_ids`), legal
    person k the k-th legal one. User k (0-based) is natural person `user_person(k)`; users and
    their access rows are 1..users.
    """

    taxpayers: int
    legal: int
    natural: int
    users: int
    seed: int
    #: the tax years of the ledger (decisions, liabilities, installments, postings), in order
    years: tuple[int, ...] = ()
    password_hash: str = field(default="", repr=False)
    #: the interest rates and the threshold seeded by the migrations (read after migrating)
    rates: RateTable | None = field(default=None, repr=False)
    threshold: Decimal = field(default=Decimal("8.70"), repr=False)

    @classmethod
    def build(
        cls, taxpayers: int, legal_share: float, users_share: float, seed: int, years: Sequence[int] = (),
    ) -> Plan:
        legal = round(taxpayers * legal_share)
        natural = taxpayers - legal
        return cls(taxpayers, legal, natural, round(natural * users_share), seed, tuple(years))

    def is_legal(self, taxpayer_id: int) -> bool:
        """Exactly `legal` of the ids 1..taxpayers are legal persons, evenly spaced."""
        i = taxpayer_id - 1
        return (i + 1) * self.legal // self.taxpayers > i * self.legal // self.taxpayers

    def natural_ids(self) -> Iterator[int]:
        """The taxpayer id of natural person 0, 1, 2, ... in turn."""
        return (tid for tid in range(1, self.taxpayers + 1) if not self.is_legal(tid))

    def user_person(self, k: int) -> int:
        """The natural person (index) user k is: spread evenly over all natural persons."""
        return k * self.natural // self.users

    def natural_index(self, taxpayer_id: int) -> int:
        """Which natural person (0-based) a natural taxpayer id is."""
        return taxpayer_id - taxpayer_id * self.legal // self.taxpayers - 1

    def natural_id(self, index: int) -> int:
        """The taxpayer id of natural person `index` (the inverse of `natural_index`), in O(1)."""
        target = index + 1
        tid = max(1, target * self.taxpayers // self.natural)
        while tid - tid * self.legal // self.taxpayers < target:
            tid += 1
        while tid > 1 and (tid - 1) - (tid - 1) * self.legal // self.taxpayers >= target:
            tid -= 1
        return tid

    def partner_of(self, taxpayer_id: int) -> int | None:
        """The natural person a natural person co-owns property with: persons 0-1, 2-3, ... are pairs."""
        index = self.natural_index(taxpayer_id)
        other = index ^ 1
        if other >= self.natural:
            other = index - 1
        return None if other < 0 else self.natural_id(other)


def pick(items: Iterable[Any], indices: Iterable[int]) -> Iterator[Any]:
    """The items at the given increasing indices, streaming."""
    iterator, position = iter(items), 0
    for index in indices:
        item = next(itertools.islice(iterator, index - position, None))
        position = index + 1
        yield item


def spread(start: dt.datetime, end: dt.datetime, count: int) -> Callable[[int], dt.datetime]:
    """Timestamp i of count, evenly from start to end (increasing with the index, like ids)."""
    span = (end - start) // dt.timedelta(microseconds=1)
    count = max(count, 1)
    return lambda i: start + dt.timedelta(microseconds=span * i // count)


@functools.lru_cache(maxsize=2)
def _people_chunk(seed: int, chunk: int) -> list[Person]:
    return people(PEOPLE_CHUNK, seed, chunk * PEOPLE_CHUNK)


def person(seed: int, index: int) -> Person:
    """Natural person `index`; cheap when asked in increasing order (the chunk is cached)."""
    return _people_chunk(seed, index // PEOPLE_CHUNK)[index % PEOPLE_CHUNK]


# -- per-table generators ----------------------------------------------------------------------

@dataclass(frozen=True)
class TableGenerator:
    table: str
    columns: tuple[str, ...]
    #: how many rows the plan asks for (for progress and the check afterwards); None when only
    #: generating them tells (the ledger: payments depend on drawn outcomes and computed interest)
    count: Callable[[Plan], int | None]
    #: the rows, as tuples in `columns` order; timestamps as aware UTC datetimes, dates as dates
    rows: Callable[[Plan], Iterator[tuple[Any, ...]]]
    #: the columns holding timestamps (UTCDateTime), which SQLite stores as naive text
    timestamps: tuple[str, ...] = ()
    #: the columns holding dates, which SQLite stores as ISO text (as SQLAlchemy's Date does)
    dates: tuple[str, ...] = ()


TAXPAYER_COLUMNS = (
    "id", "kind", "first_name", "last_name", "name", "pesel", "nip", "regon",
    "street", "postal_code", "city", "source", "source_key", "created_at",
)


def _legal_persons(plan: Plan) -> Iterator[Business]:
    for start in range(0, plan.legal, PEOPLE_CHUNK):
        yield from businesses(PEOPLE_CHUNK, plan.seed, start)[: plan.legal - start]


def taxpayer_rows(plan: Plan) -> Iterator[tuple[Any, ...]]:
    created = spread(TAXPAYERS_FROM, GENERATED_UNTIL, plan.taxpayers)
    legal = enumerate(_legal_persons(plan), 1)
    natural = 0
    for tid in range(1, plan.taxpayers + 1):
        if plan.is_legal(tid):
            k, b = next(legal)
            yield (tid, "legal", "", "", b.name, None, b.nip, b.regon,
                   b.street, b.postal_code, b.city, SOURCE, f"F{k:07d}", created(tid - 1))
        else:
            p = person(plan.seed, natural)
            natural += 1
            yield (tid, "natural", p.first_name, p.last_name, "", p.pesel, None, None,
                   p.street, p.postal_code, p.city, SOURCE, f"P{natural:07d}", created(tid - 1))


USER_COLUMNS = (
    "id", "email", "full_name", "role", "password_hash", "password_changed_at", "email_confirmed_at",
    "is_active", "declared_pesel", "locale", "created_at",
)


def user_rows(plan: Plan) -> Iterator[tuple[Any, ...]]:
    created = spread(USERS_FROM, GENERATED_UNTIL, plan.users)
    confirmed_after = dt.timedelta(minutes=7)
    for k in range(plan.users):
        p = person(plan.seed, plan.user_person(k))
        at = created(k)
        # the resident declared their PESEL in the profile, and a clerk linked them to themself
        yield (k + 1, f"mieszkaniec{k + 1}@example.com", f"{p.first_name} {p.last_name}", "resident",
               plan.password_hash, at, at + confirmed_after, True, p.pesel, "pl", at)


ACCESS_COLUMNS = ("id", "user_id", "taxpayer_id", "relation", "granted_at", "note")


def access_rows(plan: Plan) -> Iterator[tuple[Any, ...]]:
    created = spread(USERS_FROM, GENERATED_UNTIL, plan.users)
    linked_after = dt.timedelta(minutes=8)
    taxpayer_ids = pick(plan.natural_ids(), map(plan.user_person, range(plan.users)))
    for k, taxpayer_id in enumerate(taxpayer_ids):
        yield (k + 1, k + 1, taxpayer_id, "self", created(k) + linked_after, "")


# -- the ledger: decisions, liabilities and their parties, installments, postings -------------------
#
# Every taxpayer has, every year, the liabilities of its kinds (`NATURAL_MIX`, `LEGAL_MIX`: which
# kinds a taxpayer has is drawn once and kept for all years; the amounts grow 5 % a year), each
# resting on one decision or declaration (decision id = liability id), split into installments by
# `platforma.taxes.rules` (installment_schedule for taxes, waste_fee_schedule for the waste fee), with
# a przypis per installment and the payments a taxpayer of its payment habit makes (`PROFILES`).
# All of it is drawn per (year, chunk of MODEL_CHUNK taxpayers) from seeded generators and held one
# chunk at a time: `ledger_rows` walks the chunks once and yields the rows of all five tables, ids
# assigned by counters (never read back), which the loaders feed to the five tables at once.
# A payment pays its installment in full (with the interest, when late): partial payments, whose
# art. 55 §2 OP split the app's `allocate_payment` makes, are not generated.

#: the day the ledger is generated as of: nothing is paid after it (the benchmarks ask for this day)
LEDGER_AS_OF = dt.date(2026, 11, 22)
#: the last three tax years up to LEDGER_AS_OF
DEFAULT_YEARS = (2024, 2025, 2026)
#: the seeded interest rates start in October 2014
FIRST_YEAR = 2015
#: taxpayers per model chunk: a fixed constant (not --batch), so the data never depends on batching
MODEL_CHUNK = 1000
#: the waste fee's schedule (the gmina's resolution; not seeded by the migrations): quarterly, by the
#: 15th of the quarter's first month
WASTE_SCHEDULE = {"frequency": "quarterly", "day": 15, "in_advance": True}
#: a natural person's liability is co-owned (two parties) with this probability; vehicles never are
CO_OWNED = 0.11
#: an installment of a co-owned liability is paid by the co-owner with this probability
CO_OWNER_PAYS = 0.3
#: payment habits, drawn once per taxpayer: (share of taxpayers, P(installment paid on time),
#: P(paid late)); the rest stays unpaid. Punctual taxpayers leave nothing unpaid, so the arrears
#: gather on about 30 % of the taxpayers (as reminders do), yet of all installments about 81 % are
#: paid on time, 10 % late and 9 % not at all.
PROFILES = ((0.75, 0.98, 0.02), (0.15, 0.40, 0.50), (0.10, 0.15, 0.10))
#: an on-time payment is rounded up by 1-30 zł with this probability: a nadpłata on the account
OVERPAID = 0.02
#: a late payment comes 1 + 180 u² days after the due date (u uniform): mostly weeks, some months
LATE_DAYS = 180
#: an on-time payment comes 0-24 days before the due date (never before the przypis)
EARLY_DAYS = 25
YEARLY_GROWTH_PERCENT = 5
BASE_YEAR = 2024
DESCRIPTIONS = {
    "nieruchomosci": "Podatek od nieruchomości",
    "rolny": "Podatek rolny",
    "lesny": "Podatek leśny",
    "srodki_transportowe": "Podatek od środków transportowych",
    "odpady": "Opłata za gospodarowanie odpadami komunalnymi",
    "odpady2": "Opłata za gospodarowanie odpadami komunalnymi (druga nieruchomość)",
}


@dataclass(frozen=True)
class LiabilityKind:
    """One line of a taxpayer's yearly mix."""

    #: distinct within a mix ("odpady2": the declaration for a second property)
    key: str
    tax_kind: str
    #: the share of taxpayers (of the payer type) who have it, every year
    share: float
    #: from u in [0, 1): the tax in whole złoty, or for the waste fee the monthly fee in grosze
    base: Callable[[float], int]
    #: "decyzja" (natural persons' property, agricultural, forest tax) or the declaration's form
    document: str


# The shares make 4.0 liabilities per taxpayer a year, DESIGN.md's target (1.2 million a year for
# 300,000 taxpayers): the property tax and the waste fee for everyone, the rest for a share.
NATURAL_MIX = (
    LiabilityKind("nieruchomosci", "nieruchomosci", 1.0, lambda u: 30 + int(2400 * u * u), "decyzja"),
    LiabilityKind("odpady", "odpady", 1.0, lambda u: 2500 + 50 * int(240 * u), "DO"),
    LiabilityKind("odpady2", "odpady", 0.5, lambda u: 1500 + 50 * int(100 * u), "DO"),
    LiabilityKind("rolny", "rolny", 0.7, lambda u: 60 + int(4000 * u * u), "decyzja"),
    LiabilityKind("lesny", "lesny", 0.6, lambda u: 15 + int(400 * u * u), "decyzja"),
    LiabilityKind("srodki", "srodki_transportowe", 0.2, lambda u: 700 + int(5000 * u), "DT-1"),
)
LEGAL_MIX = (
    LiabilityKind("nieruchomosci", "nieruchomosci", 1.0, lambda u: 1500 + int(150_000 * u * u * u), "DN-1"),
    LiabilityKind("odpady", "odpady", 1.0, lambda u: 20_000 + 1000 * int(200 * u), "DO"),
    LiabilityKind("odpady2", "odpady", 0.5, lambda u: 10_000 + 1000 * int(50 * u), "DO"),
    LiabilityKind("srodki", "srodki_transportowe", 0.7, lambda u: 2000 + int(60_000 * u * u), "DT-1"),
    LiabilityKind("rolny", "rolny", 0.4, lambda u: 300 + int(20_000 * u * u), "DR-1"),
    LiabilityKind("lesny", "lesny", 0.4, lambda u: 100 + int(8000 * u * u), "DL-1"),
)

#: (id, number, nominal due date, effective due date, amount in grosze)
InstallmentSpec = tuple[int, int, dt.date, dt.date, int]


@dataclass(slots=True)
class LiabilitySpec:
    id: int
    taxpayer_id: int
    co_owner_id: int | None
    #: the first of its liability_party ids (the principal; the co-owner is the next one)
    party_id: int
    kind: LiabilityKind
    payer: str
    year: int
    #: grosze
    amount: int
    issued_on: dt.date | None
    delivered_on: dt.date | None
    #: the przypis day: the decision's issue day or the day the declaration was filed
    booked_on: dt.date
    installments: tuple[InstallmentSpec, ...]
    #: (P(on time), P(late)) of the taxpayer's habit
    habit: tuple[float, float]


def _seed(seed: int, stream: int, year: int, chunk: int) -> int:
    return ((seed * 10 + stream) * 10_000 + year) * 10_000_000 + chunk


def _grown(value: int, year: int) -> int:
    return value * max(50, 100 + YEARLY_GROWTH_PERCENT * (year - BASE_YEAR)) // 100


@functools.lru_cache(maxsize=1 << 15)
def _tax_schedule(tax_kind: str, payer: str, zloty: int, year: int) -> tuple[tuple[int, dt.date, int], ...]:
    return tuple(
        (item.number, item.nominal_due, int(item.amount * 100))
        for item in installment_schedule(tax_kind, payer, Decimal(zloty), year)
    )


@functools.lru_cache(maxsize=1 << 12)
def _waste_schedule(monthly_grosze: int, year: int) -> tuple[tuple[int, dt.date, int], ...]:
    return tuple(
        (item.number, item.nominal_due, int(item.amount * 100))
        for item in waste_fee_schedule(Decimal(monthly_grosze).scaleb(-2), year, **WASTE_SCHEDULE)
    )


@functools.lru_cache(maxsize=1 << 14)
def _due(nominal: dt.date, delivered: dt.date | None) -> dt.date:
    return effective_due(nominal, delivered)


@functools.lru_cache(maxsize=1 << 12)
def _at(day: dt.date, hour: int = 7) -> dt.datetime:
    """A timestamp on a day (the office's morning run, in UTC)."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _habit(u: float) -> tuple[float, float]:
    for share, on_time, late in PROFILES:
        if u < share:
            return on_time, late
        u -= share
    return PROFILES[-1][1:]


def ledger_chunks(plan: Plan) -> Iterator[tuple[int, int, list[LiabilitySpec]]]:
    """(year, chunk, the chunk's liabilities) for every year and chunk, ids assigned in this order:
    year, taxpayer, the mix's order. A chunk depends only on (seed, year, chunk), so a year's data
    is the same whichever other years are asked for (only the ids shift)."""
    liability_id = party_id = installment_id = 1
    for year in plan.years:
        jan1 = dt.date(year, 1, 1)
        for chunk, first in enumerate(range(1, plan.taxpayers + 1, MODEL_CHUNK)):
            stable = random.Random(_seed(plan.seed, 1, 0, chunk))  # what a taxpayer has: the same every year
            yearly = random.Random(_seed(plan.seed, 2, year, chunk))  # this year's dates
            specs = []
            for tid in range(first, min(first + MODEL_CHUNK, plan.taxpayers + 1)):
                legal = plan.is_legal(tid)
                payer = "legal" if legal else "natural"
                habit = _habit(stable.random())
                partner = None if legal else plan.partner_of(tid)
                for kind in LEGAL_MIX if legal else NATURAL_MIX:
                    has, size, shared = stable.random(), stable.random(), stable.random()
                    day, delay = yearly.random(), yearly.random()
                    if has >= kind.share:
                        continue
                    if kind.document == "decyzja":
                        issued = jan1 + dt.timedelta(days=31 + int(20 * day))  # 1-20 February
                        delivered = issued + dt.timedelta(days=3 + int(8 * delay))
                        booked = issued
                    else:
                        issued = delivered = None
                        # the waste fee is booked on 2 January; DN-1 by 31 January, DT-1 by 15 February
                        booked = jan1 + dt.timedelta(days=1 if kind.tax_kind == "odpady" else 4 + int(27 * day))
                    if kind.tax_kind == "odpady":
                        monthly = max(500, _grown(kind.base(size), year) // 50 * 50)
                        schedule = _waste_schedule(monthly, year)
                    else:
                        schedule = _tax_schedule(kind.tax_kind, payer, max(1, _grown(kind.base(size), year)), year)
                    installments = []
                    for number, nominal, grosze in schedule:
                        installments.append((installment_id, number, nominal, _due(nominal, delivered), grosze))
                        installment_id += 1
                    co_owner = partner if partner is not None and kind.tax_kind != "srodki_transportowe" and shared < CO_OWNED else None
                    specs.append(LiabilitySpec(
                        liability_id, tid, co_owner, party_id, kind, payer, year, sum(i[4] for i in installments),
                        issued, delivered, booked, tuple(installments), habit,
                    ))
                    liability_id += 1
                    party_id += 1 if co_owner is None else 2
            yield year, chunk, specs


DECISION_COLUMNS = (
    "id", "number", "document_type", "year", "issued_on", "delivered_on", "source", "source_key", "created_at",
)
LIABILITY_COLUMNS = (
    "id", "decision_id", "tax_kind", "payer_type", "year", "period_from", "period_to", "amount", "description",
    "source", "source_key", "created_at",
)
PARTY_COLUMNS = ("id", "liability_id", "taxpayer_id", "role")
INSTALLMENT_COLUMNS = ("id", "liability_id", "number", "due_on", "amount")
POSTING_COLUMNS = (
    "id", "taxpayer_id", "liability_id", "installment_id", "kind", "amount", "booked_on", "value_date",
    "payment_ref", "origin", "reason", "created_at", "source", "source_key",
)
#: the ledger stream's table indices (`ledger_rows` yields (index, row))
DECISION, LIABILITY, PARTY, INSTALLMENT, POSTING = range(5)


def ledger_rows(plan: Plan) -> Iterator[tuple[int, list[Any] | tuple[Any, ...]]]:
    """The rows of the five ledger tables, as (table index, row), chunk by chunk: a chunk's decisions,
    liabilities, parties and installments, then its postings (so parents always come first).

    The postings are what the app writes (platforma.taxes.operations): a przypis per installment on
    the przypis day; a payment as a wpłata of the whole part it took plus, when the interest exceeds
    the threshold, an odsetki line with the same payment_ref (art. 55 §2 OP); a rounded-up payment's
    excess as a nadpłata without a liability. Late payments carry the interest
    `platforma.taxes.rules.arrears_interest` computes with the seeded rates, so `account_as_of`
    replays them to "paid". Within a chunk the lines are in date order, as a ledger fills up: one
    taxpayer's lines lie on many pages, not side by side.
    """
    if plan.years and plan.rates is None:
        raise RuntimeError("the plan has no interest rates: read them after migrating (generate() does)")
    rates, threshold = plan.rates, plan.threshold
    by_date = operator.itemgetter(7)
    posting_id = 1
    for year, chunk, specs in ledger_chunks(plan):
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        outcomes = random.Random(_seed(plan.seed, 3, year, chunk))
        lines: list[list[Any]] = []
        add = lines.append
        for s in specs:
            lid, tid, booked, created = s.id, s.taxpayer_id, s.booked_on, _at(s.booked_on)
            kind = s.kind
            if kind.document == "decyzja":
                yield DECISION, (lid, f"FN.3120.{lid}.{year}", "decyzja", year, s.issued_on, s.delivered_on,
                                 SOURCE, f"D{lid:09d}", created)
            else:
                yield DECISION, (lid, f"{kind.document}/{year}/{lid}", "deklaracja", year, None, None,
                                 SOURCE, f"D{lid:09d}", created)
            lkey = f"L{lid:09d}"
            description = DESCRIPTIONS[kind.tax_kind] if kind.key != "odpady2" else DESCRIPTIONS["odpady2"]
            yield LIABILITY, (lid, lid, kind.tax_kind, s.payer, year, start, end, s.amount, f"{description} {year}",
                              SOURCE, lkey, created)
            yield PARTY, (s.party_id, lid, tid, "principal")
            co_owner = s.co_owner_id
            if co_owner is not None:
                yield PARTY, (s.party_id + 1, lid, co_owner, "co_owner")
            on_time, late = s.habit
            for iid, number, nominal, due, grosze in s.installments:
                yield INSTALLMENT, (iid, lid, number, nominal, grosze)
                add([0, tid, lid, iid, "przypis", grosze, booked, booked, None, "import", "", created, SOURCE,
                     f"{lkey}:przypis:{number}"])
                what, when, who, extra = outcomes.random(), outcomes.random(), outcomes.random(), outcomes.random()
                payer = co_owner if co_owner is not None and who < CO_OWNER_PAYS else tid
                if what < on_time:
                    paid_on = due - dt.timedelta(days=int(EARLY_DAYS * when))
                    if paid_on < booked:
                        paid_on = booked
                    if paid_on > LEDGER_AS_OF:
                        continue
                    ref, at = f"W{iid:010d}", _at(paid_on, 9)
                    add([0, payer, lid, iid, "wplata", grosze, paid_on, paid_on, ref, "import", "", at, SOURCE, ref + ":1"])
                    if extra < OVERPAID:
                        excess = 100 * (1 + int(29 * extra / OVERPAID))  # 1-29 zł
                        add([0, payer, None, None, "nadplata", excess, paid_on, paid_on, ref, "import", "", at, SOURCE,
                             ref + ":2"])
                elif what < on_time + late:
                    paid_on = due + dt.timedelta(days=1 + int(LATE_DAYS * when * when))
                    if paid_on > LEDGER_AS_OF:
                        continue
                    interest = arrears_interest(Decimal(grosze).scaleb(-2), due, paid_on, rates, threshold)
                    charged = int(interest.rounded) * 100 if interest.charged else 0
                    ref, at = f"W{iid:010d}", _at(paid_on, 9)
                    add([0, payer, lid, iid, "wplata", grosze + charged, paid_on, paid_on, ref, "import", "", at, SOURCE,
                         ref + ":1"])
                    if charged:
                        add([0, payer, lid, iid, "odsetki", charged, paid_on, paid_on, ref, "import", "", at, SOURCE,
                             ref + ":2"])
        lines.sort(key=by_date)  # stable: the same day keeps the generation order
        for line in lines:
            line[0] = posting_id
            posting_id += 1
            yield POSTING, line


@dataclass(frozen=True)
class TableGroup:
    """Tables filled from one pass over a model they share (the ledger): `rows(plan)` yields
    (index into `tables`, row), parents before the children that reference them. The loaders fill
    the tables at once (PostgreSQL: one COPY per table, each on its own connection)."""

    name: str
    tables: tuple[TableGenerator, ...]
    rows: Callable[[Plan], Iterator[tuple[int, Sequence[Any]]]]


def _one_table(index: int) -> Callable[[Plan], Iterator[Sequence[Any]]]:
    """One table's rows out of the ledger stream (for tests and tools; the load uses the stream)."""
    return lambda plan: (row for i, row in ledger_rows(plan) if i == index)


LEDGER = TableGroup("ledger", (
    TableGenerator(
        "decision", DECISION_COLUMNS, lambda p: None, _one_table(DECISION), ("created_at",), ("issued_on", "delivered_on"),
    ),
    TableGenerator(
        "liability", LIABILITY_COLUMNS, lambda p: None, _one_table(LIABILITY), ("created_at",), ("period_from", "period_to"),
    ),
    TableGenerator("liability_party", PARTY_COLUMNS, lambda p: None, _one_table(PARTY)),
    TableGenerator("installment", INSTALLMENT_COLUMNS, lambda p: None, _one_table(INSTALLMENT), (), ("due_on",)),
    TableGenerator(
        "posting", POSTING_COLUMNS, lambda p: None, _one_table(POSTING), ("created_at",), ("booked_on", "value_date"),
    ),
), ledger_rows)

#: run in this order; a later issue adds its tables by appending a TableGenerator or a TableGroup
#: (see README.md)
GENERATORS: list[TableGenerator | TableGroup] = [
    TableGenerator("taxpayer", TAXPAYER_COLUMNS, lambda p: p.taxpayers, taxpayer_rows, ("created_at",)),
    TableGenerator(
        "user_account", USER_COLUMNS, lambda p: p.users, user_rows,
        ("password_changed_at", "email_confirmed_at", "created_at"),
    ),
    TableGenerator("taxpayer_access", ACCESS_COLUMNS, lambda p: p.users, access_rows, ("granted_at",)),
    LEDGER,
]


def tables_of(generators: Sequence[TableGenerator | TableGroup]) -> list[TableGenerator]:
    return [t for g in generators for t in (g.tables if isinstance(g, TableGroup) else (g,))]


# -- loaders -----------------------------------------------------------------------------------

Progress = Callable[[int], None]


def batched(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class Loader(Protocol):
    server_version: str

    def load(self, gen: TableGenerator, rows: Iterator[tuple[Any, ...]], batch: int, progress: Progress) -> int: ...

    def load_group(
        self, group: TableGroup, rows: Iterator[tuple[int, Sequence[Any]]], batch: int, progress: Progress,
    ) -> GroupLoad: ...

    def finish(self, tables: Sequence[str]) -> None: ...

    def close(self) -> None: ...


@dataclass
class GroupLoad:
    #: rows per table of the group, in its order
    rows: list[int]
    #: generating and writing the rows
    data_seconds: float = 0.0
    #: building the indexes and checking the constraints afterwards (PostgreSQL)
    constraint_seconds: float = 0.0


@dataclass(frozen=True)
class _Schema:
    """What the PostgreSQL loader takes off a table for the COPY and puts back afterwards."""

    table: str
    types: dict[str, int]
    foreign_keys: list[tuple[str, str]]
    unique: list[tuple[str, str]]
    indexes: list[tuple[str, str]]


class PostgresLoader:
    """Binary COPY ... FROM STDIN on the raw psycopg 3 connection; one transaction per table, or
    for a group one COPY per table on its own connection (see `load_group`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection  # psycopg.Connection
        self.server_version = self.conn.execute("SHOW server_version").fetchone()[0]

    def _schema(self, table: str) -> _Schema:
        # binary COPY: psycopg dumps each value in C to the column's own type, the server parses nothing
        types = dict(self.conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = quote_ident(%s)::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        ).fetchall())
        # A foreign key is checked by a trigger per row (a third of the speed of the COPY itself);
        # dropped and added again it is checked once for the whole table, and a row that breaks it
        # fails the ALTER and rolls the table back as the trigger would.
        foreign_keys = self.conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = quote_ident(%s)::regclass AND contype = 'f' ORDER BY conname",
            (table,),
        ).fetchall()
        # Likewise the unique constraints and the other indexes (not the primary key, which the
        # ascending ids only append to, and which foreign keys of other tables depend on): kept in
        # place, every row is an insertion into each of them in no particular order (the ledger's
        # eight indexes made its COPY wait on I/O); built once afterwards by sorting they cost a
        # fraction, and a duplicate still fails the ADD CONSTRAINT and rolls the table back.
        unique = self.conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = quote_ident(%s)::regclass AND contype = 'u' ORDER BY conname",
            (table,),
        ).fetchall()
        indexes = self.conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = quote_ident(%s)::regclass AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid"
            "  AND k.contype IN ('p', 'u', 'x')"
            ") ORDER BY c.relname",
            (table,),
        ).fetchall()
        return _Schema(table, types, foreign_keys, unique, indexes)

    def _drop(self, schema: _Schema) -> None:
        from psycopg import sql

        table = sql.Identifier(schema.table)
        # the app's triggers (migration 0005 raises liability.revision on every installment written:
        # a row update per COPY row) are for later changes, not for a load; the append-only ones
        # only refuse UPDATE and DELETE. Enabled again with the constraints.
        self.conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
        for name, _definition in schema.foreign_keys + schema.unique:
            self.conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(name)))
        for name, _definition in schema.indexes:
            self.conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))

    def _restore(self, schema: _Schema, *, foreign_keys: bool = True, indexes: bool = True) -> None:
        from psycopg import sql

        table = sql.Identifier(schema.table)
        add = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}")
        if foreign_keys:
            self.conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(table))
        if indexes:
            # sorting for an index build: more memory than the default 64 MB, for this transaction only
            self.conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for name, definition in schema.unique:
                self.conn.execute(add.format(table, sql.Identifier(name), sql.SQL(definition)))
            for _name, definition in schema.indexes:
                self.conn.execute(sql.SQL(definition))
        if foreign_keys:
            for name, definition in schema.foreign_keys:
                self.conn.execute(add.format(table, sql.Identifier(name), sql.SQL(definition)))

    def _statement(self, gen: TableGenerator) -> Any:
        from psycopg import sql

        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(gen.table), sql.SQL(", ").join(map(sql.Identifier, gen.columns))
        )

    def load(self, gen: TableGenerator, rows: Iterator[tuple[Any, ...]], batch: int, progress: Progress) -> int:
        schema = self._schema(gen.table)
        done = 0
        try:
            self._drop(schema)
            with self.conn.cursor() as cursor, cursor.copy(self._statement(gen)) as copy:
                copy.set_types([schema.types[name] for name in gen.columns])
                for chunk in batched(rows, batch):
                    for row in chunk:
                        copy.write_row(row)
                    done += len(chunk)
                    progress(done)
            self._restore(schema)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return done

    def load_group(
        self, group: TableGroup, rows: Iterator[tuple[int, Sequence[Any]]], batch: int, progress: Progress,
    ) -> GroupLoad:
        """One pass over the group's stream feeding one COPY per table, each on its own connection:
        the model is computed once, and the server parses and stores the tables in parallel with
        the generator.

        Concurrent transactions cannot see one another's rows, so the foreign keys between the
        tables cannot stay during the load: the group's foreign keys, unique constraints and
        indexes are dropped in one committed transaction first, and put back (indexes built, every
        constraint checked) in one transaction after the COPYs commit. If anything fails, the
        group's tables are emptied and their constraints put back, as a rollback would leave them.
        (A process killed in between leaves them without constraints, but the taxpayers loaded
        before make the database non-empty, so only --fresh, which migrates anew, can load it again.)
        """
        schemas = [self._schema(gen.table) for gen in group.tables]
        result = GroupLoad([0] * len(group.tables))
        started = time.perf_counter()
        try:
            for schema in schemas:
                self._drop(schema)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        extra = [self.engine.raw_connection() for _ in group.tables]
        try:
            with contextlib.ExitStack() as stack:
                writers = []
                for gen, schema, raw in zip(group.tables, schemas, extra):
                    cursor = stack.enter_context(raw.driver_connection.cursor())
                    copy = stack.enter_context(cursor.copy(self._statement(gen)))
                    copy.set_types([schema.types[name] for name in gen.columns])
                    writers.append(copy.write_row)
                counts = result.rows
                done, report = 0, batch
                for index, row in rows:
                    writers[index](row)
                    counts[index] += 1
                    done += 1
                    if done == report:
                        progress(done)
                        report += batch
                progress(done)
            for raw in extra:
                raw.driver_connection.commit()
            result.data_seconds = time.perf_counter() - started
            started = time.perf_counter()
            for schema in schemas:
                self._restore(schema, foreign_keys=False)
            for schema in schemas:
                self._restore(schema, indexes=False)
            self.conn.commit()
            result.constraint_seconds = time.perf_counter() - started
        except BaseException:
            for raw in extra:
                raw.driver_connection.rollback()
            self.conn.rollback()
            try:
                from psycopg import sql

                # CASCADE: tables outside the group that reference it (liability_basis) block a plain
                # TRUNCATE; the target was empty when the load began and parents load before their
                # children, so whatever references the group is empty or in it
                self.conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(s.table) for s in schemas)
                ))
                for schema in schemas:
                    self._restore(schema)
                self.conn.commit()
            except Exception as error:  # noqa: BLE001 - the first error is the one to report
                self.conn.rollback()
                log(f"could not put back the constraints of {', '.join(s.table for s in schemas)} ({error}): "
                    "load again with --fresh")
            raise
        finally:
            for raw in extra:
                raw.close()
        return result

    def finish(self, tables: Sequence[str]) -> None:
        from psycopg import sql

        # ids were given explicitly, so move each sequence past them for the app's own inserts
        for table in tables:
            self.conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({name}, 'id'), COALESCE(max(id), 1), max(id) IS NOT NULL) "
                    "FROM {table}"
                ).format(name=sql.Literal(table), table=sql.Identifier(table))
            )
        self.conn.commit()
        # VACUUM as autovacuum would soon after a load (insert-only tables are vacuumed after enough
        # inserts, PostgreSQL 13+): the visibility map lets the account pages' index-only scans skip
        # the heap, as they do on a gmina's database in use; ANALYZE for the planner
        self.conn.autocommit = True
        try:
            self.conn.execute("VACUUM (ANALYZE)")
        finally:
            self.conn.autocommit = False

    def close(self) -> None:
        self.raw.close()


class SqliteLoader:
    """executemany of INSERTs in batches; one transaction per table, synchronous=OFF during the load."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.conn: sqlite3.Connection = self.raw.driver_connection
        self.server_version = sqlite3.sqlite_version
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-131072")  # 128 MiB, for the unique indexes

    @staticmethod
    def _adapter(gen: TableGenerator) -> Callable[[tuple[Any, ...]], tuple[Any, ...]] | None:
        # SQLAlchemy's DateTime on SQLite: naive UTC text with microseconds, as UTCDateTime binds it;
        # its Date: ISO text (written here rather than by sqlite3's deprecated default adapter)
        positions = [gen.columns.index(name) for name in gen.timestamps]
        dates = [gen.columns.index(name) for name in gen.dates]
        if not positions and not dates:
            return None

        def adapt(row: tuple[Any, ...]) -> tuple[Any, ...]:
            values = list(row)
            for i in positions:
                value = values[i]
                if value is not None:
                    values[i] = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            for i in dates:
                value = values[i]
                if value is not None:
                    values[i] = value.isoformat()
            return tuple(values)

        return adapt

    def _insert_triggers(self, tables: Sequence[str]) -> list[tuple[str, str]]:
        """The INSERT triggers of the tables (migration 0005's raise liability.revision for every
        installment written: a row update per inserted row), dropped for the load in its transaction;
        `_recreate` puts them back in it."""
        found = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%AFTER INSERT%' "
            f"AND tbl_name IN ({', '.join('?' * len(tables))})", tuple(tables),
        ).fetchall()
        for name, _sql in found:
            self.conn.execute(f'DROP TRIGGER "{name}"')
        return found

    def _recreate(self, triggers: list[tuple[str, str]]) -> None:
        for _name, definition in triggers:
            self.conn.execute(definition)

    def load(self, gen: TableGenerator, rows: Iterator[tuple[Any, ...]], batch: int, progress: Progress) -> int:
        statement = (
            f'INSERT INTO "{gen.table}" ({", ".join(gen.columns)}) VALUES ({", ".join("?" * len(gen.columns))})'
        )
        adapt = self._adapter(gen)
        done = 0
        try:
            self.conn.execute("BEGIN")
            triggers = self._insert_triggers([gen.table])
            for chunk in batched(rows, batch):
                self.conn.executemany(statement, chunk if adapt is None else map(adapt, chunk))
                done += len(chunk)
                progress(done)
            self._recreate(triggers)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return done

    def load_group(
        self, group: TableGroup, rows: Iterator[tuple[int, Sequence[Any]]], batch: int, progress: Progress,
    ) -> GroupLoad:
        """One transaction; rows are buffered per table and flushed in the group's order (parents
        first, so that the foreign keys, checked per statement, always find their rows)."""
        statements = [
            f'INSERT INTO "{gen.table}" ({", ".join(gen.columns)}) VALUES ({", ".join("?" * len(gen.columns))})'
            for gen in group.tables
        ]
        adapters = [self._adapter(gen) for gen in group.tables]
        buffers: list[list[Sequence[Any]]] = [[] for _ in group.tables]
        result = GroupLoad([0] * len(group.tables))
        started = time.perf_counter()

        def flush() -> None:
            for index, buffer in enumerate(buffers):
                if buffer:
                    adapt = adapters[index]
                    self.conn.executemany(statements[index], buffer if adapt is None else map(adapt, buffer))
                    result.rows[index] += len(buffer)
                    buffer.clear()

        try:
            self.conn.execute("BEGIN")
            triggers = self._insert_triggers([gen.table for gen in group.tables])
            pending = done = 0
            for index, row in rows:
                buffers[index].append(row)
                pending += 1
                if pending == batch:
                    flush()
                    done += pending
                    pending = 0
                    progress(done)
            flush()
            progress(done + pending)
            self._recreate(triggers)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        result.data_seconds = time.perf_counter() - started
        return result

    def finish(self, tables: Sequence[str]) -> None:
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.raw.close()


def make_loader(engine: Engine) -> Loader:
    if engine.dialect.name == "postgresql":
        return PostgresLoader(engine)
    if engine.dialect.name == "sqlite":
        return SqliteLoader(engine)
    raise SystemExit(f"bench.generate: unsupported database {engine.dialect.name}")


# -- the target database -----------------------------------------------------------------------

class Refused(Exception):
    """The target cannot be loaded; the message says why and what to do."""


def non_empty_tables(engine: Engine) -> list[str]:
    names = [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.connect() as conn:
        return [t for t in sorted(names) if conn.execute(sa.text(f'SELECT 1 FROM "{t}" LIMIT 1')).first()]


def drop_everything(engine: Engine) -> None:
    """Every table of the database, alembic_version too, so that migrations start from nothing."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


def check_columns(engine: Engine, generators: Sequence[TableGenerator]) -> None:
    """Refuse before loading when a migration has outgrown a generator (or a generator the schema)."""
    inspector = sa.inspect(engine)
    problems = []
    for gen in generators:
        if not inspector.has_table(gen.table):
            problems.append(f"table {gen.table} does not exist after migrating")
            continue
        columns = {c["name"]: c for c in inspector.get_columns(gen.table)}
        problems += [f"{gen.table}.{name} does not exist" for name in gen.columns if name not in columns]
        problems += [
            f"{gen.table}.{name} is NOT NULL without a server default but the generator does not fill it"
            for name, c in columns.items()
            if not c["nullable"] and c.get("default") is None and name not in gen.columns
        ]
    if problems:
        raise Refused("the generators do not match the schema:\n  " + "\n  ".join(problems))


def display_url(url: str) -> str:
    return sa.engine.make_url(normalise_url(url)).render_as_string(hide_password=True)


# -- the command -------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--taxpayers", type=int, required=True, help="number of taxpayers (podatnicy)")
    parser.add_argument("--database", required=True, help="sqlite:///path or postgresql://user@host/db")
    parser.add_argument("--legal-share", type=float, default=0.08, help="fraction of taxpayers that are legal persons")
    parser.add_argument(
        "--users-share", type=float, default=0.25,
        help="fraction of natural persons with a resident account linked to them as 'self'",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--batch", type=int, default=20_000, help="rows per batch (progress, SQLite executemany)")
    parser.add_argument(
        "--fresh", action="store_true",
        help="drop every table (alembic_version too) first; without it the database must be empty",
    )
    parser.add_argument("--results", default=str(RESULTS), help="where to write the JSON summary ('' for nowhere)")
    parser.add_argument(
        "--years", type=parse_years, default=DEFAULT_YEARS,
        help=f"tax years of the ledger: 2024-2026 or 2024,2026 (default {DEFAULT_YEARS[0]}-{DEFAULT_YEARS[-1]}; '' for none)",
    )
    args = parser.parse_args(argv)
    if args.taxpayers < 0:
        parser.error("--taxpayers must not be negative")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    for name in ("legal_share", "users_share"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    return args


def parse_years(text: str) -> tuple[int, ...]:
    """'2022-2026', '2024,2025,2026' or '2025' (or '' for no ledger): sorted, distinct years."""
    years: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            years.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not years: {text!r} (write 2022-2026 or 2024,2025)") from None
    if any(not FIRST_YEAR <= year <= LEDGER_AS_OF.year for year in years):
        raise argparse.ArgumentTypeError(
            f"years must lie in {FIRST_YEAR}-{LEDGER_AS_OF.year}: interest rates are seeded from October 2014 "
            f"and the ledger is generated as of {LEDGER_AS_OF.isoformat()}"
        )
    return tuple(sorted(years))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_group(loader: Loader, group: TableGroup, plan: Plan, batch: int, started: float) -> dict[str, Any]:
    names = ", ".join(gen.table for gen in group.tables)

    def progress(done: int) -> None:
        elapsed = time.perf_counter() - started
        log(f"  {group.name} ({names}): {done:,} rows, {done / elapsed if elapsed else 0:,.0f} rows/s")

    # The stream makes tens of millions of short-lived tuples and no reference cycles: the cyclic
    # collector would only walk them again and again (a quarter of the generator's time).
    gc.disable()
    try:
        result = loader.load_group(group, group.rows(plan), batch, progress)
    finally:
        gc.enable()
    seconds = time.perf_counter() - started
    rows = sum(result.rows)
    log(f"{group.name}: {rows:,} rows in {seconds:.1f} s ({result.data_seconds:.1f} s generating and copying, "
        f"{result.constraint_seconds:.1f} s indexes and constraints)")
    return {
        "tables": [gen.table for gen in group.tables], "rows": rows, "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else None,
        "data_seconds": round(result.data_seconds, 3), "constraint_seconds": round(result.constraint_seconds, 3),
        "table_rows": result.rows,
    }


def generate(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan.build(args.taxpayers, args.legal_share, args.users_share, args.seed, args.years)
    if plan.natural > MAX_NATURAL:
        raise Refused(f"{plan.natural:,} natural persons asked for, but people() keeps PESELs unique only for {MAX_NATURAL:,}")
    if plan.legal > MAX_LEGAL:
        raise Refused(f"{plan.legal:,} legal persons asked for, but NIPs are distinct only for {MAX_LEGAL:,}")

    url = display_url(args.database)
    engine = make_engine(args.database)
    try:
        started = time.perf_counter()
        if args.fresh:
            drop_everything(engine)
            log(f"dropped every table of {url}")
        else:
            try:
                full = non_empty_tables(engine)
            except sa.exc.OperationalError as error:
                hint = ""
                if engine.dialect.name == "postgresql":
                    hint = f"\n(create the database first, e.g. psql -h HOST -U postgres -c 'CREATE DATABASE {engine.url.database}')"
                raise Refused(f"cannot use {url}: {str(error.orig).strip()}{hint}") from None
            if full:
                raise Refused(
                    f"{url} is not empty (rows in {', '.join(full)}); "
                    "load into an empty database, or pass --fresh to drop every table first"
                )
        upgrade(engine)
        migrate_seconds = time.perf_counter() - started
        check_columns(engine, tables_of(GENERATORS))
        log(f"migrated {url} in {migrate_seconds:.1f} s")

        if plan.users:
            from platforma.accounts.passwords import hash_password

            plan = dataclasses.replace(plan, password_hash=hash_password(BENCH_PASSWORD))
        if plan.years:
            # the interest on late payments is computed with the rates the migrations seeded
            from sqlalchemy.orm import Session

            from platforma.taxes.settings import interest_threshold, rate_table

            with Session(engine) as session:
                plan = dataclasses.replace(
                    plan, rates=rate_table(session), threshold=interest_threshold(session, LEDGER_AS_OF)
                )

        tables: dict[str, dict[str, Any]] = {}
        groups: dict[str, dict[str, Any]] = {}
        loader = make_loader(engine)
        try:
            for gen in GENERATORS:
                step_started = time.perf_counter()
                if isinstance(gen, TableGroup):
                    groups[gen.name] = load_group(loader, gen, plan, args.batch, step_started)
                    for member, rows in zip(gen.tables, groups[gen.name].pop("table_rows")):
                        tables[member.table] = {"rows": rows, "group": gen.name}
                    continue
                expected = gen.count(plan)

                def progress(done: int, gen: TableGenerator = gen, expected: int | None = expected, t0: float = step_started) -> None:
                    elapsed = time.perf_counter() - t0
                    total = "?" if expected is None else f"{expected:,}"
                    log(f"  {gen.table}: {done:,} / {total} rows, {done / elapsed if elapsed else 0:,.0f} rows/s")

                rows = loader.load(gen, gen.rows(plan), args.batch, progress)
                seconds = time.perf_counter() - step_started
                if expected is not None and rows != expected:
                    raise RuntimeError(f"{gen.table}: generated {rows} rows, the plan asked for {expected}")
                tables[gen.table] = {
                    "rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds) if seconds else None
                }
                log(f"{gen.table}: {rows:,} rows in {seconds:.1f} s")
            analyze_started = time.perf_counter()
            loader.finish([gen.table for gen in tables_of(GENERATORS)])
            analyze_seconds = time.perf_counter() - analyze_started
            log(f"finished (sequences, VACUUM and ANALYZE) in {analyze_seconds:.1f} s")
            server_version = loader.server_version
        finally:
            loader.close()
        total_seconds = time.perf_counter() - started
    finally:
        engine.dispose()

    load_seconds = sum(t["seconds"] for t in tables.values() if "seconds" in t) + sum(g["seconds"] for g in groups.values())
    total_rows = sum(t["rows"] for t in tables.values())
    return {
        "command": "bench.generate",
        "database": engine.dialect.name,
        "server_version": server_version,
        "url": url,
        "generated_at": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "taxpayers": args.taxpayers, "legal_share": args.legal_share, "users_share": args.users_share,
            "seed": args.seed, "batch": args.batch, "fresh": args.fresh, "years": list(plan.years),
        },
        "plan": {"natural": plan.natural, "legal": plan.legal, "users": plan.users, "ledger_as_of": LEDGER_AS_OF.isoformat()},
        "tables": tables,
        "groups": groups,
        "load": {
            "rows": total_rows, "seconds": round(load_seconds, 3),
            "rows_per_second": round(total_rows / load_seconds) if load_seconds else None,
        },
        "migrate_seconds": round(migrate_seconds, 3),
        "analyze_seconds": round(analyze_seconds, 3),
        "total_seconds": round(total_seconds, 3),
        # the whole command, argon2's 64 MiB for the one hash included
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = generate(args)
    except Refused as error:
        print(f"bench.generate: refused: {error}", file=sys.stderr)
        return 1
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if args.results:
        path = Path(args.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        log(f"summary written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
