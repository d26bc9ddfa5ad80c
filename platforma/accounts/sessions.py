"""Signed-in sessions kept in the database: they end on logout, after idleness and at a fixed age."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from flask import g, request, session as cookie
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

from platforma.accounts.models import User, UserSession
from platforma.config import Settings
from platforma.core.db import DriverQuery, UTCDateTime, utcnow
from platforma.core.kept import kept_rows
from platforma.core.web import db, runtime

COOKIE_KEY = "sid"
#: last_seen_at is written at most this often, so that reading pages does not write on every request
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, settings: Settings, user: User, *, ip: str, user_agent: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        UserSession(
            token_hash=_hash(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(hours=settings.server.session_absolute_hours),
            ip=ip,
            user_agent=user_agent,
        )
    )
    return token


def _columns(table: sa.Table, prefix: str) -> list[tuple[str, str, sa.Column]]:
    """(name in the query, attribute, column) of every column of a table; refuses a column type this
    loader would not return as the ORM does (it converts timestamps and booleans only)."""
    found = []
    for column in table.columns:
        if not isinstance(column.type, (UTCDateTime, sa.Boolean, sa.String, sa.Integer)) or (
                isinstance(column.type, sa.types.TypeDecorator) and not isinstance(column.type, UTCDateTime)):
            raise TypeError(f"{table.name}.{column.name}: {column.type!r} is not read by sessions._LIVE_SESSION")
        found.append((prefix + column.name, column.key, column))
    return found


_SESSION_COLUMNS = _columns(UserSession.__table__, "s_")
_USER_COLUMNS = _columns(User.__table__, "u_")


def _live_session_query(select: str = "", joins: str = "", columns: tuple[str, ...] = (),
                        timestamps: tuple[str, ...] = ()) -> DriverQuery:
    """The live session of a token and its user in one row, with what a page adds (`Companion`)."""
    own = _SESSION_COLUMNS + _USER_COLUMNS
    return DriverQuery(
        "SELECT " + ", ".join(f"s.{c.name} AS {name}" for name, _key, c in _SESSION_COLUMNS) + ", "
        + ", ".join(f"u.{c.name} AS {name}" for name, _key, c in _USER_COLUMNS) + (", " + select if select else "")
        + " FROM user_session s JOIN user_account u ON u.id = s.user_id " + joins
        + " WHERE s.token_hash = :token_hash AND s.ended_at IS NULL",
        tuple(name for name, _key, _c in own) + columns,
        timestamps=tuple(name for name, _key, c in own if isinstance(c.type, UTCDateTime)) + timestamps,
        booleans=tuple(name for name, _key, c in own if isinstance(c.type, sa.Boolean)),
    )


#: every signed-in request starts here, so it is read on the DBAPI cursor and the two objects are put
#: together without SQLAlchemy's query path (which cost as much as the rest of a cached page); the
#: columns come from the models
_LIVE_SESSION = _live_session_query()


@dataclass(frozen=True)
class Companion:
    """What a page reads on every request, read in the same round trip as the signed-in session.

    `select` and `joins` may use the session's user as `u` and the page's URL parameters as :names;
    the row of the page's own columns is then `companion_row()` (None when no live session was found,
    which the page's access rule turns into a redirect to the login page anyway)."""

    select: str
    joins: str
    columns: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    #: the row is kept per process (`core.kept`) until a notification names its user or one of these:
    #: {URL parameter: tag prefix}, e.g. {"taxpayer_id": "t"}. The triggers of migration 0010 tag the
    #: tables in `kept.COVERED`; a companion must read no other table.
    kept_by: tuple[tuple[str, str], ...] = ()


_COMPANIONS: dict[str, tuple[DriverQuery, tuple[tuple[str, str], ...]]] = {}


def read_with_session(endpoint: str, companion: Companion) -> None:
    query = _live_session_query(companion.select, companion.joins, companion.columns, companion.timestamps)
    _COMPANIONS[endpoint] = (query, companion.kept_by)


def companion_row(**params: Any) -> Any:
    """The page's row read with the session, if it was read for exactly these URL parameters."""
    read = g.get("companion")
    return read[1] if read is not None and read[0] == params else None


def _detached(cls: type, row: Any, columns: list[tuple[str, str, sa.Column]], **related: Any) -> Any:
    """The object of `cls` with the values of `row`, as the ORM's own loading makes it (values straight
    into the instance's dict, no change events), detached: `core.web.db()` attaches it to the
    request's session when the request first uses one, so that a page read from a cache pays for
    no ORM session at all."""
    instance = manager_of_class(cls).new_instance()
    values = instance.__dict__
    for name, key, _column in columns:
        values[key] = getattr(row, name)
    values.update(related)
    make_transient_to_detached(instance)  # its identity, no pending changes: as if loaded
    return instance


def _live_session(engine: Any, token: str, query: DriverQuery = _LIVE_SESSION, kept_by: tuple = (),
                  keep: bool = False, **params: Any) -> tuple[UserSession | None, bool]:
    """The session and its user (and the page's companion row in g.companion); True when the row was a
    kept one (`core.kept`, only with `keep` and an engine, not a session, to read with)."""
    token_hash = _hash(token)
    kept = kept_rows(engine) if keep and isinstance(engine, Engine) else None
    row = stamp = None
    if kept is not None:
        key = (query, token_hash, *params.items())
        row, stamp = kept.lookup(key)
    from_kept = row is not None
    if row is None:
        row = query.read(engine, token_hash=token_hash, **params)
        if row is not None and kept is not None:
            tags = (f"u{row.u_id}", *(f"{prefix}{params[name]}" for name, prefix in kept_by))
            kept.store(key, row, tags, stamp)
    if query is not _LIVE_SESSION:
        g.companion = (params, row)
    if row is None:
        return None, False
    user = _detached(User, row, _USER_COLUMNS)
    return _detached(UserSession, row, _SESSION_COLUMNS, user=user), from_kept


@dataclass(frozen=True)
class Found:
    #: the session the token names (None: no such live session); ended on the way when not `live`
    session: UserSession | None
    live: bool
    #: ended, or its last_seen_at moved on: the caller's unit of work must save it
    changed: bool


def find_session(bind: Any, settings: Settings, token: str, now: dt.datetime | None = None,
                 query: DriverQuery = _LIVE_SESSION, kept_by: tuple = (), keep: bool = False, **params: Any) -> Found:
    """The session a token names; an idle or expired one (or one of a blocked user) is ended on the way.

    With `keep`, a row kept by this process may answer (`core.kept`); a session that must be touched or
    ended is first read again from the database, so that nothing is written on a kept row's word."""
    now = now or utcnow()
    found, from_kept = _live_session(bind, token, query, kept_by, keep, **params)
    due = None if found is None else _due(found, settings, now)
    if from_kept and due is not None:
        found, _ = _live_session(bind, token, query, **params)
        due = None if found is None else _due(found, settings, now)
    if found is None:
        return Found(None, False, False)
    if due is None:
        return Found(found, True, False)
    if due == "touch":
        found.last_seen_at = now
        return Found(found, True, True)
    end(found, due, now)
    return Found(found, False, True)


def _due(found: UserSession, settings: Settings, now: dt.datetime) -> str | None:
    """What a live session's row asks of `find_session` now: the reason to end it, "touch" (its
    last_seen_at is written at most every TOUCH_INTERVAL), or None (nothing to write)."""
    if found.expires_at <= now:
        return "expired"
    if found.last_seen_at + dt.timedelta(minutes=settings.server.session_idle_minutes) <= now:
        return "idle"
    if not found.user.is_active:
        return "inactive"
    if now - found.last_seen_at >= TOUCH_INTERVAL:
        return "touch"
    return None


def end(user_session: UserSession, reason: str, now: dt.datetime | None = None) -> None:
    user_session.ended_at = now or utcnow()
    user_session.end_reason = reason


def end_all(session: Session, user: User, reason: str, *, keep: UserSession | None = None) -> int:
    live = session.scalars(
        sa.select(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    ).all()
    count = 0
    for item in live:
        if keep is not None and item.id == keep.id:
            continue
        end(item, reason)
        count += 1
    return count


def load_signed_in_user() -> None:
    """before_request: g.user and g.user_session from the session cookie."""
    request_globals = g._get_current_object()  # every page starts here: the proxy looked up once
    request_globals.user = None
    request_globals.user_session = None
    token = cookie.get(COOKIE_KEY)
    if not token:
        return
    query, kept_by, params = _LIVE_SESSION, (), {}
    current = request._get_current_object()
    companion = _COMPANIONS.get(current.endpoint or "")
    if companion is not None and current.view_args is not None:
        (query, kept_by), params = companion, dict(current.view_args)
    instance = runtime()
    found = find_session(instance.engine, instance.settings, token, query=query, kept_by=kept_by, keep=True,
                         **params)
    if found.changed:  # an ended or touched session is saved with the request's unit of work
        db().add(found.session)
    if not found.live:
        cookie.pop(COOKIE_KEY, None)
        return
    request_globals.user_session = found.session
    request_globals.user = found.session.user
