"""create_app(settings): settings -> extensions -> blueprints -> plugins -> checks."""
from __future__ import annotations

import datetime as dt

from flask import g, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from govuk_frontend_wtf.main import WTFormsHelpers
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader
from sqlalchemy.orm import configure_mappers
from werkzeug.middleware.proxy_fix import ProxyFix

from platforma.config import ConfigError, Settings, load_settings
from platforma.core.access import check_every_view_declares_access
from platforma.core.registry import registry
from platforma.core.runtime import Runtime
from platforma.core.security import CheckedCookieSessions, csp_nonce, csrf_token, init_security_headers
from platforma.core.web import PlatformaFlask, close_db

LOCALES = ("pl", "en")
csrf = CSRFProtect()


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LOCALES:
        return chosen
    user = g.get("user")
    if user is not None and user.locale in LOCALES:
        return user.locale
    return "pl"  # Polish by default, whatever the browser prefers


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> PlatformaFlask:
    if runtime is None:
        settings = settings or load_settings()
        runtime = Runtime.from_settings(settings)
    settings = runtime.settings

    app = PlatformaFlask("platforma", static_folder="web/static", template_folder="web/templates")
    app.extensions["platforma"] = runtime
    app.config.update(
        SECRET_KEY=settings.server.secret_key,
        MAX_CONTENT_LENGTH=settings.server.max_request_mb * 1024 * 1024,
        SESSION_COOKIE_NAME="platforma_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.server.https,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.server.session_absolute_hours),
        PREFERRED_URL_SCHEME="https" if settings.server.https else "http",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=settings.server.https,
        BABEL_DEFAULT_LOCALE="pl",
        BABEL_DEFAULT_TIMEZONE="Europe/Warsaw",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        SEND_FILE_MAX_AGE_DEFAULT=dt.timedelta(days=7),
    )
    if settings.server.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.server.trusted_proxies,
            x_proto=settings.server.trusted_proxies,
            x_host=settings.server.trusted_proxies,
        )

    # Jinja: the shell's templates, then the design system's macros and WTForms widgets; each
    # blueprint adds its own folder <module>/templates/<module>/
    app.jinja_loader = ChoiceLoader(
        [
            PackageLoader("platforma", "web/templates"),
            PrefixLoader(
                {
                    "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                    "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
                }
            ),
        ]
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.add_extension("jinja2.ext.do")

    csrf.init_app(app)
    app.jinja_env.globals["csrf_token"] = csrf_token  # Flask-WTF's token, signed once per session and process
    app.session_interface = CheckedCookieSessions()
    Babel(app, locale_selector=select_locale)
    WTFormsHelpers(app)
    init_security_headers(app, https=settings.server.https)
    app.teardown_appcontext(close_db)

    from platforma.accounts import blueprint as accounts_blueprint
    from platforma.accounts.sessions import load_signed_in_user
    from platforma.admin import blueprint as admin_blueprint
    from platforma.episma import backoffice as episma_backoffice
    from platforma.episma import load_built_in as load_episma
    from platforma.episma import views as episma_views
    from platforma.backoffice import blueprint as backoffice_blueprint
    from platforma.payments import backoffice as payments_backoffice
    from platforma.payments import views as payments_views
    from platforma.payments.flows import gateway_problems
    from platforma.taxes import backoffice as taxes_backoffice
    from platforma.taxes import documents as _taxes_documents  # noqa: F401  (adds the PDF routes)
    from platforma.taxes import views as taxes_views
    from platforma.web import errors, filters
    from platforma.web import views as web_views

    from platforma.web.nav import backoffice_menu, resident_menu

    app.before_request(load_signed_in_user)
    filters.init_app(app)
    app.add_template_global(lambda: runtime.settings.gmina, "config_gmina")
    app.add_template_global(resident_menu.visible, "resident_nav")
    app.add_template_global(backoffice_menu.visible, "backoffice_nav")
    errors.init_app(app)
    app.register_blueprint(web_views.bp)
    app.register_blueprint(accounts_blueprint.bp)
    app.register_blueprint(backoffice_blueprint.bp)
    app.register_blueprint(taxes_backoffice.bp)
    app.register_blueprint(taxes_backoffice.calculator_bp)
    app.register_blueprint(taxes_views.bp)
    app.register_blueprint(admin_blueprint.bp)
    app.register_blueprint(payments_views.bp)
    app.register_blueprint(payments_views.pay_bp)
    app.register_blueprint(payments_backoffice.bp)
    app.register_blueprint(episma_views.bp)
    app.register_blueprint(episma_backoffice.bp)
    load_episma()
    # gateways sign their notifications; they carry no session and no CSRF token
    csrf.exempt(payments_views.webhook)

    @app.before_request
    def _language_choice() -> None:
        lang = request.args.get("lang")
        if lang in LOCALES:
            session["lang"] = lang

    # plugins named in the configuration must exist and accept their options
    import platforma.accounts.identity  # noqa: F401  (registers the built-in plugins)

    problems = []
    for plugin_id in settings.plugins.enabled:
        try:
            registry.instantiate(plugin_id, settings.plugins.options.get(plugin_id, {}))
        except (KeyError, ValueError) as exc:
            problems.append(f"plugins.enabled: {exc.args[0]}")
    problems.extend(gateway_problems(settings))
    sink = settings.episma.document_sink
    if sink and sink not in settings.plugins.enabled:
        problems.append(f"episma.document_sink: wtyczka {sink!r} musi być też włączona w plugins.enabled")
    if problems:
        raise ConfigError(problems)

    check_every_view_declares_access(app)
    # set the mappers up now: the signed-in session is built from a row before any query would do it
    import platforma.models  # noqa: F401

    configure_mappers()
    return app
