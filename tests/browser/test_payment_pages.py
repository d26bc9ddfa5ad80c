"""Paying in a real browser: the resident chooses, checks the allocation, pays in the demo's sandbox and
comes back to a page that tells the truth; the transfer page with its QR code; the clerk's statement
pages. axe-core on every page, on a desktop and on a 375 px phone."""
from __future__ import annotations

import re

import pytest

from tests.browser.helpers import DESKTOP, PHONE, RESIDENT, Tab, log_in
from tests.browser.test_tax_pages import no_horizontal_scroll, resident_liability, tables_scroll_inside_their_box  # noqa: F401

pytestmark = pytest.mark.browser


def _own_account(tab: Tab) -> str:
    tab.goto("/podatki/")
    link = tab.page.locator(".pf-card").first.get_by_role("link", name=re.compile("Zobacz konto"))
    return re.search(r"/podatki/(\d+)/", link.get_attribute("href")).group(1)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_resident_pays_online_and_by_transfer(open_tab, resident_liability, viewport):  # noqa: F811
    phone = viewport == "phone"
    tab = open_tab(viewport=PHONE, is_mobile=True, has_touch=True) if phone else open_tab(viewport=DESKTOP)

    def look(label: str) -> None:
        tab.check(f"płatności: {label} ({viewport})")
        if phone:
            no_horizontal_scroll(tab)
        tables_scroll_inside_their_box(tab)

    log_in(tab, RESIDENT.email, RESIDENT.password)
    taxpayer_id = _own_account(tab)
    tab.goto(f"/podatki/{taxpayer_id}/zaplac")
    assert tab.page.locator("h1").inner_text() == "Zapłać online"
    look("wybór")

    # a wrong amount: the error summary, its link to the field, nothing started
    tab.page.get_by_label("Inna kwota").check()
    tab.page.get_by_label("Kwota w złotych").fill("dwadzieścia")
    tab.submit(tab.page.get_by_role("button", name=re.compile("Dalej")), status=400)
    summary = tab.page.locator(".govuk-error-summary")
    assert "Wpisz kwotę w złotych" in summary.inner_text()
    assert tab.page.title().startswith("Błąd:")
    look("zła kwota")
    summary.get_by_role("link").first.click()
    assert tab.page.evaluate("document.activeElement.id") == "amount"

    tab.page.get_by_label("Inna kwota").check()
    tab.page.get_by_label("Kwota w złotych").fill("25,50")
    tab.submit(tab.page.get_by_role("button", name=re.compile("Dalej")))
    assert tab.page.locator("h1").inner_text() == "Sprawdź płatność"
    assert "25,50" in tab.page.locator("main").inner_text()
    look("podgląd")

    tab.submit(tab.page.get_by_role("button", name=re.compile("Zapłać 25,50")))
    assert tab.path.startswith("/platnosci/piaskownica/PF-")
    reference = tab.path.rsplit("/", 1)[1]
    look("piaskownica")
    tab.submit(tab.page.get_by_role("button", name="Zapłać", exact=True))
    assert tab.path == f"/platnosci/{reference}/powrot"
    assert tab.page.locator("h1").inner_text() == "Płatność zaksięgowana"
    look("zaksięgowana")

    tab.page.get_by_role("navigation", name="Menu główne").get_by_role("link", name="Moje płatności").click()
    tab.page.wait_for_load_state("load")
    assert reference in tab.page.locator("main").inner_text()
    look("moje płatności")

    tab.goto(f"/podatki/{taxpayer_id}/przelew")
    assert tab.page.locator("h1").inner_text() == "Dane do przelewu"
    assert tab.page.locator("svg.pf-qr").count() == 1
    assert re.search(r"\d\d \d{4} \d{4} \d{4} \d{4} \d{4} \d{4}", tab.page.locator("main").inner_text())
    look("przelew")


def test_clerk_imports_a_statement_and_assigns_a_credit(open_tab, clerk_cookies):
    from tests.integration.test_payments_statements import camt053

    tab = open_tab(viewport=DESKTOP, storage_state=clerk_cookies)
    tab.goto("/urzad/platnosci/wyciagi")
    assert tab.page.locator("h1").inner_text() == "Wyciągi bankowe"
    tab.check("urząd: wyciągi")
    statement = camt053([("42.00", True, "wplata bez danych", "", "JAN NIEZNANY")], statement_id="PRZEGLADARKA-1")
    tab.page.get_by_label(re.compile("Plik wyciągu")).set_input_files(
        files=[{"name": "wyciag.xml", "mimeType": "application/xml", "buffer": statement}])
    tab.submit(tab.page.get_by_role("button", name="Wczytaj wyciąg"))
    assert tab.page.locator("h1").inner_text() == "Wczytanie wyciągu"
    assert "Do przypisania: 1" in tab.page.locator("main").inner_text()
    tab.check("urząd: wyciąg wczytany")
    tab.page.get_by_role("link", name="Przejdź do wpłat czekających na przypisanie").click()
    tab.page.wait_for_load_state("load")
    tab.check("urząd: nieprzypisane")
    tab.page.get_by_label("Szukaj wpłaty").fill("42,00")
    tab.submit(tab.page.get_by_role("button", name="Szukaj", exact=True))
    assert "Wpłat: 1, razem 42,00" in tab.page.locator("main").inner_text()
    tab.check("urząd: nieprzypisane, wyszukane")
    tab.page.get_by_role("link", name=re.compile("Przypisz wpłatę 42,00")).first.click()
    tab.page.wait_for_load_state("load")
    assert tab.page.get_by_role("heading", name="Albo to wypłata operatora płatności").is_visible()
    tab.check("urząd: pozycja wyciągu")
    tab.submit(tab.page.get_by_role("button", name="Przypisz i zaksięguj"), status=400)
    assert tab.page.locator(".govuk-error-summary").is_visible()
    tab.check("urząd: pozycja wyciągu, błąd")
    tab.page.get_by_label("Dlaczego wpłata ma wrócić do nadawcy").fill("wpłata nie dotyczy gminy")
    tab.submit(tab.page.get_by_role("button", name="Oznacz do zwrotu"))
    tab.goto("/urzad/platnosci/wyciagi/do-zwrotu")
    assert "wpłata nie dotyczy gminy" in tab.page.get_by_role("region", name="Wpłaty do zwrotu").inner_text()
    tab.check("urząd: wpłaty do zwrotu")
    tab.submit(tab.page.get_by_role("button", name=re.compile("Odesłano dziś wpłatę 42,00")))
    assert "Ostatnio odesłane" in tab.page.locator("main").inner_text()
    tab.check("urząd: wpłaty do zwrotu, odesłana")
    tab.goto("/urzad/platnosci/wyciagi")
    tab.page.get_by_label(re.compile("Plik wyciągu")).set_input_files(files=[{
        "name": "zly.xml", "mimeType": "application/xml",
        "buffer": camt053([("1.00", True, "x", "", "A")], statement_id="PRZEGLADARKA-2", closing="5.00")}])
    tab.submit(tab.page.get_by_role("button", name="Wczytaj wyciąg"))
    assert "Wyciąg odrzucony, nic nie zaksięgowano" in tab.page.locator(".govuk-error-summary").inner_text()
    tab.check("urząd: wyciąg odrzucony")
    tab.goto("/urzad/platnosci/")
    tab.check("urząd: płatności online")
    tab.goto("/urzad/platnosci/raport")
    tab.check("urząd: raport dzienny")


def test_a_statement_still_importing_shows_itself_when_done(open_tab, clerk_cookies):
    """A large statement's page says the import is running (a live region, a link to check again) and,
    with JavaScript, loads itself again once the job has ended."""
    from platforma.core.db import transaction
    from platforma.core.jobs import OutboxJob, run_due
    from platforma.payments.models import StatementImport
    from tests.browser import conftest as live
    from tests.integration.test_payments_statements import camt053

    data = camt053([("13.00", True, "wplata bez danych", "", "JAN NIEZNANY")], statement_id="PRZEGLADARKA-3")
    with transaction(live.LIVE_RUNTIME.session_factory) as session:
        # as the upload leaves it when the job has not run yet (Huey busy with another file)
        upload = StatementImport(file_name="duzy.xml", file_sha256="0" * 64, size_bytes=len(data), content=data,
                                 status="queued", message="")
        session.add(upload)
        session.flush()
        session.add(OutboxJob(kind="payments.import_statement", payload={"import_id": upload.id}))
        import_id = upload.id
    tab = open_tab(viewport=PHONE, storage_state=clerk_cookies)
    tab.goto(f"/urzad/platnosci/wyciagi/wczytania/{import_id}")
    assert tab.page.get_by_role("status").inner_text().startswith("Wyciąg czeka w kolejce.")
    assert tab.page.get_by_role("link", name="Sprawdź ponownie").is_visible()
    tab.check("urząd: wyciąg w kolejce")
    run_due(live.LIVE_RUNTIME)
    tab.page.wait_for_selector("text=Pozycji: 1.", timeout=20_000)
    assert "Do przypisania: 1" in tab.page.locator("main").inner_text()
    assert tab.js_errors() == []


def test_the_zaplac_button_on_the_account_page(open_tab, resident_liability, clerk_cookies):  # noqa: F811
    """The account page's "Zapłać" and "Zapłać za <rok> r.": buttons to the keyboard and to a screen
    reader (role and name), links without JavaScript; a clerk looking at the account sees none."""
    tab = open_tab(viewport=DESKTOP)
    log_in(tab, RESIDENT.email, RESIDENT.password)
    taxpayer_id = _own_account(tab)
    tab.goto(f"/podatki/{taxpayer_id}/")
    pay = tab.page.get_by_role("button", name="Zapłać", exact=True)
    years = tab.page.get_by_role("button", name=re.compile(r"^Zapłać za \d{4} r\.$"))
    assert pay.is_visible() and years.count() >= 1
    tab.check("konto: przyciski Zapłać")

    # Tab reaches the button (it is in the page's focus order) and Enter follows it
    for _ in range(80):
        tab.page.keyboard.press("Tab")
        if tab.page.evaluate("document.activeElement.textContent.trim()") == "Zapłać":
            break
    else:
        raise AssertionError("Tab never reached the Zapłać button")
    assert tab.page.evaluate("document.activeElement.getAttribute('role')") == "button"
    with tab.page.expect_navigation():
        tab.page.keyboard.press("Enter")
    assert tab.path == f"/podatki/{taxpayer_id}/zaplac"
    assert tab.page.locator("h1").inner_text() == "Zapłać online"

    # Space presses a button: the year's installments are chosen on the first step
    tab.goto(f"/podatki/{taxpayer_id}/")
    year_button = years.first
    year = re.search(r"\d{4}", year_button.inner_text()).group(0)
    year_button.focus()
    with tab.page.expect_navigation():
        tab.page.keyboard.press("Space")
    assert tab.path == f"/podatki/{taxpayer_id}/zaplac?rok={year}"
    assert tab.page.get_by_label("Wybrane raty").is_checked()
    checked = tab.page.locator("input[name=installment]:checked")
    assert checked.count() >= 1
    for i in range(checked.count()):
        label = tab.page.locator(f"label[for={checked.nth(i).get_attribute('id')}]").inner_text()
        assert f" {year}, rata " in label
    tab.check("płatności: raty roku z konta")

    # without JavaScript the button is a plain link
    plain = open_tab(viewport=DESKTOP, javascript=False)
    log_in(plain, RESIDENT.email, RESIDENT.password)
    plain.goto(f"/podatki/{taxpayer_id}/")
    plain.page.get_by_role("button", name="Zapłać", exact=True).focus()
    with plain.page.expect_navigation():
        plain.page.keyboard.press("Enter")
    assert plain.path == f"/podatki/{taxpayer_id}/zaplac"

    clerk = open_tab(viewport=DESKTOP, storage_state=clerk_cookies)
    clerk.goto(f"/podatki/{taxpayer_id}/")
    assert clerk.page.locator("h1").inner_text() == "Konto podatnika"
    assert clerk.page.get_by_role("button", name=re.compile("^Zapłać")).count() == 0
    assert clerk.page.locator("a[href*='/zaplac']").count() == 0
    clerk.check("konto oglądane przez urzędnika: bez przycisku Zapłać")
