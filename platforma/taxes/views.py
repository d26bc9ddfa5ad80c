"""Resident pages: "Moje podatki i opłaty".

Every page that takes a taxpayer id asks `taxpayer_for_current_user` first: a resident sees only the
taxpayers linked to the account (anything else is 403 and audited), a clerk any taxpayer. What a clerk
or a representative sees is recorded in the audit log (RODO accountability; DOMAIN.md, "Who is who").
The figures come from `queries.account`, the same function as `platforma taxes balance`.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import threading
from collections import OrderedDict
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, g, render_template, request, session
from flask_babel import format_decimal, get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from platforma.accounts import operations as account_ops
from platforma.core import audit
from platforma.core.access import Permission, login_required, requires
from platforma.core.security import csp_nonce, csrf_token
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.accounts.sessions import read_with_session
from platforma.taxes.access import ACCOUNT_COMPANION, AccountAccess, account_for_current_user, on_behalf_of, taxpayer_for_current_user
from platforma.taxes.account import account_as_of
from platforma.taxes.forms import CalculatorForm
from platforma.taxes.models import Liability, LiabilityBasis, LiabilityParty, Posting
from platforma.taxes.queries import account, account_records, newest_posting_at
from platforma.taxes.rules import LATE_DELIVERY_DAYS
from platforma.taxes.settings import interest_threshold, keep_version, rate_table
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
    "expired": (_l("przedawniona"), "govuk-tag--grey"),
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

def _record_view(user, taxpayer_id: int, clerk: bool, acting_for: int | None, page: str, **details) -> None:
    """A clerk's view and a representative's view are recorded; a taxpayer's own view is not."""
    if clerk or acting_for is not None:
        audit.record(
            db(), "taxpayer.account_view", actor=user, object_type="taxpayer", object_id=taxpayer_id,
            taxpayer_id=taxpayer_id, on_behalf_of_id=acting_for, details={"page": page, **details},
            ip=client_ip(), user_agent=user_agent(),
        )


def _open_account(taxpayer_id: int, page: str, **details) -> tuple:
    """The taxpayer, the access the user has (None for a clerk) and whether a clerk is looking."""
    taxpayer, access = taxpayer_for_current_user(taxpayer_id)
    clerk = access is None
    _record_view(g.user, taxpayer.id, clerk, on_behalf_of(access), page, **details)
    return taxpayer, access, clerk


def _pdf_links() -> dict[str, bool]:
    # the PDF documents (platforma.taxes.documents) are linked when that module has added its routes
    return {name: f"taxes.{name}" in current_app.view_functions for name in ("statement_pdf", "decision_pdf")}


def _page(template: str, taxpayer, access, clerk: bool, **context):
    return render_template(template, taxpayer=taxpayer, access=access, clerk_view=clerk, pdf=_pdf_links(), **context)


def _names(state) -> dict[int, str]:
    return {item.id: f"{tax_name(item.tax_kind)} {item.year}" for item in state.liabilities}


# -- the account page's rendering, kept while nothing it shows has changed ------------------------------
#
# The account page is what a resident opens most, and it replays three years of payments with
# interest and prints a few hundred amounts: 15-20 ms of CPU. Its HTML is a function of the account
# (`AccountFingerprint`: the postings are append-only, and triggers raise a liability's revision
# when it is corrected in place), of the dated settings (interest rates), of the day (interest grows
# daily) and of who is looking (name in the header, role, language, a representative's tag). The
# rendering is kept in a bounded per-process LRU under all of those, with two holes for what every
# response must have afresh: the CSRF token of the logout form and the CSP nonce. The access check
# and the fingerprint are one row, read with the signed-in session and checked on every request; on
# PostgreSQL each process keeps that row until the database's notification says that something it
# was read from changed (`core.kept`, ADR 16): a page is not served from the cache to someone the
# database no longer allows to see it, nor after the account has changed, once that is heard.

_HOLE = secrets.token_hex(8)
CSRF_HOLE = f"pf-{_HOLE}-csrf"
NONCE_HOLE = f"pf-{_HOLE}-nonce"
_HOLES = re.compile(f"({CSRF_HOLE}|{NONCE_HOLE})")
#: at most this many renderings (about 20-35 KB each) per process; the environment variable
#: PLATFORMA_ACCOUNT_PAGE_CACHE sets another number (0: render every time, e.g. to measure it)
PAGE_CACHE_ENTRIES = 1000


class PageCache:
    """A thread-safe LRU of rendered pages (gunicorn's gthread workers serve several requests at once),
    each kept as UTF-8 pieces around its holes."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.pages: OrderedDict[tuple, tuple] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> tuple | None:
        with self.lock:
            page = self.pages.get(key)
            if page is None:
                self.misses += 1
            else:
                self.hits += 1
                self.pages.move_to_end(key)
            return page

    def put(self, key: tuple, page: tuple) -> None:
        if self.entries <= 0:
            return
        with self.lock:
            self.pages[key] = page
            while len(self.pages) > self.entries:
                self.pages.popitem(last=False)


def account_page_cache() -> PageCache:
    """This instance's cache (an app per gmina; tests run several apps in one process)."""
    extras = runtime().extras
    cache = extras.get("taxes.account_pages")
    if cache is None:
        entries = int(os.environ.get("PLATFORMA_ACCOUNT_PAGE_CACHE", PAGE_CACHE_ENTRIES))
        cache = extras.setdefault("taxes.account_pages", PageCache(entries))
    return cache


def _account_page_key(found: AccountAccess, today: dt.date) -> tuple:
    user = g.user
    return (found.taxpayer, found.access, found.fingerprint, found.settings, today, str(get_locale()),
            user.id, user.full_name, user.role, request.script_root)


def _render_account(found: AccountAccess, today: dt.date, *, holes: bool) -> str:
    """The account as of today: per year, one row per liability, and what is owed today."""
    taxpayer = found.taxpayer
    keep_version(db(), found.settings)  # the version the page's key has: its rates and threshold
    liabilities, postings = account_records(db(), taxpayer.id)
    state = account_as_of(liabilities, postings, today, rate_table(db()), interest_threshold(db(), today))
    # the document each liability rests on, and when the account's data last arrived
    documents = {item.id: (item.document_type, item.decision_number) for item in liabilities if item.decision_number}
    found_at = [item.created_at for item in liabilities if item.created_at is not None]
    newest = newest_posting_at(db(), taxpayer.id, [item.id for item in liabilities])
    if newest is not None:
        found_at.append(newest)
    synced_at = max(found_at) if found_at else None
    upcoming = sorted(
        ((i.due, i.left, item) for item in state.liabilities for i in item.installments if i.status != "overdue" and i.left > 0),
        key=lambda row: (row[0], row[2].id),
    )
    next_due = None
    if upcoming:
        day = upcoming[0][0]
        next_due = (day, sum((left for due, left, _item in upcoming if due == day), Decimal(0)))
    fill = {"csrf_token": lambda: CSRF_HOLE, "csp_nonce": lambda: NONCE_HOLE} if holes else {}
    return _page(
        "taxes/resident_account.html", taxpayer, found.access, found.access is None, state=state, today=today,
        documents=documents, synced_at=synced_at, next_due=next_due,
        biezace=sum((item.biezace for item in state.liabilities), Decimal(0)), **fill,
    )


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
    found = account_for_current_user(taxpayer_id)
    access = found.access
    _record_view(g.user, found.taxpayer.id, access is None,
                 access.taxpayer_id if access is not None and access.relation == "representative" else None, "account")
    today = today_warsaw()
    if session.get("_flashes"):
        return _render_account(found, today, holes=False)  # a message shown once: not for the cache
    cache = account_page_cache()
    key = _account_page_key(found, today)
    parts = cache.get(key)
    if parts is None:
        parts = _split_at_holes(_render_account(found, today, holes=True))
        cache.put(key, parts)
    fill = {CSRF_HOLE: csrf_token().encode(), NONCE_HOLE: csp_nonce().encode()}
    return b"".join(fill.get(part, part) for part in parts)


def _split_at_holes(page: str) -> tuple:
    """The page as UTF-8 pieces with the holes' names between them, ready to be joined with their fillings."""
    pieces = _HOLES.split(page)
    return tuple(piece if piece in (CSRF_HOLE, NONCE_HOLE) else piece.encode() for piece in pieces)


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


# the account page's access check and fingerprint come with the signed-in session, in one row (kept
# per process on PostgreSQL until the account or the user changes, core.kept)
read_with_session("taxes.taxpayer_account", ACCOUNT_COMPANION)
