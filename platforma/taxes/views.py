"""Resident pages: "Moje podatki i opłaty".

Every page that takes a taxpayer id asks `taxpayer_for_current_user` first: a resident sees only the
taxpayers linked to the account (anything else is 403 and audited), a clerk any taxpayer. What a clerk
or a representative sees is recorded in the audit log (RODO accountability; DOMAIN.md, "Who is who").
The figures come from `queries.account`, the same function as `platforma taxes balance`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, g, render_template, request
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from platforma.accounts import operations as account_ops
from platforma.core import audit
from platforma.core.access import Permission, login_required, requires
from platforma.core.web import client_ip, db, user_agent
from platforma.taxes.access import on_behalf_of, taxpayer_for_current_user
from platforma.taxes.forms import CalculatorForm
from platforma.taxes.models import Decision, Liability, LiabilityBasis, LiabilityParty, Posting
from platforma.taxes.queries import account
from platforma.taxes.rules import LATE_DELIVERY_DAYS
from platforma.taxes.settings import interest_threshold
from platforma.web.filters import money, today_warsaw
from platforma.web.nav import resident_menu

bp = Blueprint("taxes", __name__, url_prefix="/podatki", template_folder="templates")
resident_menu.add(_l("Moje podatki i opłaty"), "taxes.overview", Permission.RESIDENT_AREA, order=20)

#: the calculator answers from this day (the oldest interest rates kept) up to two years ahead
CALCULATOR_EARLIEST = dt.date(2015, 1, 1)
CALCULATOR_YEARS_AHEAD = 2

TAX_NAMES = {
    "nieruchomosci": _l("Podatek od nieruchomości"),
    "rolny": _l("Podatek rolny"),
    "lesny": _l("Podatek leśny"),
    "laczne": _l("Łączne zobowiązanie pieniężne"),
    "srodki_transportowe": _l("Podatek od środków transportowych"),
    "odpady": _l("Opłata za gospodarowanie odpadami komunalnymi"),
}
DOCUMENT_NAMES = {
    "decyzja": _l("Decyzja nr %(number)s"),
    "deklaracja": _l("Deklaracja nr %(number)s"),
    "informacja": _l("Informacja nr %(number)s"),
}
UNIT_NAMES = {
    "m2": _l("m²"),
    "ha": _l("ha"),
    "ha_przeliczeniowe": _l("ha przeliczeniowe"),
    "szt": _l("szt."),
    "osoba": _l("os."),
}
#: installment status (platforma.taxes.account) -> what the resident reads, and the tag's colour
STATUSES = {
    "paid": (_l("zapłacona"), "govuk-tag--green"),
    "partly_paid": (_l("częściowo zapłacona"), "govuk-tag--yellow"),
    "overdue": (_l("zaległa"), "govuk-tag--red"),
    "due": (_l("do zapłaty"), "govuk-tag--grey"),
}


def tax_name(kind: str) -> str:
    return str(TAX_NAMES.get(kind, kind))


def document_name(document_type: str | None, number: str | None) -> str:
    if not number:
        return ""
    template = DOCUMENT_NAMES.get(document_type or "", _l("Dokument nr %(number)s"))
    return str(template) % {"number": number}


def quantity(value: Decimal | None) -> str:
    """A base or a rate as the decision states it: no trailing zeros beyond what it has."""
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.####")


def rate(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.00##") + "\u00a0zł"


@bp.context_processor
def _helpers() -> dict:
    return {
        "zl": money, "tax_name": tax_name, "document_name": document_name, "quantity": quantity, "rate": rate,
        "unit_name": lambda unit: str(UNIT_NAMES.get(unit, unit)), "statuses": STATUSES,
    }


# -- who is looking ------------------------------------------------------------------------------

def _open_account(taxpayer_id: int, page: str, **details) -> tuple:
    """The taxpayer, the access the user has (None for a clerk) and whether a clerk is looking.

    A clerk's view and a representative's view are recorded; a taxpayer's own view is not."""
    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    clerk = access is None
    acting_for = on_behalf_of(access)
    if clerk or acting_for is not None:
        audit.record(
            db(), "taxpayer.account_view", actor=g.user, object_type="taxpayer", object_id=taxpayer.id,
            taxpayer_id=taxpayer.id, on_behalf_of_id=acting_for, details={"page": page, **details},
            ip=client_ip(), user_agent=user_agent(),
        )
    return taxpayer, access, clerk


def _page(template: str, taxpayer, access, clerk: bool, **context):
    # the PDF documents (platforma.taxes.documents) are linked when that module has added its routes
    pdf = {name: f"taxes.{name}" in current_app.view_functions for name in ("statement_pdf", "decision_pdf")}
    return render_template(template, taxpayer=taxpayer, access=access, clerk_view=clerk, pdf=pdf, **context)


# -- reads these pages add to queries.account ------------------------------------------------------

def _documents_and_sync(taxpayer_id: int, liability_ids: list[int]) -> tuple[dict[int, tuple[str, str]], dt.datetime | None]:
    """The document each liability rests on, and the time the account's data last arrived
    (the newest posting or liability): the "data as of" line."""
    documents: dict[int, tuple[str, str]] = {}
    newest: list[dt.datetime] = []
    if liability_ids:
        for liability_id, document_type, number in db().execute(
            sa.select(Liability.id, Decision.document_type, Decision.number)
            .join(Decision, Decision.id == Liability.decision_id).where(Liability.id.in_(liability_ids))
        ):
            documents[liability_id] = (document_type, number)
        newest.append(db().scalar(sa.select(sa.func.max(Liability.created_at)).where(Liability.id.in_(liability_ids))))
        postings = sa.or_(Posting.taxpayer_id == taxpayer_id, Posting.liability_id.in_(liability_ids))
    else:
        postings = Posting.taxpayer_id == taxpayer_id
    newest.append(db().scalar(sa.select(sa.func.max(Posting.created_at)).where(postings)))
    found = [moment for moment in newest if moment is not None]
    return documents, (max(found) if found else None)


def _names(state) -> dict[int, str]:
    return {item.id: f"{tax_name(item.tax_kind)} {item.year}" for item in state.liabilities}


# -- pages ---------------------------------------------------------------------------------------

@bp.route("/")
@requires(Permission.RESIDENT_AREA)
def overview():
    """Every taxpayer the user may act for, with what is owed today."""
    today = today_warsaw()
    rows = [(link, account(db(), link.taxpayer_id, today)) for link in account_ops.taxpayers_of(db(), g.user)]
    return render_template("taxes/overview.html", rows=rows, today=today)


@bp.route("/<int:taxpayer_id>/")
@login_required
def taxpayer_account(taxpayer_id: int):
    """The account as of today: per year, one row per liability, and what is owed today."""
    taxpayer, access, clerk = _open_account(taxpayer_id, "account")
    today = today_warsaw()
    state = account(db(), taxpayer.id, today)
    documents, synced_at = _documents_and_sync(taxpayer.id, [item.id for item in state.liabilities])
    upcoming = sorted(
        ((i.due, i.left, item) for item in state.liabilities for i in item.installments if i.status != "overdue" and i.left > 0),
        key=lambda row: (row[0], row[2].id),
    )
    next_due = None
    if upcoming:
        day = upcoming[0][0]
        next_due = (day, sum((left for due, left, _item in upcoming if due == day), Decimal(0)))
    return _page(
        "taxes/resident_account.html", taxpayer, access, clerk, state=state, today=today, documents=documents,
        synced_at=synced_at, next_due=next_due, biezace=sum((item.biezace for item in state.liabilities), Decimal(0)),
    )


@bp.route("/<int:taxpayer_id>/zobowiazania/<int:liability_id>")
@login_required
def liability(taxpayer_id: int, liability_id: int):
    """One liability: its document, basis, installments with their state today, and the payments it took."""
    taxpayer, access, clerk = _open_account(taxpayer_id, "liability", liability_id=liability_id)
    liable = db().scalar(sa.select(LiabilityParty.id).where(
        LiabilityParty.liability_id == liability_id, LiabilityParty.taxpayer_id == taxpayer.id))
    if liable is None:
        abort(404)
    item = db().scalars(
        sa.select(Liability).where(Liability.id == liability_id).options(
            selectinload(Liability.decision), selectinload(Liability.parties),
            selectinload(Liability.installments),
            selectinload(Liability.bases).selectinload(LiabilityBasis.tax_object),
        )
    ).one()
    today = today_warsaw()
    state = account(db(), taxpayer.id, today)
    item_state = next(s for s in state.liabilities if s.id == item.id)
    numbers = {installment.id: installment.number for installment in item.installments}

    # the payments that reached it: one line per payment, as much as it took and the interest within
    grouped: dict[str, dict] = {}
    for posting in db().scalars(
        sa.select(Posting).where(
            Posting.liability_id == item.id, Posting.kind.in_(("wplata", "odsetki")), Posting.value_date <= today,
        ).order_by(Posting.value_date, Posting.id)
    ):
        ref = posting.payment_ref or f"#{posting.id}"
        line = grouped.setdefault(ref, {"paid_on": posting.value_date, "amount": Decimal(0), "interest": Decimal(0), "installments": []})
        if posting.kind == "wplata":
            line["amount"] += posting.amount
        else:
            line["interest"] += posting.amount
        number = numbers.get(posting.installment_id)
        if number is not None and number not in line["installments"]:
            line["installments"].append(number)
    payments = sorted(grouped.values(), key=lambda line: line["paid_on"], reverse=True)

    delivered = item.decision.delivered_on if item.decision else None
    moved = {}
    for installment in item_state.installments:
        if installment.due != installment.nominal_due:
            late = delivered is not None and (installment.nominal_due - delivered).days < LATE_DELIVERY_DAYS
            moved[installment.id] = "late_delivery" if late else "day_off"
    return _page(
        "taxes/resident_liability.html", taxpayer, access, clerk, item=item, item_state=item_state, state=state,
        payments=payments, moved=moved, today=today, late_days=LATE_DELIVERY_DAYS,
    )


@bp.route("/<int:taxpayer_id>/wplaty")
@login_required
def payments(taxpayer_id: int):
    """Every payment that reached the account: the amount, the interest in it, what was left over."""
    taxpayer, access, clerk = _open_account(taxpayer_id, "payments")
    today = today_warsaw()
    state = account(db(), taxpayer.id, today)
    return _page("taxes/resident_payments.html", taxpayer, access, clerk, state=state, names=_names(state), today=today)


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@bp.route("/<int:taxpayer_id>/kalkulator")
@login_required
def calculator(taxpayer_id: int):
    """"Ile zapłacę w dniu X": the account as of a chosen day, interest included up to that day."""
    today = today_warsaw()
    args = request.args
    iso = args.get("dzien", "")
    if iso.count("-") == 2 and not args.get("miesiac") and not args.get("rok"):
        # the short form /kalkulator?dzien=RRRR-MM-DD (a link from elsewhere)
        year, month, day = iso.split("-")
        args = MultiDict({"dzien": day, "miesiac": month, "rok": year})
    form = CalculatorForm(
        formdata=args, earliest=CALCULATOR_EARLIEST, latest=_years_after(today, CALCULATOR_YEARS_AHEAD),
        example=f"31 12 {today.year}",
    )
    chosen = form.day if form.submitted and form.validate() else None
    taxpayer, access, clerk = _open_account(
        taxpayer_id, "calculator", **({"day": chosen.isoformat()} if chosen else {}))
    state = account(db(), taxpayer.id, chosen) if chosen else None
    context = {}
    if state is not None:
        context = {
            "state": state, "threshold": interest_threshold(db(), chosen),
            "owing": [item for item in state.liabilities if item.do_zaplaty > 0],
            "not_yet_due": sum((item.biezace for item in state.liabilities), Decimal(0)),
        }
    return _page(
        "taxes/resident_calculator.html", taxpayer, access, clerk, form=form if form.errors else None,
        calculator=form, chosen=chosen, today=today, **context,
    )
