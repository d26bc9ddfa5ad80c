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
import dataclasses
import datetime as dt
import functools
import itertools
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from platforma.core.db import make_engine, normalise_url
from platforma.core.migrate import upgrade
from platforma.demo.people import Business, Person, businesses, people

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
    password_hash: str = field(default="", repr=False)

    @classmethod
    def build(cls, taxpayers: int, legal_share: float, users_share: float, seed: int) -> Plan:
        legal = round(taxpayers * legal_share)
        natural = taxpayers - legal
        return cls(taxpayers, legal, natural, round(natural * users_share), seed)

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
    #: how many rows the plan asks for (for progress and the check afterwards)
    count: Callable[[Plan], int]
    #: the rows, as tuples in `columns` order; timestamps as aware UTC datetimes
    rows: Callable[[Plan], Iterator[tuple[Any, ...]]]
    #: the columns holding timestamps (UTCDateTime), which SQLite stores as naive text
    timestamps: tuple[str, ...] = ()


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


#: run in this order; a later issue adds its tables by appending a TableGenerator (see README.md)
GENERATORS: list[TableGenerator] = [
    TableGenerator("taxpayer", TAXPAYER_COLUMNS, lambda p: p.taxpayers, taxpayer_rows, ("created_at",)),
    TableGenerator(
        "user_account", USER_COLUMNS, lambda p: p.users, user_rows,
        ("password_changed_at", "email_confirmed_at", "created_at"),
    ),
    TableGenerator("taxpayer_access", ACCESS_COLUMNS, lambda p: p.users, access_rows, ("granted_at",)),
]


# -- loaders -----------------------------------------------------------------------------------

Progress = Callable[[int], None]


def batched(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class Loader(Protocol):
    server_version: str

    def load(self, gen: TableGenerator, rows: Iterator[tuple[Any, ...]], batch: int, progress: Progress) -> int: ...

    def finish(self, tables: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class PostgresLoader:
    """Binary COPY ... FROM STDIN on the raw psycopg 3 connection; one transaction per table."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection  # psycopg.Connection
        self.server_version = self.conn.execute("SHOW server_version").fetchone()[0]

    def load(self, gen: TableGenerator, rows: Iterator[tuple[Any, ...]], batch: int, progress: Progress) -> int:
        from psycopg import sql

        table = sql.Identifier(gen.table)
        # binary COPY: psycopg dumps each value in C to the column's own type, the server parses nothing
        types = dict(
            self.conn.execute(
                "SELECT attname, atttypid::int FROM pg_attribute "
                "WHERE attrelid = quote_ident(%s)::regclass AND attnum > 0 AND NOT attisdropped",
                (gen.table,),
            ).fetchall()
        )
        # A foreign key is checked by a trigger per row (a third of the speed of the COPY itself);
        # dropped and added again in the same transaction it is checked once for the whole table,
        # and a row that breaks it fails the ALTER and rolls the table back as the trigger would.
        foreign_keys = self.conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = quote_ident(%s)::regclass AND contype = 'f' ORDER BY conname",
            (gen.table,),
        ).fetchall()
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            table, sql.SQL(", ").join(map(sql.Identifier, gen.columns))
        )
        done = 0
        try:
            for name, _definition in foreign_keys:
                self.conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(name)))
            with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types([types[name] for name in gen.columns])
                for chunk in batched(rows, batch):
                    for row in chunk:
                        copy.write_row(row)
                    done += len(chunk)
                    progress(done)
            for name, definition in foreign_keys:
                self.conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(table, sql.Identifier(name), sql.SQL(definition))
                )
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return done

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
        self.conn.execute("ANALYZE")
        self.conn.commit()

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
        # SQLAlchemy's DateTime on SQLite: naive UTC text with microseconds, as UTCDateTime binds it
        positions = [gen.columns.index(name) for name in gen.timestamps]
        if not positions:
            return None

        def adapt(row: tuple[Any, ...]) -> tuple[Any, ...]:
            values = list(row)
            for i in positions:
                value = values[i]
                if value is not None:
                    values[i] = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            return tuple(values)

        return adapt

    def load(self, gen: TableGenerator, rows: Iterator[tuple[Any, ...]], batch: int, progress: Progress) -> int:
        statement = (
            f'INSERT INTO "{gen.table}" ({", ".join(gen.columns)}) VALUES ({", ".join("?" * len(gen.columns))})'
        )
        adapt = self._adapter(gen)
        done = 0
        try:
            self.conn.execute("BEGIN")
            for chunk in batched(rows, batch):
                self.conn.executemany(statement, chunk if adapt is None else map(adapt, chunk))
                done += len(chunk)
                progress(done)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return done

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
    args = parser.parse_args(argv)
    if args.taxpayers < 0:
        parser.error("--taxpayers must not be negative")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    for name in ("legal_share", "users_share"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan.build(args.taxpayers, args.legal_share, args.users_share, args.seed)
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
        check_columns(engine, GENERATORS)
        log(f"migrated {url} in {migrate_seconds:.1f} s")

        if plan.users:
            from platforma.accounts.passwords import hash_password

            plan = dataclasses.replace(plan, password_hash=hash_password(BENCH_PASSWORD))

        tables: dict[str, dict[str, Any]] = {}
        loader = make_loader(engine)
        try:
            for gen in GENERATORS:
                expected = gen.count(plan)
                table_started = time.perf_counter()

                def progress(done: int, gen: TableGenerator = gen, expected: int = expected, t0: float = table_started) -> None:
                    elapsed = time.perf_counter() - t0
                    log(f"  {gen.table}: {done:,} / {expected:,} rows, {done / elapsed if elapsed else 0:,.0f} rows/s")

                rows = loader.load(gen, gen.rows(plan), args.batch, progress)
                seconds = time.perf_counter() - table_started
                if rows != expected:
                    raise RuntimeError(f"{gen.table}: generated {rows} rows, the plan asked for {expected}")
                tables[gen.table] = {
                    "rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds) if seconds else None
                }
                log(f"{gen.table}: {rows:,} rows in {seconds:.1f} s")
            analyze_started = time.perf_counter()
            loader.finish([gen.table for gen in GENERATORS])
            analyze_seconds = time.perf_counter() - analyze_started
            log(f"finished (sequences, ANALYZE) in {analyze_seconds:.1f} s")
            server_version = loader.server_version
        finally:
            loader.close()
        total_seconds = time.perf_counter() - started
    finally:
        engine.dispose()

    load_seconds = sum(t["seconds"] for t in tables.values())
    total_rows = sum(t["rows"] for t in tables.values())
    return {
        "command": "bench.generate",
        "database": engine.dialect.name,
        "server_version": server_version,
        "url": url,
        "generated_at": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "taxpayers": args.taxpayers, "legal_share": args.legal_share, "users_share": args.users_share,
            "seed": args.seed, "batch": args.batch, "fresh": args.fresh,
        },
        "plan": {"natural": plan.natural, "legal": plan.legal, "users": plan.users},
        "tables": tables,
        "load": {
            "rows": total_rows, "seconds": round(load_seconds, 3),
            "rows_per_second": round(total_rows / load_seconds) if load_seconds else None,
        },
        "migrate_seconds": round(migrate_seconds, 3),
        "analyze_seconds": round(analyze_seconds, 3),
        "total_seconds": round(total_seconds, 3),
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
