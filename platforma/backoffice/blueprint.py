"""The back office's dashboard."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l

from platforma.accounts.models import TaxpayerAccess, User
from platforma.core.access import Permission, requires
from platforma.core.db import utcnow
from platforma.core.jobs import OutboxJob
from platforma.core.web import db
from platforma.taxes.models import Taxpayer
from platforma.web.nav import backoffice_menu

bp = Blueprint("backoffice", __name__, url_prefix="/urzad", template_folder="templates")

backoffice_menu.add(_l("Pulpit"), "backoffice.dashboard", Permission.BACKOFFICE, order=0)


@bp.route("/")
@requires(Permission.BACKOFFICE)
def dashboard():
    session = db()
    since = utcnow() - dt.timedelta(days=7)
    figures = {
        "taxpayers": session.scalar(sa.select(sa.func.count()).select_from(Taxpayer)),
        "residents": session.scalar(sa.select(sa.func.count()).select_from(User).where(User.role == "resident")),
        "new_residents": session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.role == "resident", User.created_at >= since)
        ),
        "links": session.scalar(
            sa.select(sa.func.count()).select_from(TaxpayerAccess).where(TaxpayerAccess.revoked_at.is_(None))
        ),
        "failed_jobs": session.scalar(sa.select(sa.func.count()).select_from(OutboxJob).where(OutboxJob.status == "failed")),
    }
    return render_template("backoffice/dashboard.html", figures=figures, menu_items=backoffice_menu.visible())
