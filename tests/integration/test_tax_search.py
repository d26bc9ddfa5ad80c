"""The clerks' taxpayer search by individual account number (both databases): a number of the gmina's
layout ([payments.virtual_accounts]) finds its taxpayer, written as people copy it; a number outside
the layout, a mistyped one or a gmina without individual accounts gets a Polish message, not an
error page; every search is audited."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from platforma.core.audit import AuditEntry
from platforma.payments.rules import VirtualAccountLayout, format_nrb, nrb_check_digits
from tests.conftest import login

VIRTUAL = {"enabled": True, "sort_code": "90900004", "fixed": "2001"}
LAYOUT = VirtualAccountLayout("90900004", "2001")


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).replace("\xa0", " "))


def searches(runtime, actor_id):
    with runtime.session_factory() as session:
        return session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "taxpayer.search",
                                                           AuditEntry.actor_id == actor_id).order_by(AuditEntry.id)).all()


@pytest.fixture
def clerk_client(app_with, create_user):
    app = app_with(payments={"virtual_accounts": VIRTUAL})
    clerk = create_user("clerk")
    client = app.test_client()
    assert login(client, clerk).status_code == 302
    return clerk, client


@pytest.mark.parametrize("written", [
    lambda nrb: nrb,
    lambda nrb: format_nrb(nrb),
    lambda nrb: "PL" + nrb,
    lambda nrb: "pl " + format_nrb(nrb),
], ids=["digits", "spaced", "PL", "pl spaced"])
def test_an_individual_account_finds_its_taxpayer(runtime, clerk_client, create_taxpayer, written):
    clerk, client = clerk_client
    create_taxpayer()
    person = create_taxpayer()
    response = client.get("/urzad/podatnicy/", query_string={"q": written(LAYOUT.account_for(person.id))})
    assert response.status_code == 200
    page = text_of(response)
    assert "Znaleziono: 1" in page and person.display_name in page and person.pesel in page
    [entry] = searches(runtime, clerk.id)
    assert entry.details["results"] == [person.id]


def test_a_number_outside_the_layout_gets_a_message(runtime, clerk_client, create_taxpayer):
    clerk, client = clerk_client
    person = create_taxpayer()
    ours = LAYOUT.account_for(person.id)
    other_bank = VirtualAccountLayout("10201026", "2001").account_for(person.id)  # PKO BP, the same digits after
    other_range = VirtualAccountLayout("90900004", "3001").account_for(person.id)
    mistyped = ours[:-1] + str((int(ours[-1]) + 1) % 10)
    for number, message in [
        (other_bank, "nie jest rachunkiem indywidualnym podatnika tej gminy"),
        (other_range, "nie jest rachunkiem indywidualnym podatnika tej gminy"),
        (mistyped, "ma błędne cyfry kontrolne"),
    ]:
        response = client.get("/urzad/podatnicy/", query_string={"q": number})
        assert response.status_code == 200, number
        page = text_of(response)
        assert message in page and format_nrb(number) in page, (number, page[-600:])
        assert person.display_name not in page
    entries = searches(runtime, clerk.id)
    assert [e.details for e in entries] == [{"query": n, "results": []} for n in (other_bank, other_range, mistyped)]


def test_an_account_of_a_taxpayer_who_does_not_exist(runtime, clerk_client):
    _clerk, client = clerk_client
    bban = "90900004" + "2001" + f"{999_999:012d}"
    page = text_of(client.get("/urzad/podatnicy/", query_string={"q": nrb_check_digits(bban) + bban}))
    assert "Znaleziono: 0" in page


def test_a_gmina_without_individual_accounts(runtime, logged_in, create_user, create_taxpayer):
    person = create_taxpayer()
    clerk = create_user("clerk")
    client = logged_in(clerk)
    response = client.get("/urzad/podatnicy/", query_string={"q": format_nrb(LAYOUT.account_for(person.id))})
    assert response.status_code == 200
    assert "Gmina nie ma rachunków indywidualnych" in text_of(response)
    assert len(searches(runtime, clerk.id)) == 1
    # other searches are unchanged: a PESEL is 11 digits, a NIP 10
    assert person.display_name in text_of(client.get("/urzad/podatnicy/", query_string={"q": person.pesel}))


def test_a_name_is_found_whatever_the_case_of_its_polish_letters(runtime, clerk_client, create_taxpayer):
    """A surname written in capitals in the register ("ŻÓŁKIEWSKA") is found typed in small letters, and
    the other way round, on SQLite as on PostgreSQL (SQLite's own lower() folds only ASCII)."""
    _clerk, client = clerk_client
    person = create_taxpayer(last_name="ŻÓŁKIEWSKA")
    other = create_taxpayer(last_name="ślęczek")
    for query, found in (("żółkiewska", person), ("ŻółKIEW", person), ("ŚLĘCZEK", other)):
        page = text_of(client.get("/urzad/podatnicy/", query_string={"q": query}))
        assert "Znaleziono: 1" in page and found.pesel in page, query
