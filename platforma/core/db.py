"""Database engine, session and the declarative base shared by every module.

One transaction per request, job or command: operations take a session and never commit;
`transaction()` (commands, jobs) and the request dispatcher in `core.web` own the commit.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import re
import select
import threading
import time
import weakref
from decimal import Decimal
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Money(TypeDecorator):
    """An amount in złoty held as Decimal in Python and as integer grosze in the database.

    SQLite has no exact decimal column (DOMAIN.md, "Rounding"), so both databases store a BIGINT of
    grosze; a value with a fraction of a grosz is refused rather than rounded.
    """

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("float given for a money column")
        grosze = Decimal(value) * 100
        if grosze != grosze.to_integral_value():
            raise ValueError(f"amount {value} has a fraction of a grosz")
        return int(grosze)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / 100).quantize(Decimal("0.01"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's own lower() folds only ASCII: "ŻÓŁKIEWSKA" would not be found as "żółkiewska" (searches
    # compare lower() of both sides, as PostgreSQL does with its Unicode lower())
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def normalise_url(url: str) -> str:
    """Let administrators write postgresql:// and get the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


#: a pooled connection idle for longer than this is tested with a round trip before it is used
PING_AFTER_IDLE_SECONDS = 30.0


def _test_before_use(engine: Engine) -> None:
    """Hand out only live connections, without a round trip on every checkout.

    SQLAlchemy's `pool_pre_ping` sends an empty query on every checkout: a round trip on every
    request, as much as the account page's own query. Instead a connection is tested when its socket
    has something to read while it sits idle in the pool (a server that restarted or ended the
    session has sent its goodbye or closed the socket: checked without waiting, as Go's database/sql
    does), or when it has been idle longer than PING_AFTER_IDLE_SECONDS (a connection silently lost,
    e.g. by a firewall). A failed test raises DisconnectionError: the pool replaces the connection
    and the caller never sees it.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None:
            return  # a new connection
        try:
            stale = time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS or bool(
                select.select([dbapi_connection.fileno()], [], [], 0)[0])
        except (OSError, ValueError):
            stale = True
        if not stale:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise sa.exc.DisconnectionError(str(error)) from error


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _test_before_use(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


#: session.info key: the session's transaction holds a connection (set and cleared by the events below)
HAS_CONNECTION = "platforma.has_connection"


@event.listens_for(Session, "after_begin")
def _connection_taken(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info[HAS_CONNECTION] = True


@event.listens_for(Session, "after_transaction_end")
def _connection_given_back(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(HAS_CONNECTION, None)


# -- reads on the hot path ------------------------------------------------------------------------

class DriverQuery:
    """A one-row read run on the session's own DBAPI cursor, in the session's transaction.

    For a query of one row, SQLAlchemy's execute path (the statement's cache key, the compiled
    cache, result metadata and row processors) costs several times the round trip itself: on the
    pages every request makes (the signed-in session, the account page's access check) that was
    a fifth of the request. The SQL is plain (the same on PostgreSQL and SQLite) with :name
    parameters; the columns named in `timestamps` come back as aware UTC datetimes, as
    `UTCDateTime` returns them, and `booleans` as bool (SQLite keeps 0/1). PostgreSQL prepares the
    statement after a few executions on a connection (psycopg's prepare threshold).
    """

    def __init__(self, sql: str, columns: tuple[str, ...], *, timestamps: tuple[str, ...] = (),
                 booleans: tuple[str, ...] = ()) -> None:
        if "%" in sql:  # psycopg would read it as a placeholder
            raise ValueError("DriverQuery: no % in the SQL (write LIKE patterns as parameters)")
        self.sql = sql
        self.row = collections.namedtuple("Row", columns)  # type: ignore[misc]
        self.timestamps = [columns.index(name) for name in timestamps]
        self.booleans = [columns.index(name) for name in booleans]
        self._pyformat = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)

    def first(self, session: Session, **params: Any) -> Any:
        connection = session.connection()
        sql = self._pyformat if connection.dialect.paramstyle == "pyformat" else self.sql
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(sql, params)
            found = cursor.fetchone()
        finally:
            cursor.close()
        return self._row(found)

    def read(self, bind: Session | Engine, **params: Any) -> Any:
        """The row, read outside any transaction unless the session already has one.

        A read-only request would otherwise pay three round trips on PostgreSQL for one query: BEGIN,
        the query, COMMIT (psycopg sends BEGIN on its own before the first statement). Given an
        engine, or a session that has not touched the database yet, the query runs alone on a pooled
        connection in autocommit mode (its own snapshot), and the session stays without a connection
        until something else needs one. A session already in a transaction reads in it, as `first`.
        """
        if isinstance(bind, Session):
            if bind.info.get(HAS_CONNECTION):
                return self.first(bind, **params)
            bind = bind.get_bind()
        if bind.dialect.name == "postgresql":
            return self._row(_READERS.fetchone(bind, self._pyformat, params))
        connection = bind.raw_connection()
        try:
            cursor = connection.driver_connection.cursor()
            try:
                cursor.execute(self.sql, params)
                found = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        return self._row(found)

    def _row(self, found: Any) -> Any:
        if found is None:
            return None
        if self.timestamps or self.booleans:
            found = list(found)
            for index in self.timestamps:
                found[index] = _utc(found[index])
            for index in self.booleans:
                found[index] = None if found[index] is None else bool(found[index])
        return self.row(*found)


def detached_connection(engine: Engine) -> tuple[Any, Any]:
    """A connection made by the engine (its URL, connect arguments and events) but ours from now on:
    taken out of the pool (not counted in it, never returned to it) and in autocommit mode.
    (The pool's wrapper, the driver's connection.)"""
    fairy = engine.raw_connection()
    connection = fairy.driver_connection
    fairy.detach()
    connection.autocommit = True
    return fairy, connection


class _Reader:
    """One reader connection; closed when dropped, when its engine is disposed, or when the thread that
    held it is gone (its thread-local slot is freed, and this object with it)."""

    __slots__ = ("fairy", "connection", "__weakref__")

    def __init__(self, fairy: Any, connection: Any) -> None:
        self.fairy = fairy  # the pool's wrapper, detached: kept so that the pool's bookkeeping stays whole
        self.connection = connection

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    def __del__(self) -> None:
        self.close()


class _Readers:
    """One autocommit connection per thread and engine, kept outside the pool, for `DriverQuery.read`.

    The pool's checkout, return and the switch to autocommit and back cost a third of such a read;
    a worker thread serves one request at a time, so its own connection is never shared. A connection
    found broken (the server restarted) is dropped and the read tried once more on a new one; an
    engine's readers are closed when it is disposed, a thread's when the thread ends (servers that start
    a thread per request), and a forked child forgets its parent's.
    """

    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        #: engine -> the readers made for it and still alive, in any thread (to close them with it)
        self.made: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[_Reader]] = weakref.WeakKeyDictionary()

    def fetchone(self, engine: Engine, sql: str, params: dict[str, Any]) -> Any:
        for attempt in (1, 2):
            reader = self._reader(engine)
            try:
                return reader.connection.execute(sql, params, prepare=True).fetchone()
            except engine.dialect.loaded_dbapi.OperationalError:
                broken = reader.connection.broken or reader.connection.closed
                self._drop(engine, reader)
                # a query that failed on a live connection (e.g. a statement timeout) is not read twice
                if attempt == 2 or not broken:
                    raise
        raise AssertionError("unreachable")

    def _reader(self, engine: Engine) -> _Reader:
        mine = self.local.__dict__.setdefault("readers", weakref.WeakKeyDictionary())
        reader = mine.get(engine)
        if reader is None or reader.connection.closed:
            fairy, connection = detached_connection(engine)
            reader = mine[engine] = _Reader(fairy, connection)
            with self.lock:
                if engine not in self.made:
                    self.made[engine] = weakref.WeakSet()
                    event.listen(engine, "engine_disposed", self._close_all)
                self.made[engine].add(reader)
        return reader

    def _drop(self, engine: Engine, reader: _Reader) -> None:
        self.local.__dict__.get("readers", {}).pop(engine, None)
        with self.lock:
            self.made.get(engine, weakref.WeakSet()).discard(reader)
        reader.close()

    def _close_all(self, engine: Engine) -> None:
        with self.lock:
            readers = list(self.made.pop(engine, ()))
        for reader in readers:
            reader.close()

    def forget(self) -> None:
        """In a forked child: the parent's connections are not ours to use (nor to close)."""
        for readers in self.made.values():
            for reader in list(readers):
                reader.connection = _Forgotten()
        self.local = threading.local()
        self.made = weakref.WeakKeyDictionary()


class _Forgotten:
    """A parent's connection seen from a forked child: closing it must not close the parent's socket."""

    closed = True

    def close(self) -> None:
        pass


_READERS = _Readers()
os.register_at_fork(after_in_child=_READERS.forget)


def _utc(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: naive UTC text, as UTCDateTime writes it
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# -- after-commit effects ------------------------------------------------------------------------
# Outside effects (mail, job dispatch) must happen only once the data they describe is durable.

def after_commit(session: Session, callback: Callable[[], None]) -> None:
    session.info.setdefault("after_commit", []).append(callback)


def clear_caches(session: Session) -> None:
    """Values a transaction read once and kept in session.info under "cache." (e.g. the rate table)."""
    for key in [k for k in session.info if isinstance(k, str) and k.startswith("cache.")]:
        del session.info[key]


def commit(session: Session) -> None:
    clear_caches(session)
    session.commit()
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        callback()


def rollback(session: Session) -> None:
    clear_caches(session)
    session.rollback()
    session.info.pop("after_commit", None)


#: from this many rows on, `insert_rows` copies them into PostgreSQL instead of inserting them
COPY_FROM_ROWS = 50


def insert_rows(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows (each with the same keys) in the session's transaction.

    On PostgreSQL, from COPY_FROM_ROWS rows on, with COPY: an executemany runs one statement per row
    (psycopg's pipeline saves the round trips, not the statements), and on `posting` each statement
    also fires the kept rows' statement-level trigger (ADR 16): a statement import of 20,000 lines
    fired it 55,000 times. The values go through the columns' types as SQLAlchemy would bind them;
    Python-side column defaults (`created_at`) are taken once for the rows of one call. A database
    error comes out as SQLAlchemy's (IntegrityError, OperationalError), as from an INSERT. Fewer rows,
    and SQLite: one executemany."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    given = list(rows[0])
    defaulted = [column for column in table.columns if column.name not in rows[0] and column.default is not None]
    if (dialect.name != "postgresql" or len(rows) < COPY_FROM_ROWS
            or not all(column.default.is_callable or column.default.is_scalar for column in defaulted)):
        session.execute(table.insert(), rows)
        return
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in given]
    fixed = [column.default.arg(None) if column.default.is_callable else column.default.arg for column in defaulted]
    quote = dialect.identifier_preparer.quote
    sql = (f"COPY {quote(table.name)} ("
           + ", ".join(quote(name) for name in given + [column.name for column in defaulted]) + ") FROM STDIN")
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([row[name] if process is None else process(row[name])
                                for name, process in zip(given, processors)] + fixed)
    except dialect.loaded_dbapi.Error as error:
        raise sa.exc.DBAPIError.instance(sql, None, error, dialect.loaded_dbapi.Error, dialect=dialect) from None


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work for a command or a job: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        commit(session)
    except BaseException:
        rollback(session)
        raise
    finally:
        session.close()
