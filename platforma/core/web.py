"""The Flask application class and the request's unit of work.

One request is one transaction (DESIGN.md, rule 3): the view runs, then the session commits; any
exception rolls it back. Effects registered with `after_commit` run only after a successful commit.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session
from werkzeug.datastructures import ImmutableDict

from platforma.core.db import commit, rollback
from platforma.core.runtime import Runtime


class PlatformaFlask(Flask):
    #: The signed cookie is sent again only when its content changes (Flask re-signs and re-sends a
    #: permanent one on every response by default: a tenth of a cached page's time). Its lifetime is
    #: the session's absolute one from the sign-in (server.session_absolute_hours); the idle and
    #: absolute limits that matter are kept on the server (accounts.sessions), so a cookie pushed
    #: forward on every request would only outlive the session it names.
    default_config = ImmutableDict({**Flask.default_config, "SESSION_REFRESH_EACH_REQUEST": False})

    def dispatch_request(self) -> Any:  # type: ignore[override]
        try:
            rv = super().dispatch_request()
        except BaseException:
            session = g.get("db")
            if session is not None:
                # detach first, so that the error page can still show the signed-in user without the database
                user = g.get("user")
                state = sa.inspect(user) if user is not None else None
                session.expunge_all()
                rollback(session)
                if state is not None and state.expired_attributes and state.identity:
                    # a failed flush has already expired everything: read the user again, then detach it
                    g.user = session.get(type(user), state.identity[0])
                    if g.user is not None:
                        session.expunge(g.user)
            raise
        session = g.get("db")
        if session is not None:
            commit(session)
        return rv


def runtime() -> Runtime:
    return current_app.extensions["platforma"]


def db() -> Session:
    """The request's session, opened on first use. The signed-in user and their session, read before it
    without one (`accounts.sessions`), are attached to it then, as if it had loaded them."""
    if "db" not in g:
        g.db = session = runtime().session_factory()
        signed_in = g.get("user_session")
        if signed_in is not None:
            session.add(signed_in)  # and its user, through the relationship
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        rollback(session)  # anything not committed by the dispatcher is discarded
        session.close()


def client_ip() -> str:
    """The client's address; ProxyFix (server.trusted_proxies) has already applied X-Forwarded-For."""
    return (request.remote_addr or "")[:45]


def list_page() -> int:
    """The page of a list the request asks for (`strona`), 1 when it is missing or not a number."""
    try:
        return max(1, int(request.args.get("strona", "1")))
    except ValueError:
        return 1


def user_agent() -> str:
    return (request.headers.get("User-Agent") or "")[:300]
