"""Resident pages "Moje pisma": write a letter from the catalogue, sign it, file it, keep its receipt,
read the office's replies.

Signing happens outside the platform (the trusted signature at gov.pl, a qualified-signature application,
the e-ID card): the resident downloads the document, signs it and uploads the signed file. Each way of
signing is a SigningMethod plugin (``signing``), so that a signer integrated in the browser can be added
later without touching these pages.
"""
from __future__ import annotations

import dataclasses
import logging
import secrets

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from platforma.accounts.models import TaxpayerAccess, User
from platforma.core import audit
from platforma.core.access import Permission, requires
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.episma import operations as ops
from platforma.episma import queries, signing
from platforma.episma.models import DraftAttachment, Letter, LetterFile, Reply
from platforma.episma.rules import AttachmentRefused, format_size
from platforma.taxes.models import Taxpayer
from platforma.web.filters import today_warsaw
from platforma.web.nav import resident_menu

log = logging.getLogger("platforma.episma")
bp = Blueprint("episma", __name__, url_prefix="/pisma", template_folder="templates")
resident_menu.add(_l("Moje pisma"), "episma.mine", Permission.RESIDENT_AREA, order=40)

STATUS_LABELS = {
    "draft": (_l("wersja robocza"), "govuk-tag--grey"),
    "received": (_l("wpłynęło"), "govuk-tag--blue"),
    "registered": (_l("zarejestrowane"), "govuk-tag--light-blue"),
    "in_progress": (_l("w toku"), "govuk-tag--yellow"),
    "answered": (_l("udzielono odpowiedzi"), "govuk-tag--green"),
    "closed": (_l("zakończone"), "govuk-tag--grey"),
}
EVENT_LABELS = {
    "filed": _l("Pismo wpłynęło do urzędu"),
    "receipt": _l("Urząd wydał urzędowe poświadczenie odbioru (UPO)"),
    "assigned": _l("Pismo zarejestrowano i przekazano do załatwienia"),
    "status": _l("Zmiana statusu"),
    "reply": _l("Urząd odpowiedział"),
    "reply_read": _l("Odebrano odpowiedź"),
    "export": _l("Przekazano do systemu obiegu dokumentów"),
    "fee_paid": _l("Opłata skarbowa zapłacona"),
    "fee_refunded": _l("Opłata skarbowa zwrócona przez operatora płatności"),
}


@bp.context_processor
def _helpers() -> dict:
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "format_size": format_size}


# -- access --------------------------------------------------------------------------------------------

def _linked_taxpayers(user: User) -> list[tuple[Taxpayer, TaxpayerAccess]]:
    return list(db().execute(
        sa.select(Taxpayer, TaxpayerAccess).join(TaxpayerAccess, TaxpayerAccess.taxpayer_id == Taxpayer.id)
        .where(TaxpayerAccess.user_id == user.id, TaxpayerAccess.revoked_at.is_(None))
        .order_by(TaxpayerAccess.relation.desc(), Taxpayer.last_name, Taxpayer.name, Taxpayer.id)
    ).all())


def _may_read(user: User, letter: Letter) -> bool:
    """The author; and, once filed, whoever may act for the letter's taxpayer."""
    if letter.author_id == user.id:
        return True
    if letter.status == "draft" or letter.taxpayer_id is None:
        return False
    return db().scalar(sa.select(sa.func.count(TaxpayerAccess.id)).where(
        TaxpayerAccess.user_id == user.id, TaxpayerAccess.taxpayer_id == letter.taxpayer_id,
        TaxpayerAccess.revoked_at.is_(None))) > 0


def _letter(letter_id: int, *, draft: bool = False) -> Letter:
    """The letter if the signed-in resident may read it; 404 otherwise (nothing tells whether it exists).
    ``draft``: a page of the author's draft; a letter filed meanwhile redirects to its page."""
    letter = db().get(Letter, letter_id)
    if letter is None or not _may_read(g.user, letter):
        if letter is not None:
            audit.record(db(), "letter.access_denied", actor=g.user, object_type="letter", object_id=letter_id,
                         ip=client_ip(), user_agent=user_agent())
            db().commit()
        abort(404)
    if draft:
        if letter.author_id != g.user.id:
            abort(404)
        if letter.status != "draft":
            raise _Redirect(url_for("episma.letter", letter_id=letter.id))
    return letter


def _acting_for(letter: Letter) -> None:
    """A draft written for a taxpayer is prepared and filed only while the author may still act for them."""
    if letter.taxpayer_id is not None and _access_to(letter.taxpayer_id) is None:
        raise ops.LetterError(_("Nie możesz już działać w imieniu podatnika wskazanego w tym piśmie. Zmień pismo "
                                "albo skontaktuj się z urzędem."))


class _Redirect(Exception):
    def __init__(self, location: str):
        self.location = location


@bp.errorhandler(_Redirect)
def _redirect(exc: _Redirect):
    return redirect(exc.location)


@bp.errorhandler(ops.LetterError)
def _letter_error(exc: ops.LetterError):
    flash(" ".join(exc.reasons), "info")
    letter_id = (request.view_args or {}).get("letter_id")
    return redirect(url_for("episma.letter", letter_id=letter_id) if letter_id else url_for("episma.mine"))


# -- pages ---------------------------------------------------------------------------------------------

@bp.route("/")
@requires(Permission.RESIDENT_AREA)
def mine():
    letters = queries.letters_of(db(), g.user)
    return render_template("episma/mine.html", drafts=[l for l in letters if l.status == "draft"],
                           filed=[l for l in letters if l.status != "draft"],
                           unread=queries.unread_replies(db(), [l.id for l in letters]))


@bp.route("/nowe")
@requires(Permission.RESIDENT_AREA)
def catalogue():
    from platforma.episma.forms import CATALOGUE

    return render_template("episma/catalogue.html", forms=list(CATALOGUE.values()))


def _form_or_404(code: str):
    from platforma.episma.forms import get_form

    try:
        return get_form(code)
    except KeyError:
        abort(404)


def _taxpayer_choice(links, raw: str | None) -> tuple[int | None, str | None]:
    """The taxpayer chosen on the form ("" = the author themself); an error message if not theirs."""
    if not raw:
        return None, None
    try:
        chosen = int(raw)
    except ValueError:
        return None, _("Wybierz, w czyim imieniu składasz pismo.")
    if chosen not in {t.id for t, _a in links}:
        return None, _("Wybierz, w czyim imieniu składasz pismo.")
    return chosen, None


def _edit(form, letter: Letter | None):
    links = _linked_taxpayers(g.user)
    if request.method == "POST":
        web_form = form.web_form(request.form)
        taxpayer_id, taxpayer_error = _taxpayer_choice(links, request.form.get("taxpayer"))
        if web_form.validate() and taxpayer_error is None:
            data = form.complete(db(), form.data_from(web_form), today_warsaw())
            title = _title(form, data)
            if letter is None:
                letter = ops.create_draft(db(), form_code=form.code, form_version=form.version, title=title,
                                          author=g.user, taxpayer_id=taxpayer_id, data=data)
            else:
                ops.update_draft(db(), letter, title=title, taxpayer_id=taxpayer_id, data=data)
            db().commit()
            flash(_("Zapisano wersję roboczą. Sprawdź pismo, dołącz załączniki i podpisz je."), "success")
            return redirect(url_for("episma.letter", letter_id=letter.id))
        chosen = request.form.get("taxpayer", "")
    else:
        if letter is not None:
            web_form = form.web_form(MultiDict(form.form_data(letter.data)))
            chosen = str(letter.taxpayer_id or "")
        else:
            preselected = request.args.get("podatnik", "")
            taxpayer_id, _err = _taxpayer_choice(links, preselected)
            if taxpayer_id is None:
                own = next((t for t, a in links if a.relation == "self"), None)
                taxpayer_id = own.id if own is not None else None
            taxpayer = db().get(Taxpayer, taxpayer_id) if taxpayer_id else None
            web_form = form.web_form(MultiDict(form.form_data(form.prefill(taxpayer, g.user, db(), today_warsaw()))))
            chosen = str(taxpayer_id or "")
        taxpayer_error = None
    # hints (the overpayment, the arrears, the properties) only for a taxpayer the user may act for
    accepted, _error = _taxpayer_choice(links, chosen)
    hint_taxpayer = db().get(Taxpayer, accepted) if accepted is not None else None
    return render_template("episma/edit.html", letter_form=form, form=web_form, letter=letter, links=links,
                           chosen=chosen, taxpayer_error=taxpayer_error,
                           form_hints=form.hints(db(), hint_taxpayer, today_warsaw())), 400 if request.method == "POST" else 200


def _title(form, data: dict) -> str:
    subject = data.get("subject") if isinstance(data, dict) else None
    return f"{form.title}: {subject}" if subject else str(form.title)


@bp.route("/nowe/<code>", methods=["GET", "POST"])
@requires(Permission.RESIDENT_AREA)
def new(code: str):
    return _edit(_form_or_404(code), None)


@bp.route("/<int:letter_id>/edycja", methods=["GET", "POST"])
@requires(Permission.RESIDENT_AREA)
def edit(letter_id: int):
    letter = _letter(letter_id, draft=True)
    return _edit(_form_or_404(letter.form_code), letter)


@bp.route("/<int:letter_id>")
@requires(Permission.RESIDENT_AREA)
def letter(letter_id: int):
    letter = _letter(letter_id)
    if letter.status == "draft":
        return _draft_page(letter)
    view = queries.filed_letter(db(), letter, ops.limits(runtime().settings).signed_document)
    audit.record(db(), "letter.viewed", actor=g.user, object_type="letter", object_id=letter.id,
                 taxpayer_id=letter.taxpayer_id, ip=client_ip(), user_agent=user_agent())
    fee = queries.stamp_duty_state(db(), letter)
    if fee is not None and not fee.paid:
        fee = dataclasses.replace(fee, pay_url=url_for("episma.fee", letter_id=letter.id))
    return render_template("episma/letter.html", letter=letter, view=view, fee=fee)


def _draft_page(letter: Letter, *, upload_errors: list[str] | None = None, attachment_error: str | None = None):
    from platforma.episma.forms import FormDocumentError, get_form, parse_letter

    form = get_form(letter.form_code)
    try:
        parsed = parse_letter(ops.document_to_sign(db(), runtime().settings, letter, g.user))
        problem = None
    except FormDocumentError as exc:  # the draft no longer fits its form (e.g. a profile change): edit it
        parsed, problem = None, str(exc)
    attachments = ops.draft_attachments(db(), letter)
    methods = signing.available_methods(runtime(), letter)
    status = 400 if (upload_errors or attachment_error) else 200
    return render_template("episma/draft.html", letter=letter, letter_form=form, parsed=parsed, problem=problem,
                           sections=form.summary(parsed.data) if parsed else [], attachments=attachments,
                           methods=methods, upload_errors=upload_errors or [], attachment_error=attachment_error,
                           limits=ops.limits(runtime().settings),
                           taxpayer=db().get(Taxpayer, letter.taxpayer_id) if letter.taxpayer_id else None), status


@bp.route("/<int:letter_id>/usun", methods=["POST"])
@requires(Permission.RESIDENT_AREA)
def delete(letter_id: int):
    letter = _letter(letter_id, draft=True)
    ops.delete_draft(db(), letter)
    db().commit()
    flash(_("Usunięto wersję roboczą pisma."), "success")
    return redirect(url_for("episma.mine"))


@bp.route("/<int:letter_id>/zalaczniki", methods=["POST"])
@requires(Permission.RESIDENT_AREA)
def add_attachment(letter_id: int):
    from platforma.episma.forms import get_form

    letter = _letter(letter_id, draft=True)
    if not get_form(letter.form_code).allows_attachments:
        abort(400)
    upload = request.files.get("zalacznik")
    if upload is None or not upload.filename:
        return _draft_page(letter, attachment_error=_("Wybierz plik do dołączenia."))
    try:
        ops.add_draft_attachment(db(), runtime(), letter, upload.filename, upload.read())
    except AttachmentRefused as exc:
        db().rollback()
        return _draft_page(letter, attachment_error=str(exc))
    db().commit()
    flash(_("Dołączono plik %(name)s.", name=upload.filename), "success")
    return redirect(url_for("episma.letter", letter_id=letter.id, _anchor="zalaczniki"))


@bp.route("/<int:letter_id>/zalaczniki/<int:attachment_id>/usun", methods=["POST"])
@requires(Permission.RESIDENT_AREA)
def remove_attachment(letter_id: int, attachment_id: int):
    letter = _letter(letter_id, draft=True)
    if not ops.remove_draft_attachment(db(), letter, attachment_id):
        abort(404)
    db().commit()
    flash(_("Usunięto załącznik."), "success")
    return redirect(url_for("episma.letter", letter_id=letter.id, _anchor="zalaczniki"))


@bp.route("/<int:letter_id>/zalaczniki/<int:attachment_id>")
@requires(Permission.RESIDENT_AREA)
def draft_attachment(letter_id: int, attachment_id: int):
    letter = _letter(letter_id, draft=True)
    attachment = db().scalars(sa.select(DraftAttachment).where(DraftAttachment.id == attachment_id,
                                                               DraftAttachment.letter_id == letter.id)
                              .options(sa.orm.undefer(DraftAttachment.content))).first() or abort(404)
    return _download(attachment.content, attachment.filename, attachment.content_type)


@bp.route("/<int:letter_id>/do-podpisu.xml")
@requires(Permission.RESIDENT_AREA)
def document_xml(letter_id: int):
    letter = _letter(letter_id, draft=True)
    _acting_for(letter)
    xml = ops.document_to_sign(db(), runtime().settings, letter, g.user)
    return _download(xml, f"{letter.form_code}-{letter.document_id[:8]}.xml", "application/xml")


@bp.route("/<int:letter_id>/do-podpisu.pdf")
@requires(Permission.RESIDENT_AREA)
def document_pdf(letter_id: int):
    from platforma.episma.forms import parse_letter, render_letter_pdf

    letter = _letter(letter_id, draft=True)
    _acting_for(letter)
    xml = ops.document_to_sign(db(), runtime().settings, letter, g.user)
    pdf = render_letter_pdf(parse_letter(xml), xml)
    return _download(pdf, f"{letter.form_code}-{letter.document_id[:8]}.pdf", "application/pdf")


@bp.route("/<int:letter_id>/podpis/<method_id>", methods=["GET", "POST"])
@requires(Permission.RESIDENT_AREA)
def sign(letter_id: int, method_id: str):
    """A signing method's step: an upload form posts here; a browser-integrated signer returns here."""
    letter = _letter(letter_id, draft=True)
    method = signing.method(runtime(), letter, method_id) or abort(404)
    try:
        _acting_for(letter)
    except ops.LetterError as exc:
        return _draft_page(letter, upload_errors=exc.reasons)
    if request.method == "GET" and not method.returns_here:
        return redirect(url_for("episma.letter", letter_id=letter.id))
    try:
        signed = method.finish(request, letter)
        verified = ops.verify_upload(runtime(), letter, signed.content)
    except ops.LetterError as exc:
        return _draft_page(letter, upload_errors=exc.reasons)
    access = _access_to(letter.taxpayer_id)
    try:
        ops.file_letter(db(), runtime(), letter, signed.content, signed.filename, verified, actor=g.user,
                        on_behalf_of_id=access.taxpayer_id if access is not None and access.relation == "representative" else None,
                        ip=client_ip(), user_agent=user_agent())
        db().commit()
    except ops.LetterError:
        db().rollback()
        flash(_("To pismo zostało już złożone."), "info")
        return redirect(url_for("episma.letter", letter_id=letter.id))
    flash(_("Pismo zostało złożone. Numer wpływu: %(number)s.", number=letter.registration_number), "success")
    return redirect(url_for("episma.letter", letter_id=letter.id))


def _access_to(taxpayer_id: int | None) -> TaxpayerAccess | None:
    if taxpayer_id is None:
        return None
    return db().scalars(sa.select(TaxpayerAccess).where(
        TaxpayerAccess.user_id == g.user.id, TaxpayerAccess.taxpayer_id == taxpayer_id,
        TaxpayerAccess.revoked_at.is_(None))).first()


# -- files of a filed letter -------------------------------------------------------------------------

def _download(content: bytes, filename: str, content_type: str, *, inline: bool = False) -> Response:
    from urllib.parse import quote

    response = Response(content, mimetype=content_type)
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # a downloaded file is never run as a page of this site
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _letter_file(letter: Letter, file_id: int, roles: tuple[str, ...]) -> LetterFile:
    return db().scalars(sa.select(LetterFile).where(LetterFile.id == file_id, LetterFile.letter_id == letter.id,
                                                    LetterFile.role.in_(roles))
                        .options(sa.orm.undefer(LetterFile.content))).first() or abort(404)


@bp.route("/<int:letter_id>/pliki/<int:file_id>")
@requires(Permission.RESIDENT_AREA)
def letter_file(letter_id: int, file_id: int):
    letter = _letter(letter_id)
    item = _letter_file(letter, file_id, ("signed", "attachment"))
    return _download(item.content, item.filename, item.content_type)


@bp.route("/<int:letter_id>/upo.xml")
@requires(Permission.RESIDENT_AREA)
def receipt_xml(letter_id: int):
    letter = _letter(letter_id)
    receipt = queries.receipt_file(db(), letter) or abort(404)
    return _download(receipt.content, receipt.filename, "application/xml")


@bp.route("/<int:letter_id>/upo.pdf")
@requires(Permission.RESIDENT_AREA)
def receipt_pdf(letter_id: int):
    letter = _letter(letter_id)
    return render_receipt_pdf(letter)


def render_receipt_pdf(letter: Letter) -> Response:
    from platforma.episma.documents import receipt_pdf

    receipt = queries.receipt_file(db(), letter) or abort(404)
    pdf = receipt_pdf(letter, receipt.content, runtime().settings)
    return _download(pdf, receipt.filename.removesuffix(".xml") + ".pdf", "application/pdf")


@bp.route("/<int:letter_id>/tresc.pdf")
@requires(Permission.RESIDENT_AREA)
def content_pdf(letter_id: int):
    """The filed letter as people read it: from the signed content, never from the draft."""
    letter = _letter(letter_id)
    return render_content_pdf(letter)


def render_content_pdf(letter: Letter) -> Response:
    from platforma.episma.forms import parse_letter, render_letter_pdf

    view = queries.filed_letter(db(), letter, ops.limits(runtime().settings).signed_document)
    if view.parsed is None:  # a free-form signed PDF is its own rendering
        content = queries.file_content(db(), letter, "content")
        return _download(content, f"pismo-{letter.id}.pdf", "application/pdf")
    xml = queries.file_content(db(), letter, "content") if letter.signature_kind == "xades" else view.xml
    pdf = render_letter_pdf(parse_letter(xml), xml, received=letter.received_at,
                            registration_number=letter.registration_number)
    return _download(pdf, f"pismo-{letter.id}.pdf", "application/pdf")


# -- replies -------------------------------------------------------------------------------------------

def _reply(letter: Letter, reply_id: int) -> Reply:
    return db().scalars(sa.select(Reply).where(Reply.id == reply_id, Reply.letter_id == letter.id)).first() or abort(404)


@bp.route("/<int:letter_id>/odpowiedzi/<int:reply_id>", methods=["GET", "POST"])
@requires(Permission.RESIDENT_AREA)
def reply(letter_id: int, reply_id: int):
    """Opening a reply confirms its receipt: the page asks first, then shows it."""
    letter = _letter(letter_id)
    item = _reply(letter, reply_id)
    if request.method == "POST":
        if item.read_at is None:
            ops.confirm_reply_read(db(), item, g.user, ip=client_ip(), user_agent=user_agent())
            db().commit()
        return redirect(url_for("episma.reply", letter_id=letter.id, reply_id=item.id))
    files = db().scalars(sa.select(LetterFile).where(LetterFile.reply_id == item.id).order_by(LetterFile.id)).all()
    return render_template("episma/reply.html", letter=letter, reply=item, files=files if item.read_at else [])


@bp.route("/<int:letter_id>/odpowiedzi/<int:reply_id>/pliki/<int:file_id>")
@requires(Permission.RESIDENT_AREA)
def reply_file(letter_id: int, reply_id: int, file_id: int):
    letter = _letter(letter_id)
    item = _reply(letter, reply_id)
    if item.read_at is None:
        return redirect(url_for("episma.reply", letter_id=letter.id, reply_id=item.id))
    found = db().scalars(sa.select(LetterFile).where(LetterFile.id == file_id, LetterFile.reply_id == item.id)
                         .options(sa.orm.undefer(LetterFile.content))).first() or abort(404)
    return _download(found.content, found.filename, found.content_type)


# -- the stamp duty ----------------------------------------------------------------------------------

def _fee_account() -> tuple[str, str] | None:
    """The gmina's account for the stamp duty: one of [[gmina.bank_accounts]] whose purpose names the
    opłata skarbowa (never the taxes' account: a transfer there would be booked as a tax)."""
    accounts = runtime().settings.gmina.bank_accounts
    chosen = next((a for a in accounts if a.stamp_duty), None)
    return (chosen.nrb, chosen.name) if chosen else None


@bp.route("/<int:letter_id>/oplata", methods=["GET", "POST"])
@requires(Permission.RESIDENT_AREA)
def fee(letter_id: int):
    """Pay the letter's stamp duty online (through the payments module), or by transfer."""
    from platforma.episma.fees import start_fee_payment
    from platforma.payments import flows
    from platforma.payments import operations as payment_ops
    from platforma.payments.rules import format_nrb

    letter = _letter(letter_id)
    state = queries.stamp_duty_state(db(), letter)
    if state is None:
        abort(404)
    gateways = flows.configured_gateways(runtime()) if letter.taxpayer_id else {}
    error = None
    if request.method == "POST" and not state.paid:
        gateway = request.form.get("gateway") or (next(iter(gateways)) if len(gateways) == 1 else "")
        key = (request.form.get("idempotency_key") or "")[:64]
        if state.pending_reference:
            error = _("Poprzednia płatność tej opłaty czeka jeszcze na potwierdzenie operatora: sprawdź jej stan, "
                      "zanim zapłacisz ponownie.")
        elif gateway not in gateways:
            error = _("Wybierz operatora płatności.")
        elif len(key) < 16:
            error = _("Zacznij płatność od nowa.")
        else:
            try:
                payment = start_fee_payment(db(), letter, user_id=g.user.id, gateway=gateway, idempotency_key=key)
            except payment_ops.PaymentError as exc:
                error = str(exc)
            else:
                payment_id, reference = payment.id, payment.reference
                db().commit()  # the intent is stored before the gateway hears of it
                settings = runtime().settings
                started = flows.register_with_gateway(
                    runtime(), payment_id, email=g.user.email,
                    return_url=settings.server.base_url + url_for("payments.returned", reference=reference),
                    notify_url=settings.server.base_url + url_for("payments.webhook", gateway_id=gateway),
                    customer_ip=client_ip())
                if started.redirect_url:
                    return redirect(started.redirect_url, 303)
                error = started.error or _("Operator płatności nie przyjął płatności.")
    account = _fee_account()
    return render_template("episma/fee.html", letter=letter, fee=state, gateways=gateways, error=error,
                           error_field="gateway", account=account, format_nrb=format_nrb,
                           idempotency_key=secrets.token_urlsafe(24)), 400 if error else 200
