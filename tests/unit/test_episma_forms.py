"""The forms catalogue of e-pisma: web forms, the CRD-structured XML and its schemas, reading signed and
hostile documents, the HTML view and the tagged PDF with the XML embedded."""
from __future__ import annotations

import datetime as dt
import io
import socket
import threading
import uuid

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree
from werkzeug.datastructures import MultiDict

from platforma.app import create_app
from platforma.episma.forms import (
    CATALOGUE, Attachment, DocumentMeta, FormDocumentError, Party, SchemaLoadError, get_form, letter_sections,
    load_schema, parse_letter, render_letter_html, render_letter_pdf,
)
from platforma.episma.forms.rules import kw_check_digit, normalise_kw, waste_fee
from platforma.taxes.models import Taxpayer
from tests.conftest import base_settings
from tests.unit.test_esign_pki import make_pki, sign

TRICKY = 'Zażółć gęślą jaźń <&> "cytat" \'apostrof\' ĄĆĘŁŃÓŚŹŻ'
FUTURE = (dt.date.today() + dt.timedelta(days=60)).isoformat()

#: valid data of each form, as data_from gives it (computed items filled as complete would)
VALID = {
    "pismo_ogolne": {"subject": "Prośba o kopię decyzji <&>", "body": f"Szanowni Państwo,\n{TRICKY}\n\nZ poważaniem"},
    "zaswiadczenie_o_niezaleganiu": {"scope": "chosen", "tax_kinds": ["nieruchomosci", "odpady"],
                                     "purpose": f"do przetargu {TRICKY}", "copies": 2, "delivery": "platform",
                                     "stamp_duty": "42.00"},
    "zwrot_nadplaty": {"tax_kind": "nieruchomosci", "year": 2025, "amount": "123.45", "method": "transfer",
                       "nrb": "61109010140000071219812874", "account_holder": "Zofia Żółkiewska",
                       "justification": f"Nadpłata z raty marcowej.\n{TRICKY}"},
    "ulga_w_splacie": {"kind": "installments", "liabilities": "Decyzja FN.3120.1.2025, raty 3 i 4",
                       "tax_kind": "nieruchomosci", "year": 2025, "amount": "1500.00", "installments_count": 6,
                       "first_due": FUTURE, "new_due": None, "justification": f"Utrata pracy. {TRICKY}",
                       "household_persons": 3, "household_income": "4200.50"},
    "deklaracja_odpady": {"kind": "first", "applies_from": "2026-01-01", "role": "co_owner",
                          "property_street": "ul. Łąkowa 5 m. 2", "property_postal_code": "62-020",
                          "property_city": "Swarzędz", "residents": 4, "composting": True, "rate": "33.50",
                          "discount": "3.00", "monthly_fee": "122.00"},
    "informacja_in1": {"purpose": "submission", "obligation_date": "2026-02-14",
                       "location": "Przykładowo, ul. Polna 3 (obręb 0003)", "kw": "PO1P/00012345/1",
                       "parcels": "125/4, 125/5", "ownership": "owner", "land_business_m2": None,
                       "land_water_ha": "0.1250", "land_other_m2": "812.50", "buildings_residential_m2": "143.20",
                       "buildings_business_m2": None, "buildings_other_m2": "18.00", "structures_value": None},
}
ATTACHMENTS = (Attachment("skan umowy ąę.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256))),
               Attachment("zdjęcie.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"x" * 100))

PERSON = Party(name="Zofia Żółkiewska-O'Brien", pesel="44051401359", street='ul. "Długa" 1 m. 2 <&>',
               postal_code="00-950", city="Łódź", email="zofia@example.com", phone="+48 601 234 567")
COMPANY = Party(name='Firma "Ąę" & Synowie sp. z o.o.', nip="5265877635", regon="012345678", street="ul. Fabryczna 10",
                postal_code="60-001", city="Poznań")
OFFICE = Party(name="Urząd Gminy Testowo", nip="7794242429", regon="724242429", street="ul. Główna 1",
               postal_code="00-000", city="Testowo", email="urzad@example.invalid")


def meta(*, taxpayer: Party | None = COMPANY, title: str = f"Pismo {TRICKY}") -> DocumentMeta:
    return DocumentMeta(identifier=str(uuid.UUID(int=12345)), created_at=dt.datetime(2026, 3, 2, 9, 30, 15, tzinfo=dt.timezone.utc),
                        title=title, author=PERSON, addressee=OFFICE, taxpayer=taxpayer)


def document(code: str, **changes) -> bytes:
    form = get_form(code)
    return form.to_xml({**VALID[code], **changes}, meta(), ATTACHMENTS if form.allows_attachments else ())


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forms")
    application = create_app(base_settings(folder, f"sqlite:///{folder / 'unused.sqlite3'}"))
    application.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    return application


def web_form(app, code: str, values: dict):
    form = get_form(code)
    return form.web_form(MultiDict(values), meta={"csrf": False})


def posted(code: str) -> dict:
    """What a browser posts for the valid data: form_data of it."""
    return get_form(code).form_data(VALID[code])


# -- the catalogue ---------------------------------------------------------------------------------

def test_the_catalogue_has_the_six_forms_in_order():
    assert list(CATALOGUE) == ["pismo_ogolne", "zaswiadczenie_o_niezaleganiu", "zwrot_nadplaty", "ulga_w_splacie",
                               "deklaracja_odpady", "informacja_in1"]
    assert len({form.namespace for form in CATALOGUE.values()}) == 6
    assert all(form.version == "1" and form.xsd_path.is_file() for form in CATALOGUE.values())
    assert [code for code, form in CATALOGUE.items() if form.stamp_duty_setting] == ["zaswiadczenie_o_niezaleganiu"]
    assert {code for code, form in CATALOGUE.items() if form.allows_attachments} == {"pismo_ogolne", "ulga_w_splacie"}
    with pytest.raises(KeyError):
        get_form("nie_ma_takiego")


# -- XML round trip --------------------------------------------------------------------------------

@pytest.mark.parametrize("code", list(CATALOGUE))
@pytest.mark.parametrize("taxpayer", [COMPANY, None], ids=["for-taxpayer", "for-self"])
def test_the_document_validates_and_reads_back_the_same(code, taxpayer):
    form = get_form(code)
    attachments = ATTACHMENTS if form.allows_attachments else ()
    xml = form.to_xml(VALID[code], meta(taxpayer=taxpayer), attachments)
    assert xml.startswith(b"<?xml") and b"encoding='UTF-8'" in xml[:60]
    schema, _lock = form.schema()
    assert schema.validate(etree.fromstring(xml))
    assert form.to_xml(VALID[code], meta(taxpayer=taxpayer), attachments) == xml  # deterministic
    parsed = parse_letter(xml)
    assert parsed.form is form
    assert parsed.data == VALID[code]
    assert parsed.meta == meta(taxpayer=taxpayer)
    assert parsed.attachments == attachments
    assert [a.sha256 for a in parsed.attachments] == [a.sha256 for a in attachments]
    assert parsed.title == f"Pismo {TRICKY}"


def test_the_envelope_is_in_the_crd_structure():
    root = etree.fromstring(document("pismo_ogolne"))
    ns = {"wnio": "urn:platforma:wzor:pismo-ogolne:1", "meta": "http://crd.gov.pl/xml/schematy/meta/2009/11/16/",
          "str": "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/", "oso": "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/",
          "inst": "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/"}
    assert [etree.QName(child).localname for child in root] == ["OpisDokumentu", "DaneDokumentu", "TrescDokumentu", "Zalaczniki"]
    assert root.findtext("wnio:OpisDokumentu/meta:Data/meta:Czas", namespaces=ns) == "2026-03-02T09:30:15Z"
    assert root.findtext("wnio:DaneDokumentu/str:Nadawcy/meta:Podmiot/oso:Osoba/oso:IdOsoby/oso:PESEL", namespaces=ns) == "44051401359"
    assert root.findtext("wnio:DaneDokumentu/str:Adresaci/meta:Podmiot/inst:Instytucja/inst:IdInstytucji/inst:NIP", namespaces=ns) == "7794242429"
    assert root.find("wnio:DaneDokumentu/wnio:Podatnik/meta:Podmiot/inst:Instytucja", namespaces=ns) is not None
    attachment = root.find("str:Zalaczniki/str:Zalacznik", namespaces=ns)
    assert attachment.get("nazwaPliku") == "skan umowy ąę.pdf" and attachment.get("format") == "application/pdf"
    assert attachment.findtext("str:SkrotSHA256", namespaces=ns) == ATTACHMENTS[0].sha256


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
                    min_size=1, max_size=300).filter(lambda t: t.strip() and t == t.strip()))
def test_any_text_a_person_can_type_survives_the_round_trip(text):
    data = {"subject": text[:200].strip() or "x", "body": text}
    parsed = parse_letter(get_form("pismo_ogolne").to_xml(data, meta(title=text[:300].strip() or "x")))
    assert parsed.data == data


def test_to_xml_refuses_data_the_schema_refuses():
    with pytest.raises(FormDocumentError, match="wnio:LiczbaEgzemplarzy"):
        get_form("zaswiadczenie_o_niezaleganiu").to_xml({**VALID["zaswiadczenie_o_niezaleganiu"], "copies": 9}, meta())
    with pytest.raises(ValueError):
        get_form("zwrot_nadplaty").to_xml(VALID["zwrot_nadplaty"], meta(), ATTACHMENTS)


# -- hostile and broken documents -------------------------------------------------------------------

def _edit(xml: bytes, change) -> bytes:
    root = etree.fromstring(xml)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _find(root, name: str):
    """The element named `name`, in the form's own namespace first."""
    found = [element for element in root.iter() if isinstance(element.tag, str) and etree.QName(element).localname == name]
    own = [element for element in found if etree.QName(element).namespace == etree.QName(root).namespace]
    return (own or found)[0]


def _remove(name):
    return lambda root: _find(root, name).getparent().remove(_find(root, name))


def _set(name, value):
    def change(root):
        _find(root, name).text = value
    return change


def _add_unknown(root):
    etree.SubElement(_find(root, "TrescDokumentu"), f"{{{etree.QName(root).namespace}}}Nieznany").text = "x"


@pytest.mark.parametrize("code, change, message", [
    ("pismo_ogolne", _remove("Tresc"), "element wnio:TrescDokumentu: brak wymaganego elementu wnio:Tresc"),
    ("pismo_ogolne", _set("Tresc", ""), "element wnio:Tresc: brak wymaganej wartości"),
    ("pismo_ogolne", _set("Tresc", "   \n "), "element wnio:Tresc: brak wymaganej wartości"),
    ("pismo_ogolne", _set("Tytul", "x" * 201), "element wnio:Tytul: tekst jest za długi (201 znaków, dopuszczalne 200)"),
    ("pismo_ogolne", _add_unknown, "element wnio:Nieznany: element nieoczekiwany w tym miejscu"),
    ("pismo_ogolne", _remove("Nadawcy"), "element nieoczekiwany w tym miejscu (oczekiwano: str:Nadawcy)"),
    ("pismo_ogolne", _set("Czas", "wczoraj"), "element meta:Czas: wartość „wczoraj” jest nieprawidłowa"),
    ("pismo_ogolne", _set("PESEL", "123"), "element oso:PESEL: wartość „123” ma nieprawidłową postać"),
    ("zaswiadczenie_o_niezaleganiu", _set("LiczbaEgzemplarzy", "dwa"),
     "element wnio:LiczbaEgzemplarzy: wartość „dwa” jest nieprawidłowa"),
    ("zaswiadczenie_o_niezaleganiu", _set("LiczbaEgzemplarzy", "6"), "element wnio:LiczbaEgzemplarzy: wartość „6” jest za duża"),
    ("zaswiadczenie_o_niezaleganiu", _set("Zakres", "niektore"), "element wnio:Zakres: wartość „niektore” nie jest jedną z dopuszczalnych"),
    ("zaswiadczenie_o_niezaleganiu", _set("OplataSkarbowa", "42"), "element wnio:OplataSkarbowa: wartość „42” ma nieprawidłową postać"),
    ("zwrot_nadplaty", _set("NumerRachunku", "61109010140000071219812875"), "element wnio:NumerRachunku: numer rachunku ma błędne cyfry kontrolne"),
    ("zwrot_nadplaty", _set("Kwota", "0.00"), "element wnio:Kwota: wartość „0.00” jest za mała"),
    ("ulga_w_splacie", _remove("LiczbaRat"), "element wnio:LiczbaRat: przy rozłożeniu na raty wymagane są"),
    ("ulga_w_splacie", _set("TerminPierwszejRaty", "15.06.2026"), "element wnio:TerminPierwszejRaty: wartość „15.06.2026” jest nieprawidłowa"),
    ("deklaracja_odpady", _set("OplataMiesieczna", "100.00"), "element wnio:OplataMiesieczna: opłata 100.00 nie wynika ze stawki"),
    ("deklaracja_odpady", _set("Kompostownik", "może"), "element wnio:Kompostownik: wartość „może” nie jest jedną z dopuszczalnych"),
    ("informacja_in1", _set("NumerKW", "PO1P/00012345/6"), "element wnio:NumerKW: Numer księgi wieczystej ma błędną cyfrę kontrolną"),
    ("informacja_in1", _set("GruntyPozostale", "-5.00"), "element wnio:GruntyPozostale: wartość „-5.00”"),
    ("informacja_in1", lambda root: [_remove(n)(root) for n in ("GruntyPodWodami", "GruntyPozostale", "BudynkiMieszkalne", "BudynkiPozostale")],
     "podaj co najmniej jedną powierzchnię"),
])
def test_a_broken_document_is_refused_with_the_element_named(code, change, message):
    with pytest.raises(FormDocumentError) as caught:
        parse_letter(_edit(document(code), change))
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value) and "{" not in str(caught.value)


def test_an_attachment_whose_digest_does_not_match_is_refused():
    def swap(root):
        _find(root, "SkrotSHA256").text = "0" * 64
    with pytest.raises(FormDocumentError, match="element str:SkrotSHA256: skrót załącznika skan umowy ąę.pdf"):
        parse_letter(_edit(document("pismo_ogolne"), swap))


def test_author_in_the_metadata_must_be_the_sender():
    def rename(root):
        _find(root, "ImieNazwisko").text = "Ktoś Inny"  # the first one: meta:Autor
    with pytest.raises(FormDocumentError, match="element meta:Autor"):
        parse_letter(_edit(document("pismo_ogolne"), rename))


@pytest.mark.parametrize("xml, message", [
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>', "DOCTYPE"),
    (b"", "pusty"),
    (b"<nie-xml", "nie jest poprawnym dokumentem XML"),
    (b'<a:Dokument xmlns:a="urn:obcy"/>', "element {urn:obcy}Dokument: to nie jest dokument żadnego formularza"),
    (b'<Dokument/>', "element Dokument: to nie jest dokument żadnego formularza"),
])
def test_what_is_not_a_catalogue_document_is_refused(xml, message):
    with pytest.raises(FormDocumentError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_letter(xml)


def test_a_doctype_inside_a_valid_letter_is_refused():
    xml = document("pismo_ogolne").replace(b"?>", b'?>\n<!DOCTYPE wnio:Dokument SYSTEM "http://127.0.0.1:9/x.dtd">', 1)
    with pytest.raises(FormDocumentError, match="DOCTYPE"):
        parse_letter(xml)


def test_an_oversized_document_is_refused():
    with pytest.raises(FormDocumentError, match="za duży"):
        parse_letter(document("pismo_ogolne"), max_bytes=1000)


# -- signed documents -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.mark.parametrize("code", ["pismo_ogolne", "deklaracja_odpady"])
def test_an_enveloped_signature_does_not_break_reading(code, pki):
    signed = sign(document(code), pki)
    assert b"Signature" in signed
    parsed = parse_letter(signed)
    assert parsed.data == VALID[code] and parsed.meta == meta()


def test_an_enveloping_signature_is_read_through(pki):
    signed = sign(document("zwrot_nadplaty"), pki, enveloping=True)
    assert etree.QName(etree.fromstring(signed)).localname == "Signature"
    assert parse_letter(signed).data == VALID["zwrot_nadplaty"]


def test_a_signed_document_that_was_changed_is_still_validated(pki):
    signed = sign(document("zaswiadczenie_o_niezaleganiu"), pki)
    broken = signed.replace(b"<wnio:LiczbaEgzemplarzy>2<", b"<wnio:LiczbaEgzemplarzy>20<")
    with pytest.raises(FormDocumentError, match="wnio:LiczbaEgzemplarzy"):
        parse_letter(broken)


# -- the schemas load from their folder only -----------------------------------------------------------

def test_every_catalogue_schema_compiles_offline():
    for form in CATALOGUE.values():
        schema, _lock = form.schema()
        assert isinstance(schema, etree.XMLSchema)


def _schema_importing(folder, location: str):
    path = folder / "form.xsd"
    path.write_text(f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">'
                    f'<xs:import namespace="urn:x" schemaLocation="{location}"/>'
                    f'<xs:element name="A" type="xs:string"/></xs:schema>')
    return path


def test_a_schema_that_imports_from_the_network_is_refused_without_a_connection(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections = []

    def accept():
        try:
            connections.append(listener.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        with pytest.raises(SchemaLoadError, match=f"http://127.0.0.1:{port}/x.xsd"):
            load_schema(_schema_importing(tmp_path, f"http://127.0.0.1:{port}/x.xsd"))
    finally:
        thread.join()
        listener.close()
    assert connections == []


def test_a_schema_that_imports_a_file_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "outside.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x"/>')
    inner = tmp_path / "inner"
    inner.mkdir()
    with pytest.raises(SchemaLoadError, match="outside.xsd"):
        load_schema(_schema_importing(inner, "../outside.xsd"))
    (inner / "beside.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x"/>')
    assert isinstance(load_schema(_schema_importing(inner, "beside.xsd")), etree.XMLSchema)


# -- rules ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("number, valid", [
    ("GD1W/00090409/1", True), ("LU1B/00012345/8", True), ("PO1P/00012345/1", True), ("LU1B/00012345/6", False),
])
def test_land_register_check_digit(number, valid):
    court, body, digit = number.split("/")
    assert (kw_check_digit(court, body) == int(digit)) is valid


def test_land_register_number_is_normalised_or_refused():
    assert normalise_kw(" po1p/00012345/1 ") == "PO1P/00012345/1"
    with pytest.raises(ValueError, match="postaci KOD/NUMER/CYFRA"):
        normalise_kw("PO1P-00012345-1")
    with pytest.raises(ValueError, match="błędną cyfrę kontrolną"):
        normalise_kw("PO1P/00012345/2")


def test_waste_fee_is_in_grosze_with_the_composting_discount_and_never_negative():
    from decimal import Decimal as D
    assert waste_fee(3, D("33.33"), None, False) == D("99.99")  # not rounded to złoty
    assert waste_fee(3, D("33.33"), D("2.50"), True) == D("92.49")
    assert waste_fee(3, D("33.33"), D("2.50"), False) == D("99.99")  # the discount only for composting
    assert waste_fee(2, D("10.00"), D("12.00"), True) == D("0.00")
    assert waste_fee(0, D("33.33"), D("2.50"), True) == D("0.00")


# -- web forms --------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", list(CATALOGUE))
def test_the_web_form_gives_back_the_data_it_was_opened_with(app, code):
    form = get_form(code)
    with app.test_request_context():
        web = web_form(app, code, posted(code))
        assert web.validate(), web.errors
        computed = {item.key for item in form.items if item.computed}
        assert form.data_from(web) == {k: (None if k in computed else v) for k, v in VALID[code].items()}


REQUIRED = {
    "pismo_ogolne": {"subject": "Wpisz tytuł pisma", "body": "Wpisz treść pisma"},
    "zaswiadczenie_o_niezaleganiu": {"scope": "Wybierz zakres zaświadczenia", "tax_kinds": "Zaznacz co najmniej jeden podatek lub opłatę",
                                     "purpose": "Wpisz cel, w jakim zaświadczenie jest potrzebne", "copies": "Wpisz liczbę egzemplarzy",
                                     "delivery": "Wybierz sposób otrzymania zaświadczenia"},
    "zwrot_nadplaty": {"method": "Wybierz sposób zwrotu", "nrb": "Wpisz numer rachunku do zwrotu",
                       "account_holder": "Wpisz imię i nazwisko albo nazwę posiadacza rachunku"},
    "ulga_w_splacie": {"kind": "Wybierz rodzaj ulgi", "liabilities": "Opisz należności, których dotyczy wniosek",
                       "amount": "Wpisz kwotę, której dotyczy wniosek", "installments_count": "Wpisz liczbę rat",
                       "first_due": "Wpisz termin pierwszej raty", "justification": "Uzasadnij wniosek"},
    "deklaracja_odpady": {"kind": "Wybierz rodzaj deklaracji", "applies_from": "Wpisz datę, od której deklaracja obowiązuje",
                          "role": "Wybierz, kim jesteś wobec nieruchomości", "property_street": "Wpisz ulicę i numer nieruchomości",
                          "property_postal_code": "Wpisz kod pocztowy", "property_city": "Wpisz miejscowość",
                          "residents": "Wpisz liczbę mieszkańców", "composting": "Zaznacz, czy kompostujesz bioodpady"},
    "informacja_in1": {"purpose": "Wybierz cel złożenia informacji",
                       "obligation_date": "Wpisz datę powstania lub zmiany obowiązku podatkowego",
                       "location": "Wpisz położenie nieruchomości", "ownership": "Wybierz tytuł władania nieruchomością"},
}


@pytest.mark.parametrize("code, field, message", [(c, f, m) for c, fields in REQUIRED.items() for f, m in fields.items()])
def test_each_required_field_is_asked_for_in_polish(app, code, field, message):
    values = posted(code)
    values[field] = [] if isinstance(values[field], list) else ""
    with app.test_request_context():
        web = web_form(app, code, values)
        assert not web.validate()
        assert [str(e) for e in web.errors[field]] == [message]
        assert set(web.errors) == {field}


@pytest.mark.parametrize("code, field, value, message", [
    ("zaswiadczenie_o_niezaleganiu", "copies", "0", "Wpisz liczbę całkowitą od 1 do 5"),
    ("zaswiadczenie_o_niezaleganiu", "copies", "6", "Wpisz liczbę całkowitą od 1 do 5"),
    ("zaswiadczenie_o_niezaleganiu", "purpose", "x" * 301, "Tekst może mieć najwyżej 300 znaków (wpisano 301)"),
    ("zwrot_nadplaty", "nrb", "61 1090 1014 0000 0712 1981 2875", "Numer rachunku jest nieprawidłowy: sprawdź 26 cyfr."),
    ("zwrot_nadplaty", "amount", "0", "Kwota musi być większa od zera"),
    ("zwrot_nadplaty", "amount", "12,345", "Wpisz liczbę nieujemną z najwyżej 2 miejscami po przecinku, np. 1234,56"),
    ("zwrot_nadplaty", "year", "25", "Wpisz rok jako 4 cyfry, np. 2025"),
    ("ulga_w_splacie", "installments_count", "61", "Wpisz liczbę całkowitą od 2 do 60"),
    ("ulga_w_splacie", "first_due", ["1", "1", "2020"], "Podaj datę przyszłą (późniejszą niż dziś)"),
    ("ulga_w_splacie", "first_due", ["31", "2", "2027"], "Wpisz prawdziwą datę: dzień, miesiąc i rok (4 cyfry), np. 15 3 2026"),
    ("ulga_w_splacie", "justification", "x" * 10_001, "Tekst może mieć najwyżej 10000 znaków (wpisano 10001)"),
    ("deklaracja_odpady", "residents", "100", "Wpisz liczbę całkowitą od 0 do 99"),
    ("deklaracja_odpady", "property_postal_code", "62020", "Wpisz kod pocztowy w postaci 00-000"),
    ("informacja_in1", "kw", "PO1P/00012345/6", "Numer księgi wieczystej ma błędną cyfrę kontrolną: sprawdź go w odpisie z księgi"),
    ("informacja_in1", "land_water_ha", "0,12345", "Wpisz liczbę nieujemną z najwyżej 4 miejscami po przecinku, np. 1234,56"),
    ("informacja_in1", "land_other_m2", "-5", "Wpisz liczbę nieujemną z najwyżej 2 miejscami po przecinku, np. 1234,56"),
    ("pismo_ogolne", "body", "tekst\x01sterujący", "Tekst zawiera niedozwolone znaki sterujące: usuń je"),
])
def test_bounds_are_refused_in_polish(app, code, field, value, message):
    values = {**posted(code), field: value}
    with app.test_request_context():
        web = web_form(app, code, values)
        assert not web.validate()
        assert str(web.errors[field][0]) == message


def test_in1_needs_at_least_one_area_or_value(app):
    values = {**posted("informacja_in1"), "land_water_ha": "", "land_other_m2": "", "buildings_residential_m2": "",
              "buildings_other_m2": ""}
    with app.test_request_context():
        web = web_form(app, "informacja_in1", values)
        assert not web.validate()
        assert str(web.errors["land_business_m2"][0]) == "Podaj co najmniej jedną powierzchnię gruntów lub budynków albo wartość budowli"


def test_conditional_fields_are_dropped_when_they_do_not_apply(app):
    with app.test_request_context():
        web = web_form(app, "zwrot_nadplaty", {**posted("zwrot_nadplaty"), "method": "cash", "nrb": "bzdura"})
        assert web.validate(), web.errors
        data = get_form("zwrot_nadplaty").data_from(web)
        assert data["nrb"] is None and data["account_holder"] is None
        web = web_form(app, "ulga_w_splacie", {**posted("ulga_w_splacie"), "kind": "remission", "first_due": ["1", "1", "2020"]})
        assert web.validate(), web.errors
        data = get_form("ulga_w_splacie").data_from(web)
        assert data["installments_count"] is None and data["first_due"] is None
        web = web_form(app, "deklaracja_odpady", {**posted("deklaracja_odpady"), "kind": "change", "applies_from": ["20", "7", "2026"]})
        assert web.validate(), web.errors
        assert get_form("deklaracja_odpady").data_from(web)["applies_from"] == "2026-07-01"  # art. 6m ust. 2 ucpg
        web = web_form(app, "zaswiadczenie_o_niezaleganiu", {**posted("zaswiadczenie_o_niezaleganiu"), "scope": "all"})
        assert web.validate(), web.errors
        assert get_form("zaswiadczenie_o_niezaleganiu").data_from(web)["tax_kinds"] == []


def test_typed_text_is_normalised_as_xml_will_read_it(app):
    with app.test_request_context():
        web = web_form(app, "pismo_ogolne", {"subject": "  Temat  ", "body": "a\r\nb\rc  "})
        assert web.validate()
        assert get_form("pismo_ogolne").data_from(web) == {"subject": "Temat", "body": "a\nb\nc"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=260))
def test_the_subject_is_accepted_exactly_when_it_is_1_to_200_characters(app, subject):
    with app.test_request_context():
        web = web_form(app, "pismo_ogolne", {"subject": subject, "body": "treść"})
        length = len(subject.strip())
        assert web.validate() is (1 <= length <= 200)
        if web.validate():
            get_form("pismo_ogolne").to_xml(get_form("pismo_ogolne").data_from(web), meta())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(residents=st.integers(min_value=-5, max_value=150))
def test_residents_are_accepted_from_0_to_99(app, residents):
    with app.test_request_context():
        web = web_form(app, "deklaracja_odpady", {**posted("deklaracja_odpady"), "residents": str(residents)})
        assert web.validate() is (0 <= residents <= 99)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.decimals(min_value=-10, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_amounts_round_trip_exactly(app, amount):
    with app.test_request_context():
        web = web_form(app, "zwrot_nadplaty", {**posted("zwrot_nadplaty"), "amount": f"{amount:.2f}".replace(".", ",")})
        assert web.validate() is (0 < amount <= 999_999_999.99)
        if amount > 0 and web.validate():
            form = get_form("zwrot_nadplaty")
            data = form.data_from(web)
            assert data["amount"] == f"{amount:.2f}"
            assert parse_letter(form.to_xml(data, meta())).data["amount"] == f"{amount:.2f}"


def _natural() -> Taxpayer:
    return Taxpayer(kind="natural", first_name="Zofia", last_name="Żółkiewska", pesel="44051401359",
                    street="ul. Łąkowa 5", postal_code="62-020", city="Swarzędz")


def _company() -> Taxpayer:
    return Taxpayer(kind="legal", name="Ąę Sp. z o.o.", nip="5265877635", regon="012345678",
                    street="ul. Fabryczna 10", postal_code="60-001", city="Poznań")


class _User:
    full_name, email, declared_pesel, declared_nip, refund_nrb, phone = "Jan Kowalski", "jan@example.com", None, None, "61109010140000071219812874", ""


@pytest.mark.parametrize("taxpayer, holder, location", [
    (_natural(), "Zofia Żółkiewska", "ul. Łąkowa 5, 62-020 Swarzędz"),
    (_company(), "Ąę Sp. z o.o.", "ul. Fabryczna 10, 60-001 Poznań"),
    (None, "Jan Kowalski", None),
])
def test_prefill_from_a_person_a_company_or_no_taxpayer(app, taxpayer, holder, location):
    today = dt.date(2026, 3, 2)
    refund = get_form("zwrot_nadplaty").prefill(taxpayer, _User(), None, today)
    assert refund == {"method": "transfer", "nrb": "61109010140000071219812874", "account_holder": holder}
    waste = get_form("deklaracja_odpady").prefill(taxpayer, _User(), None, today)
    assert waste["kind"] == "first"
    if taxpayer is not None:
        assert (waste["property_street"], waste["property_postal_code"], waste["property_city"]) == (
            taxpayer.street, taxpayer.postal_code, taxpayer.city)
    assert get_form("informacja_in1").prefill(taxpayer, _User(), None, today).get("location") == location
    assert get_form("zaswiadczenie_o_niezaleganiu").prefill(taxpayer, _User(), None, today) == {
        "scope": "all", "copies": 1, "delivery": "platform"}
    with app.test_request_context():
        for form in CATALOGUE.values():  # every prefill opens its web form
            form.web_form(MultiDict(form.form_data(form.prefill(taxpayer, _User(), None, today))), meta={"csrf": False})


# -- for people: the HTML view and the PDF ----------------------------------------------------------

@pytest.mark.parametrize("code", list(CATALOGUE))
def test_the_html_view_shows_every_section_and_label(app, code):
    parsed = parse_letter(document(code))
    with app.test_request_context():
        html = str(render_letter_html(parsed))
        sections = letter_sections(parsed)
    assert html.count('<h2 class="govuk-heading-m">') == len(sections) + (1 if parsed.attachments else 0)
    for section in sections:
        assert section.heading in html
        for label, _value in section.rows:
            assert str(etree.fromstring(f"<x>{label}</x>".encode()).text) in html or label.replace('"', "&#34;") in html
    assert "&lt;&amp;&gt;" in html  # escaped, never markup
    assert "<h1" not in html
    for attachment in parsed.attachments:
        assert attachment.sha256 in html and str(attachment.size) in html


def test_the_summary_is_human_readable_polish(app):
    with app.test_request_context():
        rows = {label: value for section in get_form("deklaracja_odpady").summary(VALID["deklaracja_odpady"]) for label, value in section.rows}
        assert rows["Obowiązuje od"] == "01.01.2026"
        assert rows["Kompostowanie w kompostowniku przydomowym"] == "tak"
        assert rows["Opłata miesięczna"] == "122,00\u00a0zł"
        rows = {label: value for section in get_form("zwrot_nadplaty").summary(VALID["zwrot_nadplaty"]) for label, value in section.rows}
        assert rows["Numer rachunku"] == "61 1090 1014 0000 0712 1981 2874"
        assert rows["Podatek lub opłata"] == "Podatek od nieruchomości"
        rows = {label: value for section in get_form("informacja_in1").summary(VALID["informacja_in1"]) for label, value in section.rows}
        assert rows["Pod wodami powierzchniowymi"] == "0,1250\u00a0ha" and rows["Pozostałe, w tym mieszkalne"] == "812,50\u00a0m²"


@pytest.mark.parametrize("code", ["pismo_ogolne", "zwrot_nadplaty"])
def test_the_pdf_is_tagged_polish_and_carries_the_xml(app, code):
    xml = document(code)
    with app.test_request_context("/?lang=en"):
        pdf = render_letter_pdf(parse_letter(xml), xml, received=dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc))
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root and root["/Lang"] == "pl"
    assert bool(root["/MarkInfo"]["/Marked"])
    assert reader.metadata.title == f"Pismo {TRICKY}"
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Zażółć gęślą jaźń" in text and "Nadawca" in text and "Data wpływu: 02.03.2026 11:00" in text
    assert dict(reader.attachments) == {f"{code}.xml": [xml]}
    embedded = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert embedded[0] == f"{code}.xml"


@pytest.mark.parametrize("code", list(CATALOGUE))
def test_the_fields_template_renders_every_field_with_its_errors(app, code):
    from platforma.episma.forms.render import _render

    form = get_form(code)
    with app.test_request_context():
        web = web_form(app, code, {})
        web.validate()
        html = _render(f"episma/forms/{code}_fields.html", form=web, form_hints=["Wskazówka ąę <b>"])
    for item in form.items:
        if not item.computed:
            assert f'name="{item.key}"' in html, item.key
    for messages in web.errors.values():
        assert str(messages[0]).replace('"', "&#34;").replace("„", "„") in html or str(messages[0]) in html
    assert "Wskazówka ąę &lt;b&gt;" in html
    assert "Error:" not in html and "<form" not in html
    if any(item.kind == "date" for item in form.items):
        assert ">\n    Dzień\n" in html or "Dzień" in html
        assert 'inputmode="numeric"' in html
