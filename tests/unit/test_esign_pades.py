"""PDFs made with WeasyPrint, signed here with pyHanko's signer and the test CA of test_esign_pki: accepted
with the signer's identity, and refused with a plain Polish reason after each change made after signing.

The other PAdES tests import ``make_pdf``, ``sign_pdf``, ``update`` and the change helpers from here.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import io
import re
import warnings

import pytest
import weasyprint
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from platforma.esign import SignatureError, verify_pdf
from platforma.esign.pades import outside_event_loop
from tests.unit.test_esign_pki import NIP, NOW, PESEL, PKI, Party, make_leaf, make_pki

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pyHanko's signer imports cryptography's deprecated DSA module
    from asn1crypto import cms
    from asn1crypto import crl as asn1_crl
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils import embed, generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko_certvalidator.registry import SimpleCertificateStore

FORM_XML = ('<?xml version="1.0" encoding="UTF-8"?><wniosek xmlns="urn:platforma:formularz:PO-1">'
            '<tresc>Wnoszę o wydanie zaświadczenia o niezaleganiu.</tresc></wniosek>').encode()
SIGNED_AT = NOW - dt.timedelta(hours=1)
REVOCATION_WARNING = ("nie sprawdzono, czy certyfikat nie został unieważniony (CRL/OCSP); weryfikacja nie korzysta "
                      "z sieci")


# -- helpers ----------------------------------------------------------------------------------------

def make_pdf(text: str = "Wnoszę o wydanie zaświadczenia o niezaleganiu w podatkach lokalnych.", *,
             attachments: dict[str, bytes] | None = None, form_field: bool = False, filler: int = 0) -> bytes:
    """A letter as WeasyPrint renders it; ``filler`` paragraphs make it longer (several pages)."""
    field = '<form><input type="text" name="uwagi" value=""></form>' if form_field else ""
    body = "".join(f"<p>Akapit {n}: {text}</p>" for n in range(filler))
    html = f'<html lang="pl"><body><h1>Pismo do urzędu</h1><p>{text}</p>{body}{field}</body></html>'
    files = [weasyprint.Attachment(file_obj=io.BytesIO(content), name=name)
             for name, content in (attachments or {}).items()]
    return weasyprint.HTML(string=html).write_pdf(attachments=files, pdf_forms=form_field)


def asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


def asn1_key(key) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()))


def simple_signer(pki: PKI, leaf: Party | None = None) -> signers.SimpleSigner:
    leaf = leaf or pki.leaf
    return signers.SimpleSigner(signing_cert=asn1_certificate(leaf.cert), signing_key=asn1_key(leaf.key),
                                cert_registry=SimpleCertificateStore.from_certs([asn1_certificate(pki.intermediate.cert)]))


def make_tsa(pki: PKI) -> Party:
    """A time-stamping authority certified by the test CA (RFC 3161: extended key usage timeStamping, critical)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Testowy Urząd Znacznika Czasu")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(pki.intermediate.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=300)).not_valid_after(pki.intermediate.cert.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(pki.intermediate.key, hashes.SHA256()))
    return Party(key, cert)


def tsa_for(pki: PKI, at: dt.datetime, authority: Party | None = None) -> DummyTimeStamper:
    """A time-stamping authority (by default a proper one of ``pki``) stamping the given moment."""
    authority = authority or make_tsa(pki)
    return DummyTimeStamper(tsa_cert=asn1_certificate(authority.cert), tsa_key=asn1_key(authority.key), fixed_dt=at,
                            certs_to_embed=SimpleCertificateStore.from_certs([asn1_certificate(pki.intermediate.cert)]))


class _TimedPdfSigner(PdfSigner):
    """pyHanko's PdfSigner with a chosen signing time (/M); it always writes the current time.

    ``ignore_certification`` lets a test sign a document whose certification forbids it (an attacker's tool
    would not ask).
    """

    def __init__(self, *args, signing_time: dt.datetime, ignore_certification: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._signing_time = signing_time
        self._ignore_certification = ignore_certification

    def init_signing_session(self, pdf_out, existing_fields_only=False):
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        session.system_time = self._signing_time
        return session

    def _enforce_certification_constraints(self, reader):
        if not self._ignore_certification:
            super()._enforce_certification_constraints(reader)


def sign_pdf(pdf: bytes, pki: PKI, *, leaf: Party | None = None, signing_time: dt.datetime = SIGNED_AT,
             field: str = "Podpis1", pades: bool = True, timestamper=None, certify: MDPPerm | None = None,
             ignore_certification: bool = False) -> bytes:
    meta = PdfSignatureMetadata(field_name=field, md_algorithm="sha256",
                                subfilter=SigSeedSubFilter.PADES if pades else SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
                                certify=certify is not None, docmdp_permissions=certify or MDPPerm.FILL_FORMS)
    signer = _TimedPdfSigner(meta, simple_signer(pki, leaf), timestamper=timestamper, signing_time=signing_time,
                             ignore_certification=ignore_certification)
    return outside_event_loop(signer.sign_pdf, IncrementalPdfFileWriter(io.BytesIO(pdf))).getvalue()


def update(pdf: bytes, change) -> bytes:
    """An incremental update written by pyHanko after ``change(writer)``."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _first_page(writer) -> generic.Reference:
    return writer.root["/Pages"]["/Kids"].raw_get(0).reference


def add_page(writer) -> None:
    page = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)]),
        generic.pdf_name("/Resources"): generic.DictionaryObject()})
    writer.insert_page(page)


def replace_text(writer) -> None:
    page = _first_page(writer).get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (Rezygnuje z wniosku) Tj ET")
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)


def add_annotation(writer) -> None:
    annotation = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Annot"), generic.pdf_name("/Subtype"): generic.pdf_name("/FreeText"),
        generic.pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in (72, 600, 400, 640)]),
        generic.pdf_name("/Contents"): generic.TextStringObject("Kwota: 0 zł")})
    writer.register_annotation(_first_page(writer), writer.add_object(annotation))


def attach(name: str, content: bytes):
    def change(writer) -> None:
        data = embed.EmbeddedFileObject.from_file_data(writer, data=content, mime_type="application/xml")
        embed.embed_file(writer, embed.FileSpec(file_spec_string=name, embedded_data=data))
    return change


def fill_field(writer) -> None:
    for reference in writer.root["/AcroForm"]["/Fields"]:
        field = reference.get_object()
        if field.get("/FT") == "/Tx":
            field["/V"] = generic.TextStringObject("Rezygnuję z wniosku")
            writer.update_container(field)


def add_dss(pdf: bytes, pki: PKI, *, revocation: bool) -> bytes:
    """Validation data for the signature (PAdES-B-LT): the chain and, optionally, an empty CRL of the issuer."""
    crls = []
    if revocation:
        crl = (x509.CertificateRevocationListBuilder().issuer_name(pki.intermediate.cert.subject)
               .last_update(NOW - dt.timedelta(days=1)).next_update(NOW + dt.timedelta(days=6))
               .sign(pki.intermediate.key, hashes.SHA256()))
        crls = [asn1_crl.CertificateList.load(crl.public_bytes(Encoding.DER))]

    def change(writer) -> None:
        DocumentSecurityStore.supply_dss_in_writer(
            writer, None, certs=[asn1_certificate(pki.root.cert), asn1_certificate(pki.intermediate.cert)], crls=crls)
    return update(pdf, change)


def add_document_timestamp(pdf: bytes, pki: PKI, at: dt.datetime = NOW - dt.timedelta(minutes=5)) -> bytes:
    return outside_event_loop(PdfTimeStamper(tsa_for(pki, at)).timestamp_pdf, IncrementalPdfFileWriter(io.BytesIO(pdf)),
                              "sha256").getvalue()


def verify(data: bytes, pki: PKI, **kwargs):
    return verify_pdf(data, trust_anchors=kwargs.pop("anchors", pki.anchors), now=kwargs.pop("now", NOW), **kwargs)


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_pki():
    return make_pki("rsa")


@pytest.fixture(scope="module")
def ec_pki():
    return make_pki("ec")


@pytest.fixture(scope="module")
def letter():
    return make_pdf(attachments={"PO-1.xml": FORM_XML})


@pytest.fixture(scope="module")
def signed(letter, rsa_pki):
    return sign_pdf(letter, rsa_pki)


# -- accepted ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_signed_pdf_is_accepted_with_its_signer(kind, rsa_pki, ec_pki, letter):
    pki = rsa_pki if kind == "rsa" else ec_pki
    data = sign_pdf(letter, pki, signing_time=NOW - dt.timedelta(hours=3))
    report = verify(data, pki)
    assert report.errors == [] and report.valid
    assert report.format == "PAdES-B-B" and report.signed_at == NOW - dt.timedelta(hours=3)
    signer = report.signer
    assert (signer.name, signer.given_names, signer.surname, signer.pesel, signer.nip, signer.source) == (
        "Jan Kowalski", "Jan", "Kowalski", PESEL, None, "certyfikat")
    assert signer.certificate_serial == f"{pki.leaf.cert.serial_number:x}"
    assert "Testowe Centrum Kwalifikowane" in signer.certificate_issuer
    assert report.signed_content == data  # the signature covers the whole file
    assert report.warnings == [REVOCATION_WARNING]
    assert report.as_dict()["signed_at"] == (NOW - dt.timedelta(hours=3)).isoformat().replace("+00:00", "Z")


def test_an_organisation_seal_gives_the_nip(rsa_pki, letter):
    seal = make_leaf(rsa_pki.intermediate, serial_number=f"VATPL-{NIP}", given="Gmina", surname="Przykładowo")
    report = verify(sign_pdf(letter, rsa_pki, leaf=seal), rsa_pki)
    assert report.valid and report.signer.nip == NIP and report.signer.pesel is None


def test_a_plain_pkcs7_signature_is_named_so(rsa_pki, letter):
    report = verify(sign_pdf(letter, rsa_pki, pades=False), rsa_pki)
    assert report.valid and report.format == "PDF (PKCS#7)" and report.signed_at == SIGNED_AT


def test_a_signature_time_stamp_of_a_trusted_authority_gives_the_time(rsa_pki, letter):
    stamped = NOW - dt.timedelta(minutes=50)
    report = verify(sign_pdf(letter, rsa_pki, timestamper=tsa_for(rsa_pki, stamped)), rsa_pki)
    assert report.valid and report.format == "PAdES-B-T"
    assert report.signed_at == stamped  # not the declared SIGNED_AT
    assert report.warnings == [REVOCATION_WARNING]


def test_a_time_stamp_of_an_untrusted_authority_leaves_the_declared_time(rsa_pki, letter):
    stranger = make_pki("rsa")
    report = verify(sign_pdf(letter, rsa_pki, timestamper=tsa_for(stranger, NOW - dt.timedelta(minutes=50))), rsa_pki)
    assert report.valid and report.format == "PAdES-B-T" and report.signed_at == SIGNED_AT
    assert report.warnings[0].startswith("znacznika czasu podpisu nie uznano (certyfikat nie pochodzi od zaufanego "
                                         "wystawcy")
    assert report.warnings[0].endswith("czas podpisu przyjęto z deklaracji podpisującego")


def test_a_signer_cannot_time_stamp_their_own_signature(rsa_pki, letter):
    """A token made with the signer's own (trusted) certificate: not a time-stamping authority's, so the
    backdated time it carries is not believed."""
    own = tsa_for(rsa_pki, NOW - dt.timedelta(days=100), authority=rsa_pki.leaf)
    report = verify(sign_pdf(letter, rsa_pki, timestamper=own), rsa_pki)
    assert report.valid and report.signed_at == SIGNED_AT
    assert report.warnings[0] == ("znacznika czasu podpisu nie uznano (certyfikat nie jest certyfikatem urzędu znacznika "
                                  "czasu (brak rozszerzenia timeStamping)); czas podpisu przyjęto z deklaracji "
                                  "podpisującego")


def test_a_time_stamp_confirms_a_signature_made_before_the_certificate_expired(rsa_pki, letter):
    expiry = rsa_pki.leaf.cert.not_valid_after_utc
    at = expiry - dt.timedelta(days=1)
    data = sign_pdf(letter, rsa_pki, signing_time=at, timestamper=tsa_for(rsa_pki, at + dt.timedelta(minutes=1)))
    report = verify(data, rsa_pki, now=expiry + dt.timedelta(days=30))
    assert report.valid
    assert "certyfikat wygasł po złożeniu podpisu; czas podpisu potwierdza znacznik czasu" in report.warnings


def test_validation_data_added_after_signing_is_accepted(rsa_pki, signed):
    """A DSS (PAdES-B-LT) and a document time-stamp (B-LTA) are the only updates allowed after signing."""
    with_certificates = add_dss(signed, rsa_pki, revocation=False)
    report = verify(with_certificates, rsa_pki)
    assert report.valid and report.format == "PAdES-B-B"
    assert report.signed_content == signed  # never the update

    long_term = add_dss(signed, rsa_pki, revocation=True)
    report = verify(long_term, rsa_pki)
    assert report.valid and report.format == "PAdES-B-LT" and report.signed_content == signed
    assert "dane do weryfikacji zapisane w dokumencie (DSS) nie zostały sprawdzone" in report.warnings

    archived = add_document_timestamp(long_term, rsa_pki)
    report = verify(archived, rsa_pki)
    assert report.valid and report.format == "PAdES-B-LTA" and report.signed_content == signed
    assert "znaczniki czasu dokumentu (archiwalne) są nienaruszone, lecz zaufania do ich wystawcy nie sprawdzono" \
        in report.warnings


def test_two_signatures_are_both_checked_and_the_first_names_the_author(rsa_pki, signed):
    second = make_leaf(rsa_pki.intermediate, given="Anna", surname="Nowak", serial_number=None)
    both = sign_pdf(signed, rsa_pki, leaf=second, field="Podpis2", signing_time=NOW - dt.timedelta(minutes=30))
    report = verify(both, rsa_pki)
    assert report.valid and report.signer.name == "Jan Kowalski" and report.signed_at == SIGNED_AT
    assert "dokument zawiera 2 podpisy; jako podpisującego podano autora (podpis nr 1); dokument podpisali także: " \
           "Anna Nowak" in report.warnings
    assert report.signed_content == both  # the last signature's revision: everything both signed

    stranger = make_pki("rsa")
    untrusted = sign_pdf(signed, stranger, field="Podpis2")
    report = verify(untrusted, rsa_pki)
    assert not report.valid and report.signer.name == "Jan Kowalski"
    assert report.errors == ["podpis nr 2 (pole „Podpis2”): certyfikat nie pochodzi od zaufanego wystawcy (ścieżka "
                             "urywa się na wystawcy „Testowe Centrum Kwalifikowane” "
                             f"(nr seryjny {stranger.intermediate.cert.serial_number:x}))"]


# -- refused ----------------------------------------------------------------------------------------

def _stream_offset(data: bytes) -> int:
    """An offset inside the data of the first content stream (deflated bytes: the PDF still parses)."""
    found = re.search(rb"stream\r?\n", data)
    return found.end() + 10


def test_a_changed_byte_inside_the_signed_range_is_refused(rsa_pki, signed):
    offset = _stream_offset(signed)
    changed = signed[:offset] + bytes([signed[offset] ^ 0x01]) + signed[offset + 1:]
    report = verify(changed, rsa_pki)
    assert not report.valid
    assert report.errors == ["zmieniono treść podpisanego dokumentu (skrót podpisanego zakresu nie zgadza się z "
                             "podpisem)"]
    assert report.signed_content is None
    assert report.signer.pesel == PESEL  # who claims to have signed is still shown


CHANGED = ("dokument zmieniono po złożeniu podpisu ({}); po podpisaniu można dodać tylko kolejne podpisy, znaczniki "
           "czasu i dane do weryfikacji")


@pytest.mark.parametrize("change, what", [
    (add_page, "dodano lub usunięto strony"),
    (replace_text, "zmieniono treść stron"),
    (add_annotation, "dodano lub zmieniono adnotacje (komentarze, pola, znaczniki)"),
    (attach("PO-1-poprawione.xml", b"<wniosek/>"), "dodano lub zmieniono załączniki"),
], ids=["page", "text", "annotation", "attachment"])
def test_an_update_after_signing_is_refused_with_what_it_changed(rsa_pki, signed, change, what):
    report = verify(update(signed, change), rsa_pki)
    assert not report.valid
    assert report.errors == [CHANGED.format(what)]
    assert report.signed_content is None


def test_a_form_field_filled_after_signing_is_refused(rsa_pki):
    signed = sign_pdf(make_pdf(form_field=True), rsa_pki)
    report = verify(update(signed, fill_field), rsa_pki)
    assert not report.valid
    assert report.errors == [CHANGED.format("wypełniono pola formularza: uwagi")]


def test_changes_after_the_first_of_two_signatures_invalidate_it(rsa_pki, signed):
    """A page added between the author's signature and a second one: the second signer signed the change,
    the author did not."""
    second = sign_pdf(update(signed, add_page), rsa_pki, field="Podpis2")
    report = verify(second, rsa_pki)
    assert report.errors == ["podpis nr 1 (pole „Podpis1”): " + CHANGED.format("dodano lub usunięto strony")]


def test_a_signature_after_a_certification_that_forbids_changes_is_refused(rsa_pki, letter):
    certified = sign_pdf(letter, rsa_pki, certify=MDPPerm.NO_CHANGES)
    assert verify(certified, rsa_pki).valid
    second = sign_pdf(certified, rsa_pki, field="Podpis2", ignore_certification=True)
    report = verify(second, rsa_pki)
    assert report.errors == ["podpis nr 1 (pole „Podpis1”): podpis certyfikujący dokument nie dopuszcza żadnych "
                             "zmian, a po nim dodano kolejny podpis lub wypełniono formularz"]


def test_a_certificate_from_an_untrusted_ca_is_refused(rsa_pki, letter):
    stranger = make_pki("rsa")
    report = verify(sign_pdf(letter, stranger), rsa_pki)
    assert report.errors == [
        "certyfikat nie pochodzi od zaufanego wystawcy (ścieżka urywa się na wystawcy „Testowe Centrum Kwalifikowane” "
        f"(nr seryjny {stranger.intermediate.cert.serial_number:x}))"]
    assert report.signer.pesel == PESEL and report.signed_content is not None  # intact, only not trusted


def test_a_certificate_expired_at_signing_time_is_refused(rsa_pki, letter):
    signed_at = rsa_pki.leaf.cert.not_valid_after_utc + dt.timedelta(days=2)
    report = verify(sign_pdf(letter, rsa_pki, signing_time=signed_at), rsa_pki, now=signed_at + dt.timedelta(hours=1))
    assert report.errors[0].startswith("certyfikat wygasł przed chwilą podpisu")


def test_a_certificate_not_yet_valid_at_signing_time_is_refused(rsa_pki, letter):
    signed_at = rsa_pki.leaf.cert.not_valid_before_utc - dt.timedelta(days=2)
    report = verify(sign_pdf(letter, rsa_pki, signing_time=signed_at), rsa_pki)
    assert report.errors[0].startswith("certyfikat nie był jeszcze ważny w chwili podpisu")


def test_a_signing_time_in_the_future_is_refused(rsa_pki, letter):
    report = verify(sign_pdf(letter, rsa_pki, signing_time=NOW + dt.timedelta(days=1)), rsa_pki)
    assert report.errors[0].startswith("czas złożenia podpisu") and "późniejszy niż chwila weryfikacji" in report.errors[0]
    assert report.signed_content is not None  # intact: the clerk may see what was signed, as for XAdES


def test_an_unsupported_signature_format_is_refused_as_invalid(rsa_pki, signed):
    data = signed.replace(b"/ETSI.CAdES.detached", b"/adbe.x509.rsa_sha1 ", 1)
    report = verify(data, rsa_pki)
    assert not report.valid and report.signed_content is None
    assert report.errors == ["podpis w polu „Podpis1” ma format /adbe.x509.rsa_sha1, którego nie obsługujemy "
                             "(przyjmujemy PAdES: ETSI.CAdES.detached oraz adbe.pkcs7.detached)"]


# -- unreadable -------------------------------------------------------------------------------------

def test_a_pdf_without_a_signature_cannot_be_verified(rsa_pki, letter):
    with pytest.raises(SignatureError, match="^dokument PDF nie zawiera podpisu elektronicznego$"):
        verify(letter, rsa_pki)


def test_a_signed_pdf_cut_back_to_its_unsigned_revision_has_no_signature(rsa_pki, letter, signed):
    assert signed.startswith(letter)
    with pytest.raises(SignatureError, match="nie zawiera podpisu"):
        verify(signed[:len(letter)], rsa_pki)


def test_an_encrypted_pdf_is_refused(rsa_pki, letter):
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(letter)))
    writer.encrypt(user_password="", owner_password="tajne", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(SignatureError, match="^dokument PDF jest zaszyfrowany"):
        verify(out.getvalue(), rsa_pki)


@pytest.mark.parametrize("data, message", [
    (b"", "plik jest pusty"),
    (b"<?xml version='1.0'?><a/>", "plik nie jest dokumentem PDF"),
    (b"%PDF-1.7\n" + b"0" * 2000, "dokument PDF jest niekompletny"),
    (b"%PDF-1.7\nto nie jest PDF\n%%EOF\n", "dokument PDF jest uszkodzony lub nieczytelny"),
])
def test_not_a_pdf_is_refused(rsa_pki, data, message):
    with pytest.raises(SignatureError, match=message):
        verify(data, rsa_pki)


def test_a_truncated_signed_pdf_is_refused(rsa_pki, signed):
    with pytest.raises(SignatureError, match="dokument PDF jest niekompletny"):
        verify(signed[:len(signed) // 2], rsa_pki)


def test_a_file_over_the_size_bound_is_refused_before_reading(rsa_pki, signed):
    big = signed + b" " * (30 * 1024 * 1024 - len(signed))
    with pytest.raises(SignatureError, match=f"^dokument PDF jest za duży: {30 * 1024 * 1024} bajtów, dopuszczalne "):
        verify(big, rsa_pki)


# -- the CMS in /Contents (outside the signed bytes) ------------------------------------------------

def edit_cms(signed: bytes, change) -> bytes:
    """The signature's CMS decoded, ``change(content_info)`` applied, written back in place (zero padded):
    /Contents lies outside the ByteRange, so the signed bytes stay as they were."""
    found = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", signed)
    # the DER says its own length: the zero padding after it is ignored (stripping zeros could cut the
    # value itself when it ends with a zero byte)
    content_info = cms.ContentInfo.load(bytes.fromhex(found.group(1).decode()), strict=False)
    change(content_info)
    encoded = content_info.dump(force=True).hex().encode()
    assert len(encoded) <= len(found.group(1))
    return signed[:found.start(1)] + encoded.ljust(len(found.group(1)), b"0") + signed[found.end(1):]


def test_a_substituted_certificate_is_refused(rsa_pki, signed):
    """Another certificate of the same CA put into the CMS: the signed signing-certificate-v2 attribute names
    the real one."""
    other = make_leaf(rsa_pki.intermediate, given="Anna", surname="Nowak")

    def substitute(content_info):
        certificates = content_info["content"]["certificates"]
        content_info["content"]["certificates"] = cms.CertificateSet(
            [cms.CertificateChoices(name="certificate", value=asn1_certificate(other.cert))] +
            [c for c in certificates if c.chosen.subject != asn1_certificate(rsa_pki.leaf.cert).subject])
        signer_info = content_info["content"]["signer_infos"][0]
        signer_info["sid"] = cms.SignerIdentifier(name="issuer_and_serial_number", value=cms.IssuerAndSerialNumber(
            {"issuer": asn1_certificate(other.cert).issuer, "serial_number": other.cert.serial_number}))

    report = verify(edit_cms(signed, substitute), rsa_pki)
    assert report.errors == ["podpisane wskazanie certyfikatu (signing-certificate) nie zgadza się z certyfikatem "
                             "podpisującego zawartym w podpisie"]
    assert report.signed_content is None


def test_a_signature_without_its_certificate_is_refused(rsa_pki, signed):
    def strip(content_info):
        content_info["content"]["certificates"] = cms.CertificateSet([])

    report = verify(edit_cms(signed, strip), rsa_pki)
    assert report.errors == ["podpis nie zawiera certyfikatu podpisującego"]
    assert not report.valid and report.signer is None


def test_an_unreadable_signature_value_is_refused(rsa_pki, signed):
    found = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", signed)
    broken = signed[:found.start(1)] + b"0" * len(found.group(1)) + signed[found.end(1):]
    report = verify(broken, rsa_pki)
    assert report.errors == ["danych podpisu (CMS w polu /Contents) nie da się odczytać"]
    assert report.signer is None and report.signed_content is None


def test_a_time_stamp_token_taken_from_another_signature_is_ignored(rsa_pki, letter):
    stamped = NOW - dt.timedelta(minutes=50)
    donor = sign_pdf(letter, rsa_pki, timestamper=tsa_for(rsa_pki, NOW - dt.timedelta(days=300)))
    found = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", donor)
    token = cms.ContentInfo.load(bytes.fromhex(found.group(1).decode()).rstrip(b"\0"))[
        "content"]["signer_infos"][0]["unsigned_attrs"]

    def transplant(content_info):
        content_info["content"]["signer_infos"][0]["unsigned_attrs"] = token

    receiver = sign_pdf(letter, rsa_pki, timestamper=tsa_for(rsa_pki, stamped))
    report = verify(edit_cms(receiver, transplant), rsa_pki)
    assert report.valid and report.signed_at == SIGNED_AT  # the declared time, not the transplanted one
    assert report.format == "PAdES-B-B"
    assert report.warnings[0] == ("znacznik czasu podpisu jest nieprawidłowy (dotyczy innych danych); pominięto go, "
                                  "czas podpisu przyjęto z deklaracji podpisującego")


def test_signing_works_in_a_thread_that_runs_an_event_loop(rsa_pki, letter):
    """pyHanko's sync API calls asyncio.run, which a running loop refuses (Playwright's sync API keeps one
    in a test process; an ASGI server in its threads): ``outside_event_loop`` moves the call off it."""
    async def inside_a_loop():
        return sign_pdf(letter, rsa_pki)

    # a thread of its own, as this test's thread may itself run Playwright's loop
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        signed_in_loop = pool.submit(asyncio.run, inside_a_loop()).result()
    report = verify(signed_in_loop, rsa_pki)
    assert report.valid, report.errors


def test_sha1_is_refused(rsa_pki, letter):
    meta = PdfSignatureMetadata(field_name="Podpis1", md_algorithm="sha1", subfilter=SigSeedSubFilter.PADES)
    data = outside_event_loop(_TimedPdfSigner(meta, simple_signer(rsa_pki), signing_time=SIGNED_AT).sign_pdf,
                              IncrementalPdfFileWriter(io.BytesIO(letter))).getvalue()
    report = verify(data, rsa_pki)
    assert report.errors == ["podpis używa algorytmu, którego nie przyjmujemy (SHA-1, MD5 lub DSA: sha1 / "
                             "sha1_rsa)"]
