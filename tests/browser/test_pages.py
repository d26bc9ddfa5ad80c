"""Every page in a real browser: axe-core (WCAG 2.1 A/AA) with zero violations, no JS errors or CSP
violations, the main journeys of a resident, a clerk and an administrator, a phone and no JavaScript.

The tests share one live instance and run in file order: the administrator's test reads the audit
entries that the clerk's test leaves.
"""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ADMIN, CLERK, PHONE, RESIDENT, Tab, log_in

pytestmark = pytest.mark.browser


def heading(tab: Tab) -> str:
    return tab.page.locator("h1").first.inner_text().strip()


def log_out(tab: Tab) -> None:
    tab.submit(tab.page.locator("header").get_by_role("button", name="Wyloguj"))
    assert tab.path == "/", tab.page.url
    assert "Wylogowano" in tab.page.locator("main").inner_text()


def no_horizontal_scroll(tab: Tab) -> None:
    scroll_width, inner_width = tab.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{tab.page.url}: page is {scroll_width}px wide in a {inner_width}px viewport"


# -- anonymous -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "path, title",
    [
        ("/", None),
        ("/konto/logowanie", "Zaloguj się"),
        ("/konto/rejestracja", None),
        ("/konto/haslo/przypomnij", None),
        ("/deklaracja-dostepnosci", "Deklaracja dostępności"),
        ("/regulamin", None),
        ("/rodo", None),
    ],
)
def test_public_pages(open_tab, path, title):
    tab = open_tab()
    tab.goto(path)
    if title:
        assert heading(tab) == title
    tab.check()


def test_not_found_page(open_tab):
    tab = open_tab()
    tab.goto("/nie-ma-takiej-strony", status=404)
    assert heading(tab) == "Nie ma takiej strony"
    tab.check("404")


def test_login_errors(open_tab):
    tab = open_tab()
    tab.goto("/konto/logowanie")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zaloguj się"))
    summary = tab.page.locator(".govuk-error-summary")
    assert summary.is_visible()
    assert "Wpisz adres e-mail" in summary.inner_text()
    assert tab.page.title().startswith("Błąd:")
    tab.check("logowanie: pusty formularz")

    tab.page.get_by_label("Adres e-mail").fill(RESIDENT.email)
    tab.page.get_by_label("Hasło", exact=True).fill("zle-haslo-na-pewno")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zaloguj się"))
    assert "Nieprawidłowy adres e-mail lub hasło" in summary.inner_text()
    tab.check("logowanie: złe hasło")


# -- resident ----------------------------------------------------------------------------------------------

def test_resident_journey(open_tab):
    tab = open_tab()
    log_in(tab, RESIDENT.email, RESIDENT.password)
    assert tab.path == "/konto/moje-sprawy"
    assert heading(tab) == "Moje sprawy"
    cards = tab.page.locator("main .pf-card")
    assert cards.count() == 3
    assert "Jan Kowalski" in cards.first.inner_text() or "Jan Kowalski" in tab.page.locator("main").inner_text()
    tab.check()

    for path in ("/konto/", "/konto/historia-logowan", "/konto/haslo"):
        tab.goto(path)
        tab.check()

    tab.goto("/konto/2fa")
    qr = tab.page.locator(".pf-qr svg")
    assert qr.count() == 1 and qr.is_visible()
    tab.check()

    log_out(tab)
    tab.goto("/konto/moje-sprawy")
    assert tab.path.startswith("/konto/logowanie"), tab.page.url


# -- clerk --------------------------------------------------------------------------------------------------

def test_clerk_journey(open_tab):
    tab = open_tab()
    log_in(tab, CLERK.email, CLERK.password, CLERK.totp_secret, check=True)
    assert tab.path == "/urzad/"
    assert heading(tab).startswith("Dzień dobry")
    tab.check()
    tab.page.screenshot(path="/tmp/shot-clerk-dashboard.png", full_page=True)

    tab.goto("/urzad/podatnicy/")
    tab.check()

    tab.goto("/urzad/podatnicy/?q=Kowalski")
    results = tab.page.locator("main table tbody tr")
    assert results.count() >= 1
    tab.check()

    with tab.page.expect_navigation():
        results.first.get_by_role("link").click()
    assert re.fullmatch(r"/urzad/podatnicy/\d+", tab.path), tab.page.url
    tab.check("karta podatnika")

    # link the demo resident to another taxpayer, as a representative
    tab.goto("/urzad/podatnicy/?q=Woźniak")
    with tab.page.expect_navigation():
        tab.page.locator("main table tbody tr").first.get_by_role("link").click()
    card_path = tab.path
    form = tab.page.locator("main form").filter(has=tab.page.get_by_role("button", name="Powiąż konto"))
    form.get_by_label("Adres e-mail konta mieszkańca").fill(RESIDENT.email)
    form.get_by_label("Pełnomocnik podatnika").check()
    form.get_by_label("Podstawa powiązania").fill("pełnomocnictwo szczególne z testu przeglądarkowego")
    tab.submit(form.get_by_role("button", name="Powiąż konto"))
    assert tab.path == card_path
    banner = tab.page.locator(".govuk-notification-banner--success")
    assert banner.is_visible()
    assert RESIDENT.email in banner.inner_text()
    assert RESIDENT.email in tab.page.locator("main table").inner_text()
    tab.check("karta podatnika: powiązano konto")

    form = tab.page.locator("main form").filter(has=tab.page.get_by_role("button", name="Powiąż konto"))
    form.get_by_label("Adres e-mail konta mieszkańca").fill("to-nie-jest-adres")
    form.get_by_label("Podstawa powiązania").fill("test błędu")
    tab.submit(form.get_by_role("button", name="Powiąż konto"), status=400)
    summary = tab.page.locator(".govuk-error-summary")
    assert summary.is_visible()
    assert tab.page.locator("#email-error").is_visible()
    tab.check("karta podatnika: błędny e-mail")


# -- administrator -------------------------------------------------------------------------------------------

def test_admin_journey(open_tab):
    tab = open_tab()
    log_in(tab, ADMIN.email, ADMIN.password, ADMIN.totp_secret)
    assert tab.path == "/urzad/"

    tab.goto("/urzad/admin/dziennik")
    log_text = tab.page.locator("main table").inner_text()
    assert "taxpayer.view" in log_text
    assert CLERK.email in log_text
    tab.check()

    tab.goto("/urzad/admin/dziennik?action=taxpayer.view")
    rows = tab.page.locator("main table tbody tr")
    assert rows.count() >= 2
    for text in rows.all_inner_texts():
        assert "taxpayer.view" in text and CLERK.email in text
    tab.check("dziennik: taxpayer.view")

    for path in ("/urzad/admin/pracownicy", "/urzad/admin/strony"):
        tab.goto(path)
        tab.check()

    tab.goto("/urzad/admin/strony/deklaracja-dostepnosci")
    tab.check()
    person = "Anna Dostępna, koordynatorka do spraw dostępności"
    tab.page.get_by_label("Osoba do kontaktu w sprawie dostępności").fill(person)
    # the test gmina has no telephone number, and the declaration requires one
    tab.page.get_by_label("Numer telefonu osoby do kontaktu").fill("")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zapisz nową wersję"))
    summary = tab.page.locator(".govuk-error-summary")
    assert summary.is_visible()
    assert summary.get_by_role("link").first.get_attribute("href") == "#contact_phone"
    assert tab.page.locator("#contact_phone-error").is_visible()
    tab.check("deklaracja: błąd formularza")
    tab.page.get_by_label("Numer telefonu osoby do kontaktu").fill("+48 61 123 45 67")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zapisz nową wersję"))
    assert tab.path == "/urzad/admin/strony", tab.page.locator("main").inner_text()[:1000]
    assert tab.page.locator(".govuk-notification-banner--success").is_visible()
    tab.goto("/deklaracja-dostepnosci")
    assert tab.page.locator("#a11y-osoba").inner_text() == person
    assert tab.page.locator("#a11y-telefon").inner_text() == "+48 61 123 45 67"
    tab.check("deklaracja po zmianie")

    tab.goto("/urzad/admin/wtyczki")
    tab.check()


# -- phone --------------------------------------------------------------------------------------------------

def test_phone_layout(open_tab):
    tab = open_tab(viewport=PHONE, is_mobile=True, has_touch=True)
    tab.goto("/")
    no_horizontal_scroll(tab)
    tab.check("telefon: strona główna")
    tab.page.screenshot(path="/tmp/shot-home-phone.png", full_page=True)

    log_in(tab, RESIDENT.email, RESIDENT.password)
    assert tab.path == "/konto/moje-sprawy"
    no_horizontal_scroll(tab)
    tab.check("telefon: moje sprawy")


# -- no JavaScript ---------------------------------------------------------------------------------------------

def test_without_javascript(open_tab):
    tab = open_tab(javascript=False)
    log_in(tab, RESIDENT.email, RESIDENT.password)
    assert tab.path == "/konto/moje-sprawy"
    assert tab.page.locator("main .pf-card").count() >= 3
    log_out(tab)
    tab.goto("/konto/moje-sprawy")
    assert tab.path.startswith("/konto/logowanie")


# -- a signed-in resident on a clerk's page -----------------------------------------------------------------
# (last in the file, so that with -x a failure here does not hide the other pages)

def test_resident_gets_polish_403_on_backoffice(open_tab):
    tab = open_tab()
    log_in(tab, RESIDENT.email, RESIDENT.password)
    response = tab.goto("/urzad/", status=403)
    assert response.status == 403
    assert heading(tab) == "Brak dostępu"
    assert "Wyloguj" in tab.page.locator("header").inner_text()  # still signed in, with the usual header
    tab.check("403 dla mieszkańca")
