"""Administrator pages: the audit log, staff accounts, legal pages and plugins."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from platforma.accounts import operations as account_ops
from platforma.accounts.models import User
from platforma.accounts.passwords import password_problems
from platforma.accounts.sessions import end_all
from platforma.admin.forms import AuditFilterForm, DatedSettingForm, LegalPageForm, StaffForm, declaration_form_class
from platforma.core import audit
from platforma.core.access import Permission, requires
from platforma.core import settings as dated
from platforma.core.audit import AuditEntry
from platforma.core.registry import CheckResult, registry
from platforma.core.web import client_ip, db, list_page, runtime, user_agent
from platforma.web import legal
from platforma.web.filters import WARSAW, today_warsaw
from platforma.web.forms import Form
from platforma.web.nav import backoffice_menu

bp = Blueprint("admin", __name__, url_prefix="/urzad/admin", template_folder="templates")
backoffice_menu.add(_l("Dziennik zdarzeń"), "admin.audit_log", Permission.AUDIT_VIEW, order=80)
backoffice_menu.add(_l("Konta pracowników"), "admin.staff", Permission.USERS_MANAGE, order=85)
backoffice_menu.add(_l("Strony informacyjne"), "admin.legal_pages", Permission.SITE_PAGES_EDIT, order=90)
backoffice_menu.add(_l("Stawki i terminy"), "admin.dated_settings", Permission.SETTINGS_EDIT, order=88)
backoffice_menu.add(_l("Wtyczki"), "admin.plugins", Permission.SITE_PAGES_EDIT, order=95)

AUDIT_PAGE = 50


def _local_midnight_utc(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=WARSAW).astimezone(dt.timezone.utc)


@bp.route("/dziennik")
@requires(Permission.AUDIT_VIEW)
def audit_log():
    form = AuditFilterForm(request.args)
    query = sa.select(AuditEntry)
    if request.args and form.validate():
        if form.actor.data:
            query = query.where(AuditEntry.actor_label.like(f"%{form.actor.data.strip().lower()}%"))
        if form.action.data:
            query = query.where(AuditEntry.action.like(f"{form.action.data.strip()}%"))
        if form.taxpayer.data:
            query = query.where(AuditEntry.taxpayer_id == int(form.taxpayer.data))
        try:
            if form.date_from.data:
                query = query.where(AuditEntry.at >= _local_midnight_utc(form.date_from.data))
            if form.date_to.data:
                query = query.where(AuditEntry.at < _local_midnight_utc(form.date_to.data) + dt.timedelta(days=1))
        except ValueError:
            form.date_from.errors = [_("Nie ma takiej daty.")]
    page = list_page()
    entries = db().scalars(
        query.order_by(AuditEntry.id.desc()).offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE + 1)
    ).all()
    has_next = len(entries) > AUDIT_PAGE
    args = {k: v for k, v in request.args.items() if k != "strona"}
    return render_template(
        "admin/audit_log.html", form=form, entries=entries[:AUDIT_PAGE], page=page, has_next=has_next, args=args,
    )


@bp.route("/pracownicy", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def staff():
    form = StaffForm()
    settings = runtime().settings
    if form.validate_on_submit():
        problems = password_problems(form.password.data, min_length=settings.security.password_min_length, email=form.email.data)
        if problems:
            form.password.errors.extend(problems)
        else:
            try:
                user = account_ops.create_user(
                    db(), email=form.email.data, full_name=form.full_name.data, password=form.password.data,
                    role=form.role.data, confirmed=True,
                )
            except account_ops.AccountError as exc:
                form.email.errors.append(str(exc))
            else:
                audit.record(
                    db(), "user.created", actor=g.user, object_type="user", object_id=user.id,
                    details={"email": user.email, "role": user.role}, ip=client_ip(), user_agent=user_agent(),
                )
                flash(_("Utworzono konto %(email)s.", email=user.email), "success")
                return redirect(url_for("admin.staff"))
    people = db().scalars(sa.select(User).where(User.role.in_(("clerk", "admin"))).order_by(User.full_name)).all()
    return render_template("admin/staff.html", form=form, people=people, toggle_form=Form())


@bp.route("/pracownicy/<int:user_id>/aktywnosc", methods=["POST"])
@requires(Permission.USERS_MANAGE)
def toggle_active(user_id: int):
    user = db().get(User, user_id) or abort(404)
    if user.id == g.user.id:
        flash(_("Nie możesz zablokować własnego konta."), "error")
        return redirect(url_for("admin.staff"))
    user.is_active = not user.is_active
    if not user.is_active:
        end_all(db(), user, "admin")
    audit.record(
        db(), "user.activated" if user.is_active else "user.deactivated", actor=g.user, object_type="user", object_id=user.id,
        ip=client_ip(), user_agent=user_agent(),
    )
    flash(_("Konto %(email)s jest teraz %(state)s.", email=user.email, state=_("aktywne") if user.is_active else _("zablokowane")), "success")
    return redirect(url_for("admin.staff"))


@bp.route("/strony")
@requires(Permission.SITE_PAGES_EDIT)
def legal_pages():
    pages = [(slug, legal.page_content(db(), runtime().settings, slug, today_warsaw())) for slug in legal.TITLES]
    return render_template("admin/legal_pages.html", pages=pages)


@bp.route("/strony/<slug>", methods=["GET", "POST"])
@requires(Permission.SITE_PAGES_EDIT)
def edit_legal_page(slug: str):
    if slug not in legal.TITLES:
        abort(404)
    content = legal.page_content(db(), runtime().settings, slug, today_warsaw())
    is_declaration = slug == "deklaracja-dostepnosci"
    form_class = declaration_form_class() if is_declaration else LegalPageForm
    form = form_class(data={"title": content["title"], "body": content["body"], **content["fields"]})
    if form.validate_on_submit():
        fields = {key: getattr(form, key).data.strip() for key, _label in legal.DECLARATION_FIELDS} if is_declaration else {}
        version = legal.save_version(
            db(), slug, title=form.title.data.strip(), body="" if is_declaration else form.body.data, fields=fields,
            author_id=g.user.id,
        )
        audit.record(
            db(), "legal_page.saved", actor=g.user, object_type="legal_page", object_id=slug,
            details={"version": version.version}, ip=client_ip(), user_agent=user_agent(),
        )
        flash(_("Zapisano wersję %(version)s.", version=version.version), "success")
        return redirect(url_for("admin.legal_pages"))
    return render_template("admin/edit_legal_page.html", form=form, slug=slug, content=content, is_declaration=is_declaration)


@bp.route("/wtyczki")
@requires(Permission.SITE_PAGES_EDIT)
def plugins():
    settings = runtime().settings
    rows = []
    for plugin in registry.all():
        enabled = plugin.id in settings.plugins.enabled or plugin.id in settings.payments.gateways or plugin.id == "local"
        result = None
        if enabled:
            try:
                result = registry.instantiate(plugin.id, settings.plugins.options.get(plugin.id, {})).check_config()
            except Exception as exc:  # a plugin's failing check is shown to the administrator, not raised
                result = CheckResult(False, str(exc))
        rows.append({"plugin": plugin, "enabled": enabled, "result": result})
    return render_template("admin/plugins.html", rows=rows)


def _setting_value_from_form(setting: dated.SettingKey, form: DatedSettingForm):
    if setting.key != "waste.schedule":
        return (form.value.data or "").strip()
    if form.frequency.data == "custom":
        return {"frequency": "custom", "due_dates": [d.strip() for d in (form.due_dates.data or "").split(",") if d.strip()]}
    return {"frequency": form.frequency.data, "day": int(form.day.data) if form.day.data else None, "in_advance": form.in_advance.data == "true"}


@bp.route("/ustawienia", methods=["GET"])
@requires(Permission.SETTINGS_EDIT)
def dated_settings():
    session = db()
    today = today_warsaw()
    rows = []
    for setting in dated.KNOWN.values():
        try:
            current = dated.value_on(session, setting.key, today)
        except dated.MissingSetting:
            current = None
        rows.append({"setting": setting, "current": current, "history": dated.history(session, setting.key)})
    return render_template("admin/dated_settings.html", rows=rows)


@bp.route("/ustawienia/<key>", methods=["GET", "POST"])
@requires(Permission.SETTINGS_EDIT)
def add_dated_setting(key: str):
    setting = dated.KNOWN.get(key) or abort(404)
    form = DatedSettingForm()
    if form.validate_on_submit():
        try:
            day = dt.date.fromisoformat(form.effective_from.data)
        except ValueError:
            form.effective_from.errors.append(_("Nie ma takiej daty."))
        else:
            try:
                row = dated.set_value(db(), key, day, _setting_value_from_form(setting, form), author_id=g.user.id, note=form.note.data.strip())
            except ValueError as exc:
                target = form.effective_from if "już istnieje" in str(exc) else (form.value if key != "waste.schedule" else form.frequency)
                target.errors.append(str(exc))
            else:
                audit.record(
                    db(), "setting.added", actor=g.user, object_type="setting", object_id=key,
                    details={"effective_from": day.isoformat(), "value": row.value, "note": row.note},
                    ip=client_ip(), user_agent=user_agent(),
                )
                flash(_("Dodano wartość „%(label)s” od %(day)s.", label=setting.label, day=day.strftime("%d.%m.%Y")), "success")
                return redirect(url_for("admin.dated_settings"))
    return render_template("admin/add_dated_setting.html", form=form, setting=setting, history=dated.history(db(), key))
