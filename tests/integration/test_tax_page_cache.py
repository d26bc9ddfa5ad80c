"""The account page keeps its rendering only while nothing it shows has changed (both databases):
a payment, a correction in place, a new co-owner, a new interest rate, another day, another language
or another person looking each make a new one; the access check, the audit of a clerk's view, the
CSRF token and the CSP nonce are done afresh on every request (on PostgreSQL from the row each process
keeps until the database's notification says it changed: tests/integration/test_kept_rows.py)."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.accounts import operations as account_ops
from platforma.accounts.models import TaxpayerAccess
from platforma.core.audit import AuditEntry
from platforma.core.db import transaction, utcnow
from platforma.core.settings import set_value
from platforma.taxes import operations as ops
from platforma.taxes import views
from platforma.taxes.models import Decision, Installment, Liability, LiabilityParty
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw
from tests.conftest import csrf_from

D = dt.date


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).replace("\xa0", " "))


def big_figure(response) -> str:
    return re.search(r'id="do-zaplaty-dzis">([^<]+)<', response.get_data(as_text=True)).group(1).replace("\xa0", " ")


def zl(value) -> str:
    return f"{Decimal(value):,.2f}".replace(",", " ").replace(".", ",") + " zł"


@pytest.fixture
def account_of(runtime, create_user, create_taxpayer):
    """A resident linked to a taxpayer with a property tax of 2025, half of it overdue."""
    resident, person = create_user(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        decision = Decision(number="FN.3120.9.2025", document_type="decyzja", year=2025, issued_on=D(2025, 2, 10),
                            delivered_on=D(2025, 2, 14), source="local", source_key="D-9")
        liability = ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(4000),
            parties=[(person.id, "principal")], installments=[(D(2025, 3, 15), Decimal(1000)), (D(2025, 5, 15), Decimal(1000)),
                                                              (D(2025, 9, 15), Decimal(1000)), (D(2025, 11, 15), Decimal(1000))],
            booked_on=D(2025, 2, 14), source="local", source_key="L-9", decision=decision, description="Podatek 2025",
        )
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("2000.00"), paid_on=D(2025, 3, 10), payment_ref="R1")
        account_ops.link_taxpayer(session, user=session.merge(resident), taxpayer=session.merge(person), relation="self",
                                  granted_by=None)
        ids = {"liability": liability.id, "decision": decision.id, "installments": [i.id for i in liability.installments]}
    return {"resident": resident, "person": person, **ids}


def cache(runtime) -> views.PageCache:
    return runtime.extras["taxes.account_pages"]


def expected_total(runtime, taxpayer_id, day=None) -> str:
    with runtime.session_factory() as session:
        return zl(account(session, taxpayer_id, day or today_warsaw()).do_zaplaty)


def test_a_kept_page_is_served_and_a_payment_shows_at_once(runtime, logged_in, account_of):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    first = client.get(f"/podatki/{person.id}/")
    second = client.get(f"/podatki/{person.id}/")
    assert (cache(runtime).misses, cache(runtime).hits) == (1, 1)
    assert text_of(first) == text_of(second) and big_figure(second) == expected_total(runtime, person.id)
    with transaction(runtime.session_factory) as session:
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("500.00"), paid_on=today_warsaw(), payment_ref="R2")
    third = client.get(f"/podatki/{person.id}/")
    assert cache(runtime).misses == 2
    assert big_figure(third) == expected_total(runtime, person.id) != big_figure(second)


def test_corrections_in_place_show_at_once(runtime, logged_in, account_of):
    """A corrected installment, decision or liability raises the liability's revision (triggers of migration 0005)."""
    person = account_of["person"]
    client = logged_in(account_of["resident"])

    def revision():
        with runtime.session_factory() as session:
            return session.scalar(sa.select(Liability.revision).where(Liability.id == account_of["liability"]))

    before = client.get(f"/podatki/{person.id}/")
    revisions = [revision()]
    with transaction(runtime.session_factory) as session:  # a later due date: less interest
        session.get(Installment, account_of["installments"][2]).due_on = D(2025, 10, 15)
    revisions.append(revision())
    changed = client.get(f"/podatki/{person.id}/")
    assert big_figure(changed) == expected_total(runtime, person.id) != big_figure(before)
    with transaction(runtime.session_factory) as session:
        session.get(Decision, account_of["decision"]).number = "FN.3120.99.2025"
    revisions.append(revision())
    assert "Decyzja nr FN.3120.99.2025" in text_of(client.get(f"/podatki/{person.id}/"))
    with transaction(runtime.session_factory) as session:
        session.get(Liability, account_of["liability"]).tax_kind = "rolny"
    revisions.append(revision())
    assert "Podatek rolny" in text_of(client.get(f"/podatki/{person.id}/"))
    with transaction(runtime.session_factory) as session:
        added = Installment(liability_id=account_of["liability"], number=5, due_on=D(2025, 12, 15), amount=Decimal(1))
        session.add(added)
    revisions.append(revision())
    with transaction(runtime.session_factory) as session:
        session.delete(session.get(Installment, added.id))
    revisions.append(revision())
    assert revisions == sorted(set(revisions)), revisions  # each change raised it
    assert cache(runtime).hits == 0


def test_a_new_co_owner_sees_the_liability(runtime, logged_in, create_user, create_taxpayer, account_of):
    owner, spouse = create_user(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        account_ops.link_taxpayer(session, user=session.merge(owner), taxpayer=session.merge(spouse), relation="self",
                                  granted_by=None)
    client = logged_in(owner)
    assert "Urząd nie przekazał jeszcze żadnych zobowiązań" in text_of(client.get(f"/podatki/{spouse.id}/"))
    with transaction(runtime.session_factory) as session:
        session.add(LiabilityParty(liability_id=account_of["liability"], taxpayer_id=spouse.id, role="co_owner"))
    assert big_figure(client.get(f"/podatki/{spouse.id}/")) == expected_total(runtime, spouse.id) != zl(0)


def test_a_new_interest_rate_and_the_next_day_make_a_new_page(runtime, logged_in, account_of, monkeypatch):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    before = big_figure(client.get(f"/podatki/{person.id}/"))
    with transaction(runtime.session_factory) as session:
        set_value(session, "interest.standard_rate", D(2026, 6, 1), "30.00", author_id=None, note="test")
    raised = big_figure(client.get(f"/podatki/{person.id}/"))
    assert raised == expected_total(runtime, person.id) != before
    tomorrow = today_warsaw() + dt.timedelta(days=1)
    monkeypatch.setattr(views, "today_warsaw", lambda: tomorrow)
    page = client.get(f"/podatki/{person.id}/")
    assert f"Do zapłaty dziś ({tomorrow:%d.%m.%Y})" in text_of(page)
    assert big_figure(page) == expected_total(runtime, person.id, tomorrow)
    assert cache(runtime).hits == 0


def test_fresh_token_and_nonce_in_every_response(runtime, logged_in, account_of):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    nonces = []
    for _ in range(2):
        response = client.get(f"/podatki/{person.id}/")
        html = response.get_data(as_text=True)
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        assert f'nonce="{nonce}"' in html and views.NONCE_HOLE not in html and views.CSRF_HOLE not in html
        nonces.append(nonce)
    assert nonces[0] != nonces[1] and cache(runtime).hits == 1
    # the kept page's logout form works
    assert client.post("/konto/wyloguj", data={"csrf_token": csrf_from(html)}).status_code == 302
    assert client.get(f"/podatki/{person.id}/").status_code == 302  # signed out: to the login page


def test_access_is_checked_on_every_request(runtime, logged_in, account_of):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    assert client.get(f"/podatki/{person.id}/").status_code == 200
    with transaction(runtime.session_factory) as session:
        session.execute(sa.update(TaxpayerAccess).values(revoked_at=utcnow()))
    assert client.get(f"/podatki/{person.id}/").status_code == 403


def test_who_is_looking_and_in_which_language(runtime, logged_in, create_user, account_of):
    person = account_of["person"]
    clerk = create_user("clerk")
    client = logged_in(account_of["resident"])
    polish = text_of(client.get(f"/podatki/{person.id}/"))
    english = text_of(client.get(f"/podatki/{person.id}/?lang=en"))
    assert "Konto podatnika" in polish and "Konto podatnika" not in english
    client.get("/?lang=pl")
    client.post("/konto/wyloguj", data={"csrf_token": csrf_from(client.get("/").data)})
    client = logged_in(clerk)
    for _ in range(2):
        page = text_of(client.get(f"/podatki/{person.id}/"))
        assert "Oglądasz konto podatnika jako pracownik urzędu" in page and clerk.full_name in page
    with runtime.session_factory() as session:
        views_recorded = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "taxpayer.account_view")).all()
    assert [(entry.actor_id, entry.taxpayer_id) for entry in views_recorded] == [(clerk.id, person.id)] * 2
