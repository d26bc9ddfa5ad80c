"""Clerk pages about taxpayers: search, the taxpayer's card (every view audited), account links."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from platforma.accounts import operations as account_ops
from platforma.accounts.models import TaxpayerAccess
from platforma.core import audit
from platforma.core.access import Permission, requires
from platforma.core.web import client_ip, db, user_agent
from platforma.taxes.forms import LinkUserForm
from platforma.taxes.models import Taxpayer
from platforma.web.forms import Form
from platforma.web.nav import backoffice_menu

bp = Blueprint("taxes_backoffice", __name__, url_prefix="/urzad/podatnicy", template_folder="templates")
backoffice_menu.add(_l("Podatnicy"), "taxes_backoffice.search", Permission.TAXPAYERS_VIEW, order=10)

PAGE_SIZE = 25


def search_taxpayers(session, query: str, limit: int = PAGE_SIZE) -> list[Taxpayer]:
    query = query.strip()
    if not query:
        return []
    digits = "".join(ch for ch in query if ch.isdigit())
    conditions = []
    if len(digits) == 11 and digits == query.replace(" ", ""):
        conditions.append(Taxpayer.pesel == digits)
    if len(digits) == 10:
        conditions.append(Taxpayer.nip == digits)
    words = [w for w in query.replace(",", " ").split() if not w.isdigit()]
    if words:
        name_terms = []
        for word in words:
            pattern = f"%{word.lower()}%"
            name_terms.append(
                sa.or_(
                    sa.func.lower(Taxpayer.last_name).like(pattern),
                    sa.func.lower(Taxpayer.first_name).like(pattern),
                    sa.func.lower(Taxpayer.name).like(pattern),
                )
            )
        conditions.append(sa.and_(*name_terms))
    if not conditions:
        return []
    return list(
        session.scalars(
            sa.select(Taxpayer).where(sa.or_(*conditions)).order_by(Taxpayer.last_name, Taxpayer.name, Taxpayer.first_name, Taxpayer.id).limit(limit)
        )
    )


@bp.route("/")
@requires(Permission.TAXPAYERS_VIEW)
def search():
    query = request.args.get("q", "")[:200]
    results = search_taxpayers(db(), query) if query else []
    if query:
        # a search shows personal data of whoever matches: recorded like a view
        audit.record(
            db(), "taxpayer.search", actor=g.user, details={"query": query, "results": [t.id for t in results]},
            ip=client_ip(), user_agent=user_agent(),
        )
    return render_template("taxes/search.html", query=query, results=results, page_size=PAGE_SIZE)


@bp.route("/<int:taxpayer_id>")
@requires(Permission.TAXPAYERS_VIEW)
def card(taxpayer_id: int):
    taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
    audit.record(
        db(), "taxpayer.view", actor=g.user, object_type="taxpayer", object_id=taxpayer.id, taxpayer_id=taxpayer.id,
        ip=client_ip(), user_agent=user_agent(),
    )
    links = db().scalars(
        sa.select(TaxpayerAccess).where(TaxpayerAccess.taxpayer_id == taxpayer.id, TaxpayerAccess.revoked_at.is_(None)).order_by(TaxpayerAccess.id)
    ).all()
    return render_template("taxes/card.html", taxpayer=taxpayer, links=links, form=LinkUserForm(), revoke_form=Form())


@bp.route("/<int:taxpayer_id>/powiazania", methods=["POST"])
@requires(Permission.TAXPAYER_ACCESS_MANAGE)
def link_user(taxpayer_id: int):
    taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
    form = LinkUserForm()
    if form.validate_on_submit():
        user = account_ops.find_user(db(), form.email.data)
        if user is None or user.role != "resident":
            form.email.errors.append(_("Nie ma konta mieszkańca z tym adresem e-mail."))
        else:
            try:
                account_ops.link_taxpayer(
                    db(), user=user, taxpayer=taxpayer, relation=form.relation.data, granted_by=g.user,
                    note=form.note.data.strip(), ip=client_ip(), user_agent=user_agent(),
                )
            except account_ops.AccountError as exc:
                form.email.errors.append(str(exc))
            else:
                flash(_("Konto %(email)s powiązano z podatnikiem.", email=user.email), "success")
                return redirect(url_for("taxes_backoffice.card", taxpayer_id=taxpayer.id))
    links = db().scalars(
        sa.select(TaxpayerAccess).where(TaxpayerAccess.taxpayer_id == taxpayer.id, TaxpayerAccess.revoked_at.is_(None))
    ).all()
    return render_template("taxes/card.html", taxpayer=taxpayer, links=links, form=form, revoke_form=Form()), 400


@bp.route("/<int:taxpayer_id>/powiazania/<int:access_id>/usun", methods=["POST"])
@requires(Permission.TAXPAYER_ACCESS_MANAGE)
def revoke_link(taxpayer_id: int, access_id: int):
    access = db().get(TaxpayerAccess, access_id)
    if access is None or access.taxpayer_id != taxpayer_id:
        abort(404)
    if Form().validate_on_submit():
        account_ops.revoke_taxpayer_access(db(), access, revoked_by=g.user, ip=client_ip(), user_agent=user_agent())
        flash(_("Powiązanie usunięte."), "success")
    return redirect(url_for("taxes_backoffice.card", taxpayer_id=taxpayer_id))
