"""Hostile PDFs: random bytes, mutated signed PDFs and structures built to cost work. Each one ends in a
SignatureError with a Polish reason or in a report, never in another exception, and within bounds."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platforma.esign import SignatureError, VerificationReport, embedded_files
from platforma.esign.pades import MAX_CHANGED_OBJECTS, MAX_OBJECTS, MAX_REVISIONS
from tests.unit.test_esign_pades import FORM_XML, add_page, make_pdf, sign_pdf, update, verify
from tests.unit.test_esign_pki import make_pki

PKI = make_pki("ec")
SIGNED = sign_pdf(make_pdf(attachments={"PO-1.xml": FORM_XML}), PKI)
POLISH = re.compile(r"[a-ząćęłńóśźż]")


def outcome(data: bytes):
    """The report, or the SignatureError's message; any other exception fails the test."""
    try:
        report = verify(data, PKI)
    except SignatureError as exc:
        assert POLISH.search(str(exc)) and "Traceback" not in str(exc)
        return str(exc)
    assert isinstance(report, VerificationReport)
    assert report.valid is (not report.errors)
    return report


def read_files(data: bytes):
    try:
        return embedded_files(data)
    except SignatureError as exc:
        return str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    outcome(data)
    outcome(b"%PDF-1.7\n" + data + b"\n%%EOF\n")
    read_files(b"%PDF-1.7\n" + data + b"\n%%EOF\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(SIGNED) - 1), st.integers(min_value=0, max_value=255)),
                min_size=1, max_size=8))
def test_mutated_signed_pdfs(changes):
    data = bytearray(SIGNED)
    for offset, value in changes:
        data[offset] = value
    result = outcome(bytes(data))
    if bytes(data) != SIGNED and isinstance(result, VerificationReport) and result.valid:
        # a change that leaves the signature valid is outside the signed bytes (in the signature's own
        # /Contents hex string, e.g. its zero padding) and the signed content is exactly what was signed
        assert result.signed_content == bytes(data)
        signature = re.search(rb"/Contents\s*<", SIGNED)
        start = signature.end()
        end = SIGNED.index(b">", start)
        assert all(start <= offset < end for offset, _ in changes)
    read_files(bytes(data))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(SIGNED)), st.binary(max_size=64))
def test_truncated_and_spliced_signed_pdfs(cut, insert):
    outcome(SIGNED[:cut])
    outcome(SIGNED[:cut] + insert + SIGNED[cut:])


# -- bounded work -----------------------------------------------------------------------------------

def _raw_pdf(catalog_extra: bytes = b"", *, size: int | None = None) -> bytes:
    """A minimal one-page PDF written by hand (so that its structure can be anything)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>"]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size or 4, xref)
    return bytes(out)


def test_the_hand_written_pdf_is_readable():
    assert outcome(_raw_pdf()) == "dokument PDF nie zawiera podpisu elektronicznego"


def test_deeply_nested_structures_are_refused_quickly():
    deep = _raw_pdf(b"/X " + b"[" * 100_000 + b"]" * 100_000)
    assert outcome(deep) == "dokument PDF jest uszkodzony lub nieczytelny (zbyt głęboko zagnieżdżona struktura)"


def test_too_many_objects_are_refused_before_reading_them():
    assert outcome(_raw_pdf(size=MAX_OBJECTS + 1)) == (
        f"dokument PDF ma zbyt wiele obiektów ({MAX_OBJECTS + 1}); dopuszczalne {MAX_OBJECTS}")


def test_too_many_revisions_are_refused():
    data = SIGNED
    for _ in range(MAX_REVISIONS):
        data = update(data, lambda writer: writer.update_root())
    assert outcome(data) == f"dokument PDF ma {MAX_REVISIONS + 2} wersji (aktualizacji przyrostowych); dopuszczalne " \
                            f"{MAX_REVISIONS}"


def test_a_huge_update_after_signing_is_refused_without_analysing_it():
    """Thousands of objects rewritten after signing: pyHanko's difference analysis would take seconds."""
    from pyhanko.pdf_utils import generic

    def many_objects(writer):
        add_page(writer)
        for number in range(MAX_CHANGED_OBJECTS):
            writer.add_object(generic.NumberObject(number))

    report = outcome(update(SIGNED, many_objects))
    assert report.errors[0].startswith("po złożeniu podpisu dopisano lub zmieniono ")
    assert report.errors[0].endswith(f"(dopuszczalne {MAX_CHANGED_OBJECTS}); tak dużych zmian nie analizujemy")


@pytest.mark.parametrize("cycle", [b"/Names << /EmbeddedFiles 4 0 R >>", b"/Names << /EmbeddedFiles << /Kids [1 0 R] >> >>"])
def test_loops_in_name_trees_end(cycle):
    assert read_files(_raw_pdf(cycle)) in ({}, "załączników dokumentu PDF nie da się odczytać")
