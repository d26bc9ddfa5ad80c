"""Letters signed here with signxml's XAdESSigner and a test CA: accepted with the signer's identity, and
refused with a plain Polish reason after each of our own attacks on them."""
from __future__ import annotations

import copy
import datetime as dt

import pytest
from lxml import etree

from platforma.esign import SignatureError, verify_document
from tests.unit.test_esign_pki import LETTER, NIP, NOW, PESEL, make_leaf, make_pki, resign, sign

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
WNIO = "http://crd.gov.pl/wzor/2013/12/12/1410/"
N = {"ds": DS, "xades": XADES, "wnio": WNIO}


@pytest.fixture(scope="module")
def rsa_pki():
    return make_pki("rsa")


@pytest.fixture(scope="module")
def ec_pki():
    return make_pki("ec")


def verify(data: bytes, pki, **kwargs):
    return verify_document(data, trust_anchors=pki.anchors, at=kwargs.pop("at", NOW), **kwargs)


def tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def dump(root: etree._Element) -> bytes:
    return etree.tostring(root)


# -- accepted ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("enveloping", [False, True], ids=["enveloped", "enveloping"])
def test_a_signed_letter_is_accepted_with_its_signer(kind, enveloping, rsa_pki, ec_pki):
    pki = rsa_pki if kind == "rsa" else ec_pki
    signed_at = NOW - dt.timedelta(hours=3)
    report = verify(sign(LETTER, pki, enveloping=enveloping, signing_time=signed_at), pki)
    assert report.errors == [] and report.valid
    assert report.format == "XAdES-BES" and report.signed_at == signed_at and report.enveloped is (not enveloping)
    signer = report.signer
    assert (signer.name, signer.given_names, signer.surname, signer.pesel, signer.source) == (
        "Jan Kowalski", "Jan", "Kowalski", PESEL, "certyfikat")
    assert signer.certificate_serial == f"{pki.leaf.cert.serial_number:x}"
    assert "Testowe Centrum Kwalifikowane" in signer.certificate_issuer
    # the signed content is the letter itself, without the signature, read from the verified bytes
    assert report.signed_xml.tag == f"{{{WNIO}}}Dokument"
    assert report.signed_xml.find(f".//{{{DS}}}Signature") is None
    assert etree.fromstring(report.signed_content).findtext(".//wnio:Wartosc", namespaces=N).startswith("Wnoszę")
    assert [r.role for r in report.references] == ["obiekt" if enveloping else "dokument", "właściwości podpisu",
                                                   "certyfikat"]
    assert report.as_dict()["signed_at"] == signed_at.isoformat().replace("+00:00", "Z")


def test_an_organisation_seal_gives_the_nip(rsa_pki):
    seal = make_leaf(rsa_pki.intermediate, serial_number=f"VATPL-{NIP}", given="Gmina", surname="Przykładowo")
    report = verify(sign(LETTER, rsa_pki, leaf=seal), rsa_pki)
    assert report.valid and report.signer.nip == NIP and report.signer.pesel is None


def test_the_trusted_profile_signer_comes_from_the_signed_ppzp_data(rsa_pki):
    """Podpis zaufany: the certificate is the ministry's seal; the person is in ppZP:PodpisZP, signed."""
    seal = make_leaf(rsa_pki.intermediate, serial_number=None, given="Podpis", surname="Zaufany")
    letter = etree.fromstring(LETTER)
    ppzp = etree.SubElement(letter, "{http://crd.gov.pl/xml/schematy/ppzp/}PodpisZP")
    person = etree.SubElement(etree.SubElement(ppzp, "{http://crd.gov.pl/xml/schematy/ppzp/}DaneZP"),
                              "{http://crd.gov.pl/xml/schematy/ppzp/}DaneZPOsobyFizycznej")
    for name, value in (("Imie", "Anna"), ("Nazwisko", "Nowak"), ("PESEL", PESEL)):
        etree.SubElement(person, f"{{http://crd.gov.pl/xml/schematy/osoba/2009/03/06/}}{name}").text = value
    report = verify(sign(etree.tostring(letter), rsa_pki, leaf=seal), rsa_pki)
    assert report.valid
    assert (report.signer.name, report.signer.pesel, report.signer.source) == ("Anna Nowak", PESEL, "profil zaufany")
    assert "Podpis Zaufany" in report.signer.certificate_subject


def test_unsigned_ppzp_data_is_ignored(rsa_pki):
    """ppZP put into the unsigned part (the signature's own unsigned ds:Object) does not name the signer."""
    seal = make_leaf(rsa_pki.intermediate, serial_number=None, given="Podpis", surname="Zaufany")
    root = tree(sign(LETTER, rsa_pki, leaf=seal))
    signature = root.find("ds:Signature", N)
    obj = etree.SubElement(signature, f"{{{DS}}}Object")
    obj.append(etree.fromstring('<p:PodpisZP xmlns:p="http://crd.gov.pl/xml/schematy/ppzp/"><p:DaneZP>'
                                '<p:DaneZPOsobyFizycznej><o:PESEL xmlns:o="http://crd.gov.pl/xml/schematy/osoba/2009/03/06/">'
                                f'{PESEL}</o:PESEL></p:DaneZPOsobyFizycznej></p:DaneZP></p:PodpisZP>'))
    report = verify(dump(root), rsa_pki)
    assert report.signer.source == "certyfikat" and report.signer.pesel is None


def test_a_signature_time_stamp_makes_it_xades_t_with_a_warning(rsa_pki):
    root = tree(sign(LETTER, rsa_pki))
    qualifying = root.find(".//xades:QualifyingProperties", N)
    unsigned = etree.SubElement(etree.SubElement(qualifying, f"{{{XADES}}}UnsignedProperties"),
                                f"{{{XADES}}}UnsignedSignatureProperties")
    etree.SubElement(etree.SubElement(unsigned, f"{{{XADES}}}SignatureTimeStamp"),
                     f"{{{XADES}}}EncapsulatedTimeStamp").text = "MAA="
    report = verify(dump(root), rsa_pki)
    assert report.valid and report.format == "XAdES-T"
    assert any("znaczniki czasu" in w for w in report.warnings)


# -- attacks ----------------------------------------------------------------------------------------

def test_changed_content_is_refused(rsa_pki):
    data = sign(LETTER, rsa_pki).replace("niezaleganiu".encode(), "zaleganiu".encode())
    report = verify(data, rsa_pki)
    assert not report.valid and report.errors == ["zmieniono treść podpisanego dokumentu"]
    assert report.signed_content is None


def test_changed_enveloping_content_is_refused(ec_pki):
    data = sign(LETTER, ec_pki, enveloping=True).replace("niezaleganiu".encode(), "zaleganiu".encode())
    assert verify(data, ec_pki).errors == ["zmieniono treść podpisanego dokumentu"]


def test_wrapping_the_signed_letter_and_forging_the_one_the_application_reads(rsa_pki):
    """XSW: the signed ds:Object moves under an unsigned wrapper (its Id and digest still match) and a forged
    letter takes its place, where an application reading the first letter in the file would find it."""
    original = tree(sign(LETTER, rsa_pki, enveloping=True))
    signed_object = original.xpath("ds:Object[wnio:Dokument]", namespaces=N)[0]
    position = original.index(signed_object)
    forged_object = copy.deepcopy(signed_object)
    del forged_object.attrib["Id"]
    forged_object.find(".//wnio:Wartosc", N).text = "Rezygnuję z odwołania."
    original.remove(signed_object)
    original.insert(position, forged_object)
    wrapper = etree.SubElement(etree.SubElement(original, f"{{{DS}}}Object"), "wrapper")
    wrapper.append(signed_object)
    report = verify(dump(original), rsa_pki)
    assert not report.valid
    assert any("signature wrapping" in e for e in report.errors)
    assert sum("niepodpisaną treść" in e for e in report.errors) == 2  # the forgery and the wrapper
    assert report.signed_content is None


def test_a_duplicated_id_is_refused_as_wrapping(rsa_pki):
    """Two elements carry the Id the reference names: which one was signed would depend on the verifier."""
    signed = tree(sign(LETTER, rsa_pki, enveloping=True))
    forged = copy.deepcopy(signed.xpath("ds:Object[wnio:Dokument]", namespaces=N)[0])
    forged.find(".//wnio:Wartosc", N).text = "Rezygnuję z odwołania."
    signed.append(forged)
    report = verify(dump(signed), rsa_pki)
    assert not report.valid
    assert any("występuje w dokumencie 2 razy" in e for e in report.errors)


def test_a_forged_letter_next_to_an_enveloped_signature_over_one_element_is_refused(rsa_pki):
    """An enveloped signature that covers only one element (by Id) leaves the rest open to forgery."""
    letter = etree.fromstring(LETTER)
    content = letter.find("wnio:TrescDokumentu", N)
    content.set("Id", "tresc")
    from signxml import SignatureConstructionMethod
    from signxml.xades import XAdESSigner

    signed = XAdESSigner(method=SignatureConstructionMethod.enveloped).sign(
        letter, key=rsa_pki.leaf.key, cert=[rsa_pki.leaf.cert, rsa_pki.intermediate.cert], reference_uri="#tresc")
    signed.find("wnio:DaneDokumentu/wnio:Adresat", N).text = "Ktoś inny"
    report = verify(dump(signed), rsa_pki)
    assert "podpis obejmuje tylko część dokumentu" in report.errors[0]


def test_unsigned_signed_properties_are_refused(rsa_pki):
    """The SignedProperties reference is removed and SignedInfo re-signed by the attacker's key holder."""
    root = tree(sign(LETTER, rsa_pki))
    signed_info = root.find(".//ds:SignedInfo", N)
    for reference in signed_info.findall("ds:Reference", N):
        if reference.get("Type") == "http://uri.etsi.org/01903#SignedProperties":
            signed_info.remove(reference)
    resign(root, rsa_pki.leaf.key)
    report = verify(dump(root), rsa_pki)
    assert report.errors == ["właściwości podpisu (SignedProperties) nie są podpisane"]
    assert report.signed_at is None


def test_changed_signed_properties_are_refused(rsa_pki):
    root = tree(sign(LETTER, rsa_pki))
    root.find(".//xades:SigningTime", N).text = "2020-01-01T00:00:00Z"
    report = verify(dump(root), rsa_pki)
    assert report.errors == ["zmieniono podpisane właściwości podpisu (SignedProperties)"]


def test_a_reference_to_a_missing_id_is_refused(rsa_pki):
    root = tree(sign(LETTER, rsa_pki, enveloping=True))
    root.find("ds:SignedInfo/ds:Reference", N).set("URI", "#nie-ma-takiego")
    resign(root, rsa_pki.leaf.key)
    report = verify(dump(root), rsa_pki)
    assert "odwołanie do „#nie-ma-takiego”: podpis odwołuje się do elementu „#nie-ma-takiego”, którego nie ma w dokumencie" \
        in report.errors
    assert any("niepodpisaną treść" in e for e in report.errors)


def test_a_changed_signed_info_breaks_the_signature_value(rsa_pki):
    root = tree(sign(LETTER, rsa_pki))
    root.find(".//ds:SignedInfo/ds:Reference", N).set("Id", "zmienione")
    report = verify(dump(root), rsa_pki)
    assert report.errors == ["wartość podpisu nie zgadza się z podpisanymi danymi: podpis został zmieniony albo "
                             "złożono go innym kluczem niż klucz z certyfikatu"]


def test_a_certificate_expired_at_signing_time_is_refused(rsa_pki):
    signed_at = rsa_pki.leaf.cert.not_valid_after_utc + dt.timedelta(days=2)
    report = verify(sign(LETTER, rsa_pki, signing_time=signed_at), rsa_pki, at=signed_at + dt.timedelta(hours=1))
    assert report.errors[0].startswith("certyfikat wygasł przed chwilą podpisu")
    assert report.signed_content is not None  # intact, only not trusted: the clerk may still see what was signed


def test_a_certificate_valid_at_signing_time_stays_valid_after_expiry(rsa_pki):
    signed_at = rsa_pki.leaf.cert.not_valid_after_utc - dt.timedelta(days=2)
    report = verify(sign(LETTER, rsa_pki, signing_time=signed_at), rsa_pki, at=signed_at + dt.timedelta(days=30))
    assert report.valid
    assert any("wygasł po złożeniu podpisu" in w for w in report.warnings)


def test_a_signing_time_in_the_future_is_refused(rsa_pki):
    report = verify(sign(LETTER, rsa_pki, signing_time=NOW + dt.timedelta(days=1)), rsa_pki)
    assert report.errors[0].startswith("czas złożenia podpisu") and "późniejszy niż chwila weryfikacji" in report.errors[0]


def test_a_certificate_from_an_untrusted_ca_is_refused(rsa_pki):
    stranger = make_pki("rsa")
    report = verify(sign(LETTER, stranger), rsa_pki)
    assert report.errors == [
        "certyfikat nie pochodzi od zaufanego wystawcy (ścieżka urywa się na wystawcy „Testowe Centrum Kwalifikowane” "
        f"(nr seryjny {stranger.intermediate.cert.serial_number:x}))"]
    assert report.signer.pesel == PESEL  # who claims to have signed is still shown


def test_a_substituted_certificate_is_refused(rsa_pki):
    """Another certificate of the same CA is put in KeyInfo: the SignedProperties digest and the key give it away."""
    other = make_leaf(rsa_pki.intermediate)
    root = tree(sign(LETTER, rsa_pki))
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    root.find(".//ds:X509Certificate", N).text = base64.b64encode(other.cert.public_bytes(Encoding.DER)).decode()
    report = verify(dump(root), rsa_pki)
    assert "skrót certyfikatu podpisującego zapisany w SignedProperties nie zgadza się z certyfikatem z podpisu" in report.errors


def test_a_doctype_is_refused_before_parsing(rsa_pki):
    data = sign(LETTER, rsa_pki).replace(b"?>", b'?>\n<!DOCTYPE wnio:Dokument [<!ENTITY x "y">]>', 1)
    with pytest.raises(SignatureError, match="DOCTYPE"):
        verify(data, rsa_pki)


def test_sha1_is_refused(rsa_pki):
    root = tree(sign(LETTER, rsa_pki))
    root.find(".//ds:SignatureMethod", N).set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    report = verify(dump(root), rsa_pki)
    assert "podpis używa algorytmu, którego nie przyjmujemy (SHA-1, HMAC, DSA lub nieznanego)" in report.errors


def test_a_file_without_a_signature_or_not_xml_cannot_be_read(rsa_pki):
    with pytest.raises(SignatureError, match="nie zawiera podpisu"):
        verify(LETTER, rsa_pki)
    with pytest.raises(SignatureError, match="nie jest poprawnym dokumentem XML"):
        verify(b"%PDF-1.7 ...", rsa_pki)
    with pytest.raises(SignatureError, match="jest za duży"):
        verify(sign(LETTER, rsa_pki), rsa_pki, max_bytes=1000)


def test_two_signatures_are_not_yet_supported(rsa_pki):
    once = sign(LETTER, rsa_pki)
    twice = tree(once)
    twice.append(copy.deepcopy(twice.find("ds:Signature", N)))
    report = verify(dump(twice), rsa_pki)
    assert not report.valid and report.errors == [
        "dokument zawiera 2 podpisy; weryfikacja dokumentów podpisanych przez kilka osób nie jest jeszcze obsługiwana"]


def test_a_doctype_inside_base64_signed_content_is_refused(rsa_pki):
    """A DOCTYPE anywhere: also in an XML file carried base64-encoded in the signed ds:Object."""
    import base64
    import hashlib

    inner = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    root = tree(sign(LETTER, rsa_pki, enveloping=True))
    obj = root.xpath("ds:Object[wnio:Dokument]", namespaces=N)[0]
    for child in list(obj):
        obj.remove(child)
    obj.text = base64.b64encode(inner).decode()
    reference = root.find("ds:SignedInfo/ds:Reference", N)
    reference.replace(reference.find("ds:Transforms", N), etree.fromstring(
        f'<ds:Transforms xmlns:ds="{DS}"><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/>'
        '</ds:Transforms>'))
    reference.find("ds:DigestValue", N).text = base64.b64encode(hashlib.sha256(inner).digest()).decode()
    resign(root, rsa_pki.leaf.key)
    report = verify(dump(root), rsa_pki)
    assert report.errors == ["podpisana treść zawiera deklarację DOCTYPE lub ENTITY (DTD); takich dokumentów nie "
                             "przyjmujemy"]
    assert report.signed_content is None
