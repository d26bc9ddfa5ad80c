"""The administrator adds dated values (interest rates, threshold, reminder cost, waste-fee schedule)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from platforma.core import settings as dated
from platforma.core.audit import AuditEntry
from tests.conftest import csrf_from


def post(client, key, data):
    page = client.get(f"/urzad/admin/ustawienia/{key}")
    return client.post(f"/urzad/admin/ustawienia/{key}", data={**data, "csrf_token": csrf_from(page.data)})


def test_overview_shows_the_seeded_values(logged_in, create_user):
    client = logged_in(create_user("admin"))
    page = client.get("/urzad/admin/ustawienia").get_data(as_text=True)
    assert "Stawka podstawowa odsetek za zwłokę" in page and "art. 56 § 1 Ordynacji podatkowej" in page
    assert "14.50" in page and "8.70" in page and "16.00" in page
    assert "nie ustawiono" in page  # each gmina sets its own waste-fee schedule


def test_admin_adds_a_new_rate_from_a_day_and_it_is_used(logged_in, create_user, runtime):
    admin = create_user("admin")
    client = logged_in(admin)
    response = post(client, "interest.standard_rate", {"effective_from": "2026-07-02", "value": "10,25", "note": "RPP, obniżka od 2 lipca 2026"})
    assert response.status_code == 302
    with runtime.session_factory() as session:
        assert dated.value_on(session, "interest.standard_rate", dt.date(2026, 7, 2)) == "10.25"
        assert dated.value_on(session, "interest.standard_rate", dt.date(2026, 7, 1)) == "10.50"
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "setting.added")).one()
    assert entry.actor_id == admin.id and entry.object_id == "interest.standard_rate" and entry.details["value"] == "10.25"


def test_bad_values_are_refused_with_field_errors(logged_in, create_user, runtime):
    client = logged_in(create_user("admin"))
    cases = [
        ({"effective_from": "2026-07-02", "value": "dziesięć", "note": "x"}, "nie jest liczbą"),
        ({"effective_from": "2026-02-30", "value": "10.00", "note": "x"}, "Nie ma takiej daty."),
        ({"effective_from": "2026-03-05", "value": "10.00", "note": "x"}, "wartość od tego dnia już istnieje"),
        ({"effective_from": "2026-07-02", "value": "10.00", "note": ""}, "Wpisz podstawę zmiany"),
        ({"effective_from": "2026-07-02", "value": "10.005", "note": "x"}, "więcej niż 2 miejsca po przecinku"),
    ]
    for data, message in cases:
        response = post(client, "interest.standard_rate", data)
        assert response.status_code == 200 and message in response.get_data(as_text=True), message
    with runtime.session_factory() as session:
        assert all(row.created_by_id is None for row in dated.history(session, "interest.standard_rate"))


def test_waste_schedule_is_entered_with_a_form(logged_in, create_user, runtime):
    client = logged_in(create_user("admin"))
    response = post(client, "waste.schedule", {"effective_from": "2026-01-01", "frequency": "quarterly", "day": "15",
                                               "in_advance": "true", "note": "uchwała nr XII/85/2025"})
    assert response.status_code == 302
    response = post(client, "waste.schedule", {"effective_from": "2027-01-01", "frequency": "custom",
                                               "due_dates": "03-15, 02-30", "note": "uchwała"})
    assert "nie jest datą w postaci MM-DD" in response.get_data(as_text=True)
    with runtime.session_factory() as session:
        assert dated.value_on(session, "waste.schedule", dt.date(2026, 5, 1)) == {"frequency": "quarterly", "day": 15, "in_advance": True}
    assert "co kwartał, do dnia 15, z góry" in client.get("/urzad/admin/ustawienia").get_data(as_text=True)


def test_clerks_cannot_change_settings(logged_in, create_user):
    client = logged_in(create_user("clerk"))
    assert client.get("/urzad/admin/ustawienia").status_code == 403
    assert client.get("/urzad/admin/ustawienia/interest.standard_rate").status_code == 403
