"""Clerk pages about taxpayers: search, the taxpayer's card (every view audited), account links."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from platforma.accounts import operations as account_ops
from platforma.accounts.models import TaxpayerAccess
from platforma.core import audit
from platforma.core.access import Permission, has_permission, requires
from platforma.accounts.models import User
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.payments.queries import virtual_layout
from platforma.payments.rules import VirtualAccountLayout, format_nrb, is_valid_nrb, normalise_nrb
from platforma.taxes import operations as tax_ops
from platforma.taxes import rules
from platforma.taxes.backoffice_forms import (
    InterestCalculatorForm, LimitationForm, ManualPostingForm, OffsetRequestForm, RemindersForm,
)
from platforma.taxes.forms import LinkUserForm
from platforma.taxes.queries import liability_ids_of
from platforma.taxes.reminders import issue_reminders, reminder_lines, reminders_csv
from platforma.taxes.settings import interest_threshold, rate_table
from platforma.web.filters import money as money_filter
from platforma.web.filters import today_warsaw
from platforma.web.pdf import render_pdf
from platforma.taxes.models import (
    Decision, Installment, Liability, LiabilityParty, LimitationRecord, Posting, PostingProposal, Taxpayer,
)
from platforma.web.forms import Form
from platforma.web.nav import backoffice_menu

bp = Blueprint("taxes_backoffice", __name__, url_prefix="/urzad/podatnicy", template_folder="templates")
backoffice_menu.add(_l("Podatnicy"), "taxes_backoffice.search", Permission.TAXPAYERS_VIEW, order=10)

PAGE_SIZE = 25


@dataclass(frozen=True)
class SearchResult:
    taxpayers: list[Taxpayer]
    #: why nothing could be looked up (Polish, for the clerk); empty when the search ran
    message: str = ""


def _account_number(query: str) -> str | None:
    """The query as an NRB when it is one: 26 digits, spaces (or dashes) and a "PL" prefix allowed."""
    cleaned = normalise_nrb(query)
    return cleaned if re.fullmatch(r"\d{26}", cleaned) else None


def search_by_account(session, nrb: str, layout: VirtualAccountLayout | None) -> SearchResult:
    """The taxpayer whose individual account (rachunek indywidualny) the number is, by the gmina's
    layout ([payments.virtual_accounts]); a number outside it gets a message, not an error."""
    if layout is None:
        return SearchResult([], _("Gmina nie ma rachunków indywidualnych: po numerze rachunku nie można wyszukać podatnika."))
    if not is_valid_nrb(nrb):
        return SearchResult([], _("Numer rachunku %(nrb)s ma błędne cyfry kontrolne: sprawdź, czy nie ma w nim pomyłki.",
                                  nrb=format_nrb(nrb)))
    taxpayer_id = layout.taxpayer_for(nrb)
    if taxpayer_id is None:
        return SearchResult([], _("Rachunek %(nrb)s nie jest rachunkiem indywidualnym podatnika tej gminy.",
                                  nrb=format_nrb(nrb)))
    taxpayer = session.get(Taxpayer, taxpayer_id)
    return SearchResult([taxpayer] if taxpayer is not None else [])


def search_taxpayers(session, query: str, limit: int = PAGE_SIZE, layout: VirtualAccountLayout | None = None) -> SearchResult:
    query = query.strip()
    if not query:
        return SearchResult([])
    nrb = _account_number(query)
    if nrb is not None:
        return search_by_account(session, nrb, layout)
    return SearchResult(_search_records(session, query, limit))


def _search_records(session, query: str, limit: int) -> list[Taxpayer]:
    digits = "".join(ch for ch in query if ch.isdigit())
    conditions = []
    if len(digits) == 11 and digits == query.replace(" ", ""):
        conditions.append(Taxpayer.pesel == digits)
    if len(digits) == 10:
        conditions.append(Taxpayer.nip == digits)
    if any(ch.isalpha() for ch in query) and any(ch.isdigit() for ch in query) and "." in query:
        # a decision number such as FN.3120.15.2025: everyone the decision names
        conditions.append(Taxpayer.id.in_(
            sa.select(LiabilityParty.taxpayer_id).join(Liability, Liability.id == LiabilityParty.liability_id)
            .join(Decision, Decision.id == Liability.decision_id).where(Decision.number == query.strip())
        ))
        return list(session.scalars(sa.select(Taxpayer).where(sa.or_(*conditions)).order_by(Taxpayer.id).limit(limit)))
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
    found = search_taxpayers(db(), query, layout=virtual_layout(runtime().settings)) if query else SearchResult([])
    if query:
        # a search shows personal data of whoever matches: recorded like a view
        audit.record(
            db(), "taxpayer.search", actor=g.user, details={"query": query, "results": [t.id for t in found.taxpayers]},
            ip=client_ip(), user_agent=user_agent(),
        )
    return render_template("taxes/search.html", query=query, results=found.taxpayers, message=found.message,
                           page_size=PAGE_SIZE)


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


# -- the account, the ledger and manual postings ----------------------------------------------------

KIND_LABELS = {
    "przypis": _l("przypis"), "odpis": _l("odpis"), "wplata": _l("wpłata"), "odsetki": _l("odsetki"),
    "koszty_upomnienia": _l("koszty upomnienia"), "nadplata": _l("nadpłata"), "zwrot": _l("zwrot"), "korekta": _l("korekta"),
}


@bp.route("/<int:taxpayer_id>/ksiegowania")
@requires(Permission.TAXPAYERS_VIEW)
def ledger(taxpayer_id: int):
    taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
    audit.record(db(), "taxpayer.ledger_view", actor=g.user, object_type="taxpayer", object_id=taxpayer.id,
                 taxpayer_id=taxpayer.id, ip=client_ip(), user_agent=user_agent())
    liability_ids = liability_ids_of(db(), taxpayer.id)
    condition = Posting.taxpayer_id == taxpayer.id
    if liability_ids:
        condition = sa.or_(condition, Posting.liability_id.in_(liability_ids))
    approver = aliased(User)
    rows = db().execute(
        sa.select(Posting, Installment.number, Liability.description, Liability.year, User.email, approver.email)
        .outerjoin(Installment, Installment.id == Posting.installment_id)
        .outerjoin(Liability, Liability.id == Posting.liability_id)
        .outerjoin(User, User.id == Posting.created_by_id)
        .outerjoin(PostingProposal, PostingProposal.posting_id == Posting.id)
        .outerjoin(approver, approver.id == PostingProposal.decided_by_id)
        .where(condition).order_by(Posting.value_date.desc(), Posting.id.desc())
    ).all()
    return render_template("taxes/ledger.html", taxpayer=taxpayer, rows=rows, kinds=KIND_LABELS,
                           offset_form=OffsetRequestForm(formdata=None))


@bp.route("/<int:taxpayer_id>/nadplata", methods=["POST"])
@requires(Permission.POSTINGS_MANAGE)
def offset_on_request(taxpayer_id: int):
    """The taxpayer asked for the overpayment to be set against future liabilities (art. 76 §1 OP):
    set off now against the open installments, oldest first, dated the day of the request; audited."""
    taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
    form = OffsetRequestForm()
    if form.validate_on_submit():
        try:
            requested_on = dt.date.fromisoformat(form.requested_on.data)
        except ValueError:
            form.requested_on.errors.append(_("Nie ma takiej daty."))
        else:
            if requested_on > today_warsaw():
                form.requested_on.errors.append(_("Data wniosku nie może być późniejsza niż dziś."))
            else:
                offsets = tax_ops.offset_overpayments(db(), taxpayer_id=taxpayer.id, as_of=requested_on,
                                                      requested_on=requested_on, author=g.user, ip=client_ip(),
                                                      user_agent=user_agent())
                if offsets:
                    flash(_("Zaliczono nadpłatę: %(amount)s.", amount=money_filter(sum((o.amount for o in offsets), Decimal(0)))),
                          "success")
                else:
                    flash(_("Nie ma nadpłaty ani rat, na które można by ją zaliczyć."), "info")
                return redirect(url_for("taxes_backoffice.ledger", taxpayer_id=taxpayer.id))
    flash(" ".join(error for errors in form.errors.values() for error in errors), "error")
    return redirect(url_for("taxes_backoffice.ledger", taxpayer_id=taxpayer.id))


def _installment_choices(taxpayer_id: int) -> list[tuple[str, str]]:
    ids = liability_ids_of(db(), taxpayer_id)
    if not ids:
        return [("", str(_l("— brak rat —")))]
    rows = db().execute(
        sa.select(Installment.id, Installment.number, Installment.due_on, Liability.description, Liability.year)
        .join(Liability, Liability.id == Installment.liability_id)
        .where(Liability.id.in_(ids)).order_by(Liability.year.desc(), Liability.id, Installment.number)
    ).all()
    return [("", str(_l("— nie dotyczy raty —")))] + [
        (str(r.id), f"{r.description or r.year}, rata {r.number} ({r.due_on:%d.%m.%Y})") for r in rows
    ]


@bp.route("/<int:taxpayer_id>/ksiegowania/nowe", methods=["GET", "POST"])
@requires(Permission.POSTINGS_MANAGE)
def manual_posting(taxpayer_id: int):
    taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
    form = ManualPostingForm()
    form.installment.choices = _installment_choices(taxpayer.id)
    if form.validate_on_submit():
        try:
            value_date = dt.date.fromisoformat(form.value_date.data)
        except ValueError:
            form.value_date.errors.append(_("Nie ma takiej daty."))
        else:
            approval = runtime().settings.taxes.manual_posting_approval
            try:
                (tax_ops.propose_manual_posting if approval else tax_ops.manual_posting)(
                    db(), taxpayer_id=taxpayer.id, kind=form.kind.data, amount=parse_amount(form.amount.data),
                    value_date=value_date, reason=form.reason.data, author=g.user,
                    installment_id=int(form.installment.data) if form.installment.data else None,
                    ip=client_ip(), user_agent=user_agent(),
                )
            except tax_ops.PostingError as exc:
                target = form.installment if "rat" in str(exc) else form.reason if "podstaw" in str(exc) else form.amount
                target.errors.append(str(exc))
            else:
                if approval:
                    flash(_("Księgowanie czeka na zatwierdzenie przez innego pracownika."), "success")
                    return redirect(url_for("taxes_backoffice.proposals"))
                flash(_("Zaksięgowano."), "success")
                return redirect(url_for("taxes_backoffice.ledger", taxpayer_id=taxpayer.id))
    return render_template("taxes/manual_posting.html", taxpayer=taxpayer, form=form)


# -- manual postings waiting for a second clerk --------------------------------------------------------

backoffice_menu.add(_l("Księgowania do zatwierdzenia"), "taxes_backoffice.proposals", Permission.POSTINGS_MANAGE, order=15)


@bp.route("/ksiegowania-do-zatwierdzenia")
@requires(Permission.POSTINGS_MANAGE)
def proposals():
    """Manual postings waiting for a second clerk ([taxes] manual_posting_approval), oldest first."""
    proposer = aliased(User)
    rows = db().execute(
        sa.select(PostingProposal, Taxpayer, Installment.number, Liability.description, Liability.year, proposer.email)
        .join(Taxpayer, Taxpayer.id == PostingProposal.taxpayer_id)
        .join(proposer, proposer.id == PostingProposal.proposed_by_id)
        .outerjoin(Installment, Installment.id == PostingProposal.installment_id)
        .outerjoin(Liability, Liability.id == PostingProposal.liability_id)
        .where(PostingProposal.state == "proposed").order_by(PostingProposal.proposed_at, PostingProposal.id)
    ).all()
    audit.record(db(), "posting.proposals_view", actor=g.user, details={"taxpayers": sorted({row[1].id for row in rows})},
                 ip=client_ip(), user_agent=user_agent())
    return render_template("taxes/proposals.html", rows=rows, kinds=KIND_LABELS, form=Form(),
                           enabled=runtime().settings.taxes.manual_posting_approval)


@bp.route("/ksiegowania-do-zatwierdzenia/<int:proposal_id>", methods=["POST"])
@requires(Permission.POSTINGS_MANAGE)
def decide_proposal(proposal_id: int):
    """Approve or reject (with a reason) a proposal of another clerk; a refusal is a message, not an error page."""
    if not Form().validate_on_submit():
        abort(400)
    decision = request.form.get("decision")
    try:
        if decision == "approve":
            tax_ops.approve_proposal(db(), proposal_id=proposal_id, approver=g.user, ip=client_ip(), user_agent=user_agent())
            flash(_("Zatwierdzono i zaksięgowano."), "success")
        elif decision == "reject":
            tax_ops.reject_proposal(db(), proposal_id=proposal_id, rejecter=g.user, reason=request.form.get("reason", "")[:2000],
                                    ip=client_ip(), user_agent=user_agent())
            flash(_("Odrzucono."), "success")
        else:
            abort(400)
    except tax_ops.PostingError as exc:
        flash(str(exc), "error")
    return redirect(url_for("taxes_backoffice.proposals"))


# -- przedawnienie (art. 70 OP) ----------------------------------------------------------------------

LIMITATION_LABELS = {
    "przerwanie": _l("przerwanie (art. 70 § 4)"), "zawieszenie": _l("zawieszenie (art. 70 § 2 pkt 1, § 6)"),
    "koniec_zawieszenia": _l("koniec zawieszenia (art. 70 § 7)"), "zabezpieczenie": _l("zabezpieczenie (art. 70 § 8)"),
}


def _optional_date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@bp.route("/<int:taxpayer_id>/przedawnienie", methods=["GET", "POST"])
@requires(Permission.TAXPAYERS_VIEW)
def limitation(taxpayer_id: int):
    """Each liability's limitation date per installment, what was recorded about it, and a form to
    record an interruption, a suspension or its end, or a mortgage (art. 70 OP)."""
    from platforma.taxes.queries import account
    from platforma.taxes.views import tax_name

    taxpayer = db().get(Taxpayer, taxpayer_id) or abort(404)
    today = today_warsaw()
    ids = liability_ids_of(db(), taxpayer.id)
    records = db().execute(
        sa.select(LimitationRecord, User.email).outerjoin(User, User.id == LimitationRecord.created_by_id)
        .where(LimitationRecord.liability_id.in_(ids)).order_by(LimitationRecord.occurred_on, LimitationRecord.id)
    ).all() if ids else []
    ended = {record.ends_id for record, _ in records if record.ends_id is not None}
    state = account(db(), taxpayer.id, today)
    names = {item.id: f"{tax_name(item.tax_kind)} {item.year}" + (f" ({item.decision_number})" if item.decision_number else "")
             for item in state.liabilities}
    form = LimitationForm()
    form.liability.choices = [("", str(_l("— wybierz —")))] + [(str(i), name) for i, name in names.items()]
    form.ends.choices = [("", str(_l("— nie dotyczy —")))] + [
        (str(record.id), f"{names.get(record.liability_id, record.liability_id)}: {record.occurred_on:%d.%m.%Y}")
        for record, _ in records if record.kind == "zawieszenie" and record.until is None and record.id not in ended]
    if request.method == "POST":
        if not has_permission(g.user, Permission.POSTINGS_MANAGE):
            abort(403)
        if form.validate_on_submit():
            try:
                tax_ops.record_limitation(
                    db(), taxpayer_id=taxpayer.id, liability_id=int(form.liability.data), kind=form.kind.data,
                    occurred_on=dt.date.fromisoformat(form.occurred_on.data), until=_optional_date(form.until.data),
                    ends_id=int(form.ends.data) if form.ends.data else None, reason=form.reason.data, author=g.user,
                    today=today, ip=client_ip(), user_agent=user_agent(),
                )
            except ValueError as exc:
                message = str(exc) if isinstance(exc, tax_ops.PostingError) else _("Nie ma takiej daty.")
                target = (form.reason if "podstaw" in message else form.ends if "zawieszeni" in message and "Wskaż" in message
                          else form.until if "Koniec" in message else form.liability if "zobowiązanie" in message
                          else form.occurred_on)
                target.errors.append(message)
            else:
                flash(_("Zapisano. Termin przedawnienia przeliczono."), "success")
                return redirect(url_for("taxes_backoffice.limitation", taxpayer_id=taxpayer.id))
    else:
        audit.record(db(), "taxpayer.limitation_view", actor=g.user, object_type="taxpayer", object_id=taxpayer.id,
                     taxpayer_id=taxpayer.id, ip=client_ip(), user_agent=user_agent())
    return render_template("taxes/limitation.html", taxpayer=taxpayer, state=state, records=records, names=names,
                           labels=LIMITATION_LABELS, form=form, today=today,
                           can_record=has_permission(g.user, Permission.POSTINGS_MANAGE)), 400 if form.errors else 200


def parse_amount(text: str) -> Decimal:
    return Decimal(text.strip().replace("\u00a0", "").replace(" ", "").replace(",", "."))


# -- the interest calculator -------------------------------------------------------------------------

calculator_bp = Blueprint("taxes_tools", __name__, url_prefix="/urzad/narzedzia", template_folder="templates")
backoffice_menu.add(_l("Kalkulator odsetek"), "taxes_tools.interest_calculator", Permission.TAXPAYERS_VIEW, order=30)
backoffice_menu.add(_l("Upomnienia"), "taxes_tools.reminders", Permission.POSTINGS_MANAGE, order=40)


@calculator_bp.route("/odsetki")
@requires(Permission.TAXPAYERS_VIEW)
def interest_calculator():
    form = InterestCalculatorForm(request.args)
    result = None
    if request.args and form.validate():
        try:
            amount = parse_amount(form.amount.data)
            due, paid = dt.date.fromisoformat(form.due.data), dt.date.fromisoformat(form.paid.data)
        except (ValueError, InvalidOperation):
            form.due.errors.append(_("Nie ma takiej daty."))
        else:
            effective = rules.next_working_day(due)
            try:
                result = rules.arrears_interest(amount, effective, paid, rate_table(db()), interest_threshold(db(), paid), form.rate.data)
            except KeyError:
                form.paid.errors.append(_("Brak stopy odsetek dla tych dni (stawki znane od 9.10.2014)."))
            else:
                result = {"effective_due": effective, "due": due, "interest": result, "amount": amount}
    return render_template("taxes/interest_calculator.html", form=form, result=result)


# -- reminders ---------------------------------------------------------------------------------------

@calculator_bp.route("/upomnienia", methods=["GET", "POST"])
@requires(Permission.POSTINGS_MANAGE)
def reminders():
    form = RemindersForm(request.values, meta={"csrf": request.method == "POST"})
    if not request.values.get("as_of"):
        form.as_of.data = today_warsaw().isoformat()
    lines = None
    if request.values.get("as_of") and form.validate():
        try:
            day = dt.date.fromisoformat(form.as_of.data)
        except ValueError:
            form.as_of.errors.append(_("Nie ma takiej daty."))
        else:
            minimum = parse_amount(form.minimum.data) if form.minimum.data else Decimal(0)
            with runtime().session_factory() as reading:  # a session of its own: the run reads in chunks
                lines = reminder_lines(reading, day, minimum)
            if request.args.get("format") == "csv":
                response = Response("\ufeff" + reminders_csv(lines, day), mimetype="text/csv")
                response.headers["Content-Disposition"] = f'attachment; filename="upomnienia-{day.isoformat()}.csv"'
                return response
            if request.method == "POST":
                cost, posted = issue_reminders(db(), day, lines, g.user.id)
                audit.record(db(), "reminders.issued", actor=g.user, object_type="reminders", object_id=day.isoformat(),
                             details={"taxpayers": len(lines), "newly_posted": posted, "cost": str(cost)},
                             ip=client_ip(), user_agent=user_agent())
                return render_pdf("taxes/reminders_pdf.html", f"upomnienia-{day.isoformat()}.pdf",
                                  lines=lines, day=day, cost=cost, gmina=runtime().settings.gmina)
    return render_template("taxes/reminders.html", form=form, lines=lines)
