"""Kancelaria: the registry office's pages for incoming letters.

The inbox of filed letters, each letter with its signature's verification and its receipt, assignment
(department, clerk, JRWA class, case reference), statuses the author sees, replies delivered to the
author's account, and forwarding to the gmina's document management. Every view of a letter is
recorded in the audit log (RODO accountability).
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from platforma.accounts.models import User
from platforma.core import audit
from platforma.core.access import Permission, requires
from platforma.core.db import utcnow
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.episma import operations as ops
from platforma.episma import queries
from platforma.episma.models import LETTER_STATUSES, STATUS_TRANSITIONS, Department, FileCode, Letter, LetterFile, Reply
from platforma.episma.rules import AttachmentRefused, format_size
from platforma.episma.views import EVENT_LABELS, STATUS_LABELS, _download, render_content_pdf, render_receipt_pdf
from platforma.web.nav import backoffice_menu

bp = Blueprint("kancelaria", __name__, url_prefix="/urzad/kancelaria", template_folder="templates")
backoffice_menu.add(_l("Kancelaria"), "kancelaria.inbox", Permission.LETTERS_HANDLE, order=15)
backoffice_menu.add(_l("Wydziały i wykaz akt"), "kancelaria.catalogues", Permission.SETTINGS_EDIT, order=85)


@bp.context_processor
def _helpers() -> dict:
    return {"status_labels": STATUS_LABELS, "event_labels": EVENT_LABELS, "format_size": format_size}


def _record(action: str, letter: Letter, **details) -> None:
    audit.record(db(), action, actor=g.user, object_type="letter", object_id=letter.id, taxpayer_id=letter.taxpayer_id,
                 details=details, ip=client_ip(), user_agent=user_agent())


def _filed(letter_id: int) -> Letter:
    letter = db().get(Letter, letter_id)
    if letter is None or letter.status == "draft":  # a resident's draft is theirs alone
        abort(404)
    return letter


@bp.route("/")
@requires(Permission.LETTERS_HANDLE)
def inbox():
    status = request.args.get("status", "received")
    if status not in LETTER_STATUSES and status != "all":
        status = "received"
    try:
        department_id = int(request.args.get("wydzial") or 0) or None
        page = max(int(request.args.get("strona") or 1), 1)
    except ValueError:
        department_id, page = None, 1
    chosen = queries.InboxFilter(status="" if status == "all" else status, department_id=department_id,
                                 mine=request.args.get("moje") == "1", query=request.args.get("q", "")[:100])
    rows, total = queries.inbox(db(), g.user, chosen, page)
    return render_template("episma/inbox.html", rows=rows, total=total, page=page, page_size=queries.INBOX_PAGE,
                           status=status, chosen=chosen, counts=queries.status_counts(db()),
                           departments=_departments(active_only=False))


def _departments(*, active_only: bool = True) -> list[Department]:
    query = sa.select(Department).order_by(Department.name)
    if active_only:
        query = query.where(Department.active.is_(True))
    return list(db().scalars(query))


def _detail(letter: Letter, *, errors: dict[str, str] | None = None, reply_form: dict | None = None, status: int = 200):
    view = queries.filed_letter(db(), letter, ops.limits(runtime().settings).signed_document)
    staff = list(db().scalars(sa.select(User).where(User.role.in_(("clerk", "admin")), User.is_active.is_(True))
                              .order_by(User.full_name)))
    codes = list(db().scalars(sa.select(FileCode).where(FileCode.active.is_(True)).order_by(FileCode.code)))
    author = db().get(User, letter.author_id)
    sinks = [runtime().settings.episma.document_sink] if runtime().settings.episma.document_sink else []
    return render_template(
        "episma/bo_letter.html", letter=letter, view=view, author=author, staff=staff, codes=codes,
        departments=_departments(), next_statuses=[s for s in sorted(STATUS_TRANSITIONS[letter.status])
                                                   if s not in ("draft", "received", "answered", letter.status)],
        errors=errors or {}, reply_form=reply_form or {}, sinks=sinks, fee=queries.stamp_duty_state(db(), letter),
    ), status


@bp.route("/<int:letter_id>")
@requires(Permission.LETTERS_HANDLE)
def letter(letter_id: int):
    letter = _filed(letter_id)
    _record("letter.viewed", letter)
    return _detail(letter)


@bp.route("/<int:letter_id>/dekretacja", methods=["POST"])
@requires(Permission.LETTERS_HANDLE)
def assign(letter_id: int):
    letter = _filed(letter_id)
    form = request.form
    errors: dict[str, str] = {}
    try:
        department_id = int(form.get("department") or 0)
    except ValueError:
        department_id = 0
    if not department_id:
        errors["department"] = _("Wybierz wydział.")
    try:
        assignee_id = int(form.get("assignee") or 0) or None
    except ValueError:
        assignee_id = None
    if errors:
        return _detail(letter, errors=errors, status=400)
    try:
        ops.assign(db(), letter, actor=g.user, department_id=department_id, assignee_id=assignee_id,
                   file_code=form.get("file_code") or None, case_reference=form.get("case_reference", ""),
                   ip=client_ip(), user_agent=user_agent())
    except ops.LetterError as exc:
        db().rollback()
        return _detail(db().get(Letter, letter_id), errors={"department": " ".join(exc.reasons)}, status=400)
    db().commit()
    flash(_("Zapisano dekretację pisma."), "success")
    return redirect(url_for("kancelaria.letter", letter_id=letter.id))


@bp.route("/<int:letter_id>/status", methods=["POST"])
@requires(Permission.LETTERS_HANDLE)
def change_status(letter_id: int):
    letter = _filed(letter_id)
    to_status = request.form.get("status", "")
    try:
        ops.change_status(db(), letter, to_status, actor=g.user, reason=request.form.get("reason", ""),
                          ip=client_ip(), user_agent=user_agent())
    except ops.LetterError as exc:
        db().rollback()
        return _detail(db().get(Letter, letter_id), errors={"status": " ".join(exc.reasons)}, status=400)
    db().commit()
    flash(_("Zmieniono status pisma."), "success")
    return redirect(url_for("kancelaria.letter", letter_id=letter.id))


@bp.route("/<int:letter_id>/odpowiedz", methods=["POST"])
@requires(Permission.LETTERS_HANDLE)
def reply(letter_id: int):
    from platforma.episma.documents import reply_pdf

    letter = _filed(letter_id)
    title = request.form.get("title", "").strip()[:300]
    body = request.form.get("body", "").strip()[:50_000]
    errors: dict[str, str] = {}
    if not title:
        errors["reply-title"] = _("Podaj tytuł odpowiedzi.")
    if not body:
        errors["reply-body"] = _("Wpisz treść odpowiedzi.")
    files = [ops.UploadedFile(f.filename, f.read()) for f in request.files.getlist("files") if f and f.filename]
    if errors:
        return _detail(letter, errors=errors, reply_form={"title": title, "body": body}, status=400)
    document = ops.UploadedFile(f"odpowiedz-{letter.registration_number}.pdf".replace("/", "-"),
                                reply_pdf(letter, title=title, body=body, clerk_name=g.user.full_name, sent_at=utcnow(),
                                          settings=runtime().settings))
    try:
        ops.send_reply(db(), runtime(), letter, actor=g.user, title=title, body=body, files=files, document=document,
                       ip=client_ip(), user_agent=user_agent())
    except (ops.LetterError, AttachmentRefused) as exc:
        db().rollback()
        message = " ".join(exc.reasons) if isinstance(exc, ops.LetterError) else str(exc)
        return _detail(db().get(Letter, letter_id), errors={"reply-files": message},
                       reply_form={"title": title, "body": body}, status=400)
    db().commit()
    flash(_("Wysłano odpowiedź. Autor otrzymał powiadomienie e-mail."), "success")
    return redirect(url_for("kancelaria.letter", letter_id=letter.id))


@bp.route("/<int:letter_id>/przekaz", methods=["POST"])
@requires(Permission.LETTERS_HANDLE)
def forward(letter_id: int):
    letter = _filed(letter_id)
    sink = runtime().settings.episma.document_sink
    if not sink:
        abort(404)
    ops.request_export(db(), runtime(), letter, sink, actor=g.user, ip=client_ip(), user_agent=user_agent())
    db().commit()
    flash(_("Pismo przekazano do systemu obiegu dokumentów."), "success")
    return redirect(url_for("kancelaria.letter", letter_id=letter.id))


@bp.route("/<int:letter_id>/pliki/<int:file_id>")
@requires(Permission.LETTERS_HANDLE)
def letter_file(letter_id: int, file_id: int):
    letter = _filed(letter_id)
    item = db().scalars(sa.select(LetterFile).where(LetterFile.id == file_id, LetterFile.letter_id == letter.id)
                        .options(sa.orm.undefer(LetterFile.content))).first() or abort(404)
    _record("letter.file_downloaded", letter, file_id=item.id, role=item.role)
    db().commit()
    return _download(item.content, item.filename, item.content_type)


@bp.route("/<int:letter_id>/upo.pdf")
@requires(Permission.LETTERS_HANDLE)
def receipt_pdf(letter_id: int):
    return render_receipt_pdf(_filed(letter_id))


@bp.route("/<int:letter_id>/tresc.pdf")
@requires(Permission.LETTERS_HANDLE)
def content_pdf(letter_id: int):
    letter = _filed(letter_id)
    _record("letter.content_pdf", letter)
    db().commit()
    return render_content_pdf(letter)


@bp.route("/<int:letter_id>/odpowiedzi/<int:reply_id>")
@requires(Permission.LETTERS_HANDLE)
def reply_view(letter_id: int, reply_id: int):
    letter = _filed(letter_id)
    item = db().scalars(sa.select(Reply).where(Reply.id == reply_id, Reply.letter_id == letter.id)).first() or abort(404)
    files = db().scalars(sa.select(LetterFile).where(LetterFile.reply_id == item.id).order_by(LetterFile.id)).all()
    return render_template("episma/bo_reply.html", letter=letter, reply=item, files=files,
                           reader=db().get(User, item.read_by_id) if item.read_by_id else None)


# -- departments and the file plan (administrators) --------------------------------------------------

@bp.route("/wykaz", methods=["GET", "POST"])
@requires(Permission.SETTINGS_EDIT)
def catalogues():
    errors: dict[str, str] = {}
    if request.method == "POST":
        action = request.form.get("action")
        if action == "department":
            code = request.form.get("code", "").strip().upper()[:16]
            name = request.form.get("name", "").strip()[:200]
            if not code:
                errors["code"] = _("Podaj symbol wydziału.")
            if not name:
                errors["name"] = _("Podaj nazwę wydziału.")
            if not errors and db().scalar(sa.select(Department.id).where(Department.code == code)):
                errors["code"] = _("Wydział o tym symbolu już istnieje.")
            if not errors:
                db().add(Department(code=code, name=name))
                audit.record(db(), "department.created", actor=g.user, object_type="department", object_id=code,
                             details={"name": name}, ip=client_ip(), user_agent=user_agent())
        elif action == "file_code":
            code = request.form.get("file_code", "").strip()[:16]
            title = request.form.get("title", "").strip()[:300]
            if not code or not all(ch.isalnum() or ch in ".-" for ch in code):
                errors["file_code"] = _("Podaj symbol klasyfikacyjny, np. 3120.")
            if not title:
                errors["title"] = _("Podaj hasło klasyfikacyjne.")
            if not errors and db().get(FileCode, code) is not None:
                errors["file_code"] = _("Ten symbol jest już w wykazie.")
            if not errors:
                db().add(FileCode(code=code, title=title))
                audit.record(db(), "file_code.created", actor=g.user, object_type="file_code", object_id=code,
                             details={"title": title}, ip=client_ip(), user_agent=user_agent())
        elif action in ("toggle_department", "toggle_file_code"):
            model = Department if action == "toggle_department" else FileCode
            key = request.form.get("id", "")
            item = db().get(model, int(key) if model is Department and key.isdigit() else key) or abort(404)
            item.active = not item.active
            audit.record(db(), f"{model.__tablename__}.{'activated' if item.active else 'deactivated'}", actor=g.user,
                         object_type=model.__tablename__, object_id=key, ip=client_ip(), user_agent=user_agent())
        else:
            abort(400)
        if not errors:
            db().commit()
            flash(_("Zapisano."), "success")
            return redirect(url_for("kancelaria.catalogues"))
    departments = _departments(active_only=False)
    codes = list(db().scalars(sa.select(FileCode).order_by(FileCode.code)))
    return render_template("episma/catalogues.html", departments=departments, codes=codes, errors=errors,
                           values=request.form), 400 if errors else 200
