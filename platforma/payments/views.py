"""Resident pages: pay online, pay by transfer or QR code, "Moje płatności"; the gateways' webhooks.

A payment starts on a taxpayer's account page: the resident chooses what to pay, sees how it will be
allocated (art. 62 §1 OP: the installments chosen are the designation), chooses a gateway and goes
there. The page they come back to tells the truth: "waiting for the operator" until the gateway's
notification confirms the payment.
"""
from __future__ import annotations

import logging
import secrets
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
import segno
from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from platforma.accounts.models import TaxpayerAccess
from platforma.core.access import Permission, login_required, public, requires
from platforma.core.db import commit
from platforma.core.web import client_ip, db, runtime
from platforma.payments import flows, operations, queries
from platforma.payments.models import Payment
from platforma.payments.rules import QR_MAX_AMOUNT, format_nrb, zbp_qr_payload
from platforma.taxes.access import taxpayer_for_current_user
from platforma.web.filters import money, today_warsaw
from platforma.web.nav import resident_menu

log = logging.getLogger("platforma.payments")
bp = Blueprint("payments", __name__, url_prefix="/platnosci", template_folder="templates")
pay_bp = Blueprint("pay", __name__, url_prefix="/podatki", template_folder="templates")
resident_menu.add(_l("Moje płatności"), "payments.mine", Permission.RESIDENT_AREA, order=30)

STATE_LABELS = {
    "created": (_l("rozpoczęta"), "govuk-tag--grey"),
    "pending": (_l("czeka na potwierdzenie operatora"), "govuk-tag--yellow"),
    "confirmed": (_l("zapłacona"), "govuk-tag--green"),
    "failed": (_l("nieudana"), "govuk-tag--red"),
    "cancelled": (_l("anulowana"), "govuk-tag--grey"),
    "expired": (_l("wygasła"), "govuk-tag--grey"),
}
REFUND_LABELS = {
    "pending": (_l("zwrot w toku"), "govuk-tag--yellow"),
    "completed": (_l("zwrócono"), "govuk-tag--blue"),
    "cancelled": (_l("zwrot anulowany"), "govuk-tag--grey"),
}
MAX_ONLINE_AMOUNT = Decimal("1000000.00")


@bp.context_processor
@pay_bp.context_processor
def _helpers() -> dict:
    from platforma.taxes.views import tax_name

    return {"zl": money, "state_labels": STATE_LABELS, "refund_labels": REFUND_LABELS, "tax_name": tax_name,
            "format_nrb": format_nrb}


def _resident_access(taxpayer_id: int):
    """Only a resident linked to the taxpayer pays from their account (a clerk does not)."""
    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    if access is None:
        abort(403)
    return taxpayer, access


def _installment_label(item: queries.PayableInstallment) -> str:
    from platforma.taxes.views import tax_name

    return _("%(tax)s %(year)s, rata %(number)s (termin %(due)s)", tax=tax_name(item.tax_kind), year=item.year,
             number=item.number, due=item.due.strftime("%d.%m.%Y"))


class Choice:
    """What the resident chose on the form, checked against today's account."""

    def __init__(self, mode: str, ids: list[int], amount: Decimal, designation: list[int], description: str):
        self.mode, self.ids, self.amount, self.designation, self.description = mode, ids, amount, designation, description


def _read_choice(payable: queries.Payable, form) -> tuple[Choice | None, dict[str, str]]:
    errors: dict[str, str] = {}
    mode = form.get("mode", "")
    if mode == "overdue":
        if payable.overdue_total <= 0:
            errors["mode"] = _("Nie masz zaległości do zapłaty.")
            return None, errors
        ids = [i.id for i in payable.overdue]
        return Choice(mode, ids, payable.overdue_total, ids, _("Zaległości z odsetkami")), errors
    if mode == "installments":
        try:
            ids = [int(v) for v in form.getlist("installment")]
        except ValueError:
            ids = []
        chosen = payable.chosen(ids)
        if not chosen:
            errors["installment"] = _("Zaznacz co najmniej jedną ratę.")
            return None, errors
        total = payable.chosen_total(chosen)
        return Choice(mode, [i.id for i in chosen], total, [i.id for i in chosen],
                      _("Raty: %(list)s", list=", ".join(f"{i.year}/{i.number}" for i in chosen))), errors
    if mode == "amount":
        raw = (form.get("amount") or "").strip().replace("\u00a0", "").replace(" ", "").replace("zł", "").replace(",", ".")
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            errors["amount"] = _("Wpisz kwotę w złotych, np. 150,00.")
            return None, errors
        if not amount.is_finite() or amount <= 0:
            errors["amount"] = _("Kwota musi być większa od zera.")
        elif amount != amount.quantize(Decimal("0.01")):
            errors["amount"] = _("Kwota może mieć najwyżej dwa miejsca po przecinku.")
        elif amount > MAX_ONLINE_AMOUNT:
            errors["amount"] = _("Największa kwota płatności online to %(max)s.", max=money(MAX_ONLINE_AMOUNT))
        if errors:
            return None, errors
        return Choice(mode, [], amount, [], _("Wpłata na konto podatnika")), errors
    errors["mode"] = _("Wybierz, co chcesz zapłacić.")
    return None, errors


def _gateway_choice(form, errors: dict[str, str]) -> str | None:
    gateways = flows.configured_gateways(runtime())
    chosen = form.get("gateway") or (next(iter(gateways)) if len(gateways) == 1 else "")
    if chosen not in gateways:
        errors["gateway"] = _("Wybierz operatora płatności.")
        return None
    return chosen


def _pay_page(taxpayer, access, payable, errors=None, form=None, status=200):
    gateways = flows.configured_gateways(runtime())
    return render_template(
        "payments/pay.html", taxpayer=taxpayer, access=access, clerk_view=False, payable=payable,
        label=_installment_label, gateways=gateways, errors=errors or {}, form=form or {},
        today=today_warsaw()), status


@pay_bp.get("/<int:taxpayer_id>/zaplac")
@requires(Permission.RESIDENT_AREA)
def pay(taxpayer_id: int):
    """Step one: what to pay. `?rok=2025` (the account page's "Zapłać za 2025 r.") chooses that year's
    installments."""
    taxpayer, access = _resident_access(taxpayer_id)
    payable = queries.payable(db(), taxpayer.id, today_warsaw())
    form = MultiDict()
    year = request.args.get("rok", "")
    if year.isdigit() and len(year) == 4:
        chosen = [str(i.id) for i in payable.installments if i.year == int(year)]
        if chosen:
            form = MultiDict([("mode", "installments")] + [("installment", i) for i in chosen])
    return _pay_page(taxpayer, access, payable, form=form)


@pay_bp.post("/<int:taxpayer_id>/zaplac")
@requires(Permission.RESIDENT_AREA)
def pay_preview(taxpayer_id: int):
    """Step two: how the payment will be allocated, before the resident goes to the gateway."""
    from platforma.taxes.operations import plan_allocation

    taxpayer, access = _resident_access(taxpayer_id)
    today = today_warsaw()
    payable = queries.payable(db(), taxpayer.id, today)
    choice, errors = _read_choice(payable, request.form)
    gateway = _gateway_choice(request.form, errors)
    if choice is None or gateway is None:
        return _pay_page(taxpayer, access, payable, errors, request.form, status=400)
    plan = plan_allocation(db(), taxpayer_id=taxpayer.id, amount=choice.amount, paid_on=today,
                           designated_installment_ids=choice.designation)
    by_id = {i.id: i for i in payable.installments}
    gateways = flows.configured_gateways(runtime())
    return render_template(
        "payments/preview.html", taxpayer=taxpayer, access=access, clerk_view=False, choice=choice, plan=plan,
        by_id=by_id, label=_installment_label, gateway=gateways[gateway], gateway_id=gateway, today=today,
        idempotency_key=secrets.token_urlsafe(24))


@pay_bp.post("/<int:taxpayer_id>/zaplac/start")
@requires(Permission.RESIDENT_AREA)
def pay_start(taxpayer_id: int):
    """Step three: write the payment, commit, then register it with the gateway and go there."""
    taxpayer, access = _resident_access(taxpayer_id)
    today = today_warsaw()
    payable = queries.payable(db(), taxpayer.id, today)
    choice, errors = _read_choice(payable, request.form)
    gateway = _gateway_choice(request.form, errors)
    key = (request.form.get("idempotency_key") or "")[:64]
    if choice is None or gateway is None or len(key) < 16:
        return _pay_page(taxpayer, access, payable, errors or {"mode": _("Zacznij płatność od nowa.")}, request.form, status=400)
    try:
        expected = Decimal(request.form.get("expected", ""))
    except InvalidOperation:
        expected = None
    if choice.mode != "amount" and expected != choice.amount:
        # the interest changed since the preview (midnight passed): show the new figures first
        return _pay_page(taxpayer, access, payable, {"mode": _("Kwota do zapłaty zmieniła się od chwili podglądu. Sprawdź ją jeszcze raz.")}, request.form, status=409)
    try:
        payment, _created = operations.create_payment(
            db(), taxpayer_id=taxpayer.id, user_id=g.user.id, gateway=gateway, amount=choice.amount, mode=choice.mode,
            designation=choice.designation, description=f"{choice.description}, {taxpayer.display_name}",
            idempotency_key=key)
    except operations.PaymentError as exc:
        return _pay_page(taxpayer, access, payable, {"mode": str(exc)}, request.form, status=409)
    payment_id, reference = payment.id, payment.reference
    commit(db())  # the intent is stored before the gateway hears of it
    started = flows.register_with_gateway(
        runtime(), payment_id, email=g.user.email,
        # the public address from the configuration, not the request's Host: the gateway must reach it
        return_url=runtime().settings.server.base_url + url_for("payments.returned", reference=reference),
        notify_url=runtime().settings.server.base_url + url_for("payments.webhook", gateway_id=gateway),
        customer_ip=client_ip())
    db().expire_all()
    if started.redirect_url:
        return redirect(started.redirect_url, 303)
    if started.error:
        return render_template("payments/start_failed.html", taxpayer=taxpayer, access=access, clerk_view=False,
                               message=started.error, reference=reference), 502
    return redirect(url_for("payments.detail", reference=reference), 303)


@pay_bp.get("/<int:taxpayer_id>/przelew")
@login_required
def transfer(taxpayer_id: int):
    """Pay by transfer: the individual account number, the title and the ZBP 2D code."""
    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    today = today_warsaw()
    payable = queries.payable(db(), taxpayer.id, today)
    chosen, _items, slip = _transfer_slip(taxpayer, payable)
    return render_template("payments/transfer.html", taxpayer=taxpayer, access=access, clerk_view=access is None,
                           payable=payable, chosen_ids=[i.id for i in chosen], slip=slip, label=_installment_label,
                           today=today, qr_max=QR_MAX_AMOUNT)


def _transfer_slip(taxpayer, payable: queries.Payable) -> tuple[list[queries.PayableInstallment],
                                                                 list[queries.PayableInstallment], dict]:
    """The installments chosen in the request (`rata`), those the transfer pays (the chosen ones, else
    everything overdue) and its slip, for the amount that pays them in full."""
    try:
        ids = [int(v) for v in request.args.getlist("rata")]
    except ValueError:
        ids = []
    chosen = payable.chosen(ids)
    items = chosen or payable.overdue
    return chosen, items, _slip(taxpayer, payable.chosen_total(items), items)


def _slip(taxpayer, amount: Decimal, items: list[queries.PayableInstallment]) -> dict:
    settings = runtime().settings
    account_number, individual = queries.transfer_account(settings, taxpayer.id)
    identifier = taxpayer.pesel or taxpayer.nip or ""
    title = " ".join(filter(None, [identifier, " ".join(f"{i.year}/{i.number}" for i in items)]))[:32] or taxpayer.display_name[:32]
    recipient = (settings.payments.recipient_name or settings.gmina.name)[:20]
    slip = {"account": account_number, "individual": individual, "amount": amount, "title": title,
            "recipient": settings.gmina.office_name, "recipient_address": settings.gmina.address,
            "payer": taxpayer.display_name, "payer_address": taxpayer.address, "qr_svg": None, "qr_has_amount": False}
    if account_number:
        payload = zbp_qr_payload(nip=settings.gmina.nip or None, account=account_number,
                                 amount=amount if amount > 0 else None, recipient=recipient, title=title)
        qr = segno.make(payload.text, error="L", encoding="utf-8")
        slip["qr_svg"] = qr.svg_inline(scale=4, title=_("Kod QR do przelewu"), svgclass="pf-qr", lineclass=None)
        slip["qr_payload"] = payload.text
        slip["qr_has_amount"] = payload.carries_amount
    return slip


@pay_bp.get("/<int:taxpayer_id>/przelew.pdf")
@login_required
def transfer_pdf(taxpayer_id: int):
    from platforma.web.pdf import render_pdf

    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    payable = queries.payable(db(), taxpayer.id, today_warsaw())
    _chosen, items, slip = _transfer_slip(taxpayer, payable)
    return render_pdf("payments/slip_pdf.html", f"przelew-{taxpayer.id}.pdf", taxpayer=taxpayer, slip=slip,
                      items=items, label=_installment_label, today=today_warsaw(), gmina=runtime().settings.gmina)


# -- Moje płatności ----------------------------------------------------------------------------------

def _linked_taxpayer_ids() -> list[int]:
    return list(db().scalars(sa.select(TaxpayerAccess.taxpayer_id).where(
        TaxpayerAccess.user_id == g.user.id, TaxpayerAccess.revoked_at.is_(None))))


def _payment_for_user(reference: str) -> Payment:
    payment = db().scalars(sa.select(Payment).where(Payment.reference == reference)).one_or_none()
    if payment is None:
        abort(404)
    taxpayer_for_current_user(payment.taxpayer_id)  # 403 and audited for anyone else's payment
    return payment


@bp.get("/")
@requires(Permission.RESIDENT_AREA)
def mine():
    """Online payments; for transfers and payments at the till, a link to each account's history of
    payments (every payment that reached the account, however it was paid)."""
    from platforma.taxes.models import Taxpayer

    accounts = list(db().scalars(
        sa.select(Taxpayer).join(TaxpayerAccess, TaxpayerAccess.taxpayer_id == Taxpayer.id)
        .where(TaxpayerAccess.user_id == g.user.id, TaxpayerAccess.revoked_at.is_(None)).distinct().order_by(Taxpayer.id)))
    payments = queries.payments_of(db(), [taxpayer.id for taxpayer in accounts])
    refunded = queries.refunded_totals(db(), [p.id for p in payments])
    return render_template("payments/mine.html", payments=payments, refunded=refunded, accounts=accounts)


@bp.get("/<reference>")
@requires(Permission.RESIDENT_AREA)
def detail(reference: str):
    return _detail(reference, returned=False)


@bp.get("/<reference>/powrot")
@requires(Permission.RESIDENT_AREA)
def returned(reference: str):
    """Where the gateway sends the resident back: the state as we know it, never the gateway's word."""
    return _detail(reference, returned=True)


def _detail(reference: str, returned: bool):
    payment = _payment_for_user(reference)
    lines = queries.allocation_of(db(), payment.reference) if payment.state == "confirmed" else []
    refunds = queries.refunds_of(db(), payment.id)
    return render_template("payments/detail.html", payment=payment, lines=lines, names=_liability_names(lines),
                           returned=returned, refunds=refunds,
                           refunded=sum((r.amount for r in refunds if r.state == "completed"), Decimal("0")))


@bp.get("/powrot")
@requires(Permission.RESIDENT_AREA)
def returned_by_query():
    """The return address set once in a gateway's panel (Autopay sends ?ServiceID=..&OrderID=..&Hash=..):
    the page of the payment it names. Nothing in the query is trusted beyond choosing the page."""
    reference = (request.args.get("OrderID") or request.args.get("reference") or "").strip()
    if not reference or len(reference) > 32:
        abort(404)
    return redirect(url_for("payments.returned", reference=reference), 303)


@bp.get("/<reference>/potwierdzenie.pdf")
@requires(Permission.RESIDENT_AREA)
def confirmation_pdf(reference: str):
    from platforma.web.pdf import render_pdf

    payment = _payment_for_user(reference)
    if payment.state != "confirmed":
        abort(404)
    lines = queries.allocation_of(db(), payment.reference)
    refunds = [r for r in queries.refunds_of(db(), payment.id) if r.state == "completed"]
    return render_pdf("payments/confirmation_pdf.html", f"potwierdzenie-{payment.reference}.pdf", payment=payment,
                      lines=lines, names=_liability_names(lines), taxpayer=payment_taxpayer(payment),
                      gmina=runtime().settings.gmina, refunds=refunds)


def payment_taxpayer(payment: Payment):
    from platforma.taxes.models import Taxpayer

    return db().get(Taxpayer, payment.taxpayer_id)


def _liability_names(lines) -> dict[int, str]:
    from platforma.taxes.models import Liability
    from platforma.taxes.views import tax_name

    ids = {line.liability_id for line in lines if line.liability_id}
    if not ids:
        return {}
    return {lid: f"{tax_name(kind)} {year}" for lid, kind, year in db().execute(
        sa.select(Liability.id, Liability.tax_kind, Liability.year).where(Liability.id.in_(ids)))}


# -- gateways ------------------------------------------------------------------------------------------

@bp.post("/powiadomienia/<gateway_id>")
@public
def webhook(gateway_id: str):
    """A gateway's notification: authenticated by its signature, answered as the gateway expects."""
    answer = flows.handle_notification(runtime(), gateway_id, request.headers, request.get_data(cache=False),
                                       client_ip())
    return Response(answer.body, status=answer.status, content_type=answer.content_type)


@bp.route("/piaskownica/<reference>", methods=["GET", "POST"])
@login_required
def sandbox(reference: str):
    """The demo gateway's payer page (only in a demonstration instance)."""
    gateways = flows.configured_gateways(runtime())
    gateway = gateways.get("sandbox")
    if gateway is None or not runtime().settings.demo:
        abort(404)
    payment = _payment_for_user(reference)
    if request.method == "GET":
        return render_template("payments/sandbox.html", payment=payment)
    outcome = "confirmed" if request.form.get("action") == "pay" else "cancelled"
    headers, body = gateway.notification(payment.reference, payment.amount, outcome)
    commit(db())
    answer = flows.handle_notification(runtime(), "sandbox", headers, body, "127.0.0.1")
    if answer.status != 200:
        log.error("piaskownica: powiadomienie odrzucone (%s)", answer.status)
    return redirect(url_for("payments.returned", reference=payment.reference), 303)
