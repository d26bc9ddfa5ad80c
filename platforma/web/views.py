"""Public pages: home, legal pages, health check, the gmina's stylesheet and coat of arms."""
from __future__ import annotations

import mimetypes
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Response, abort, render_template, send_file
from flask_babel import lazy_gettext as _l

from platforma.core.access import Permission, public
from platforma.core.web import db, runtime
from platforma.web import legal
from platforma.web.filters import today_warsaw
from platforma.web.nav import resident_menu

bp = Blueprint("web", __name__)

resident_menu.add(_l("Start"), "web.home", None, order=0)
resident_menu.add(_l("Moje sprawy"), "accounts.dashboard", Permission.RESIDENT_AREA, order=10)
resident_menu.add(_l("Moje konto"), "accounts.settings_page", Permission.RESIDENT_AREA, order=90)


@bp.route("/")
@public
def home():
    return render_template("web/home.html")


def _legal(slug: str):
    content = legal.page_content(db(), runtime().settings, slug, today_warsaw())
    template = "web/accessibility.html" if slug == "deklaracja-dostepnosci" else "web/legal.html"
    return render_template(template, slug=slug, page=content, status_text=legal.STATUS_CHOICES, fields=legal.DECLARATION_FIELDS)


@bp.route("/deklaracja-dostepnosci")
@public
def accessibility():
    return _legal("deklaracja-dostepnosci")


@bp.route("/regulamin")
@public
def terms():
    return _legal("regulamin")


@bp.route("/rodo")
@public
def privacy():
    return _legal("rodo")


@bp.route("/healthz")
@public
def healthz():
    """For load balancers and monitoring: 200 when the database answers, 503 otherwise."""
    try:
        db().execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return {"status": "error", "database": "niedostępna"}, 503
    return {"status": "ok", "database": "ok"}


@bp.route("/gmina.css")
@public
def theme_css():
    """The gmina's colours as CSS custom properties over the one compiled stylesheet."""
    colours = runtime().settings.gmina.colours
    css = (
        ":root{"
        f"--pf-brand:{colours.brand};--pf-brand-text:{colours.brand_text};--pf-brand-accent:{colours.accent};"
        "}\n"
    )
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.route("/herb")
@public
def coat_of_arms():
    settings = runtime().settings
    configured = settings.gmina.coat_of_arms
    if configured:
        path = Path(configured)
        if not path.is_absolute():
            path = settings.instance_path(configured)
        if not path.is_file():
            abort(404)
    else:
        path = Path(__file__).parent / "static" / "images" / "herb-placeholder.svg"
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if mimetype not in ("image/svg+xml", "image/png", "image/jpeg", "image/webp"):
        abort(404)
    response = send_file(path, mimetype=mimetype, max_age=3600)
    if mimetype == "image/svg+xml":
        # an SVG shown as a page must not run anything
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response
