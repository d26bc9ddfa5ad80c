"""The resident's tax pages on both databases: the same figures as `queries.account` (and so as
`platforma taxes balance`), access refused and audited, clerks' and representatives' views recorded."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from babel.numbers import format_decimal

from platforma.accounts import operations as account_ops
from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes.models import Decision, LiabilityBasis, TaxObject
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw

D = dt.date


def text_of(response) -> str:
    """The page's text with tags dropped and whitespace (also no-break spaces) collapsed."""
    html = response.get_data(as_text=True)
    plain = re.sub(r"<[^>]+>", " ", html).replace("\xa0", " ").replace("&nbsp;", " ")
    return re.sub(r"\s+", " ", plain)


def zl(value) -> str:
    """An amount as the pages print it (Polish locale), spaces normalised like `text_of`."""
    text = format_decimal(Decimal(value).quantize(Decimal("0.01")), format="#,##0.00", locale="pl") + " zł"
    return text.replace("\xa0", " ").replace("\u202f", " ")


def row(response, attribute: str, value) -> str:
    html = response.get_data(as_text=True)
    found = re.search(rf'<tr class="govuk-table__row" {attribute}="{value}">(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)).replace("\xa0", " "))


def audit_entries(runtime, action):
    with runtime.session_factory() as session:
        return session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


@pytest.fixture
def household(runtime, create_user, create_taxpayer):
    """A resident linked to himself (with two years of liabilities and payments) and, as a
    representative, to his mother; a stranger with a liability of her own."""
    resident = create_user()
    person, mother, stranger = create_taxpayer(), create_taxpayer(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        decision = Decision(number="FN.3120.7.2025", document_type="decyzja", year=2025, issued_on=D(2025, 2, 14),
                            delivered_on=D(2025, 2, 20), source="local", source_key="D-7")
        plot = TaxObject(kind="budynek", description="Budynek mieszkalny", location="ul. Polna 3, dz. 125/4",
                         source="local", source_key="O-1")
        property_tax = ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(12000),
            parties=[(person.id, "principal")],
            installments=[(D(2025, 3, 15), Decimal(3000)), (D(2025, 5, 15), Decimal(3000)),
                          (D(2025, 9, 15), Decimal(3000)), (D(2025, 11, 15), Decimal(3000))],
            booked_on=D(2025, 2, 20), source="local", source_key="L-2025", decision=decision,
            description="Podatek od nieruchomości 2025",
        )
        session.add(LiabilityBasis(liability=property_tax, tax_object=plot, basis=Decimal("150.5"), unit="m2",
                                   rate=Decimal("1.15"), amount=Decimal("173.08")))
        waste = ops.assess_liability(
            session, tax_kind="odpady", payer_type="natural", year=2026, amount=Decimal("180.00"),
            parties=[(person.id, "principal")],
            installments=[(D(2026, 3, 15), Decimal("90.00")), (D(2026, 9, 15), Decimal("90.00"))],
            booked_on=D(2026, 1, 2), source="local", source_key="W-2026", description="Odpady 2026",
        )
        foreign = ops.assess_liability(
            session, tax_kind="rolny", payer_type="natural", year=2025, amount=Decimal(400),
            parties=[(stranger.id, "principal")], installments=[(D(2025, 3, 15), Decimal(400))],
            booked_on=D(2025, 2, 1), source="local", source_key="S-2025",
        )
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("3000.00"), paid_on=D(2025, 3, 17), payment_ref="P1")
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("1000.00"), paid_on=D(2025, 7, 10), payment_ref="P2")
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("50.00"), paid_on=D(2026, 4, 1), payment_ref="P3")
        ops.assess_liability(
            session, tax_kind="lesny", payer_type="natural", year=2025, amount=Decimal(80),
            parties=[(mother.id, "principal")], installments=[(D(2025, 3, 15), Decimal(80))],
            booked_on=D(2025, 2, 1), source="local", source_key="M-2025",
        )
        user = session.merge(resident)
        account_ops.link_taxpayer(session, user=user, taxpayer=session.merge(person), relation="self", granted_by=None)
        account_ops.link_taxpayer(session, user=user, taxpayer=session.merge(mother), relation="representative", granted_by=None)
        ids = {"property": property_tax.id, "waste": waste.id, "foreign": foreign.id,
               "installments": [i.id for i in property_tax.installments]}
    return {"resident": resident, "person": person, "mother": mother, "stranger": stranger, **ids}


def expected(runtime, taxpayer_id, day=None):
    with runtime.session_factory() as session:
        return account(session, taxpayer_id, day or today_warsaw())


def test_overview_shows_each_taxpayer_with_todays_figures(runtime, logged_in, household):
    client = logged_in(household["resident"])
    response = client.get("/podatki/")
    assert response.status_code == 200
    page = text_of(response)
    for key in ("person", "mother"):
        taxpayer = household[key]
        state = expected(runtime, taxpayer.id)
        assert taxpayer.display_name in page and taxpayer.identifier_label in page
        assert f'/podatki/{taxpayer.id}/"' in response.get_data(as_text=True)
        for figure in (state.zaleglosc, state.odsetki, state.nadplata, state.do_zaplaty):
            assert zl(figure) in page
    assert household["stranger"].display_name not in page


def test_account_page_shows_the_same_numbers_as_the_balance(runtime, logged_in, household):
    person = household["person"]
    client = logged_in(household["resident"])
    response = client.get(f"/podatki/{person.id}/")
    assert response.status_code == 200
    page = text_of(response)
    state = expected(runtime, person.id)
    assert state.zaleglosc > 0 and state.odsetki > 0  # the 2025 arrears have been growing interest since
    # the summary: what is owed today in large type, and the taxpayer-level figures
    html = response.get_data(as_text=True)
    big = re.search(r'id="do-zaplaty-dzis">([^<]+)<', html).group(1)
    assert big.replace("\xa0", " ").replace("\u202f", " ") == zl(state.do_zaplaty)
    assert f"Do zapłaty dziś ({today_warsaw():%d.%m.%Y})" in page
    for figure in (state.zaleglosc, state.odsetki, state.nadplata):
        assert zl(figure) in page
    # one row per liability with the treasurer's columns, newest year first
    assert page.index("Rok 2026") < page.index("Rok 2025")
    for item in state.liabilities:
        cells = row(response, "data-liability", item.id)
        for figure in (item.przypis, item.odpis, item.wplaty, item.zaleglosc, item.odsetki, item.do_zaplaty):
            assert zl(figure) in cells, (item.tax_kind, figure, cells)
        assert f"/podatki/{person.id}/zobowiazania/{item.id}" in html
    assert "Podatek od nieruchomości" in page and "Decyzja nr FN.3120.7.2025" in page
    assert "Opłata za gospodarowanie odpadami komunalnymi" in page
    # accessible tables that scroll inside their own box
    assert html.count('class="pf-table-wrap" tabindex="0" role="region" aria-label=') == 2
    assert "<caption" in html and 'scope="col"' in html and 'scope="row"' in html
    assert "govuk-table__cell--numeric" in html
    # the newest posting or liability: when the data last arrived
    assert re.search(r"Dane według stanu na \d\d\.\d\d\.\d{4} \d\d:\d\d", page)
    # the taxpayer's own view is not audited
    assert audit_entries(runtime, "taxpayer.account_view") == []


def test_liability_page_schedule_basis_and_payments(runtime, logged_in, household):
    person = household["person"]
    client = logged_in(household["resident"])
    response = client.get(f"/podatki/{person.id}/zobowiazania/{household['property']}")
    assert response.status_code == 200
    page = text_of(response)
    [item] = [i for i in expected(runtime, person.id).liabilities if i.id == household["property"]]
    assert "Decyzja nr FN.3120.7.2025" in page and "14.02.2025" in page and "20.02.2025" in page
    assert "Budynek mieszkalny" in page and "ul. Polna 3, dz. 125/4" in page
    assert "150,5 m²" in page and "1,15 zł/m²" in page and zl("173.08") in page
    # 15 March 2025 was a Saturday: the first installment is due on Monday 17 March
    first = row(response, "data-installment", 1)
    assert "17.03.2025" in first and "przesunięty z 15.03.2025" in first
    for inst in item.installments:
        cells = row(response, "data-installment", inst.number)
        for figure in (inst.assessed, inst.paid, inst.left, inst.interest):
            assert zl(figure) in cells
    assert "zapłacona" in first and "govuk-tag--green" in response.get_data(as_text=True)
    assert "zaległa" in row(response, "data-installment", 2)
    # the payments that reached it: P1 on 17.03.2025, P2 on 10.07.2025 with its interest part
    assert "17.03.2025" in page and "10.07.2025" in page and zl("20.25") in page
    assert zl(item.do_zaplaty) in page


def test_payments_page_lists_every_payment(runtime, logged_in, household):
    person = household["person"]
    client = logged_in(household["resident"])
    response = client.get(f"/podatki/{person.id}/wplaty")
    assert response.status_code == 200
    page = text_of(response)
    state = expected(runtime, person.id)
    assert [p.ref for p in state.payments] == ["P3", "P2", "P1"]
    for payment in state.payments:
        assert payment.paid_on.strftime("%d.%m.%Y") in page and zl(payment.total) in page
    assert page.index("01.04.2026") < page.index("10.07.2025") < page.index("17.03.2025")
    assert zl("20.25") in page  # the interest within P2
    assert f"/podatki/{person.id}/zobowiazania/{household['property']}" in response.get_data(as_text=True)


def test_calculator_shows_the_account_on_the_chosen_day(runtime, logged_in, household):
    person = household["person"]
    client = logged_in(household["resident"])
    day = today_warsaw() + dt.timedelta(days=30)
    response = client.get(f"/podatki/{person.id}/kalkulator?dzien={day.day}&miesiac={day.month}&rok={day.year}")
    assert response.status_code == 200
    page = text_of(response)
    state = expected(runtime, person.id, day)
    assert f"Stan konta na {day:%d.%m.%Y}" in page
    for figure in (state.zaleglosc, state.odsetki, state.do_zaplaty):
        assert zl(figure) in page
    assert "Odsetki za zwłokę rosną z każdym dniem" in page
    assert state.odsetki > expected(runtime, person.id).odsetki  # a month later the interest is higher
    # the short form of the address gives the same answer
    again = client.get(f"/podatki/{person.id}/kalkulator?dzien={day.isoformat()}")
    assert zl(state.do_zaplaty) in text_of(again)
    # a day in the past: the account as it stood then
    past = client.get(f"/podatki/{person.id}/kalkulator?dzien=30&miesiac=6&rok=2025")
    assert zl(expected(runtime, person.id, D(2025, 6, 30)).odsetki) in text_of(past)  # 51 zł (test_tax_account)
    # no date asked yet: the form without an error or a result
    empty = client.get(f"/podatki/{person.id}/kalkulator")
    assert empty.status_code == 200 and "Stan konta na" not in text_of(empty) and "govuk-error-summary" not in empty.get_data(as_text=True)


@pytest.mark.parametrize(
    "query, message, marked",
    [
        ("dzien=31&miesiac=2&rok=2026", "Wpisz prawdziwą datę, np. 31 12", ["dzien"]),
        ("dzien=ab&miesiac=3&rok=2026", "Wpisz prawdziwą datę", ["dzien"]),
        ("dzien=1&miesiac=13&rok=2026", "Wpisz prawdziwą datę", ["miesiac"]),
        ("dzien=1&miesiac=3&rok=26", "Rok musi mieć 4 cyfry", ["rok"]),
        ("dzien=1&miesiac=&rok=2026", "Data musi zawierać miesiąc", ["miesiac"]),
        ("dzien=&miesiac=&rok=", "Wpisz datę, na którą chcesz obliczyć kwotę", ["dzien", "miesiac", "rok"]),
        ("dzien=31&miesiac=12&rok=2014", "Data musi być nie wcześniejsza niż 01.01.2015", ["dzien", "miesiac", "rok"]),
        ("dzien=1&miesiac=1&rok=2099", "Data nie może być późniejsza niż", ["dzien", "miesiac", "rok"]),
        ("dzien=2026-02-30", "Wpisz prawdziwą datę", ["dzien"]),
    ],
)
def test_calculator_refuses_a_bad_date(runtime, logged_in, household, query, message, marked):
    person = household["person"]
    client = logged_in(household["resident"])
    response = client.get(f"/podatki/{person.id}/kalkulator?{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "govuk-error-summary" in html and message in text_of(response)
    assert f'href="#{marked[0]}"' in html  # the summary links to the first field to correct
    for name in ("dzien", "miesiac", "rok"):
        field = re.search(rf'<input[^>]*id="{name}"[^>]*>', html).group(0)
        assert ("govuk-input--error" in field) == (name in marked), field
    assert "Stan konta na" not in text_of(response)
    assert "<title>Błąd:" in html


def test_calculator_speaks_english_too(runtime, logged_in, household):
    client = logged_in(household["resident"])
    response = client.get(f"/podatki/{household['person'].id}/kalkulator?dzien=31&miesiac=2&rok=2026&lang=en")
    assert "Enter a real date" in text_of(response) or "real date" in text_of(response)


def test_another_taxpayers_account_is_refused_and_audited(runtime, logged_in, household):
    resident, stranger = household["resident"], household["stranger"]
    client = logged_in(resident)
    for path in ("/", "/wplaty", "/kalkulator", f"/zobowiazania/{household['foreign']}"):
        response = client.get(f"/podatki/{stranger.id}{path}")
        assert response.status_code == 403, path
        assert stranger.display_name not in response.get_data(as_text=True)
    missing = client.get("/podatki/999999/")
    assert missing.status_code == 403
    denied = audit_entries(runtime, "taxpayer.access_denied")
    assert len(denied) == 5 and all(e.actor_id == resident.id for e in denied)
    assert denied[0].taxpayer_id == stranger.id and denied[0].details == {"exists": True}
    assert denied[-1].taxpayer_id is None and denied[-1].details == {"exists": False} and denied[-1].object_id == "999999"


def test_a_liability_of_another_taxpayer_is_not_found(logged_in, household):
    client = logged_in(household["resident"])
    person, mother = household["person"], household["mother"]
    assert client.get(f"/podatki/{person.id}/zobowiazania/{household['foreign']}").status_code == 404
    assert client.get(f"/podatki/{mother.id}/zobowiazania/{household['property']}").status_code == 404
    assert client.get(f"/podatki/{person.id}/zobowiazania/999999").status_code == 404


def test_a_representatives_view_is_recorded_on_behalf_of(runtime, logged_in, household):
    resident, mother = household["resident"], household["mother"]
    client = logged_in(resident)
    response = client.get(f"/podatki/{mother.id}/")
    assert response.status_code == 200
    assert "działasz jako pełnomocnik" in text_of(response)
    assert "Podatek leśny" in text_of(response)
    [entry] = audit_entries(runtime, "taxpayer.account_view")
    assert (entry.actor_id, entry.taxpayer_id, entry.on_behalf_of_id) == (resident.id, mother.id, mother.id)
    assert entry.details == {"page": "account"}


def test_a_clerks_view_is_recorded(runtime, logged_in, create_user, household):
    clerk = create_user("clerk")
    person = household["person"]
    client = logged_in(clerk)
    assert client.get("/podatki/").status_code == 403  # the overview is the resident's own list
    response = client.get(f"/podatki/{person.id}/")
    assert response.status_code == 200
    assert zl(expected(runtime, person.id).do_zaplaty) in text_of(response)
    assert f"/urzad/podatnicy/{person.id}" in response.get_data(as_text=True)  # the way back is the clerk's card
    assert client.get(f"/podatki/{person.id}/zobowiazania/{household['property']}").status_code == 200
    assert client.get("/podatki/999999/").status_code == 404
    entries = audit_entries(runtime, "taxpayer.account_view")
    assert [(e.actor_id, e.taxpayer_id, e.on_behalf_of_id, e.details["page"]) for e in entries] == [
        (clerk.id, person.id, None, "account"), (clerk.id, person.id, None, "liability")]
    assert entries[1].details["liability_id"] == household["property"]


def test_pages_need_a_login(client, household):
    person = household["person"]
    for path in (f"/podatki/{person.id}/", f"/podatki/{person.id}/wplaty", f"/podatki/{person.id}/kalkulator"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/konto/logowanie")


def test_an_account_without_liabilities(runtime, logged_in, create_user, create_taxpayer):
    resident, taxpayer = create_user(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        account_ops.link_taxpayer(session, user=session.merge(resident), taxpayer=session.merge(taxpayer), relation="self", granted_by=None)
    client = logged_in(resident)
    page = text_of(client.get(f"/podatki/{taxpayer.id}/"))
    assert "Urząd nie przekazał jeszcze żadnych zobowiązań" in page and zl(0) in page
    assert "Nie ma jeszcze żadnych wpłat" in text_of(client.get(f"/podatki/{taxpayer.id}/wplaty"))
