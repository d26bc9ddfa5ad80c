"""Who may do what, checked in one place.

Every view declares its access with exactly one of `public`, `login_required` or `requires(...)`;
`check_every_view_declares_access` refuses to start an app with an undeclared view.
"""
from __future__ import annotations

import enum
import functools
from typing import Any, Callable

from flask import Flask, abort, g, redirect, request, url_for

from platforma.core import audit
from platforma.core.db import commit
from platforma.core.web import client_ip, db, user_agent


class Permission(enum.StrEnum):
    RESIDENT_AREA = "resident_area"  # own taxes, letters, payments
    BACKOFFICE = "backoffice"  # the clerks' area
    TAXPAYERS_VIEW = "taxpayers_view"
    TAXPAYER_ACCESS_MANAGE = "taxpayer_access_manage"  # link users to taxpayers
    POSTINGS_MANAGE = "postings_manage"  # manual postings, reminders
    AUDIT_VIEW = "audit_view"
    USERS_MANAGE = "users_manage"
    SITE_PAGES_EDIT = "site_pages_edit"
    SETTINGS_EDIT = "settings_edit"  # dated settings: interest rates, thresholds, costs, schedules
    LETTERS_HANDLE = "letters_handle"  # the registry office: incoming letters, assignment, replies


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "resident": frozenset({Permission.RESIDENT_AREA}),
    "clerk": frozenset({Permission.BACKOFFICE, Permission.TAXPAYERS_VIEW, Permission.TAXPAYER_ACCESS_MANAGE, Permission.POSTINGS_MANAGE,
                        Permission.LETTERS_HANDLE}),
    "admin": frozenset(
        {
            Permission.BACKOFFICE,
            Permission.TAXPAYERS_VIEW,
            Permission.TAXPAYER_ACCESS_MANAGE,
            Permission.POSTINGS_MANAGE,
            Permission.AUDIT_VIEW,
            Permission.USERS_MANAGE,
            Permission.SITE_PAGES_EDIT,
            Permission.SETTINGS_EDIT,
            Permission.LETTERS_HANDLE,
        }
    ),
}


def has_permission(user: Any, permission: Permission) -> bool:
    return user is not None and permission in ROLE_PERMISSIONS.get(user.role, frozenset())


def _mark(view: Callable[..., Any], rule: str) -> None:
    view._access = rule  # type: ignore[attr-defined]


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    _mark(view, "public")
    return view


def _require_login() -> Any:
    if g.get("user") is None:
        next_url = request.full_path if request.query_string else request.path
        return redirect(url_for("accounts.login", next=next_url))
    return None


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _require_login() or view(*args, **kwargs)

    _mark(wrapper, "login")
    return wrapper


def requires(*permissions: Permission) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            redirect_response = _require_login()
            if redirect_response is not None:
                return redirect_response
            missing = [p for p in permissions if not has_permission(g.user, p)]
            if missing:
                deny(missing)
            return view(*args, **kwargs)

        _mark(wrapper, "perm:" + ",".join(permissions))
        return wrapper

    return decorate


def deny(missing: list[Permission]) -> None:
    """Record the refusal and commit it at once (the request then fails with 403 and rolls back nothing else)."""
    session = db()
    audit.record(
        session,
        "access.denied",
        actor=g.get("user"),
        object_type="endpoint",
        object_id=request.endpoint,
        details={"path": request.path, "method": request.method, "missing": [str(m) for m in missing]},
        ip=client_ip(),
        user_agent=user_agent(),
    )
    commit(session)
    abort(403)


def check_every_view_declares_access(app: Flask) -> None:
    undeclared = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint != "static" and not hasattr(view, "_access")
    ]
    if undeclared:
        raise RuntimeError(f"views without a declared access rule: {', '.join(sorted(undeclared))}")
