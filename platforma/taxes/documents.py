"""PDF documents of the taxpayer's account: a statement as of a day and a decision's summary."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, g

from platforma.core import audit
from platforma.core.access import login_required
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.taxes.access import on_behalf_of, taxpayer_for_current_user
from platforma.taxes.models import Decision, Liability, LiabilityParty
from platforma.taxes.queries import account
from platforma.taxes.views import TAX_NAMES, bp
from platforma.web.filters import today_warsaw
from platforma.web.pdf import render_pdf



def _record(action: str, taxpayer_id: int, access, **details) -> None:
    audit.record(db(), action, actor=g.user, object_type="taxpayer", object_id=taxpayer_id, taxpayer_id=taxpayer_id,
                 on_behalf_of_id=on_behalf_of(access), details=details, ip=client_ip(), user_agent=user_agent())


@bp.route("/<int:taxpayer_id>/wyciag.pdf")
@login_required
def statement_pdf(taxpayer_id: int):
    """The account statement as of today, as a tagged PDF in Polish."""
    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    today = today_warsaw()
    state = account(db(), taxpayer.id, today)
    _record("taxpayer.statement_pdf", taxpayer.id, access)
    return render_pdf("taxes/statement_pdf.html", f"wyciag-{taxpayer.id}-{today.isoformat()}.pdf",
                      taxpayer=taxpayer, state=state, today=today, gmina=runtime().settings.gmina, names=TAX_NAMES)


@bp.route("/<int:taxpayer_id>/decyzje/<int:decision_id>.pdf")
@login_required
def decision_pdf(taxpayer_id: int, decision_id: int):
    """What the decision assessed: its liabilities, bases and installments (the signed original stays
    in the gmina's document management)."""
    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    decision = db().get(Decision, decision_id) or abort(404)
    liabilities = db().scalars(
        sa.select(Liability).join(LiabilityParty, LiabilityParty.liability_id == Liability.id)
        .where(Liability.decision_id == decision.id, LiabilityParty.taxpayer_id == taxpayer.id).order_by(Liability.id)
    ).all()
    if not liabilities:
        abort(404)  # not this taxpayer's decision: nothing to say about it
    _record("taxpayer.decision_pdf", taxpayer.id, access, decision=decision.number)
    return render_pdf("taxes/decision_pdf.html", f"decyzja-{decision.number.replace('/', '-')}.pdf",
                      taxpayer=taxpayer, decision=decision, liabilities=liabilities, gmina=runtime().settings.gmina, names=TAX_NAMES)
