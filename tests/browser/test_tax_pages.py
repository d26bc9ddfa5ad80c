"""The resident's tax pages in a real browser: axe-core on every page, on a desktop and on a 375 px phone
where the page itself never scrolls sideways (wide tables scroll inside their .pf-table-wrap).

The demo resident's own account comes from the demo's taxes (platforma/demo/taxes.py). Should the demo
ever hold no liability for him, the test gives his account one through the taxes operations, in the
live instance's database, so that the liability page is always visited.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.accounts import operations as account_ops
from platforma.core.db import make_engine, make_session_factory, transaction
from platforma.taxes import operations as ops
from platforma.taxes.models import LiabilityParty
from tests.browser.helpers import ADMIN, DESKTOP, PHONE, RESIDENT, Tab, log_in

pytestmark = pytest.mark.browser


def no_horizontal_scroll(tab: Tab) -> None:
    scroll_width, inner_width = tab.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{tab.page.url}: page is {scroll_width}px wide in a {inner_width}px viewport"


def tables_scroll_inside_their_box(tab: Tab) -> None:
    """Every table sits in a focusable, labelled region that is no wider than the page."""
    boxes = tab.page.evaluate(
        """[...document.querySelectorAll('table')].map(t => {
             const wrap = t.closest('.pf-table-wrap');
             return wrap && {tabindex: wrap.getAttribute('tabindex'), role: wrap.getAttribute('role'),
                             label: wrap.getAttribute('aria-label'), width: wrap.getBoundingClientRect().right};
           })"""
    )
    width = tab.page.evaluate("window.innerWidth")
    for box in boxes:
        assert box, f"{tab.page.url}: a table outside .pf-table-wrap"
        assert box["tabindex"] == "0" and box["role"] == "region" and box["label"], box
        assert box["width"] <= width, f"{tab.page.url}: a table box ends at {box['width']}px in a {width}px viewport"


@pytest.fixture(scope="session")
def resident_liability(live_server, tmp_path_factory) -> None:
    """Make sure the demo resident's own account holds a liability (the demo normally has several)."""
    [database] = list(tmp_path_factory.getbasetemp().glob("browser-instance[0-9]*/platforma.sqlite3"))
    engine = make_engine(f"sqlite:///{database}")
    try:
        with transaction(make_session_factory(engine)) as session:
            resident = account_ops.find_user(session, RESIDENT.email)
            own = [a.taxpayer_id for a in account_ops.taxpayers_of(session, resident) if a.relation == "self"]
            assert own, "the demo resident is linked to no taxpayer of his own"
            if session.scalar(sa.select(sa.func.count()).select_from(LiabilityParty).where(LiabilityParty.taxpayer_id == own[0])):
                return
            year = dt.date.today().year
            ops.assess_liability(
                session, tax_kind="nieruchomosci", payer_type="natural", year=year, amount=Decimal(480),
                parties=[(own[0], "principal")],
                installments=[(dt.date(year, m, 15), Decimal(120)) for m in (3, 5, 9, 11)],
                booked_on=dt.date(year, 2, 1), source="browser-test", source_key=f"browser:{own[0]}",
                description=f"Podatek od nieruchomości {year}",
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_resident_tax_pages(open_tab, resident_liability, viewport):
    phone = viewport == "phone"
    tab = open_tab(viewport=PHONE, is_mobile=True, has_touch=True) if phone else open_tab(viewport=DESKTOP)

    def look(label: str) -> None:
        tab.check(f"podatki: {label} ({viewport})")
        if phone:
            no_horizontal_scroll(tab)
        tables_scroll_inside_their_box(tab)

    log_in(tab, RESIDENT.email, RESIDENT.password)
    # the menu leads to the overview
    tab.page.get_by_role("navigation", name="Menu główne").get_by_role("link", name="Moje podatki i opłaty").click()
    tab.page.wait_for_load_state("load")
    assert tab.path == "/podatki/"
    assert tab.page.locator("h1").inner_text() == "Moje podatki i opłaty"
    look("przegląd")

    # the resident's own account (the first card: his own, then those he represents)
    first_card = tab.page.locator(".pf-card").first
    assert "Jan Kowalski" in first_card.inner_text()
    tab.submit(first_card.get_by_role("link", name=re.compile("Zobacz konto")))
    assert re.fullmatch(r"/podatki/\d+/", tab.path), tab.path
    taxpayer_path = tab.path
    main = tab.page.locator("main")
    assert tab.page.locator("h1").inner_text() == "Konto podatnika"
    assert re.search(r"Do zapłaty dziś \(\d\d\.\d\d\.\d{4}\)", main.inner_text())
    assert re.search(r"Dane według stanu na \d\d\.\d\d\.\d{4} \d\d:\d\d", main.inner_text())
    assert tab.page.locator("#do-zaplaty-dzis").inner_text().endswith("zł")
    look("konto")

    # a liability: its schedule with status tags
    liability_link = tab.page.locator("table a[href*='/zobowiazania/']").first
    name = liability_link.inner_text()
    tab.submit(liability_link)
    assert "/zobowiazania/" in tab.path
    assert tab.page.locator("h1").inner_text().startswith(name)
    assert tab.page.locator("tr[data-installment] .govuk-tag").count() >= 1
    look("zobowiązanie")

    # the payments
    tab.goto(taxpayer_path + "wplaty")
    assert tab.page.locator("h1").inner_text() == "Historia wpłat"
    look("wpłaty")

    # the calculator: a date that does not exist, then a real one
    tab.goto(taxpayer_path)
    tab.submit(tab.page.get_by_role("navigation", name="Konto podatnika").get_by_role("link", name="Ile zapłacę w wybranym dniu"))
    assert tab.path.startswith(taxpayer_path + "kalkulator")
    look("kalkulator")
    tab.page.get_by_label("Dzień", exact=True).fill("31")
    tab.page.get_by_label("Miesiąc", exact=True).fill("2")
    tab.page.get_by_label("Rok", exact=True).fill(str(dt.date.today().year))
    tab.submit(tab.page.locator("main").get_by_role("button", name="Oblicz"))
    summary = tab.page.locator(".govuk-error-summary")
    assert summary.is_visible() and "Wpisz prawdziwą datę" in summary.inner_text()
    assert tab.page.title().startswith("Błąd:")
    assert tab.page.locator("#wynik").count() == 0
    look("kalkulator: zła data")
    # the summary's link takes the focus to the field to correct
    summary.get_by_role("link").first.click()
    assert tab.page.evaluate("document.activeElement.id") == "dzien"

    day = dt.date.today() + dt.timedelta(days=40)
    tab.page.get_by_label("Dzień", exact=True).fill(str(day.day))
    tab.page.get_by_label("Miesiąc", exact=True).fill(str(day.month))
    tab.page.get_by_label("Rok", exact=True).fill(str(day.year))
    tab.submit(tab.page.locator("main").get_by_role("button", name="Oblicz"))
    assert tab.page.locator(".govuk-error-summary").count() == 0
    assert tab.page.locator("#wynik").inner_text() == f"Stan konta na {day:%d.%m.%Y}"
    assert "Odsetki za zwłokę rosną z każdym dniem" in tab.page.locator("main").inner_text()
    look("kalkulator: wynik")



@pytest.fixture(scope="session")
def expired_account(live_server, tmp_path_factory) -> int:
    """A taxpayer of the live instance with a 2018 property tax left unpaid (expired after 2 January
    2024: 31 December 2023 was a Sunday, art. 70 OP), a current one, and a manual posting waiting for a second clerk."""
    from platforma.taxes.models import Decision, PostingProposal, Taxpayer

    [database] = list(tmp_path_factory.getbasetemp().glob("browser-instance[0-9]*/platforma.sqlite3"))
    engine = make_engine(f"sqlite:///{database}")
    try:
        with transaction(make_session_factory(engine)) as session:
            taxpayer = Taxpayer(kind="natural", first_name="Zofia", last_name="Przedawniona", pesel="44051401458",
                                street="ul. Stara 1", postal_code="62-100", city="Przykładowo", source="browser-test",
                                source_key="expired")
            session.add(taxpayer)
            session.flush()
            for year, key in ((2018, "old"), (dt.date.today().year, "new")):
                decision = Decision(number=f"FN.3120.{key}.{year}", document_type="decyzja", year=year, issued_on=dt.date(year, 2, 1),
                                    delivered_on=dt.date(year, 2, 5), source="browser-test", source_key=f"d-{key}")
                liability = ops.assess_liability(
                    session, tax_kind="nieruchomosci", payer_type="natural", year=year, amount=Decimal(400),
                    parties=[(taxpayer.id, "principal")], installments=[(dt.date(year, m, 15), Decimal(100)) for m in (3, 5, 9, 11)],
                    booked_on=dt.date(year, 2, 5), source="browser-test", source_key=key, decision=decision,
                    description=f"Podatek od nieruchomości {year}")
            proposer = account_ops.find_user(session, ADMIN.email)  # not the clerk who looks at the list
            session.add(PostingProposal(taxpayer_id=taxpayer.id, liability_id=liability.id,
                                        installment_id=liability.installments[0].id, kind="odpis", amount=Decimal("10.00"),
                                        value_date=dt.date.today(), reason="decyzja zmieniająca (test przeglądarkowy)",
                                        proposed_by_id=proposer.id, state="proposed", decision_reason=""))
            return taxpayer.id
    finally:
        engine.dispose()


def test_clerk_tax_pages_of_this_issue(open_tab, clerk_cookies, expired_account):
    """The archive of expired liabilities (clerk's view of the account), the limitation page with its
    form, the ledger with the set-off request, and the postings waiting for approval: axe on each."""
    tab = open_tab(storage_state=clerk_cookies)
    tab.goto(f"/podatki/{expired_account}/")
    archive = tab.page.locator("#archiwum")
    assert archive.inner_text() == "Archiwum (zobowiązania przedawnione)"
    assert "02.01.2024" in tab.page.locator("tr[data-archived]").first.inner_text()
    tables_scroll_inside_their_box(tab)
    tab.check("podatki: archiwum przedawnionych (urzędnik)")

    tab.goto(f"/urzad/podatnicy/{expired_account}/przedawnienie")
    assert "02.01.2024" in tab.page.locator("main").inner_text()  # 31.12.2023: a Sunday
    tables_scroll_inside_their_box(tab)
    tab.check("przedawnienie")
    form = tab.page.locator("main form")
    form.get_by_label("Zobowiązanie").select_option(label="Podatek od nieruchomości 2018 (FN.3120.old.2018)")
    form.get_by_role("radio", name=re.compile("przerwanie biegu")).check()
    form.get_by_label("Data zdarzenia (RRRR-MM-DD)").fill("2023-06-01")
    tab.submit(form.get_by_role("button", name="Zapisz"), status=400)  # no reason: the error summary
    assert "Podaj podstawę wpisu" in tab.page.locator(".govuk-error-summary").inner_text()
    tab.check("przedawnienie: błąd")
    form = tab.page.locator("main form")
    form.get_by_label("Podstawa wpisu").fill("zajęcie rachunku bankowego, tytuł wykonawczy 1/2023")
    tab.submit(form.get_by_role("button", name="Zapisz"))
    assert "Termin przedawnienia przeliczono" in tab.page.locator(".govuk-notification-banner").inner_text()
    assert "01.06.2028" in tab.page.locator("main").inner_text()

    tab.goto(f"/urzad/podatnicy/{expired_account}/ksiegowania")
    tab.page.get_by_text("Wniosek o zaliczenie nadpłaty na przyszłe zobowiązania").click()
    tab.check("księgowania z wnioskiem o zaliczenie nadpłaty")

    tab.goto("/urzad/podatnicy/ksiegowania-do-zatwierdzenia")
    assert "decyzja zmieniająca (test przeglądarkowy)" in tab.page.locator("main").inner_text()
    tab.check("księgowania do zatwierdzenia")
