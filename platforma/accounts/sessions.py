"""Signed-in sessions kept in the database: they end on logout, after idleness and at a fixed age."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from flask import g, session as cookie
from sqlalchemy.orm import Session

from platforma.accounts.models import User, UserSession
from platforma.config import Settings
from platforma.core.db import utcnow
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


def find_session(session: Session, settings: Settings, token: str, now: dt.datetime | None = None) -> UserSession | None:
    """The live session for a token; an idle or expired one is ended on the way."""
    now = now or utcnow()
    found = session.scalars(
        sa.select(UserSession).where(UserSession.token_hash == _hash(token), UserSession.ended_at.is_(None))
    ).first()
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
