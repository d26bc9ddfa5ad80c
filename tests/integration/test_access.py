"""Permissions in one place, audited refusals and views, links between accounts and taxpayers."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Blueprint

from platforma.accounts.models import TaxpayerAccess
from platforma.app import create_app
from platforma.core.access import ROLE_PERMISSIONS, Permission
from platforma.core.audit import AuditEntry
from tests.conftest import csrf_from


def actions(runtime, **filters):
    with runtime.session_factory() as session:
        query = sa.select(AuditEntry).order_by(AuditEntry.id)
        for key, value in filters.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return session.scalars(query).all()


@pytest.mark.parametrize("path", ["/urzad/", "/urzad/podatnicy/", "/urzad/admin/dziennik", "/urzad/admin/pracownicy"])
def test_resident_gets_403_and_the_refusal_is_audited(logged_in, create_user, runtime, path):
    resident = create_user()
    client = logged_in(resident)
    response = client.get(path)
    assert response.status_code == 403
    assert "Brak dostępu" in response.get_data(as_text=True)
    [entry] = actions(runtime, action="access.denied")
    assert entry.actor_id == resident.id and entry.details["path"] == path and entry.ip == "127.0.0.1"


@pytest.mark.parametrize("path", ["/urzad/admin/dziennik", "/urzad/admin/pracownicy", "/urzad/admin/strony", "/urzad/admin/wtyczki"])
def test_clerk_cannot_open_admin_pages(logged_in, create_user, path):
    client = logged_in(create_user("clerk"))
    assert client.get(path).status_code == 403


def test_clerk_cannot_use_resident_pages(logged_in, create_user):
    client = logged_in(create_user("clerk"))
    assert client.get("/konto/moje-sprawy").status_code == 403


@pytest.mark.parametrize("path", ["/urzad/", "/konto/moje-sprawy", "/konto/", "/urzad/admin/dziennik"])
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/konto/logowanie?next=")


def test_every_view_must_declare_its_access(runtime):
    app = create_app(runtime=runtime)
    rogue = Blueprint("rogue", __name__)
    rogue.add_url_rule("/rogue", "open", lambda: "x")
    app.register_blueprint(rogue)
    from platforma.core.access import check_every_view_declares_access

    with pytest.raises(RuntimeError, match="rogue.open"):
        check_every_view_declares_access(app)


def test_roles_are_distinct():
    assert Permission.BACKOFFICE not in ROLE_PERMISSIONS["resident"]
    assert Permission.AUDIT_VIEW not in ROLE_PERMISSIONS["clerk"]
    assert Permission.AUDIT_VIEW in ROLE_PERMISSIONS["admin"]


def test_clerk_views_of_a_taxpayer_are_audited(logged_in, create_user, create_taxpayer, runtime):
    clerk = create_user("clerk")
    taxpayer = create_taxpayer()
    client = logged_in(clerk)
    page = client.get(f"/urzad/podatnicy/?q={taxpayer.last_name}").get_data(as_text=True)
    assert taxpayer.pesel in page
    assert client.get(f"/urzad/podatnicy/{taxpayer.id}").status_code == 200
    search, view = actions(runtime, actor_id=clerk.id)[-2:]
    assert search.action == "taxpayer.search" and taxpayer.id in search.details["results"]
    assert view.action == "taxpayer.view" and view.taxpayer_id == taxpayer.id and view.ip == "127.0.0.1"


def test_search_by_pesel_and_nip(logged_in, create_user, create_taxpayer):
    person = create_taxpayer()
    firm = create_taxpayer("legal")
    client = logged_in(create_user("clerk"))
    assert person.display_name in client.get(f"/urzad/podatnicy/?q={person.pesel}").get_data(as_text=True)
    assert firm.nip in client.get(f"/urzad/podatnicy/?q={firm.nip}").get_data(as_text=True)
    assert "Znaleziono: 0" in client.get("/urzad/podatnicy/?q=Nieistniejący").get_data(as_text=True)


def test_clerk_links_an_account_to_a_taxpayer_and_the_resident_sees_it(app, logged_in, create_user, create_taxpayer, runtime):
    clerk, resident = create_user("clerk"), create_user()
    taxpayer = create_taxpayer()
    client = logged_in(clerk)
    page = client.get(f"/urzad/podatnicy/{taxpayer.id}")
    response = client.post(f"/urzad/podatnicy/{taxpayer.id}/powiazania", data={
        "email": resident.email, "relation": "representative", "note": "pełnomocnictwo z 2.03.2026",
        "csrf_token": csrf_from(page.data),
    })
    assert response.status_code == 302
    [granted] = actions(runtime, action="taxpayer_access.granted")
    assert granted.actor_id == clerk.id and granted.taxpayer_id == taxpayer.id and granted.details["relation"] == "representative"

    resident_client = app.test_client()
    from tests.conftest import login

    login(resident_client, resident)
    dashboard = resident_client.get("/konto/moje-sprawy").get_data(as_text=True)
    assert taxpayer.display_name in dashboard and "jako pełnomocnik" in dashboard

    # linking twice is refused with a message and changes nothing
    page = client.get(f"/urzad/podatnicy/{taxpayer.id}")
    response = client.post(f"/urzad/podatnicy/{taxpayer.id}/powiazania", data={
        "email": resident.email, "relation": "self", "note": "x", "csrf_token": csrf_from(page.data),
    })
    assert response.status_code == 400 and "już powiązane" in response.get_data(as_text=True)

    with runtime.session_factory() as session:
        access = session.scalars(sa.select(TaxpayerAccess)).one()
    page = client.get(f"/urzad/podatnicy/{taxpayer.id}")
    client.post(f"/urzad/podatnicy/{taxpayer.id}/powiazania/{access.id}/usun", data={"csrf_token": csrf_from(page.data)})
    assert taxpayer.display_name not in resident_client.get("/konto/moje-sprawy").get_data(as_text=True)
    assert [e.action for e in actions(runtime, taxpayer_id=taxpayer.id) if e.action.startswith("taxpayer_access")] == [
        "taxpayer_access.granted", "taxpayer_access.revoked"]


def test_linking_an_unknown_account_is_refused(logged_in, create_user, create_taxpayer, runtime):
    client = logged_in(create_user("clerk"))
    taxpayer = create_taxpayer()
    page = client.get(f"/urzad/podatnicy/{taxpayer.id}")
    response = client.post(f"/urzad/podatnicy/{taxpayer.id}/powiazania", data={
        "email": "nikt@example.com", "relation": "self", "note": "x", "csrf_token": csrf_from(page.data),
    })
    assert response.status_code == 400
    assert "Nie ma konta mieszkańca z tym adresem e-mail." in response.get_data(as_text=True)
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TaxpayerAccess)) == 0


def test_admin_browses_and_filters_the_audit_log(logged_in, create_user, create_taxpayer, runtime):
    clerk, admin = create_user("clerk"), create_user("admin")
    taxpayer = create_taxpayer()
    clerk_client = logged_in(clerk)
    clerk_client.get(f"/urzad/podatnicy/{taxpayer.id}")
    admin_client = clerk_client.application.test_client()
    from tests.conftest import login

    login(admin_client, admin)
    page = admin_client.get("/urzad/admin/dziennik?action=taxpayer.view").get_data(as_text=True)
    assert "<code>taxpayer.view</code>" in page and clerk.email in page and "<code>account.login</code>" not in page
    page = admin_client.get(f"/urzad/admin/dziennik?actor={admin.email}").get_data(as_text=True)
    assert "<code>taxpayer.view</code>" not in page and "<code>account.login</code>" in page
    page = admin_client.get("/urzad/admin/dziennik?date_from=2026-13-01").get_data(as_text=True)
    assert "Wpisz datę jako RRRR-MM-DD" in page or "Nie ma takiej daty" in page
    # nothing in the app edits or deletes entries: no route accepts a change to the log
    assert admin_client.post("/urzad/admin/dziennik").status_code in (400, 405)


def test_admin_creates_and_blocks_staff(logged_in, create_user, runtime):
    admin = create_user("admin")
    client = logged_in(admin)
    page = client.get("/urzad/admin/pracownicy")
    response = client.post("/urzad/admin/pracownicy", data={
        "full_name": "Nowa Urzędniczka", "email": "nowa@example.com", "role": "clerk", "password": "Poczatkowe-Haslo-2026",
        "csrf_token": csrf_from(page.data),
    })
    assert response.status_code == 302
    from platforma.accounts.models import User

    with runtime.session_factory() as session:
        new = session.scalars(sa.select(User).where(User.email == "nowa@example.com")).one()
        assert new.role == "clerk" and not new.has_totp
    page = client.get("/urzad/admin/pracownicy")
    client.post(f"/urzad/admin/pracownicy/{new.id}/aktywnosc", data={"csrf_token": csrf_from(page.data)})
    with runtime.session_factory() as session:
        assert session.get(User, new.id).is_active is False
    assert [e.action for e in actions(runtime, object_type="user", object_id=str(new.id))] == ["user.created", "user.deactivated"]


def test_refusal_is_recorded_even_when_the_request_also_touched_the_session(logged_in, create_user, runtime):
    """The session's last-seen time and the refusal share the request's one transaction (no second writer)."""
    import datetime as dt

    from platforma.accounts.models import UserSession
    from platforma.core.db import transaction

    client = logged_in(create_user())
    with transaction(runtime.session_factory) as session:
        live = session.scalars(sa.select(UserSession)).one()
        live.last_seen_at -= dt.timedelta(minutes=2)
        stale = live.last_seen_at
    assert client.get("/urzad/").status_code == 403
    assert len(actions(runtime, action="access.denied")) == 1
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(UserSession.last_seen_at)).one() > stale
