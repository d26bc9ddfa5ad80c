"""Local accounts end to end on both databases: registration, mail through a real SMTP server,
confirmation, login with TOTP, lockout, password reset, sessions."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pyotp
import pytest
import sqlalchemy as sa

from platforma.accounts.models import LoginAttempt, User, UserSession
from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from tests.conftest import PASSWORD, ROOT, csrf_from, link_in, login


def post_form(client, url, data):
    page = client.get(url)
    return client.post(url, data={**data, "csrf_token": csrf_from(page.data)})


@pytest.fixture
def smtp_app(app_with, smtp_server):
    return app_with(mail={"backend": "smtp", "host": "127.0.0.1", "port": smtp_server.port})


def test_register_confirm_by_mail_and_log_in(smtp_app, smtp_server, runtime):
    client = smtp_app.test_client()
    response = post_form(client, "/konto/rejestracja", {
        "full_name": "Grażyna Żółć", "email": "Grazyna@Example.com", "password": PASSWORD, "password_again": PASSWORD,
    })
    assert response.status_code == 302 and response.headers["Location"].endswith("/konto/rejestracja/wyslano")

    [message] = smtp_server.wait_for(1)
    assert message["To"] == "grazyna@example.com"
    assert "potwierdź adres e-mail" in message["Subject"]

    # before confirming, the password alone does not open the account
    response = post_form(client, "/konto/logowanie", {"email": "grazyna@example.com", "password": PASSWORD})
    assert "Najpierw potwierdź adres e-mail" in response.get_data(as_text=True)

    response = client.get(link_in(message))
    assert response.status_code == 302
    response = post_form(client, "/konto/logowanie", {"email": "grazyna@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/konto/moje-sprawy")
    page = client.get("/konto/moje-sprawy").get_data(as_text=True)
    assert "Grażyna Żółć" in page and "nie jest jeszcze powiązane" in page


def test_registration_refuses_weak_password_and_bad_email(client, runtime):
    response = post_form(client, "/konto/rejestracja", {"full_name": "A B", "email": "nie-mail", "password": "krótkie", "password_again": "krótkie"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Wpisz adres e-mail w poprawnej postaci" in page
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    response = post_form(client, "/konto/rejestracja", {"full_name": "A B", "email": "a@example.com", "password": "krótkie", "password_again": "krótkie"})
    assert "Hasło musi mieć co najmniej 12 znaków." in response.get_data(as_text=True)


def test_registering_an_existing_address_reveals_nothing(smtp_app, smtp_server, create_user, runtime):
    user = create_user()
    client = smtp_app.test_client()
    response = post_form(client, "/konto/rejestracja", {"full_name": "X Y", "email": user.email, "password": PASSWORD, "password_again": PASSWORD})
    assert response.headers["Location"].endswith("/konto/rejestracja/wyslano")
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_password_reset_by_mail_is_single_use_and_ends_sessions(smtp_app, smtp_server, create_user, runtime):
    user = create_user()
    other_device = smtp_app.test_client()
    assert login(other_device, user).status_code == 302

    client = smtp_app.test_client()
    post_form(client, "/konto/haslo/przypomnij", {"email": user.email})
    post_form(client, "/konto/haslo/przypomnij", {"email": "nikt@example.com"})  # unknown: no mail, same answer
    [message] = smtp_server.wait_for(1)
    link = link_in(message)
    new_password = "Zupelnie-Nowe-Haslo-77"
    response = post_form(client, link, {"password": new_password, "password_again": new_password})
    assert response.status_code == 302

    assert client.get(link).status_code == 400  # used once, then dead
    assert other_device.get("/konto/moje-sprawy").status_code == 302  # the other session has ended
    assert login(client, user).status_code == 200  # the old password no longer works
    assert login(client, user, password=new_password).status_code == 302


def test_staff_must_enter_a_fresh_totp_code(client, create_user, runtime):
    clerk = create_user("clerk")
    response = post_form(client, "/konto/logowanie", {"email": clerk.email, "password": PASSWORD})
    assert response.headers["Location"].endswith("/konto/logowanie/kod")
    assert client.get("/urzad/").status_code == 302  # not signed in yet

    totp = pyotp.TOTP(clerk.totp_secret)
    wrong = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
    response = post_form(client, "/konto/logowanie/kod", {"code": wrong})
    assert "Kod jest nieprawidłowy" in response.get_data(as_text=True)
    code = totp.now()
    response = post_form(client, "/konto/logowanie/kod", {"code": code})
    assert response.headers["Location"].endswith("/urzad/")
    assert client.get("/urzad/").status_code == 200

    # the same code cannot be replayed for a second login
    second = client.application.test_client()
    post_form(second, "/konto/logowanie", {"email": clerk.email, "password": PASSWORD})
    response = post_form(second, "/konto/logowanie/kod", {"code": code})
    assert "Kod jest nieprawidłowy albo już był użyty" in response.get_data(as_text=True)


def test_staff_without_totp_enrol_before_entering(client, create_user, runtime):
    admin = create_user("admin", totp=False)
    response = post_form(client, "/konto/logowanie", {"email": admin.email, "password": PASSWORD})
    assert response.headers["Location"].endswith("/konto/logowanie/konfiguracja-2fa")
    page = client.get("/konto/logowanie/konfiguracja-2fa").get_data(as_text=True)
    assert "<svg" in page
    secret = page.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")
    response = post_form(client, "/konto/logowanie/konfiguracja-2fa", {"code": pyotp.TOTP(secret).now()})
    assert response.headers["Location"].endswith("/urzad/")
    with runtime.session_factory() as session:
        stored = session.get(User, admin.id)
        assert stored.totp_secret == secret and stored.totp_confirmed_at is not None


def test_lockout_after_repeated_failures(client, create_user, runtime, settings):
    user = create_user()
    for _ in range(settings.security.login_max_failures):
        response = login(client, user, password="zle-haslo-123")
    assert "zbyt wielu nieudanych próbach" in response.get_data(as_text=True)
    # even the right password is refused while locked
    assert "zbyt wielu nieudanych próbach" in login(client, user).get_data(as_text=True)
    with runtime.session_factory() as session:
        outcomes = session.scalars(sa.select(LoginAttempt.outcome).where(LoginAttempt.user_id == user.id).order_by(LoginAttempt.id)).all()
    assert outcomes == ["bad_password"] * settings.security.login_max_failures + ["locked"]


def test_lockout_holds_across_processes(client, create_user, runtime, settings, database_url, tmp_path):
    """Failures made by another process (another app server) lock the account here too."""
    user = create_user()
    script = textwrap.dedent(f"""
        from pathlib import Path
        from tests.conftest import base_settings, login
        from platforma.app import create_app
        from platforma.core.runtime import Runtime
        from platforma.accounts.models import User
        settings = base_settings(Path({str(tmp_path)!r}), {database_url!r})
        app = create_app(runtime=Runtime.from_settings(settings))
        user = User(email={user.email!r})
        for _ in range({settings.security.login_max_failures}):
            login(app.test_client(), user, password="zle-haslo-123")
    """)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    assert "zbyt wielu nieudanych próbach" in login(client, user).get_data(as_text=True)


def test_lockout_ends_after_the_window_or_with_a_new_password(client, create_user, runtime, settings):
    from platforma.accounts import operations as ops

    user = create_user()
    for _ in range(settings.security.login_max_failures):
        login(client, user, password="zle-haslo-123")
    with runtime.session_factory() as session:
        stored = session.get(User, user.id)
        until = ops.locked_until(session, settings, stored)
        assert until is not None
        last_failure = until - dt.timedelta(minutes=settings.security.lockout_minutes)
        assert ops.locked_until(session, settings, stored, now=last_failure + dt.timedelta(minutes=1)) == until
        assert ops.locked_until(session, settings, stored, now=until + dt.timedelta(seconds=1)) is None
    # a new password (set through the reset link) lifts the lockout at once
    with transaction(runtime.session_factory) as session:
        ops.set_password(session, session.get(User, user.id), PASSWORD)
    assert login(client, user).status_code == 302


def test_many_failures_from_one_address_get_429(app_with, create_user):
    app = app_with(security={"ip_max_failures_per_hour": 5})
    client = app.test_client()
    for n in range(5):
        login(client, type("U", (), {"email": f"nikt{n}@example.com"})(), password="zle-haslo-123")
    response = login(client, type("U", (), {"email": "kolejny@example.com"})(), password="zle-haslo-123")
    assert response.status_code == 429
    assert "Zbyt wiele prób" in response.get_data(as_text=True)


def test_logout_ends_the_session_for_good(client, create_user, runtime):
    user = create_user()
    login(client, user)
    cookie = client.get_cookie("platforma_session").value
    page = client.get("/konto/moje-sprawy")
    assert page.status_code == 200
    response = client.post("/konto/wyloguj", data={"csrf_token": csrf_from(page.data)})
    assert response.status_code == 302
    # replaying the old cookie does not bring the session back
    client.set_cookie("platforma_session", cookie)
    assert client.get("/konto/moje-sprawy").status_code == 302
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(UserSession.end_reason)).all() == ["logout"]


def test_idle_and_expired_sessions_end(client, create_user, runtime, settings):
    user = create_user()
    login(client, user)
    assert client.get("/konto/moje-sprawy").status_code == 200
    idle = dt.timedelta(minutes=settings.server.session_idle_minutes + 1)
    with transaction(runtime.session_factory) as session:
        live = session.scalars(sa.select(UserSession)).one()
        live.last_seen_at = live.last_seen_at - idle
    assert client.get("/konto/moje-sprawy").status_code == 302
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(UserSession.end_reason)).one() == "idle"

    login(client, user)
    with transaction(runtime.session_factory) as session:
        live = session.scalars(sa.select(UserSession).where(UserSession.ended_at.is_(None))).one()
        live.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert client.get("/konto/moje-sprawy").status_code == 302


def test_login_history_is_shown_to_the_user(client, create_user):
    user = create_user()
    login(client, user, password="zle-haslo-123")
    login(client, user)
    page = client.get("/konto/historia-logowan").get_data(as_text=True)
    assert page.count("błędne hasło") == 1 and page.count("udane") == 1


def test_change_password_keeps_this_session_and_ends_others(client, app, create_user):
    user = create_user()
    other = app.test_client()
    login(other, user)
    login(client, user)
    new_password = "Inne-Dlugie-Haslo-42"
    response = post_form(client, "/konto/haslo", {"current": PASSWORD, "password": new_password, "password_again": new_password})
    assert response.status_code == 302
    assert client.get("/konto/").status_code == 200
    assert other.get("/konto/").status_code == 302


def test_login_and_logout_are_audited(client, create_user, runtime):
    user = create_user()
    login(client, user)
    page = client.get("/konto/")
    client.post("/konto/wyloguj", data={"csrf_token": csrf_from(page.data)})
    with runtime.session_factory() as session:
        actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.actor_id == user.id).order_by(AuditEntry.id)).all()
    assert actions == ["account.login", "account.logout"]


def test_next_parameter_cannot_redirect_elsewhere(client, create_user):
    user = create_user()
    page = client.get("/konto/logowanie?next=//evil.example.com/")
    response = client.post("/konto/logowanie?next=//evil.example.com/", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page.data)})
    assert response.headers["Location"].endswith("/konto/moje-sprawy")
