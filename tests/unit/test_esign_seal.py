"""The office's electronic seal: sealed receipts (UPO) verify, any change breaks them, the configuration
refuses a seal that cannot work, and ``platforma init``'s development seal says what it is."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from lxml import etree

from platforma.config import ConfigError, load_settings
from platforma.esign import SealError, SignatureError, configured_trust_anchors, load_seal, seal_xml, verify_document
from platforma.esign.seal import DEVELOPMENT_UNIT, create_development_seal
from platforma.instance import render_config
from tests.unit.test_esign_pki import DS, LETTER, NIP, NOW, make_leaf, make_pki, pem

XADES = "http://uri.etsi.org/01903/v1.3.2#"
GMINA_NIP = "7794242429"  # the NIP in the generated configuration
SEALED_AT = NOW - dt.timedelta(minutes=5)


def receipt(*, number: str = "KP.0152.17.2026", office: str = "Urząd Gminy Przykładowo", nip: str = GMINA_NIP,
            received_at: dt.datetime = SEALED_AT) -> bytes:
    """A receipt like the UPO of issue 5: the letter's digest, the time of receipt, registration, the office."""
    digest = hashlib.sha256(LETTER).hexdigest()
    return (f'<upo:UPO xmlns:upo="urn:platforma:upo:1">'
            f'<upo:Dokument><upo:Nazwa>Pismo ogólne do urzędu</upo:Nazwa>'
            f'<upo:Skrot algorytm="SHA-256">{digest}</upo:Skrot></upo:Dokument>'
            f'<upo:DataPrzyjecia>{received_at.isoformat().replace("+00:00", "Z")}</upo:DataPrzyjecia>'
            f'<upo:NumerRejestru>{number}</upo:NumerRejestru>'
            f'<upo:Urzad><upo:Nazwa>{office}</upo:Nazwa><upo:NIP>{nip}</upo:NIP></upo:Urzad>'
            f'</upo:UPO>').encode()


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module", params=["rsa", "ec"])
def office(request):
    """A seal issued by a test CA to the office (organizationIdentifier VATPL-NIP), RSA 2048 or ECDSA P-256."""
    pki = make_pki(request.param)
    seal = make_leaf(pki.intermediate, kind=request.param, serial_number=None, organization_identifier=f"VATPL-{NIP}",
                     given="Urząd Gminy", surname="Przykładowo")
    return pki, seal


def sealed_receipt(office, **kwargs) -> bytes:
    pki, seal = office
    return seal_xml(receipt(**kwargs), key_pem=key_pem(seal.key), cert_chain_pem=pem(seal.cert, pki.intermediate.cert),
                    signing_time=SEALED_AT)


def test_a_sealed_receipt_verifies_and_names_the_office(office):
    pki, seal = office
    report = verify_document(sealed_receipt(office), trust_anchors=pki.anchors, at=NOW)
    assert report.valid, report.errors
    assert report.format == "XAdES-BES" and report.enveloped is True
    assert report.signed_at == SEALED_AT.replace(microsecond=0)
    assert report.signer.nip == NIP and report.signer.name == "Urząd Gminy Przykładowo"
    assert report.signer.certificate_sha256 == seal.cert.fingerprint(hashes.SHA256()).hex()
    assert report.signed_xml.findtext("{urn:platforma:upo:1}NumerRejestru") == "KP.0152.17.2026"
    assert report.signed_xml.find(f"{{{DS}}}Signature") is None  # the signed content is the receipt alone


def test_the_seal_carries_sha256_signing_time_and_the_signing_certificate_v2(office):
    pki, seal = office
    root = etree.fromstring(sealed_receipt(office))
    signature = root.find(f"{{{DS}}}Signature")
    assert {m.get("Algorithm") for m in signature.iter(f"{{{DS}}}DigestMethod")} == {
        "http://www.w3.org/2001/04/xmlenc#sha256"}
    assert signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod").get("Algorithm").endswith("sha256")
    properties = signature.find(f".//{{{XADES}}}SignedSignatureProperties")
    assert properties.findtext(f"{{{XADES}}}SigningTime") == SEALED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    certs = properties.findall(f"{{{XADES}}}SigningCertificateV2/{{{XADES}}}Cert")
    assert len(certs) == 1  # the seal certificate alone, not its issuers
    assert properties.find(f"{{{XADES}}}SigningCertificate") is None
    in_key_info = [x509.load_der_x509_certificate(base64.b64decode(e.text))
                   for e in signature.iter(f"{{{DS}}}X509Certificate")]
    assert in_key_info == [seal.cert, pki.intermediate.cert]


@pytest.mark.parametrize("old, new", [
    (b"KP.0152.17.2026", b"KP.0152.18.2026"),          # another registration number
    (b"<upo:Nazwa>Pismo", b"<upo:Nazwa>Wniosek"),       # another document
    (b'algorytm="SHA-256">', b'algorytm="SHA-256">0'),  # another digest
    (b"Z</upo:DataPrzyjecia>", b"+01:00</upo:DataPrzyjecia>"),  # another time of receipt
    (b"<upo:NIP>7794242429", b"<upo:NIP>5265877635"),    # another office
])
def test_any_change_to_a_sealed_receipt_makes_it_invalid(office, old, new):
    pki, _ = office
    sealed = sealed_receipt(office)
    assert sealed.count(old) == 1
    report = verify_document(sealed.replace(old, new), trust_anchors=pki.anchors, at=NOW)
    assert not report.valid and report.errors == ["zmieniono treść podpisanego dokumentu"]


def test_a_changed_signing_time_makes_it_invalid(office):
    pki, _ = office
    sealed = sealed_receipt(office)
    stamp = SEALED_AT.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    forged = sealed.replace(b">" + stamp + b"</", b">" + (SEALED_AT - dt.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ").encode() + b"</")
    report = verify_document(forged, trust_anchors=pki.anchors, at=NOW)
    assert not report.valid and "zmieniono podpisane właściwości podpisu (SignedProperties)" in report.errors


def test_a_seal_from_an_untrusted_issuer_is_not_trusted(office):
    report = verify_document(sealed_receipt(office), trust_anchors=make_pki().anchors, at=NOW)
    assert not report.valid and report.errors[0].startswith("certyfikat nie pochodzi od zaufanego wystawcy")


def test_sealing_refuses_a_wrong_pair_and_a_dtd(office):
    pki, seal = office
    other = make_leaf(pki.intermediate)
    with pytest.raises(SealError, match="nie pasuje do certyfikatu pieczęci"):
        seal_xml(receipt(), key_pem=key_pem(other.key), cert_chain_pem=pem(seal.cert))
    with pytest.raises(SealError, match="nie jest kluczem prywatnym"):
        seal_xml(receipt(), key_pem=b"nie klucz", cert_chain_pem=pem(seal.cert))
    with pytest.raises(SignatureError, match="DOCTYPE"):
        seal_xml(b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', key_pem=key_pem(seal.key), cert_chain_pem=pem(seal.cert))


# -- the development seal and the configuration ---------------------------------------------------

@pytest.fixture(scope="module")
def development(tmp_path_factory):
    directory = tmp_path_factory.mktemp("instancja")
    key, cert = create_development_seal(directory, office_name="Urząd Gminy Przykładowo",
                                        gmina_name="Gmina Przykładowo", nip=GMINA_NIP)
    return directory, key, cert


def test_the_development_seal_names_the_office_and_says_it_is_for_development(development):
    _, key, cert_path = development
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Urząd Gminy Przykładowo"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Gmina Przykładowo"
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == f"VATPL-{GMINA_NIP}"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == DEVELOPMENT_UNIT
    notice = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value[0].policy_qualifiers[0]
    assert "deweloperska" in notice.explicit_text and "kwalifikowaną" in notice.explicit_text
    assert cert.issuer == subject  # self-signed
    with pytest.raises(FileExistsError):
        create_development_seal(development[0], office_name="x", gmina_name="y")


def test_without_a_nip_the_development_seal_has_no_identifier(tmp_path):
    _, cert_path = create_development_seal(tmp_path, office_name="Urząd Gminy", gmina_name="Gmina")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert not cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)


def configure(directory, **esign: str):
    text = render_config()
    for name, value in esign.items():
        text = text.replace(f'{name} = ""', f'{name} = "{value}"', 1)
    path = directory / "gmina.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_configured_development_seal_seals_receipts_that_verify(development):
    directory, key, cert = development
    settings = load_settings(configure(directory, seal_key=key.name, seal_certificate=cert.name), environ={})
    office_seal = load_seal(settings)
    anchors = configured_trust_anchors(settings)
    assert anchors == [office_seal.certificate]  # no trust_anchors bundle: the seal alone, pinned
    report = verify_document(office_seal.seal(receipt()), trust_anchors=anchors)
    assert report.valid, report.errors
    assert report.signer.nip == GMINA_NIP and report.signer.organization == "Gmina Przykładowo"


def test_no_seal_configured_is_no_seal(tmp_path):
    settings = load_settings(configure(tmp_path), environ={})
    assert load_seal(settings) is None and configured_trust_anchors(settings) == []


def test_a_key_that_does_not_match_the_certificate_is_refused_at_load(development, tmp_path):
    directory, key, _ = development
    _, other_cert = create_development_seal(tmp_path, office_name="Urząd Gminy Inne", gmina_name="Gmina Inne")
    with pytest.raises(ConfigError) as info:
        load_settings(configure(directory, seal_key=str(key), seal_certificate=str(other_cert)), environ={})
    message = str(info.value)
    assert "esign.seal_key:" in message and "nie pasuje do certyfikatu pieczęci" in message, message


@pytest.mark.parametrize("setting, values, words", [
    ("esign.seal_key", {"seal_key": "brak-klucza.pem", "seal_certificate": "seal-cert.pem"}, "nie ma pliku klucza"),
    ("esign.seal_certificate", {"seal_key": "seal-key.pem", "seal_certificate": "brak.pem"}, "nie ma pliku certyfikatu"),
    ("esign.seal_certificate", {"seal_key": "seal-key.pem"}, "pieczęć wymaga klucza i certyfikatu"),
    ("esign.seal_key", {"seal_certificate": "seal-cert.pem"}, "pieczęć wymaga klucza i certyfikatu"),
])
def test_a_missing_seal_file_or_setting_is_refused_at_load(development, setting, values, words):
    directory, _, _ = development
    with pytest.raises(ConfigError) as info:
        load_settings(configure(directory, **values), environ={})
    message = str(info.value)
    assert f"{setting}:" in message and words in message, message


def test_a_certificate_file_without_certificates_is_refused_at_load(development, tmp_path):
    directory, key, _ = development
    (tmp_path / "zly.pem").write_text("to nie jest PEM")
    with pytest.raises(ConfigError, match="esign.seal_certificate: .*nie zawiera certyfikatów"):
        load_settings(configure(directory, seal_key=str(key), seal_certificate=str(tmp_path / "zly.pem")), environ={})


def test_a_password_protected_or_short_key_is_refused(office):
    from cryptography.hazmat.primitives.asymmetric import rsa

    pki, seal = office
    locked = seal.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(b"haslo"))
    with pytest.raises(SealError, match="zaszyfrowany hasłem"):
        seal_xml(receipt(), key_pem=locked, cert_chain_pem=pem(seal.cert))
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(SealError, match="ma 1024 bitów"):
        seal_xml(receipt(), key_pem=key_pem(short), cert_chain_pem=pem(seal.cert))


def test_the_trust_bundle_and_the_seal_are_trusted_together(development, office, tmp_path):
    directory, key, cert = development
    pki, _ = office
    (directory / "zaufani.pem").write_bytes(pem(pki.root.cert))
    text = configure(directory, seal_key=key.name, seal_certificate=cert.name).read_text(encoding="utf-8")
    path = directory / "gmina.toml"
    path.write_text(text.replace('trust_anchors = ""', 'trust_anchors = "zaufani.pem"'), encoding="utf-8")
    settings = load_settings(path, environ={})
    assert configured_trust_anchors(settings) == [pki.root.cert, load_seal(settings).certificate]
    assert verify_document(sealed_receipt(office), trust_anchors=configured_trust_anchors(settings), at=NOW).valid
