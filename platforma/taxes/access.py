"""Whose account may the signed-in person see: checked in one place for every taxes page."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, g

from platforma.accounts.models import TaxpayerAccess
from platforma.core import audit
from platforma.core.access import Permission, has_permission
from platforma.core.db import commit
from platforma.core.web import client_ip, db, user_agent
from platforma.taxes.models import Taxpayer


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
        sa.select(TaxpayerAccess).where(
            TaxpayerAccess.user_id == user.id,
            TaxpayerAccess.taxpayer_id == taxpayer_id,
            TaxpayerAccess.revoked_at.is_(None),
        )
    ).first()
    if access is None:
        exists = db().get(Taxpayer, taxpayer_id) is not None
        audit.record(
            db(), "taxpayer.access_denied", actor=user, object_type="taxpayer", object_id=taxpayer_id,
            taxpayer_id=taxpayer_id if exists else None, details={"exists": exists}, ip=client_ip(), user_agent=user_agent(),
        )
        commit(db())
        abort(403)
    return access.taxpayer, access


def on_behalf_of(access: TaxpayerAccess | None) -> int | None:
    """The taxpayer a representative acts for (recorded with what they do)."""
    return access.taxpayer_id if access is not None and access.relation == "representative" else None
