"""The profile form: PESEL, NIP and NRB get field-level errors in Polish, and a bad form stores nothing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from platforma.accounts.models import User
from platforma.core.audit import AuditEntry
from tests.conftest import csrf_from

GOOD = {"full_name": "Jan Nowak", "phone": "601 234 567", "declared_pesel": "44051401359",
        "declared_nip": "123-456-32-18", "refund_nrb": "PL61 1090 1014 0000 0712 1981 2874"}


@pytest.mark.parametrize("field, value, message", [
    ("declared_pesel", "44051401358", "PESEL ma błędną cyfrę kontrolną"),
    ("declared_pesel", "4405", "PESEL ma nieprawidłową długość"),
    ("declared_nip", "1234563219", "NIP ma błędną cyfrę kontrolną"),
    ("refund_nrb", "61109010140000071219812875", "Numer rachunku jest nieprawidłowy"),
    ("phone", "dzwoń wieczorem", "Wpisz numer telefonu"),
    ("full_name", "", "Wpisz imię i nazwisko"),
])
def test_bad_values_get_field_errors_and_change_nothing(logged_in, create_user, runtime, field, value, message):
    user = create_user()
    client = logged_in(user)
    page = client.get("/konto/dane")
    response = client.post("/konto/dane", data={**GOOD, field: value, "csrf_token": csrf_from(page.data)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in html
    assert f'href="#{field}"' in html  # the error summary links to the field
    assert f'id="{field}-error"' in html  # and the field carries its own message
    with runtime.session_factory() as session:
        stored = session.get(User, user.id)
        assert (stored.declared_pesel, stored.declared_nip, stored.refund_nrb, stored.phone) == (None, None, None, "")
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "account.profile_changed")) == 0


def test_good_values_are_normalised_saved_and_audited(logged_in, create_user, runtime):
    user = create_user()
    client = logged_in(user)
    page = client.get("/konto/dane")
    assert client.post("/konto/dane", data={**GOOD, "csrf_token": csrf_from(page.data)}).status_code == 302
    with runtime.session_factory() as session:
        stored = session.get(User, user.id)
        assert stored.declared_nip == "1234563218" and stored.refund_nrb == "61109010140000071219812874"
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "account.profile_changed")).one()
    assert entry.details["fields"] == ["declared_nip", "declared_pesel", "full_name", "phone", "refund_nrb"]
    assert "61 1090 1014 0000 0712 1981 2874" in client.get("/konto/").get_data(as_text=True)
