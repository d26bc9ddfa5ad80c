"""Signed-in sessions kept in the database: they end on logout, after idleness and at a fixed age."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

import sqlalchemy as sa
from flask import g, session as cookie
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.orm.util import identity_key

from platforma.accounts.models import User, UserSession
from platforma.config import Settings
from platforma.core.db import DriverQuery, UTCDateTime, utcnow
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
#: the live session of a token and its user, one row: every signed-in request starts here, so it is
#: read on the DBAPI cursor and the two objects are put together without SQLAlchemy's query path
#: (which cost as much as the rest of a cached page); the columns come from the models
_LIVE_SESSION = DriverQuery(
    "SELECT " + ", ".join(f"s.{c.name} AS {name}" for name, _key, c in _SESSION_COLUMNS) + ", "
    + ", ".join(f"u.{c.name} AS {name}" for name, _key, c in _USER_COLUMNS)
    + " FROM user_session s JOIN user_account u ON u.id = s.user_id"
    + " WHERE s.token_hash = :token_hash AND s.ended_at IS NULL",
    tuple(name for name, _key, _c in _SESSION_COLUMNS + _USER_COLUMNS),
    timestamps=tuple(name for name, _key, c in _SESSION_COLUMNS + _USER_COLUMNS if isinstance(c.type, UTCDateTime)),
    booleans=tuple(name for name, _key, c in _SESSION_COLUMNS + _USER_COLUMNS if isinstance(c.type, sa.Boolean)),
)


def _persistent(session: Session, cls: type, row: Any, columns: list[tuple[str, str, sa.Column]], **related: Any) -> Any:
    """The object of `cls` with the values of `row`, in `session` as the ORM's own loading leaves it
    (values straight into the instance's dict, no change events; the one already in the session, if
    there is one)."""
    primary_key = next(name for name, key, _column in columns if key == "id")
    existing = session.identity_map.get(identity_key(cls, getattr(row, primary_key)))
    if existing is not None:
        return existing
    instance = manager_of_class(cls).new_instance()
    values = instance.__dict__
    for name, key, _column in columns:
        values[key] = getattr(row, name)
    values.update(related)
    make_transient_to_detached(instance)  # its identity, no pending changes: as if loaded
    session.add(instance)
    return instance


def _live_session(session: Session, token: str) -> UserSession | None:
    row = _LIVE_SESSION.first(session, token_hash=_hash(token))
    if row is None:
        return None
    user = _persistent(session, User, row, _USER_COLUMNS)
    return _persistent(session, UserSession, row, _SESSION_COLUMNS, user=user)


def find_session(session: Session, settings: Settings, token: str, now: dt.datetime | None = None) -> UserSession | None:
    """The live session for a token; an idle or expired one is ended on the way."""
    now = now or utcnow()
    found = _live_session(session, token)
    if found is None:
        return None
    idle_limit = dt.timedelta(minutes=settings.server.session_idle_minutes)
    if found.expires_at <= now:
        end(found, "expired", now)
        return None
    if found.last_seen_at + idle_limit <= now:
        end(found, "idle", now)
        return None
    if now - found.last_seen_at >= TOUCH_INTERVAL:
        found.last_seen_at = now
    if not found.user.is_active:
        end(found, "inactive", now)
        return None
    return found


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
    g.user = None
    g.user_session = None
    token = cookie.get(COOKIE_KEY)
    if not token:
        return
    found = find_session(db(), runtime().settings, token)
    if found is None:
        cookie.pop(COOKIE_KEY, None)
        return
    g.user_session = found
    g.user = found.user
