"""Resident pages: "Moje podatki i opłaty"."""
from __future__ import annotations

from flask import Blueprint, g, render_template
from flask_babel import lazy_gettext as _l

from platforma.accounts import operations as account_ops
from platforma.core.access import Permission, requires
from platforma.core.web import db
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw
from platforma.web.nav import resident_menu

bp = Blueprint("taxes", __name__, url_prefix="/podatki", template_folder="templates")
resident_menu.add(_l("Moje podatki i opłaty"), "taxes.overview", Permission.RESIDENT_AREA, order=20)


@bp.route("/")
@requires(Permission.RESIDENT_AREA)
def overview():
    """Every taxpayer the user may act for, with what is owed today."""
    today = today_warsaw()
    rows = [(link, account(db(), link.taxpayer_id, today)) for link in account_ops.taxpayers_of(db(), g.user)]
    return render_template("taxes/overview.html", rows=rows, today=today)
