"""Whose account may the signed-in person see: checked in one place for every taxes page."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import sqlalchemy as sa
from flask import abort, g
from sqlalchemy.orm import contains_eager

from platforma.accounts.models import TaxpayerAccess
from platforma.accounts.sessions import Companion, companion_row
from platforma.core import audit
from platforma.core.access import Permission, has_permission
from platforma.core.db import DriverQuery, commit
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.taxes.models import Taxpayer
from platforma.taxes.queries import FINGERPRINT_COLUMNS, FINGERPRINT_SQL, AccountFingerprint, fingerprint_of
from platforma.taxes.settings import VERSION_COLUMNS, VERSION_SQL, VERSION_TIMESTAMPS, SettingsVersion, version_of


def _refuse(user, taxpayer_id: int, exists: bool) -> NoReturn:
    """403 and an audit entry, whether or not the taxpayer exists (a resident learns nothing)."""
    audit.record(
        db(), "taxpayer.access_denied", actor=user, object_type="taxpayer", object_id=taxpayer_id,
        taxpayer_id=taxpayer_id if exists else None, details={"exists": exists}, ip=client_ip(), user_agent=user_agent(),
    )
    commit(db())
    abort(403)


def taxpayer_for_current_user(taxpayer_id: int) -> tuple[Taxpayer, TaxpayerAccess | None]:
    """The taxpayer, if the signed-in user may see its account.

    Clerks: any taxpayer (the caller records the view); an unknown id is 404. Residents: only the
    taxpayers linked to their account. Anything else is 403 and an audit entry, whether or not the
    taxpayer exists, so that a resident learns nothing about other people's records.
    """
    user = g.user
    if has_permission(user, Permission.TAXPAYERS_VIEW):
        taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
        return taxpayer, None
    access = db().scalars(
        sa.select(TaxpayerAccess).join(TaxpayerAccess.taxpayer).options(contains_eager(TaxpayerAccess.taxpayer)).where(
            TaxpayerAccess.user_id == user.id,
            TaxpayerAccess.taxpayer_id == taxpayer_id,
            TaxpayerAccess.revoked_at.is_(None),
        )
    ).first()
    if access is None:
        _refuse(user, taxpayer_id, db().get(Taxpayer, taxpayer_id) is not None)
    return access.taxpayer, access


def on_behalf_of(access: TaxpayerAccess | None) -> int | None:
    """The taxpayer a representative acts for (recorded with what they do)."""
    return access.taxpayer_id if access is not None and access.relation == "representative" else None


# -- the account page: the same check, with what tells whether the account changed -----------------

@dataclass(frozen=True)
class TaxpayerView:
    """What the account pages show of a taxpayer (the properties of `Taxpayer`, without the ORM)."""

    id: int
    kind: str
    first_name: str
    last_name: str
    name: str
    pesel: str | None
    nip: str | None

    display_name = Taxpayer.display_name
    identifier_label = Taxpayer.identifier_label


@dataclass(frozen=True)
class AccessView:
    """A resident's link to the taxpayer (None for a clerk)."""

    taxpayer_id: int
    relation: str


@dataclass(frozen=True)
class AccountAccess:
    taxpayer: TaxpayerView
    access: AccessView | None
    fingerprint: AccountFingerprint
    settings: SettingsVersion


_ACCOUNT_SELECT = f"""t.id, t.kind, t.first_name, t.last_name, t.name, t.pesel, t.nip, t.created_at,
    a.id AS access_id, a.relation, {FINGERPRINT_SQL}, {VERSION_SQL}"""
_ACCOUNT_COLUMNS = ("id", "kind", "first_name", "last_name", "name", "pesel", "nip", "created_at", "access_id",
                    "relation", *FINGERPRINT_COLUMNS, *VERSION_COLUMNS)
_ACCOUNT_TIMESTAMPS = ("created_at", *VERSION_TIMESTAMPS)
_ACCOUNT_ACCESS = DriverQuery(
    f"""SELECT {_ACCOUNT_SELECT}
FROM taxpayer t
LEFT JOIN taxpayer_access a ON a.taxpayer_id = t.id AND a.user_id = :user_id AND a.revoked_at IS NULL
WHERE t.id = :taxpayer_id""",
    _ACCOUNT_COLUMNS, timestamps=_ACCOUNT_TIMESTAMPS,
)
#: the same, read with the signed-in session in one round trip when the account page is asked for
ACCOUNT_COMPANION = Companion(
    select=_ACCOUNT_SELECT,
    joins="LEFT JOIN taxpayer t ON t.id = :taxpayer_id "
          "LEFT JOIN taxpayer_access a ON a.taxpayer_id = t.id AND a.user_id = u.id AND a.revoked_at IS NULL",
    columns=_ACCOUNT_COLUMNS, timestamps=_ACCOUNT_TIMESTAMPS,
    kept_by=(("taxpayer_id", "t"),),  # kept per process until the taxpayer's account changes (core.kept)
)


def account_for_current_user(taxpayer_id: int) -> AccountAccess:
    """`taxpayer_for_current_user` (the same rules and refusals) and, in the same query, the account's
    fingerprint and the settings version: one round trip for everything the account page needs
    before it knows whether its kept rendering still holds."""
    user = g.user
    row = companion_row(taxpayer_id=taxpayer_id)
    if row is None:
        # read outside a transaction: a page served from the kept rendering needs nothing else from the database
        row = _ACCOUNT_ACCESS.read(runtime().engine, taxpayer_id=taxpayer_id, user_id=user.id)
    elif row.id is None:  # read with the session: the taxpayer does not exist
        row = None
    if has_permission(user, Permission.TAXPAYERS_VIEW):
        if row is None:
            abort(404)
        access = None
    elif row is None or row.access_id is None:
        _refuse(user, taxpayer_id, row is not None)
    else:
        access = AccessView(row.id, row.relation)
    taxpayer = TaxpayerView(row.id, row.kind, row.first_name, row.last_name, row.name, row.pesel, row.nip)
    return AccountAccess(taxpayer, access, fingerprint_of(row, row.created_at), version_of(row))
