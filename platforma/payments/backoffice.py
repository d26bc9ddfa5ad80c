"""Clerk pages: online payments and their history, bank statements (upload, the unmatched queue),
the daily report for the accountant."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from govuk_frontend_wtf.wtforms_widgets import GovFileInput, GovSubmitInput
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Regexp

from platforma.accounts.models import User
from platforma.core.access import Permission, deny, has_permission, requires
from platforma.core.web import client_ip, db, list_page, runtime, user_agent
from platforma.payments import flows, queries, reconciliation
from platforma.payments.models import BankStatement, Payment, PaymentEvent, StatementImport, StatementLine
from platforma.payments.views import REFUND_LABELS, STATE_LABELS
from platforma.taxes.models import Taxpayer
from platforma.web.filters import money, today_warsaw
from platforma.web.forms import Form, Select, TextArea, TextInput
from platforma.web.nav import backoffice_menu
from platforma.web.pdf import render_pdf

bp = Blueprint("payments_backoffice", __name__, url_prefix="/urzad/platnosci", template_folder="templates")
backoffice_menu.add(_l("Płatności i wyciągi"), "payments_backoffice.statements", Permission.TAXPAYERS_VIEW, order=20)
PAGE_SIZE = 50
#: an import in these states will not change by itself ("failed" is tried again by the job outbox, but the
#: clerk is told so on the page rather than kept waiting)
FINAL_IMPORT_STATES = frozenset({"done", "refused", "failed"})
IMPORT_LABELS = {"queued": _l("w kolejce"), "importing": _l("trwa wczytywanie"), "done": _l("wczytany"),
                 "refused": _l("odrzucony"), "failed": _l("błąd, zostanie ponowiony")}


class StatementUploadForm(Form):
    file = FileField(_l("Plik wyciągu (MT940 albo camt.053 / camt.054)"), widget=GovFileInput(),
                     validators=[FileRequired(_l("Wybierz plik wyciągu"))])
    submit = SubmitField(_l("Wczytaj wyciąg"), widget=GovSubmitInput())


class AssignForm(Form):
    taxpayer = StringField(_l("Podatnik: PESEL, NIP albo numer podatnika"), widget=TextInput(), validators=[
        InputRequired(_l("Wpisz PESEL, NIP albo numer podatnika")),
        Regexp(r"^[\d\s-]{1,20}$", message=_l("PESEL, NIP i numer podatnika to cyfry"))])
    reason = TextAreaField(_l("Podstawa przypisania"), widget=TextArea(), validators=[
        InputRequired(_l("Podaj podstawę przypisania")), Length(max=1000)],
        description=_l("Np. rozmowa telefoniczna z wpłacającym, pismo, numer decyzji w tytule z literówką."))
    submit = SubmitField(_l("Przypisz i zaksięguj"), widget=GovSubmitInput())


class ReturnForm(Form):
    return_reason = TextAreaField(_l("Dlaczego wpłata ma wrócić do nadawcy"), widget=TextArea(), validators=[
        InputRequired(_l("Podaj powód zwrotu")), Length(max=1000)])
    return_submit = SubmitField(_l("Oznacz do zwrotu"), widget=GovSubmitInput())


class PayoutForm(Form):
    gateway = SelectField(_l("Operator płatności"), widget=Select(), validators=[InputRequired(_l("Wybierz operatora"))])
    payout_reason = TextAreaField(_l("Która to wypłata"), widget=TextArea(), validators=[
        InputRequired(_l("Podaj, którą wypłatę operatora rozpoznajesz w tej pozycji")), Length(max=1000)],
        description=_l("Np. „wypłata zbiorcza za 19.11, 12 płatności, zgodna z zestawieniem operatora”."))
    payout_submit = SubmitField(_l("Oznacz jako wypłatę operatora"), widget=GovSubmitInput())


#: what became of a statement line, for the clerk
LINE_LABELS = {"matched": _l("zaksięgowana automatycznie"), "unmatched": _l("czeka na przypisanie"),
               "assigned": _l("przypisana przez urzędnika i zaksięgowana"),
               "gateway": _l("wypłata operatora płatności (wpłaty zaksięgowane przy potwierdzeniu)"),
               "debit": _l("obciążenie rachunku"), "returned": _l("do zwrotu nadawcy")}


@bp.context_processor
def _helpers() -> dict:
    return {"zl": money, "state_labels": STATE_LABELS, "refund_labels": REFUND_LABELS, "import_labels": IMPORT_LABELS,
            "line_labels": LINE_LABELS}


@bp.get("/")
@requires(Permission.TAXPAYERS_VIEW)
def payments():
    state = request.args.get("stan", "")
    query = (request.args.get("szukaj") or "").strip()
    page = list_page()
    stmt = (sa.select(Payment).order_by(Payment.created_at.desc(), Payment.id.desc())
            .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    if state in STATE_LABELS:
        stmt = stmt.where(Payment.state == state)
    if query:
        stmt = stmt.where(sa.or_(Payment.reference == query.upper(), Payment.gateway_txn_id == query,
                                 Payment.taxpayer_id == (int(query) if query.isdigit() else -1)))
    found = list(db().scalars(stmt))
    filters = {key: value for key, value in (("stan", state), ("szukaj", query)) if value}
    return render_template("payments/backoffice_payments.html", payments=found[:PAGE_SIZE], state=state, query=query,
                           page=page, has_next=len(found) > PAGE_SIZE, filters=filters)


@bp.get("/<reference>")
@requires(Permission.TAXPAYERS_VIEW)
def payment(reference: str):
    item = db().scalars(sa.select(Payment).where(Payment.reference == reference)).one_or_none() or abort(404)
    events = list(db().scalars(sa.select(PaymentEvent).where(PaymentEvent.payment_id == item.id).order_by(PaymentEvent.id)))
    lines = queries.allocation_of(db(), item.reference)
    return render_template("payments/backoffice_payment.html", payment=item, events=events, lines=lines,
                           refunds=queries.refunds_of(db(), item.id), taxpayer=db().get(Taxpayer, item.taxpayer_id))


@bp.route("/wyciagi", methods=["GET", "POST"])
@requires(Permission.TAXPAYERS_VIEW)
def statements():
    """Upload: the file is kept and imported by a job; the clerk is sent to the import's page, which
    shows the result at once for a small file and says the import is running for a large one."""
    form = StatementUploadForm()
    if request.method == "POST":
        if not has_permission(g.user, Permission.POSTINGS_MANAGE):
            deny([Permission.POSTINGS_MANAGE])
        if form.validate_on_submit():
            upload = form.file.data
            data = upload.read()
            if data:
                queued = reconciliation.queue_import(db(), runtime(), data, file_name=upload.filename or "",
                                                     clerk=g.user, ip=client_ip(), user_agent=user_agent())
                return redirect(url_for("payments_backoffice.statement_import", import_id=queued.id), 303)
            form.file.errors = [_("Plik jest pusty.")]
    imports = list(db().scalars(sa.select(BankStatement).order_by(BankStatement.id.desc()).limit(20)))
    uploads = list(db().scalars(sa.select(StatementImport).order_by(StatementImport.id.desc()).limit(10)))
    unmatched = db().execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(StatementLine.amount), 0))
                             .where(StatementLine.status == "unmatched")).one()
    status = 400 if form.file.errors else 200
    return render_template("payments/statements.html", form=form, imports=imports, uploads=uploads,
                           unmatched_count=unmatched[0], unmatched_total=unmatched[1]), status


@bp.get("/wyciagi/wczytania/<int:import_id>")
@requires(Permission.TAXPAYERS_VIEW)
def statement_import(import_id: int):
    upload = db().get(StatementImport, import_id) or abort(404)
    if request.args.get("format") == "json":
        # what the page's script asks every few seconds while the import runs
        return {"status": upload.status, "final": upload.status in FINAL_IMPORT_STATES,
                "progress": _import_progress(upload)}
    return render_template("payments/statement_import.html", upload=upload, progress=_import_progress(upload),
                           uploader=db().get(User, upload.uploaded_by_id) if upload.uploaded_by_id else None)


def _import_progress(upload: StatementImport) -> str:
    if upload.status != "importing" or not upload.entries_done:
        return ""
    done = f"{upload.entries_done:,}".replace(",", "\u00a0")
    return _("Przetworzono dotąd %(n)s pozycji.", n=done)


@bp.get("/wyciagi/nieprzypisane")
@requires(Permission.TAXPAYERS_VIEW)
def unmatched():
    """The credits nobody could match, oldest first, a page at a time; found by a word of the title or
    the payer's name or account, or by the amount ("123,45")."""
    query = (request.args.get("szukaj") or "").strip()[:100]
    found = StatementLine.status == "unmatched"
    if query:
        amount = re.fullmatch(r"(\d{1,12})(?:[,.](\d{1,2}))?", re.sub(r"[\s\u00a0]|zł", "", query))
        words = sa.or_(StatementLine.title.icontains(query, autoescape=True),
                       StatementLine.counterparty.icontains(query, autoescape=True),
                       StatementLine.counterparty_account.icontains(query.replace(" ", ""), autoescape=True))
        if amount:
            words = sa.or_(words, StatementLine.amount == Decimal(f"{amount[1]}.{(amount[2] or '0'):0<2}"))
        found = sa.and_(found, words)
    page = list_page()
    count, total = db().execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(StatementLine.amount), 0))
                                .where(found)).one()
    lines = list(db().scalars(sa.select(StatementLine).where(found).order_by(StatementLine.booking_date, StatementLine.id)
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return render_template("payments/unmatched.html", lines=lines, query=query, page=page, count=count, total=total,
                           has_next=page * PAGE_SIZE < count)


@bp.route("/wyciagi/do-zwrotu", methods=["GET", "POST"])
@requires(Permission.TAXPAYERS_VIEW)
def returned():
    """The credits clerks marked to be sent back, newest decision first, with the payer's account: what
    the treasury transfers back (also as CSV for the bank's import of transfers), each marked sent back
    once it is; then the last ones sent back."""
    status, error = 200, ""
    if request.method == "POST":
        if not has_permission(g.user, Permission.POSTINGS_MANAGE):
            deny([Permission.POSTINGS_MANAGE])
        line_id = request.form.get("line", "")
        try:
            if not (Form().validate_on_submit() and line_id.isdigit()):
                raise reconciliation.ImportRefused(_("Formularz wygasł albo jest niepełny: spróbuj jeszcze raz."))
            reconciliation.mark_sent_back(db(), int(line_id), clerk=g.user, day=today_warsaw(), ip=client_ip(),
                                          user_agent=user_agent())
        except reconciliation.ImportRefused as exc:
            status, error = 400, str(exc)
        else:
            flash(_("Wpłatę oznaczono jako odesłaną."), "success")
            return redirect(url_for("payments_backoffice.returned"), 303)
    to_send = reconciliation.TO_SEND_BACK
    lines = list(db().execute(
        sa.select(StatementLine, User.full_name).outerjoin(User, User.id == StatementLine.resolved_by_id)
        .where(to_send).order_by(StatementLine.resolved_at.desc(), StatementLine.id.desc()).limit(1000)))
    if request.args.get("format") == "csv":
        return Response(reconciliation.returned_csv([line for line, _clerk in lines]), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="wplaty-do-zwrotu.csv"'})
    total = db().scalar(sa.select(sa.func.coalesce(sa.func.sum(StatementLine.amount), 0)).where(to_send))
    sent = list(db().scalars(sa.select(StatementLine).where(StatementLine.sent_back_on.is_not(None))
                             .order_by(StatementLine.sent_back_on.desc(), StatementLine.id.desc()).limit(50)))
    return render_template("payments/returned.html", lines=lines, total=total, sent=sent,
                           can_mark=has_permission(g.user, Permission.POSTINGS_MANAGE), error=error), status


@bp.route("/wyciagi/pozycje/<int:line_id>", methods=["GET", "POST"])
@requires(Permission.POSTINGS_MANAGE)
def line(line_id: int):
    item = db().get(StatementLine, line_id) or abort(404)
    assign, send_back, payout = AssignForm(prefix="a"), ReturnForm(prefix="r"), PayoutForm(prefix="p")
    gateways = flows.configured_gateways(runtime())
    payout.gateway.choices = [("", _("wybierz"))] + [(gateway_id, gateway.name) for gateway_id, gateway in gateways.items()]
    status = 200
    if request.method == "POST":
        if "a-submit" in request.form and assign.validate_on_submit():
            try:
                chosen = reconciliation.taxpayer_for(db(), assign.taxpayer.data)
                reconciliation.assign_line(db(), item, chosen.id, clerk=g.user, reason=assign.reason.data,
                                           ip=client_ip(), user_agent=user_agent())
            except reconciliation.ImportRefused as exc:
                assign.taxpayer.errors = [str(exc)]
            else:
                flash(_("Wpłatę przypisano podatnikowi %(name)s (nr %(id)s) i zaksięgowano.", name=chosen.display_name,
                        id=chosen.id), "success")
                return redirect(url_for("payments_backoffice.unmatched"), 303)
        elif "r-return_submit" in request.form and send_back.validate_on_submit():
            try:
                reconciliation.mark_returned(db(), item, clerk=g.user, reason=send_back.return_reason.data,
                                             ip=client_ip(), user_agent=user_agent())
            except reconciliation.ImportRefused as exc:
                send_back.return_reason.errors = [str(exc)]
            else:
                flash(_("Wpłatę oznaczono do zwrotu."), "success")
                return redirect(url_for("payments_backoffice.unmatched"), 303)
        elif "p-payout_submit" in request.form and payout.validate_on_submit():
            try:
                reconciliation.mark_payout(db(), item, clerk=g.user, gateway_name=gateways[payout.gateway.data].name,
                                           reason=payout.payout_reason.data, ip=client_ip(), user_agent=user_agent())
            except reconciliation.ImportRefused as exc:
                payout.payout_reason.errors = [str(exc)]
            else:
                flash(_("Wpłatę oznaczono jako wypłatę operatora płatności; nic nie zaksięgowano drugi raz."), "success")
                return redirect(url_for("payments_backoffice.unmatched"), 303)
        status = 400
    waiting = item.status == "unmatched" and item.credit
    days = reconciliation.gateway_days(db(), until=item.value_date or item.booking_date) if waiting and gateways else []
    return render_template("payments/line.html", line=item, assign=assign, send_back=send_back, payout=payout,
                           gateways=gateways, gateway_days=days,
                           suggestions=reconciliation.suggestions(db(), item) if waiting else [],
                           taxpayer=db().get(Taxpayer, item.taxpayer_id) if item.taxpayer_id else None), status


@bp.get("/raport")
@requires(Permission.TAXPAYERS_VIEW)
def report():
    """The day's payments for the accountant: on screen, as CSV and as PDF."""
    raw = request.args.get("dzien") or today_warsaw().isoformat()
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        day, error = today_warsaw(), _("Wpisz datę jako RRRR-MM-DD.")
    else:
        error = ""
    rows = reconciliation.daily_report_rows(db(), day)
    total = sum((r["amount"] for r in rows), 0)
    fmt = request.args.get("format")
    if fmt == "csv" and not error:
        return Response(reconciliation.report_csv(rows), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="wplaty-{day.isoformat()}.csv"'})
    if fmt == "pdf" and not error:
        return render_pdf("payments/report_pdf.html", f"wplaty-{day.isoformat()}.pdf", rows=rows, day=day, total=total,
                          gmina=runtime().settings.gmina)
    return render_template("payments/report.html", rows=rows, day=day, total=total, error=error,
                           raw=raw), 400 if error else 200
