"""E-pisma in a real browser: a resident writes a general letter, attaches a file, downloads it, signs it
(with the test PKI, as a signing application would), uploads it and gets a number and a sealed receipt;
the registry office assigns and answers it; the resident opens the answer. axe-core on every page."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from platforma.esign.seal import configured_trust_anchors
from tests.browser.conftest import LETTER_PKI
from tests.browser.helpers import PHONE, RESIDENT, Tab, log_in
from tests.browser.test_tax_pages import no_horizontal_scroll

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _sign(document: bytes) -> bytes:
    from tests.unit.test_esign_pki import sign

    return sign(document, LETTER_PKI, signing_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))


def _download(tab: Tab, name: str) -> bytes:
    with tab.page.expect_download() as download:
        tab.page.get_by_role("link", name=name).click()
    return download.value.path().read_bytes()


def test_a_resident_files_a_signed_letter_and_the_office_answers_it(open_tab, clerk_cookies, tmp_path):
    tab = open_tab()
    log_in(tab, RESIDENT.email, RESIDENT.password)
    tab.goto("/")
    tab.page.locator("nav").get_by_role("link", name="Moje pisma").click()
    tab.page.wait_for_load_state("load")
    assert tab.path == "/pisma/"
    tab.check("pisma: moje pisma")
    tab.page.get_by_role("button", name="Napisz nowe pismo").click()
    tab.page.wait_for_load_state("load")
    tab.check("pisma: katalog formularzy")
    tab.page.get_by_role("link", name="Pismo ogólne do urzędu").click()
    tab.page.wait_for_load_state("load")
    tab.check("pisma: formularz pisma ogólnego")

    # nothing filled: the error summary links to the field
    tab.submit(tab.page.get_by_role("button", name="Zapisz i przejdź dalej"), status=400)
    summary = tab.page.locator(".govuk-error-summary")
    assert "Wpisz tytuł pisma" in summary.inner_text()
    tab.check("pisma: błędy formularza")

    tab.page.get_by_label("Tytuł pisma").fill("Prośba o kopię decyzji")
    tab.page.get_by_label("Treść pisma").fill("Proszę o kopię decyzji w sprawie podatku od nieruchomości.")
    tab.submit(tab.page.get_by_role("button", name="Zapisz i przejdź dalej"))
    assert re.fullmatch(r"/pisma/\d+", tab.path), tab.page.url
    letter_path = tab.path
    tab.check("pisma: wersja robocza")

    attachment = tmp_path / "umowa.pdf"
    attachment.write_bytes(PDF)
    tab.page.get_by_label("Dołącz plik").set_input_files(str(attachment))
    tab.submit(tab.page.get_by_role("button", name="Dołącz", exact=True))
    assert "umowa.pdf" in tab.page.locator("main").inner_text()

    document = _download(tab, "Pobierz pismo do podpisu (XML)")
    assert "Prośba o kopię decyzji".encode() in document and b"umowa.pdf" in document
    signed = tmp_path / "pismo.xml"
    signed.write_bytes(_sign(document))
    tab.page.get_by_label("Podpisany plik XML").set_input_files(str(signed))
    tab.submit(tab.page.get_by_role("button", name="Złóż podpisane pismo"))
    assert tab.path == letter_path
    text = tab.page.locator("main").inner_text()
    number = re.search(r"Pismo nr (KO\.\d+\.\d{4})", text).group(1)
    assert "wpłynęło" in text and "UPO (XML z pieczęcią urzędu)" in text
    tab.check("pisma: pismo złożone")
    receipt = _download(tab, "UPO (XML z pieczęcią urzędu)")
    from platforma.esign.verify import verify_document

    assert b"urn:platforma:upo:1" in receipt and verify_document(receipt, trust_anchors=[_seal_certificate(tab)]).valid

    # the registry office: the inbox, the letter, assignment and a reply
    office = open_tab(storage_state=clerk_cookies)
    office.goto("/urzad/kancelaria/")
    office.check("kancelaria: pisma przychodzące")
    office.page.get_by_role("link", name=number).click()
    office.page.wait_for_load_state("load")
    assert "podpis ważny" in office.page.locator("main").inner_text()
    office.check("kancelaria: pismo")
    office.page.get_by_label("Wydział").select_option(label="FN – Referat Finansowy")
    office.submit(office.page.get_by_role("button", name="Zapisz dekretację"))
    office.page.get_by_label("Tytuł odpowiedzi").fill("Kopia decyzji")
    office.page.get_by_label("Treść").fill("W załączeniu kopia decyzji.")
    office.submit(office.page.get_by_role("button", name="Wyślij odpowiedź"))
    assert "udzielono odpowiedzi" in office.page.locator("main").inner_text()
    office.check("kancelaria: po odpowiedzi")

    # the resident opens the reply: the confirmation first, then the text
    tab.goto(letter_path)
    tab.page.get_by_role("link", name="Odbierz odpowiedź").click()
    tab.page.wait_for_load_state("load")
    tab.check("pisma: odpowiedź przed odbiorem")
    tab.submit(tab.page.get_by_role("button", name="Odbierz i przeczytaj odpowiedź"))
    assert "W załączeniu kopia decyzji." in tab.page.locator("main").inner_text()
    tab.check("pisma: odpowiedź")


def _seal_certificate(tab: Tab):
    from cryptography import x509

    from tests.browser import conftest

    return x509.load_pem_x509_certificate((conftest.LIVE_MAIL_DIR.parent / "seal-cert.pem").read_bytes())


def test_the_letter_pages_fit_a_phone_without_javascript_too(open_tab):
    tab = open_tab(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(tab, RESIDENT.email, RESIDENT.password)
    tab.goto("/pisma/nowe/pismo_ogolne")
    no_horizontal_scroll(tab)
    tab.check("pisma: formularz (telefon)")
    plain = open_tab(javascript=False)
    log_in(plain, RESIDENT.email, RESIDENT.password)
    plain.goto("/pisma/nowe/pismo_ogolne")
    plain.page.get_by_label("Tytuł pisma").fill("Bez JavaScriptu")
    plain.page.get_by_label("Treść pisma").fill("Formularz działa bez skryptów.")
    plain.submit(plain.page.get_by_role("button", name="Zapisz i przejdź dalej"))
    assert re.fullmatch(r"/pisma/\d+", plain.path)
    assert "Bez JavaScriptu" in plain.page.locator("main").inner_text()


def test_every_form_of_the_catalogue_is_accessible(open_tab):
    from platforma.episma.forms import CATALOGUE

    tab = open_tab()
    log_in(tab, RESIDENT.email, RESIDENT.password)
    for code in CATALOGUE:
        tab.goto(f"/pisma/nowe/{code}")
        tab.check(f"pisma: formularz {code}")
        tab.submit(tab.page.get_by_role("button", name="Zapisz i przejdź dalej"), status=400)
        assert tab.page.locator(".govuk-error-summary").count() == 1, code
        tab.check(f"pisma: formularz {code} z błędami")
