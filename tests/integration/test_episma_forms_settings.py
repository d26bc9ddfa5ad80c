"""The forms' dated settings on both databases: the DO fee from the rate in force on the day the
declaration applies from, the composting discount, the certificate's stamp duty × copies, prefill from
the taxpayer's account, and the administrator's page listing the keys."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from platforma.core import settings as dated
from platforma.core.db import transaction
from platforma.episma.forms import get_form, parse_letter
from platforma.taxes.models import Decision, Liability, LiabilityBasis, LiabilityParty, TaxObject
from tests.unit.test_episma_forms import VALID, meta

# dates after anything a migration seeds, so that these rows never collide with a seed
JAN, JUL = dt.date(2031, 1, 1), dt.date(2031, 7, 1)


def _set(runtime, key, day, value):
    with transaction(runtime.session_factory) as session:
        dated.set_value(session, key, day, value, author_id=None, note="test")


def _declaration(**changes):
    data = {**VALID["deklaracja_odpady"], "rate": None, "discount": None, "monthly_fee": None}
    return {**data, **changes}


def test_the_waste_fee_uses_the_rate_of_the_day_the_declaration_applies_from(runtime):
    _set(runtime, "waste.rate_per_person", JAN, "30.50")
    _set(runtime, "waste.rate_per_person", JUL, "33.33")  # a new resolution from mid-year
    _set(runtime, "waste.composter_discount_per_person", JAN, "2.75")
    form = get_form("deklaracja_odpady")
    with runtime.session_factory() as session:
        march = form.complete(session, _declaration(applies_from="2031-03-15", residents=3, composting=False), None)
        assert (march["rate"], march["discount"], march["monthly_fee"]) == ("30.50", None, "91.50")
        june = form.complete(session, _declaration(applies_from="2031-06-30", residents=3, composting=True), None)
        assert (june["rate"], june["discount"], june["monthly_fee"]) == ("30.50", "2.75", "83.25")
        july = form.complete(session, _declaration(applies_from="2031-07-01", residents=3, composting=True), None)
        assert (july["rate"], july["discount"], july["monthly_fee"]) == ("33.33", "2.75", "91.74")  # grosze, not złoty
        nobody = form.complete(session, _declaration(applies_from="2031-07-01", residents=0, composting=True), None)
        assert nobody["monthly_fee"] == "0.00"
        hints = form.hints(session, None, dt.date(2031, 8, 1))
    assert any("01.07.2031" in hint and "33,33" in hint for hint in hints)
    # what complete filled is written, validated and read back
    assert parse_letter(form.to_xml(july, meta())).data == july


def test_the_discount_never_makes_the_fee_negative(runtime):
    _set(runtime, "waste.rate_per_person", JAN, "10.00")
    _set(runtime, "waste.composter_discount_per_person", JAN, "12.00")
    with runtime.session_factory() as session:
        data = get_form("deklaracja_odpady").complete(session, _declaration(applies_from="2031-02-01", residents=2, composting=True), None)
    assert data["monthly_fee"] == "0.00"


def test_without_a_rate_the_declaration_is_filed_with_persons_only(runtime):
    _set(runtime, "waste.rate_per_person", JAN, "30.50")
    form = get_form("deklaracja_odpady")
    with runtime.session_factory() as session:
        data = form.complete(session, _declaration(applies_from="2030-12-31", residents=2), None)  # before any rate
        hints = form.hints(session, None, dt.date(2030, 12, 31))
    assert (data["rate"], data["discount"], data["monthly_fee"]) == (None, None, None)
    assert "nie została jeszcze wprowadzona" in hints[0]
    assert parse_letter(form.to_xml(data, meta())).data == data


def test_the_stamp_duty_is_the_dated_value_times_the_copies(runtime):
    _set(runtime, "stamp_duty.tax_clearance_certificate", JAN, "21.00")
    _set(runtime, "stamp_duty.tax_clearance_certificate", JUL, "25.50")
    form = get_form("zaswiadczenie_o_niezaleganiu")
    data = {**VALID["zaswiadczenie_o_niezaleganiu"], "copies": 3, "stamp_duty": None}
    with runtime.session_factory() as session:
        assert form.stamp_duty(session, data, dt.date(2031, 6, 30)) == Decimal("63.00")
        assert form.stamp_duty(session, data, JUL) == Decimal("76.50")
        assert form.complete(session, data, JUL)["stamp_duty"] == "76.50"
        assert "25,50" in form.hints(session, None, JUL)[0]
        assert all(get_form(code).stamp_duty(session, VALID[code], JUL) is None
                   for code in VALID if code != "zaswiadczenie_o_niezaleganiu")


def _waste_liability(runtime, taxpayer, persons: int, location: str):
    with transaction(runtime.session_factory) as session:
        obj = TaxObject(kind="lokal_odpady", description="Lokal", location=location, source_key=f"O-{taxpayer.id}")
        grunt = TaxObject(kind="grunt", description="Działka budowlana", location="obręb 0003, dz. 125/4",
                          source_key=f"G-{taxpayer.id}")
        decision = Decision(number=f"DO/{taxpayer.id}", document_type="deklaracja", year=2026, source_key=f"D-{taxpayer.id}")
        liability = Liability(decision=decision, tax_kind="odpady", payer_type=taxpayer.kind, year=2026,
                              period_from=dt.date(2026, 1, 1), period_to=dt.date(2026, 12, 31), amount=Decimal("100.00"),
                              source_key=f"L-{taxpayer.id}")
        liability.parties.append(LiabilityParty(taxpayer_id=taxpayer.id, role="principal"))
        liability.bases.append(LiabilityBasis(tax_object=obj, basis=Decimal(persons), unit="osoba", rate=Decimal("30"),
                                              amount=Decimal("100.00")))
        liability.bases.append(LiabilityBasis(tax_object=grunt, basis=Decimal(500), unit="m2", rate=Decimal("0"),
                                              amount=Decimal("0.00")))
        session.add(liability)


@pytest.mark.parametrize("kind", ["natural", "legal"])
def test_prefill_reads_the_taxpayers_account(runtime, create_taxpayer, create_user, kind):
    taxpayer = create_taxpayer(kind)
    user = create_user()
    _waste_liability(runtime, taxpayer, 4, taxpayer.address)
    today = dt.date(2026, 3, 2)
    with runtime.session_factory() as session:
        waste = get_form("deklaracja_odpady").prefill(taxpayer, user, session, today)
        info = get_form("informacja_in1").prefill(taxpayer, user, session, today)
        refund = get_form("zwrot_nadplaty").prefill(taxpayer, user, session, today)
        hints = get_form("informacja_in1").hints(session, taxpayer, today)
    assert waste == {"kind": "change", "residents": 4, "property_street": taxpayer.street,
                     "property_postal_code": taxpayer.postal_code, "property_city": taxpayer.city}
    assert info == {"location": "obręb 0003, dz. 125/4"}
    assert "Działka budowlana: obręb 0003, dz. 125/4" in hints[0]
    name = taxpayer.name if kind == "legal" else f"{taxpayer.first_name} {taxpayer.last_name}"
    assert refund == {"account_holder": name}  # no overpayment, no account number on the user


def test_the_administrators_page_lists_the_forms_settings(logged_in, create_user):
    client = logged_in(create_user("admin"))
    page = client.get("/urzad/admin/ustawienia").get_data(as_text=True)
    for key in ("stamp_duty.tax_clearance_certificate", "waste.rate_per_person", "waste.composter_discount_per_person"):
        assert f'id="{key}"' in page
    assert "część II pkt 21" in page and "art. 6k ust. 4a" in page


def test_a_form_page_shows_hints_only_for_a_taxpayer_the_user_may_act_for(app, runtime, create_taxpayer, create_user,
                                                                          logged_in):
    """Posting another taxpayer's id with a form that does not validate must not show that taxpayer's
    properties: the hints follow the accepted choice, never the posted one."""
    from platforma.accounts.models import TaxpayerAccess
    from tests.conftest import csrf_from, login

    own, stranger = create_taxpayer(), create_taxpayer()
    _waste_liability(runtime, stranger, 2, "ul. Cudza 7")
    user = create_user("resident")
    with transaction(runtime.session_factory) as session:
        session.add(TaxpayerAccess(user_id=user.id, taxpayer_id=own.id, relation="self"))
    client = logged_in(user)
    page = client.get("/pisma/nowe/informacja_in1")
    assert "obręb 0003" not in page.get_data(as_text=True)  # the own taxpayer has no property here
    response = client.post("/pisma/nowe/informacja_in1", data={"csrf_token": csrf_from(page.data),
                                                               "taxpayer": str(stranger.id)})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Wybierz, w czyim imieniu składasz pismo." in text
    assert "obręb 0003" not in text and "Działka budowlana" not in text
    # the same page for the stranger's own user does show them
    owner = create_user("resident")
    with transaction(runtime.session_factory) as session:
        session.add(TaxpayerAccess(user_id=owner.id, taxpayer_id=stranger.id, relation="self"))
    other_client = app.test_client()
    login(other_client, owner)
    assert "Działka budowlana: obręb 0003" in other_client.get("/pisma/nowe/informacja_in1").get_data(as_text=True)
