"""Resident-facing account pages: log in (with TOTP), register, confirm, reset, settings, history."""
from __future__ import annotations

import time

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from platforma.accounts import operations as ops
from platforma.accounts import totp
from platforma.accounts.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    LogoutForm,
    NewPasswordForm,
    ProfileForm,
    RegisterForm,
    TotpForm,
)
from platforma.accounts.models import User
from platforma.accounts.passwords import password_problems, verify_password
from platforma.accounts.sessions import COOKIE_KEY, end, start_session
from platforma.core import audit
from platforma.core.access import Permission, login_required, public, requires
from platforma.core.web import client_ip, db, runtime, user_agent
from platforma.payments.rules import normalise_nrb

bp = Blueprint("accounts", __name__, url_prefix="/konto", template_folder="templates")

PENDING_KEY = "pending_login"
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def home_for(user: User) -> str:
    return url_for("backoffice.dashboard") if user.role in ("clerk", "admin") else url_for("accounts.dashboard")


def _finish_login(user: User, next_url: str | None):
    lang = session.get("lang")
    session.clear()  # a new session: nothing from before the login survives (session fixation)
    if lang:
        session["lang"] = lang
    settings = runtime().settings
    session[COOKIE_KEY] = start_session(db(), settings, user, ip=client_ip(), user_agent=user_agent())
    session.permanent = True
    audit.record(db(), "account.login", actor=user, object_type="user", object_id=user.id, ip=client_ip(), user_agent=user_agent())
    return redirect(_safe_next(next_url) or home_for(user))


def _pending_user() -> User | None:
    pending = session.get(PENDING_KEY)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    return db().get(User, pending["u"])


@bp.route("/logowanie", methods=["GET", "POST"])
@public
def login():
    if g.user is not None:
        return redirect(home_for(g.user))
    form = LoginForm()
    next_url = _safe_next(request.args.get("next"))
    error = None
    if form.validate_on_submit():
        settings = runtime().settings
        result = ops.check_password(db(), settings, form.email.data, form.password.data, ip=client_ip(), user_agent=user_agent())
        if result.outcome == "throttled":
            abort(429)
        if result.outcome == "success":
            return _finish_login(result.user, next_url)
        if result.outcome == "password_ok":
            session[PENDING_KEY] = {"u": result.user.id, "at": time.time(), "next": next_url}
            if result.user.has_totp:
                return redirect(url_for("accounts.login_totp"))
            return redirect(url_for("accounts.login_totp_setup"))
        if result.outcome == "locked":
            error = _("Po zbyt wielu nieudanych próbach logowanie na to konto jest wstrzymane na %(minutes)s minut. Możesz też ustawić nowe hasło.", minutes=settings.security.lockout_minutes)
        elif result.outcome == "unconfirmed":
            error = _("Najpierw potwierdź adres e-mail: kliknij link z wiadomości, którą wysłaliśmy po założeniu konta.")
        else:
            error = _("Nieprawidłowy adres e-mail lub hasło.")
    return render_template("accounts/login.html", form=form, error=error)


@bp.route("/logowanie/kod", methods=["GET", "POST"])
@public
def login_totp():
    user = _pending_user()
    if user is None or not user.has_totp:
        flash(_("Zaloguj się ponownie."), "info")
        return redirect(url_for("accounts.login"))
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        result = ops.check_totp(db(), runtime().settings, user, form.code.data, ip=client_ip(), user_agent=user_agent())
        if result.ok:
            return _finish_login(user, session.get(PENDING_KEY, {}).get("next"))
        if result.outcome == "locked":
            session.pop(PENDING_KEY, None)
            error = _("Po zbyt wielu nieudanych próbach logowanie na to konto jest wstrzymane.")
        else:
            error = _("Kod jest nieprawidłowy albo już był użyty. Wpisz aktualny kod z aplikacji.")
    return render_template("accounts/login_totp.html", form=form, error=error)


@bp.route("/logowanie/konfiguracja-2fa", methods=["GET", "POST"])
@public
def login_totp_setup():
    """Clerks and administrators must set up two-factor authentication before their first login."""
    user = _pending_user()
    if user is None or user.has_totp:
        return redirect(url_for("accounts.login"))
    secret = session.get("pending_totp_secret") or totp.new_secret()
    session["pending_totp_secret"] = secret
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        if ops.confirm_totp_enrolment(db(), user, secret, form.code.data):
            session.pop("pending_totp_secret", None)
            ops.record_attempt(db(), email=user.email, user=user, outcome="success", stage="totp", ip=client_ip(), user_agent=user_agent())
            return _finish_login(user, session.get(PENDING_KEY, {}).get("next"))
        error = _("Kod jest nieprawidłowy. Sprawdź, czy czas w telefonie jest ustawiony automatycznie, i wpisz aktualny kod.")
    return render_template("accounts/totp_setup.html", form=form, error=error, **_totp_view(user, secret))


def _totp_view(user: User, secret: str) -> dict:
    settings = runtime().settings
    issuer = settings.security.totp_issuer or settings.gmina.name
    uri = totp.provisioning_uri(secret, user.email, issuer)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return {"qr_svg": totp.qr_svg(uri), "secret": grouped}


@bp.route("/wyloguj", methods=["POST"])
@public
def logout():
    LogoutForm()  # CSRF is checked by CSRFProtect before we get here
    if g.user_session is not None:
        end(g.user_session, "logout")
        audit.record(db(), "account.logout", actor=g.user, object_type="user", object_id=g.user.id, ip=client_ip(), user_agent=user_agent())
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("Wylogowano. Do zobaczenia!"), "success")
    return redirect(url_for("web.home"))


@bp.route("/rejestracja", methods=["GET", "POST"])
@public
def register():
    if g.user is not None:
        return redirect(home_for(g.user))
    form = RegisterForm()
    settings = runtime().settings
    if form.validate_on_submit():
        problems = password_problems(form.password.data, min_length=settings.security.password_min_length, email=form.email.data)
        if problems:
            form.password.errors.extend(problems)
        elif ops.find_user(db(), form.email.data) is not None:
            # the same answer as for a new account: do not reveal who has one
            return redirect(url_for("accounts.register_done"))
        else:
            user = ops.create_user(db(), email=form.email.data, full_name=form.full_name.data, password=form.password.data)
            audit.record(db(), "account.registered", actor=user, object_type="user", object_id=user.id, ip=client_ip(), user_agent=user_agent())
            ops.send_confirmation(db(), runtime(), user)
            return redirect(url_for("accounts.register_done"))
    return render_template("accounts/register.html", form=form, min_length=settings.security.password_min_length)


@bp.route("/rejestracja/wyslano")
@public
def register_done():
    return render_template("accounts/register_done.html")


@bp.route("/potwierdz/<token>")
@public
def confirm(token: str):
    try:
        ops.confirm_email(db(), runtime().settings, token)
    except ops.AccountError as exc:
        return render_template("accounts/message.html", title=_("Nie udało się potwierdzić adresu"), message=str(exc)), 400
    flash(_("Adres e-mail potwierdzony. Możesz się zalogować."), "success")
    return redirect(url_for("accounts.login"))


@bp.route("/haslo/przypomnij", methods=["GET", "POST"])
@public
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        ops.send_password_reset(db(), runtime(), form.email.data)
        return render_template(
            "accounts/message.html",
            title=_("Sprawdź skrzynkę e-mail"),
            message=_("Jeśli konto z tym adresem istnieje, wysłaliśmy na nie link do ustawienia nowego hasła. Link jest ważny 1 godzinę."),
        )
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/haslo/nowe/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    settings = runtime().settings
    try:
        user = ops.user_for_reset(db(), settings, token)
    except ops.AccountError as exc:
        return render_template("accounts/message.html", title=_("Link nie działa"), message=str(exc)), 400
    form = NewPasswordForm()
    if form.validate_on_submit():
        problems = password_problems(form.password.data, min_length=settings.security.password_min_length, email=user.email)
        if problems:
            form.password.errors.extend(problems)
        else:
            ops.set_password(db(), user, form.password.data)
            if user.email_confirmed_at is None:
                user.email_confirmed_at = ops.utcnow()  # the link proves the address
            audit.record(db(), "account.password_reset", actor=user, object_type="user", object_id=user.id, ip=client_ip(), user_agent=user_agent())
            flash(_("Nowe hasło zapisane. Zaloguj się."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form, min_length=settings.security.password_min_length)


# -- signed-in pages -------------------------------------------------------------------------------

@bp.route("/")
@login_required
def settings_page():
    return render_template("accounts/settings.html")


@bp.route("/dane", methods=["GET", "POST"])
@login_required
def profile():
    user = g.user
    form = ProfileForm(obj=user)
    if form.validate_on_submit():
        before = {f: getattr(user, f) for f in ("full_name", "phone", "declared_pesel", "declared_nip", "refund_nrb")}
        user.full_name = form.full_name.data.strip()
        user.phone = (form.phone.data or "").strip()
        user.declared_pesel = form.declared_pesel.data or None
        user.declared_nip = form.declared_nip.data or None
        user.refund_nrb = normalise_nrb(form.refund_nrb.data) if form.refund_nrb.data else None
        changed = sorted(f for f, old in before.items() if getattr(user, f) != old)
        if changed:
            audit.record(db(), "account.profile_changed", actor=user, object_type="user", object_id=user.id,
                         details={"fields": changed}, ip=client_ip(), user_agent=user_agent())
        flash(_("Dane zapisane."), "success")
        return redirect(url_for("accounts.settings_page"))
    return render_template("accounts/profile.html", form=form)


@bp.route("/moje-sprawy")
@requires(Permission.RESIDENT_AREA)
def dashboard():
    links = ops.taxpayers_of(db(), g.user)
    return render_template("accounts/dashboard.html", links=links)


@bp.route("/historia-logowan")
@login_required
def login_history():
    attempts = ops.login_history(db(), g.user)
    return render_template("accounts/login_history.html", attempts=attempts)


@bp.route("/haslo", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    settings = runtime().settings
    if form.validate_on_submit():
        if not verify_password(g.user.password_hash, form.current.data):
            form.current.errors.append(_("Obecne hasło jest nieprawidłowe."))
        else:
            problems = password_problems(form.password.data, min_length=settings.security.password_min_length, email=g.user.email)
            if problems:
                form.password.errors.extend(problems)
            else:
                ops.set_password(db(), g.user, form.password.data)
                # set_password ended every session; this one goes on with a fresh token
                session[COOKIE_KEY] = start_session(db(), settings, g.user, ip=client_ip(), user_agent=user_agent())
                audit.record(db(), "account.password_changed", actor=g.user, object_type="user", object_id=g.user.id, ip=client_ip(), user_agent=user_agent())
                flash(_("Hasło zmienione. Inne sesje zostały zakończone."), "success")
                return redirect(url_for("accounts.settings_page"))
    return render_template("accounts/change_password.html", form=form, min_length=settings.security.password_min_length)


@bp.route("/2fa", methods=["GET", "POST"])
@login_required
def totp_setup():
    """Residents may turn on two-factor authentication; clerks and administrators already have it."""
    if g.user.has_totp:
        return render_template("accounts/totp_enabled.html")
    secret = session.get("setup_totp_secret") or totp.new_secret()
    session["setup_totp_secret"] = secret
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        if ops.confirm_totp_enrolment(db(), g.user, secret, form.code.data):
            session.pop("setup_totp_secret", None)
            flash(_("Weryfikacja dwuetapowa włączona."), "success")
            return redirect(url_for("accounts.settings_page"))
        error = _("Kod jest nieprawidłowy. Wpisz aktualny kod z aplikacji.")
    return render_template("accounts/totp_setup.html", form=form, error=error, signed_in=True, **_totp_view(g.user, secret))
