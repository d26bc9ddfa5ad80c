"""The pure rules of e-pisma: register numbers, what an attachment may be, the limits in force, the receipt."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from platforma.episma import rules
from platforma.episma.operations import limits
from tests.conftest import base_settings


@pytest.mark.parametrize("pattern, number", [
    ("KO.{seq}.{year}", "KO.7.2026"), ("{year}/{seq:05d}", "2026/00007"), ("RPW/{seq}/{year}", "RPW/7/2026"),
])
def test_registration_numbers_follow_the_pattern(pattern, number):
    assert rules.registration_number(rules.check_registration_pattern(pattern), 2026, 7) == number


@pytest.mark.parametrize("pattern, message", [
    ("KO.{seq}", "musi zawierać {seq}"), ("{year}", "musi zawierać {seq}"), ("{seq}{year}{user}", "tylko {seq} i {year}"),
    ("{seq", "niepoprawny"), ("{seq}{year}" + "x" * 40, "od 1 do 40 znaków"), ("{seq[0]}{year}", "tylko {seq} i {year}"), ("{seq:s}{year}", "niepoprawny"),
])
def test_a_pattern_without_the_sequence_and_the_year_is_refused(pattern, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        rules.check_registration_pattern(pattern)


def test_the_configuration_refuses_a_bad_pattern():
    from platforma.config import ConfigError

    with pytest.raises(ConfigError, match="episma.registration_pattern"):
        base_settings(Path("/tmp"), "sqlite:///x", episma={"registration_pattern": "KO.{seq}"})
    with pytest.raises(ConfigError, match="nieznany rodzaj pliku 'exe'"):
        base_settings(Path("/tmp"), "sqlite:///x", episma={"allowed_attachments": ["pdf", "exe"]})


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
ZIP_DOCX = b"PK\x03\x04" + b"\x00" * 26 + b"[Content_Types].xml" + b"\x00" * 40 + b"word/document.xml"


@pytest.mark.parametrize("name, content, kind", [
    ("wniosek.pdf", PDF, "pdf"), ("Skan.PNG", PNG, "png"), ("notatka.txt", "Zażółć gęślą jaźń".encode(), "txt"),
    ("dane.xml", b"<?xml version='1.0'?><a/>", "xml"), ("stary.txt", "Zażółć".encode("cp1250"), "txt"),
])
def test_accepted_attachments(name, content, kind):
    assert rules.check_attachment(name, content, max_bytes=10_000).extension == kind


@pytest.mark.parametrize("name, content, message", [
    ("a.pdf", PDF * 1000, "dopuszczalny rozmiar"), ("a.pdf", b"", "jest pusty"), ("a.exe", b"MZ" + b"\0" * 60, "rodzaje plików"),
    ("a.pdf", b"MZ\x90\x00" + b"\0" * 60, "nie odpowiada rozszerzeniu"), ("a.png", PDF, "nie odpowiada rozszerzeniu"),
    ("a.txt", PDF, "nie jest plikiem tekstowym"), ("a.txt", b"\x00\x01binary", "nie jest plikiem tekstowym"),
    ("a.xml", b'<!DOCTYPE x [<!ENTITY e "e">]><x/>', "DOCTYPE"), ("a.txt", b"<svg onload=alert(1)>", "kod HTML"),
    ("a.html", b"<p>", "rodzaje plików"), ("bez-rozszerzenia", PDF, "rodzaje plików"),
])
def test_refused_attachments_name_the_file_and_the_reason(name, content, message):
    with pytest.raises(rules.AttachmentRefused, match=message) as refused:
        rules.check_attachment(name, content, max_bytes=10_000)
    assert rules.safe_filename(name) in str(refused.value)


def test_a_kind_not_allowed_by_the_gmina_is_refused():
    with pytest.raises(rules.AttachmentRefused, match="dopuszczalne rodzaje plików to PDF"):
        rules.check_attachment("a.png", PNG, allowed=("pdf",), max_bytes=10_000)


@given(st.text(max_size=400))
def test_a_safe_filename_is_one_short_printable_component(name):
    safe = rules.safe_filename(name)
    assert safe and len(safe) <= rules.MAX_FILENAME
    assert "/" not in safe and "\\" not in safe and not any(ord(ch) < 32 for ch in safe)


def test_filenames_lose_their_path_and_keep_their_extension():
    assert rules.safe_filename("C:\\Users\\jan\\wniosek.pdf") == "wniosek.pdf"
    assert rules.safe_filename("../../etc/passwd") == "passwd"
    assert rules.safe_filename("x" * 300 + ".pdf").endswith(".pdf")


@pytest.mark.parametrize("size, text", [(850, "850 B"), (12_800, "12,5 kB"), (3_355_443, "3,2 MB")])
def test_sizes_in_polish(size, text):
    assert rules.format_size(size) == text


def test_attachment_limits_fit_the_request_limit():
    roomy = limits(base_settings(Path("/tmp"), "sqlite:///x"))
    assert (roomy.one, roomy.total, roomy.count) == (5 * 1024 * 1024, 10 * 1024 * 1024, 20)
    tight = limits(base_settings(Path("/tmp"), "sqlite:///x", server={"secret_key": "k" * 48, "max_request_mb": 4}))
    # a signed letter carries the attachments in base64: 4/3 of them must fit in 4 MB with room for the rest
    assert tight.total * 4 // 3 + 256 * 1024 <= 4 * 1024 * 1024 and tight.one == tight.total


def _receipt(**changes) -> rules.ReceiptData:
    values = dict(
        office_name="Urząd Gminy Testowo", gmina_name="Gmina Testowo", office_nip="7794242429", office_regon="724242429",
        teryt="3021052", office_address="ul. Główna 1, 62-100 Testowo", registration_number="KO.1.2026",
        received_at=dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.timezone.utc), document_id="d1",
        title="Pismo <ogólne> & „cudzysłów”", form_code="pismo_ogolne", form_version="1",
        document=rules.ReceiptFile("pismo.xml", 1234, "ab" * 32), content_sha256="cd" * 32,
        attachments=(rules.ReceiptFile("skan.pdf", 99, "ef" * 32),), signature_format="XAdES-BES",
        signer_name="Jan Kowalski", signer_pesel="44051401359", signer_nip=None, signed_at=None,
        sender_name="Jan Kowalski", sender_email="jan@example.com")
    values.update(changes)
    return rules.ReceiptData(**values)


def test_the_receipt_states_the_receipt_in_utc_and_in_warsaw_time():
    xml = rules.receipt_xml(_receipt())
    facts = rules.read_receipt(xml)
    assert facts["received_at"] == "2026-12-07T23:30:00Z"
    assert facts["received_local"] == "2026-12-08T00:30:00+01:00"  # already the next day in Poland
    assert facts["title"] == "Pismo <ogólne> & „cudzysłów”"
    ns = {"upo": rules.UPO_NAMESPACE}
    root = etree.fromstring(xml)
    assert root.find("upo:Dokument/upo:Plik/upo:Skrot", ns).get("algorytm") == rules.SHA256_URI
    assert root.find("upo:Podpis/upo:NIP", ns) is None and root.find("upo:Urzad/upo:NIP", ns).text == "7794242429"


def test_a_receipt_that_would_not_match_its_schema_is_never_made():
    with pytest.raises(ValueError, match="UPO niezgodne ze schematem"):
        rules.receipt_xml(_receipt(teryt="30"))
