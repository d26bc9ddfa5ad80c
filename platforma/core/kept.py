"""Rows kept in each process while PostgreSQL says they are unchanged (LISTEN/NOTIFY), ADR 0016.

Every signed-in request reads one row: the session, its user and what the page adds (the account
page: the access check and the account's fingerprint, `accounts.sessions.Companion`). Under load that
one round trip costs more CPU than the whole of a trivial page (bench/README.md), so the row is kept
here and read again only when something it was read from has changed.

Triggers of migration 0010 send a notification on the channel `platforma_kept` whenever a row of a
table these reads use is written, by any writer (the app, an import, a clerk's SQL): `u<id>` for a
user (their sessions, their account, their links to taxpayers), `t<id>` for a taxpayer (their data,
liabilities, co-owners, postings), `*` for everything (the dated settings, a large load, TRUNCATE).
Each process listens on one connection of its own and drops the rows tagged with what it hears.

What this guarantees, and what it does not:

- a change committed in this process is seen by its next read: after a commit the next lookup first
  makes a round trip on the listening connection, and PostgreSQL delivers every notification of
  transactions committed before it before answering;
- a change committed by another process is seen as soon as its notification arrives (usually well
  under a millisecond; any notification already received is taken before every lookup);
- no row is trusted for longer than KEEP_SECONDS, whatever the listener says;
- while the listening connection is down, nothing is kept (every read goes to the database), and
  whatever was kept is dropped when it comes back, since notifications may have been missed;
- a row read while a notification was being taken is not kept (it may predate the change).

SQLite has no notifications: nothing is kept there. PLATFORMA_KEPT_ROWS=0 turns it off.
"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
import weakref
from typing import Any, Hashable

from sqlalchemy import event
from sqlalchemy.engine import Engine

from platforma.core.db import detached_connection

log = logging.getLogger(__name__)

CHANNEL = "platforma_kept"
APPLICATION_NAME = "platforma-kept-rows"
#: a kept row is read again after this long even if no notification came
KEEP_SECONDS = 30.0
#: an idle listener checks its connection this often; a lost one is retried this often
PING_SECONDS = 5.0
RETRY_SECONDS = 1.0
#: a database not yet migrated (0010) is asked again this often
NOT_MIGRATED_RETRY_SECONDS = 60.0
#: rows kept per process and database (the oldest go first)
ENTRIES = 10_000
#: the trigger function migration 0010 creates: without it nothing would say that a row changed
TRIGGER_FUNCTION = "platforma_kept_changed"

#: the tables migration 0010 watches: a kept row may be read from these only
COVERED = frozenset({"user_account", "user_session", "taxpayer_access", "taxpayer", "liability_party", "liability",
                     "posting", "dated_setting"})

_WROTE = "platforma.kept.wrote"


class NotMigrated(Exception):
    """The database has no triggers to say what changed: nothing may be kept."""


class KeptRows:
    """The rows one process keeps for one database, and the connection that tells which to drop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = weakref.ref(engine)
        self.lock = threading.Lock()
        #: key -> (row, tags, monotonic time it was stored)
        self.rows: dict[Hashable, tuple[Any, tuple[str, ...], float]] = {}
        self.tagged: dict[str, set[Hashable]] = {}
        #: raised by every notification taken and every reset: a row read across a change is not kept
        self.generation = 0
        self.connection: Any = None  # the listening psycopg connection, None while down
        #: a transaction committed in this process since the last round trip on the listener
        self.sync_due = False
        self.closed = False
        self.pid = os.getpid()
        self.thread: threading.Thread | None = None
        self.hits = self.misses = 0

    # -- the request's side ------------------------------------------------------------------------

    def lookup(self, key: Hashable) -> tuple[Any, int | None]:
        """(the kept row or None, a stamp for `store`; None: keep nothing now)."""
        with self.lock:
            self._in_this_process()
            if self.connection is None:
                return None, None
            self._take_notifications()
            if self.sync_due and self.connection is not None:
                self.sync_due = False
                self._round_trip()
            if self.connection is None:
                return None, None
            found = self.rows.get(key)
            if found is not None and time.monotonic() - found[2] < KEEP_SECONDS:
                self.hits += 1
                return found[0], self.generation
            self.misses += 1
            return None, self.generation

    def store(self, key: Hashable, row: Any, tags: tuple[str, ...], stamp: int | None) -> None:
        """Keep `row`, read after `lookup` gave `stamp`, unless anything changed meanwhile."""
        if stamp is None:
            return
        with self.lock:
            if self.connection is None:
                return
            self._take_notifications()
            if self.generation != stamp or self.connection is None:
                return
            self._drop(key)
            self.rows[key] = (row, tags, time.monotonic())
            for tag in tags:
                self.tagged.setdefault(tag, set()).add(key)
            while len(self.rows) > ENTRIES:
                self._drop(next(iter(self.rows)))

    def committed(self) -> None:
        """A transaction of this process committed: the next lookup first takes its notifications."""
        self.sync_due = True

    def sync(self) -> None:
        """Take every notification of the transactions committed so far (tests; a clerk's SQL)."""
        with self.lock:
            self._in_this_process()
            if self.connection is not None:
                self._round_trip()

    @property
    def live(self) -> bool:
        return self.connection is not None

    # -- the listener ------------------------------------------------------------------------------

    def _in_this_process(self) -> None:
        """Start the listener on first use; a forked child forgets its parent's (and its rows)."""
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.connection = None  # the parent's: not ours to use nor to close
            self._reset()
            self.thread = None
        if self.thread is None and not self.closed:
            self.thread = threading.Thread(target=_listen, args=(weakref.ref(self),), name="platforma-kept",
                                           daemon=True)
            self.thread.start()

    def _connect(self) -> Any:
        engine = self.engine()
        if engine is None:
            return None
        _fairy, connection = detached_connection(engine)
        try:
            # seen as such in pg_stat_activity (one per worker process)
            connection.execute("SELECT set_config('application_name', %s, false)", (APPLICATION_NAME,))
            found = connection.execute("SELECT 1 FROM pg_proc WHERE proname = %s", (TRIGGER_FUNCTION,)).fetchone()
            if found is None:
                raise NotMigrated(f"the database has no {TRIGGER_FUNCTION}() (migration 0010)")
            connection.execute(f"LISTEN {CHANNEL}")
            connection.add_notify_handler(lambda notify: self._invalidate(notify.payload))
        except Exception:
            connection.close()
            raise
        return connection

    def _take_notifications(self) -> None:
        """Whatever notifications have reached the socket, without waiting (lock held)."""
        pgconn = self.connection.pgconn
        try:
            # libpq reads once per call: a socket still readable afterwards has more, or its end (a
            # server that closed the connection is found on the read that meets the end)
            for _ in range(4):
                pgconn.consume_input()
                if not select.select([pgconn.socket], [], [], 0)[0]:
                    break
            else:
                raise ConnectionError("the listening connection keeps reading nothing but data")
        except Exception as error:
            self._down(error)
            return
        while (notify := pgconn.notifies()) is not None:
            self._invalidate(notify.extra.decode())

    def _round_trip(self) -> None:
        """A query on the listener: PostgreSQL sends every pending notification before its answer."""
        try:
            self.connection.execute("SELECT 1").fetchone()
        except Exception as error:
            self._down(error)
            return
        self._take_notifications()

    def _invalidate(self, payload: str) -> None:
        self.generation += 1
        if payload == "*":
            self.rows.clear()
            self.tagged.clear()
            return
        for key in self.tagged.pop(payload, ()):
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        found = self.rows.pop(key, None)
        if found is None:
            return
        for tag in found[1]:
            keys = self.tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.tagged[tag]

    def _reset(self) -> None:
        self.generation += 1
        self.rows.clear()
        self.tagged.clear()

    def _down(self, error: BaseException | None) -> None:
        """The listener is lost: keep nothing until it is back (lock held)."""
        if error is not None and not self.closed:
            log.warning("kept rows: the listening connection failed (%s); reading every row until it is back", error)
        connection, self.connection = self.connection, None
        self._reset()
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def close(self, *_args: Any) -> None:
        with self.lock:
            self.closed = True
            if self.pid == os.getpid():
                self._down(None)
            else:
                self.connection = None


def _listen(ref: weakref.ref[KeptRows]) -> None:
    """The listener thread: (re)connects, takes notifications while requests are idle, pings."""
    while True:
        kept = ref()
        if kept is None or kept.closed or kept.pid != os.getpid():
            return
        connection = kept.connection
        if connection is None:
            wait = RETRY_SECONDS
            try:
                connection = kept._connect()
            except NotMigrated as error:
                log.warning("kept rows: %s: nothing is kept; `platforma db upgrade`", error)
                wait = NOT_MIGRATED_RETRY_SECONDS
            except Exception as error:
                log.warning("kept rows: cannot listen (%s); retrying", error)
            if connection is not None:
                with kept.lock:
                    if kept.closed:
                        connection.close()
                        return
                    kept._reset()  # notifications may have been missed while down
                    kept.connection = connection
            else:
                del kept
                time.sleep(wait)
                continue
        fileno = connection.pgconn.socket
        del kept  # not kept alive by its own thread while waiting
        try:
            readable = select.select([fileno], [], [], PING_SECONDS)[0]
        except (OSError, ValueError):
            readable = []
        kept = ref()
        if kept is None:
            return
        with kept.lock:
            if kept.connection is connection:
                if readable:
                    kept._take_notifications()
                else:
                    kept._round_trip()
        del kept


# -- one per engine --------------------------------------------------------------------------------

_KEPT: weakref.WeakKeyDictionary[Engine, KeptRows] = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def enabled() -> bool:
    return os.environ.get("PLATFORMA_KEPT_ROWS", "1") != "0"


def kept_rows(engine: Engine) -> KeptRows | None:
    """The engine's kept rows (None on SQLite, or when turned off)."""
    kept = _KEPT.get(engine)
    if kept is not None:
        return kept
    if engine.dialect.name != "postgresql" or not enabled():
        return None
    with _KEPT_LOCK:
        kept = _KEPT.get(engine)
        if kept is None:
            kept = _KEPT[engine] = KeptRows(engine)
            event.listen(engine, "engine_disposed", kept.close)
            # a commit of this process: its next lookup takes the notifications of that commit first
            event.listen(engine, "commit", _mark_commit)
            event.listen(engine, "checkin", _committed_on(weakref.ref(kept)))
    return kept


def _mark_commit(connection: Any) -> None:
    connection.info[_WROTE] = True


def _committed_on(ref: weakref.ref[KeptRows]) -> Any:
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_WROTE, False):
            kept = ref()
            if kept is not None:
                kept.committed()
    return checked_in


def sync(engine: Engine) -> None:
    """Take every notification of what has been committed so far (after a write by another engine)."""
    kept = _KEPT.get(engine)
    if kept is not None:
        kept.sync()
