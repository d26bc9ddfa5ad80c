"""Every page in a real browser: axe-core (WCAG 2.1 A/AA) with zero violations, no JS errors or CSP
violations, the main journeys of a resident, a clerk and an administrator, a phone and no JavaScript.

The tests of one process share a live instance and may run in any order or xdist worker: each brings
the state it checks (the administrator's test has the signed-in clerk view a card first).
"""
from __future__ import annotations

import re

import pytest

from tests.browser.helpers import ADMIN, CLERK, PHONE, RESIDENT, Tab, log_in

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


@pytest.mark.parametrize(
    "path, button, error_id",
    [
        ("/konto/rejestracja", "Załóż konto", "full_name-error"),
        ("/konto/haslo/przypomnij", "Wyślij link", "email-error"),
    ],
)
def test_public_form_errors(open_tab, path, button, error_id):
    tab = open_tab()
    tab.goto(path)
    tab.submit(tab.page.locator("main").get_by_role("button", name=button))
    assert tab.page.locator(".govuk-error-summary").is_visible()
    assert tab.page.locator(f"#{error_id}").is_visible()
    tab.check(f"{path}: pusty formularz")


def test_english_pages(open_tab):
    tab = open_tab()
    tab.goto("/?lang=en")
    assert tab.page.locator("html").get_attribute("lang") == "en"
    tab.check("/ (English)")
    tab.goto("/konto/logowanie")
    tab.check("/konto/logowanie (English)")


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

    tab.page.get_by_label("Obecne hasło").fill("to-nie-jest-moje-haslo")
    tab.page.get_by_label("Nowe hasło", exact=True).fill("Inne-Bardzo-Dlugie-Haslo-2026")
    tab.page.get_by_label("Powtórz nowe hasło").fill("Inne-Bardzo-Dlugie-Haslo-2026")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zapisz hasło"))
    assert tab.page.locator("#current-error").is_visible()
    tab.check("zmiana hasła: złe obecne hasło")

    tab.goto("/konto/dane")
    tab.check()
    tab.page.get_by_label("PESEL (nieobowiązkowo)").fill("44051401358")
    tab.page.get_by_label("Numer rachunku do zwrotu nadpłat (nieobowiązkowo)").fill("61 1090 1014 0000 0712 1981 2875")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zapisz dane"))
    assert "PESEL ma błędną cyfrę kontrolną" in tab.page.locator("#declared_pesel-error").inner_text()
    assert "Numer rachunku jest nieprawidłowy" in tab.page.locator("#refund_nrb-error").inner_text()
    tab.check("moje dane: błędny PESEL i rachunek")
    tab.page.get_by_label("PESEL (nieobowiązkowo)").fill("44051401359")
    tab.page.get_by_label("Numer rachunku do zwrotu nadpłat (nieobowiązkowo)").fill("61 1090 1014 0000 0712 1981 2874")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zapisz dane"))
    assert tab.path == "/konto/" and "61 1090 1014 0000 0712 1981 2874" in tab.page.locator("main").inner_text()

    tab.goto("/konto/2fa")
    qr = tab.page.locator(".pf-qr svg")
    assert qr.count() == 1 and qr.is_visible()
    tab.check()
    tab.page.get_by_label("Kod z aplikacji").fill("000000")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Dalej"))
    assert tab.page.locator(".govuk-error-summary").is_visible()
    tab.check("2FA: zły kod")

    # a resident on a clerk's page: the Polish 403 page, still signed in
    response = tab.goto("/urzad/", status=403)
    assert response.status == 403
    assert heading(tab) == "Brak dostępu"
    assert "Wyloguj" in tab.page.locator("header").inner_text()
    tab.check("403 dla mieszkańca")

    log_out(tab)
    tab.goto("/konto/moje-sprawy")
    assert tab.path.startswith("/konto/logowanie"), tab.page.url


# -- clerk --------------------------------------------------------------------------------------------------

def open_first_result(tab: Tab, query: str) -> None:
    tab.goto(f"/urzad/podatnicy/?q={query}")
    with tab.page.expect_navigation():
        tab.page.locator("main table tbody tr").first.get_by_role("link").click()
    assert re.fullmatch(r"/urzad/podatnicy/\d+", tab.path), tab.page.url


def test_clerk_journey(open_tab, clerk_cookies):
    # the clerk signed in through the form and the TOTP step in the clerk_cookies fixture
    tab = open_tab(storage_state=clerk_cookies)
    tab.goto("/urzad/")
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
    open_first_result(tab, "Woźniak")
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

def test_admin_journey(open_tab, clerk_cookies):
    # the clerk looks at a taxpayer's card (again, if the clerk's test ran in this process)
    clerk = open_tab(storage_state=clerk_cookies)
    open_first_result(clerk, "Dudek")

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
    assert rows.count() >= 1
    for text in rows.all_inner_texts():
        assert "taxpayer.view" in text and CLERK.email in text
    tab.check("dziennik: taxpayer.view")

    tab.goto("/urzad/admin/pracownicy")
    tab.check()
    tab.submit(tab.page.locator("main").get_by_role("button", name="Utwórz konto"))
    assert tab.page.locator(".govuk-error-summary").is_visible()
    tab.check("pracownicy: pusty formularz")

    tab.goto("/urzad/admin/strony")
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

    # dated settings: the overview, a refused value, then the gmina's waste-fee schedule
    tab.goto("/urzad/admin/ustawienia")
    assert "Obowiązuje dziś: 10.50 %" in tab.page.locator("main").inner_text()
    tab.check()
    tab.goto("/urzad/admin/ustawienia/interest.threshold")
    tab.page.get_by_label("Obowiązuje od (RRRR-MM-DD)").fill("2014-01-01")
    tab.page.get_by_label("Wartość").fill("9.00")
    tab.page.get_by_label("Podstawa (np. uchwała, obwieszczenie)").fill("test")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Dodaj wartość"))
    assert "już istnieje" in tab.page.locator("#effective_from-error").inner_text()
    tab.check("ustawienia: wartość od tego dnia już istnieje")
    tab.goto("/urzad/admin/ustawienia/waste.schedule")
    tab.check()
    tab.page.get_by_label("Obowiązuje od (RRRR-MM-DD)").fill("2026-01-01")
    tab.page.get_by_label("Jak często płaci się opłatę").select_option("monthly")
    tab.page.get_by_label("Dzień miesiąca terminu płatności (1-31)").fill("15")
    tab.page.get_by_label("z góry (w pierwszym miesiącu okresu)").check()
    tab.page.get_by_label("Podstawa (np. uchwała, obwieszczenie)").fill("uchwała nr XII/85/2025")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Dodaj wartość"))
    assert tab.path == "/urzad/admin/ustawienia"
    assert "co miesiąc, do dnia 15, z góry" in tab.page.locator("main").inner_text()


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
    assert tab.page.locator("main .pf-card").count() >= 3  # 4 once the clerk's test linked another taxpayer
    log_out(tab)
    tab.goto("/konto/moje-sprawy")
    assert tab.path.startswith("/konto/logowanie")



# -- mail-driven journeys ---------------------------------------------------------------------------------

def test_register_confirm_and_reset_password(open_tab, live_mail):
    address = "nowa.mieszkanka@example.com"
    tab = open_tab()
    tab.goto("/konto/rejestracja")
    tab.page.get_by_label("Imię i nazwisko").fill("Nowa Mieszkanka")
    tab.page.get_by_label("Adres e-mail").fill(address)
    tab.page.get_by_label("Hasło", exact=True).fill("Moje-Pierwsze-Haslo-2026")
    tab.page.get_by_label("Powtórz hasło").fill("Moje-Pierwsze-Haslo-2026")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Załóż konto"))
    assert tab.path == "/konto/rejestracja/wyslano"
    tab.check("rejestracja: wysłano link")

    [confirm] = live_mail(address)
    tab.goto(confirm.replace("http://localhost", ""))
    assert tab.path == "/konto/logowanie" and "Adres e-mail potwierdzony" in tab.page.locator("main").inner_text()
    tab.check("logowanie po potwierdzeniu adresu")
    tab.goto(confirm, status=200)  # confirming twice is harmless

    tab.goto("/konto/haslo/przypomnij")
    tab.page.get_by_label("Adres e-mail").fill(address)
    tab.submit(tab.page.locator("main").get_by_role("button", name="Wyślij link"))
    assert heading(tab) == "Sprawdź skrzynkę e-mail"
    tab.check("przypomnienie hasła: wysłano")

    reset = live_mail(address)[-1]
    tab.goto(reset)
    tab.check("nowe hasło")
    tab.page.get_by_label("Nowe hasło", exact=True).fill("Moje-Drugie-Haslo-2026")
    tab.page.get_by_label("Powtórz nowe hasło").fill("Moje-Drugie-Haslo-2026")
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zapisz hasło"))
    assert tab.path == "/konto/logowanie"
    tab.goto(reset, status=400)  # single use
    assert heading(tab) == "Link nie działa"
    tab.check("link do zmiany hasła użyty drugi raz")

    log_in(tab, address, "Moje-Drugie-Haslo-2026")
    assert tab.path == "/konto/moje-sprawy"
    log_out(tab)
