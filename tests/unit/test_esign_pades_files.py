"""Files embedded in a signed PDF (a form's XML): read back from the signed revision only."""
from __future__ import annotations

import io

import pytest
import weasyprint

from platforma.esign import SignatureError, embedded_files, signed_form_xml
from platforma.esign.pades import MAX_EMBEDDED_FILES
from tests.unit.test_esign_pades import CHANGED, FORM_XML, attach, make_pdf, sign_pdf, update, verify
from tests.unit.test_esign_pki import make_pki


@pytest.fixture(scope="module")
def pki():
    return make_pki("rsa")


@pytest.fixture(scope="module")
def signed(pki):
    return sign_pdf(make_pdf(attachments={"PO-1.xml": FORM_XML}), pki)


def test_the_embedded_form_survives_signing_and_is_read_from_the_signed_revision(pki, signed):
    report = verify(signed, pki)
    assert report.valid
    assert embedded_files(report.signed_content) == {"PO-1.xml": FORM_XML}
    assert signed_form_xml(report, "PO-1.xml") == FORM_XML
    assert signed_form_xml(report, "PO-2.xml") is None


def test_a_tagged_pdf_with_the_xml_as_its_source_keeps_it_through_signing(pki):
    """As the forms catalogue renders a letter: PDF/UA-1, the XML an associated file (AFRelationship Source)."""
    source = weasyprint.Attachment(file_obj=io.BytesIO(FORM_XML), name="pismo_ogolne.xml", relationship="Source",
                                   description="Dokument XML pisma")
    pdf = weasyprint.HTML(string='<html lang="pl"><body><h1>Pismo</h1></body></html>').write_pdf(
        pdf_variant="pdf/ua-1", attachments=[source])
    report = verify(sign_pdf(pdf, pki), pki)
    assert report.valid and signed_form_xml(report, "pismo_ogolne.xml") == FORM_XML


def test_a_file_attached_after_signing_is_not_returned(pki, signed):
    forged = '<?xml version="1.0"?><wniosek><tresc>Rezygnuję z wniosku.</tresc></wniosek>'.encode()
    data = update(signed, attach("PO-1-korekta.xml", forged))
    assert embedded_files(data) == {"PO-1.xml": FORM_XML, "PO-1-korekta.xml": forged}  # it is in the file
    report = verify(data, pki)
    assert not report.valid and report.signed_content is None
    assert signed_form_xml(report, "PO-1-korekta.xml") is None and signed_form_xml(report, "PO-1.xml") is None
    # what the signer signed still carries only the original form
    assert embedded_files(signed) == {"PO-1.xml": FORM_XML}


def test_a_replaced_form_of_the_same_name_is_refused(pki, signed):
    """Attached again under the signed file's name: two different files by one name in the updated file."""
    data = update(signed, attach("PO-1.xml", b"<wniosek/>"))
    assert verify(data, pki).errors == [CHANGED.format("dodano lub zmieniono załączniki")]
    with pytest.raises(SignatureError, match="dwa różne załączniki o nazwie „PO-1.xml”"):
        embedded_files(data)


def test_file_attachment_annotations_are_read_too(pki):
    html = ('<p>Załącznik: <a rel="attachment" href="data:application/xml;base64,PGEvPg==" download="zalacznik.xml">'
            'plik</a></p>')
    signed = sign_pdf(weasyprint.HTML(string=html).write_pdf(), pki)
    assert embedded_files(verify(signed, pki).signed_content) == {"zalacznik.xml": b"<a/>"}


def test_a_pdf_without_attachments_has_none(pki):
    assert embedded_files(make_pdf()) == {}


def test_the_count_and_the_size_of_attachments_are_bounded():
    many = make_pdf(attachments={f"plik-{n}.txt": b"x" for n in range(MAX_EMBEDDED_FILES + 1)})
    with pytest.raises(SignatureError, match=f"więcej niż {MAX_EMBEDDED_FILES} załączników"):
        embedded_files(many)
    assert len(embedded_files(many, max_files=MAX_EMBEDDED_FILES + 1)) == MAX_EMBEDDED_FILES + 1
    # a small file whose attachment inflates past the bound (deflate: 2 MB of zeros in a few kB)
    bomb = make_pdf(attachments={"zera.bin": b"\0" * (2 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(SignatureError, match="załączniki dokumentu PDF są za duże"):
        embedded_files(bomb, max_bytes=1024 * 1024)


def test_not_a_pdf_is_refused():
    with pytest.raises(SignatureError, match="plik nie jest dokumentem PDF"):
        embedded_files(FORM_XML)
