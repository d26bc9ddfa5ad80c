"""Security headers, CSRF, request size, error pages, health check."""
from __future__ import annotations

import re

import pytest
from flask import Blueprint

from platforma.app import create_app
from platforma.core.access import public
from platforma.core.runtime import Runtime
from tests.conftest import PASSWORD, csrf_from, login


def test_content_security_policy_uses_a_fresh_nonce_and_no_inline_scripts(client):
    first = client.get("/")
    policy = first.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    script_src = re.search(r"script-src ([^;]+)", policy).group(1)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert script_src == f"'self' 'nonce-{nonce}'"
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    html = first.get_data(as_text=True)
    inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline_scripts and all(f'nonce="{nonce}"' in attrs for attrs in inline_scripts)
    second = client.get("/")
    assert re.search(r"'nonce-([^']+)'", second.headers["Content-Security-Policy"]).group(1) != nonce


def test_other_security_headers(client):
    response = client.get("/konto/logowanie")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # plain http: no HSTS
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_behind_https_proxy_cookies_are_secure_and_hsts_is_sent(app_with, create_user):
    app = app_with(server={"secret_key": "s" * 48, "base_url": "https://e-urzad.example.com", "trusted_proxies": 1})
    client = app.test_client()
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "e-urzad.example.com"}
    response = client.get("/konto/logowanie", headers=headers, base_url="http://e-urzad.example.com")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in response.headers["Set-Cookie"]


def test_forwarded_address_is_ignored_without_trusted_proxies(client, create_user, runtime):
    import sqlalchemy as sa

    from platforma.accounts.models import LoginAttempt

    user = create_user()
    page = client.get("/konto/logowanie")
    client.post("/konto/logowanie", data={"email": user.email, "password": "x" * 12, "csrf_token": csrf_from(page.data)},
                headers={"X-Forwarded-For": "198.51.100.7"})
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(LoginAttempt.ip)).one() == "127.0.0.1"


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_post_without_a_valid_csrf_token_is_refused_with_400(client, create_user, token, runtime):
    user = create_user()
    client.get("/konto/logowanie")
    data = {"email": user.email, "password": PASSWORD}
    if token:
        data["csrf_token"] = token
    response = client.post("/konto/logowanie", data=data)
    assert response.status_code == 400
    assert "Formularz wygasł albo został wysłany spoza serwisu" in response.get_data(as_text=True)
    assert client.get("/konto/moje-sprawy").status_code == 302  # not logged in


def test_logout_needs_csrf_too(client, create_user):
    login(client, create_user())
    assert client.post("/konto/wyloguj").status_code == 400
    assert client.get("/konto/moje-sprawy").status_code == 200


def test_oversized_request_gets_413_in_polish(app_with):
    app = app_with(server={"secret_key": "s" * 48, "base_url": "http://localhost", "max_request_mb": 1})
    response = app.test_client().post("/konto/logowanie", data={"email": "a" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    assert "Za duży plik lub formularz" in response.get_data(as_text=True)


def test_error_pages_are_polish_and_never_show_a_traceback(runtime):
    app = create_app(runtime=runtime)
    boom = Blueprint("boom", __name__)

    @boom.route("/boom")
    @public
    def explode():
        raise RuntimeError("sekretny szczegół wewnętrzny")

    app.register_blueprint(boom)
    client = app.test_client()
    response = client.get("/boom")
    text = response.get_data(as_text=True)
    assert response.status_code == 500 and "Błąd serwera" in text
    assert "sekretny szczegół" not in text and "Traceback" not in text
    assert client.get("/nie-ma-takiej-strony").status_code == 404
    assert "Nie ma takiej strony" in client.get("/nie-ma-takiej-strony").get_data(as_text=True)
    response = client.delete("/")
    assert response.status_code == 405 and "Nieobsługiwana operacja" in response.get_data(as_text=True)


def test_healthz_checks_the_database(client, settings_factory, tmp_path):
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    broken = Runtime.from_settings(settings_factory(f"sqlite:///{tmp_path}/brak/katalogu/baza.sqlite3"))
    response = create_app(runtime=broken).test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["status"] == "error"


def test_pages_are_polish_by_default_and_english_on_request(client):
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="pl"' in page and "Zaloguj się" in page
    page = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en"' in page and "Sign in" in page
    # the choice sticks for the session
    assert '<html lang="en"' in client.get("/konto/logowanie").get_data(as_text=True)


def test_gmina_colours_and_coat_of_arms_come_from_configuration(app_with, tmp_path):
    (tmp_path / "herb.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><title>Herb</title></svg>')
    app = app_with(gmina={"name": "Gmina Zielona", "coat_of_arms": "herb.svg", "colours": {"brand": "#00563f", "brand_text": "#ffffff", "accent": "#ffd100"}})
    client = app.test_client()
    assert "--pf-brand:#00563f" in client.get("/gmina.css").get_data(as_text=True)
    herb = client.get("/herb")
    assert herb.mimetype == "image/svg+xml" and b"<title>Herb</title>" in herb.data
    assert "sandbox" in herb.headers["Content-Security-Policy"]
    assert "Gmina Zielona" in client.get("/").get_data(as_text=True)
