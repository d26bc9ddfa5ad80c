"""A test PKI and a XAdES signer for the esign tests, and the tests of certificates and identities.

The other esign tests import ``make_pki``, ``sign`` and ``resign`` from here: certificates are generated
with ``cryptography`` (RSA 2048 and ECDSA P-256), documents are signed with signxml's XAdESSigner.
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureConstructionMethod, SignatureMethod
from signxml.xades import XAdESSigner

from platforma.esign import load_trust_anchors
from platforma.esign.trust import chain_problems, identifiers_from, signer_from_certificate

DS = "http://www.w3.org/2000/09/xmldsig#"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone.utc)
#: valid identifiers: PESEL of a person born 14 May 1944, the NIP of a Polish company
PESEL = "44051401359"
NIP = "5265877635"

LETTER = ('<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/" '
          'xmlns:str="http://crd.gov.pl/xml/schematy/struktura/2009/11/16/">'
          '<wnio:OpisDokumentu><str:Nazwa>Pismo ogólne do urzędu</str:Nazwa></wnio:OpisDokumentu>'
          '<wnio:DaneDokumentu><wnio:Adresat>Urząd Gminy Przykładowo</wnio:Adresat></wnio:DaneDokumentu>'
          '<wnio:TrescDokumentu format="text/plain"><wnio:Wartosc>Wnoszę o wydanie zaświadczenia o niezaleganiu '
          'w podatkach lokalnych.</wnio:Wartosc></wnio:TrescDokumentu></wnio:Dokument>').encode()


def _key(kind: str):
    return rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" else \
        ec.generate_private_key(ec.SECP256R1())


@dataclass
class Party:
    key: object
    cert: x509.Certificate


@dataclass
class PKI:
    root: Party
    intermediate: Party
    leaf: Party

    @property
    def anchors(self) -> list[x509.Certificate]:
        return [self.root.cert]

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.leaf.cert, self.intermediate.cert]


def _ca(name: str, kind: str, issuer: Party | None, *, not_before: dt.datetime, not_after: dt.datetime,
        path_length: int | None) -> Party:
    key = _key(kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Testowe Centrum Certyfikacji"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    return Party(key, builder.sign(signer_key, hashes.SHA256()))


def make_leaf(issuer: Party, *, kind: str = "rsa", serial_number: str | None = f"PNOPL-{PESEL}",
              organization_identifier: str | None = None, given: str = "Jan", surname: str = "Kowalski",
              not_before: dt.datetime = NOW - dt.timedelta(days=200), not_after: dt.datetime = NOW + dt.timedelta(days=500),
              non_repudiation_only: bool = True) -> Party:
    key = _key(kind)
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"), x509.NameAttribute(NameOID.GIVEN_NAME, given),
                  x509.NameAttribute(NameOID.SURNAME, surname),
                  x509.NameAttribute(NameOID.COMMON_NAME, f"{given} {surname}")]
    if serial_number:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    if organization_identifier:
        attributes.append(x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), organization_identifier))
    # ETSI EN 319 412-2: a qualified signing certificate may carry nonRepudiation alone
    usage = x509.KeyUsage(not non_repudiation_only, True, False, False, False, False, False, False, False)
    cert = (x509.CertificateBuilder().subject_name(x509.Name(attributes)).issuer_name(issuer.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
            .sign(issuer.key, hashes.SHA256()))
    return Party(key, cert)


def make_pki(kind: str = "rsa", **leaf) -> PKI:
    root = _ca("Testowy Urząd Certyfikacji", kind, None, not_before=NOW - dt.timedelta(days=3000),
               not_after=NOW + dt.timedelta(days=3000), path_length=1)
    intermediate = _ca("Testowe Centrum Kwalifikowane", kind, root, not_before=NOW - dt.timedelta(days=1000),
                       not_after=NOW + dt.timedelta(days=1000), path_length=0)
    return PKI(root, intermediate, make_leaf(intermediate, kind=kind, **leaf))


class _TimedSigner(XAdESSigner):
    """signxml's XAdESSigner with a chosen SigningTime (it always writes the current time)."""

    def __init__(self, signing_time: dt.datetime, **kwargs):
        super().__init__(**kwargs)
        self._signing_time = signing_time

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
        element = etree.SubElement(signed_signature_properties, "{http://uri.etsi.org/01903/v1.3.2#}SigningTime")
        element.text = self._signing_time.isoformat(timespec="seconds").replace("+00:00", "Z")


def sign(document: bytes, pki: PKI, *, enveloping: bool = False, signing_time: dt.datetime = NOW - dt.timedelta(hours=1),
         leaf: Party | None = None) -> bytes:
    leaf = leaf or pki.leaf
    method = SignatureMethod.ECDSA_SHA256 if isinstance(leaf.key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256
    signer = _TimedSigner(signing_time, method=SignatureConstructionMethod.enveloping if enveloping
                          else SignatureConstructionMethod.enveloped, signature_algorithm=method)
    signed = signer.sign(etree.fromstring(document), key=leaf.key, cert=[leaf.cert, pki.intermediate.cert])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def canonical(element: etree._Element, exclusive: bool = False) -> bytes:
    """C14N of ``element`` as the root of its own copy (independent of the code under test)."""
    return etree.tostring(etree.fromstring(etree.tostring(element, with_tail=False)), method="c14n", exclusive=exclusive)


def resign(root: etree._Element, key) -> None:
    """Recompute the SignatureValue after a test changed SignedInfo (the attacker holds a key too)."""
    signature = root if root.tag == f"{{{DS}}}Signature" else root.find(f".//{{{DS}}}Signature")
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    data = canonical(signed_info)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        value = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    signature.find(f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()


def pem(*certificates: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


# -- tests of the certificate checks ----------------------------------------------------------------

@pytest.fixture(scope="module")
def pki() -> PKI:
    return make_pki()


def test_a_chain_to_the_anchor_through_an_intermediate_is_trusted(pki):
    assert chain_problems(pki.leaf.cert, [pki.intermediate.cert], pki.anchors, NOW) == []


def test_non_repudiation_alone_is_enough_and_neither_bit_is_refused(pki):
    usage = pki.leaf.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.content_commitment is True and usage.digital_signature is False
    assert chain_problems(pki.leaf.cert, [pki.intermediate.cert], pki.anchors, NOW) == []
    both = make_leaf(pki.intermediate, non_repudiation_only=False)
    assert chain_problems(both.cert, [pki.intermediate.cert], pki.anchors, NOW) == []
    key = _key("rsa")  # keyEncipherment only
    wrong = (x509.CertificateBuilder().subject_name(pki.leaf.cert.subject).issuer_name(pki.intermediate.cert.subject)
             .public_key(key.public_key()).serial_number(7).not_valid_before(NOW - dt.timedelta(days=1))
             .not_valid_after(NOW + dt.timedelta(days=1))
             .add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True)
             .sign(pki.intermediate.key, hashes.SHA256()))
    assert any("nie jest przeznaczony do składania podpisu" in p
               for p in chain_problems(wrong, [pki.intermediate.cert], pki.anchors, NOW))


def test_validity_is_judged_at_the_given_moment(pki):
    after = pki.leaf.cert.not_valid_after_utc + dt.timedelta(days=1)
    before = pki.leaf.cert.not_valid_before_utc - dt.timedelta(days=1)
    assert chain_problems(pki.leaf.cert, [pki.intermediate.cert], pki.anchors, after)[0].startswith(
        "certyfikat wygasł przed chwilą podpisu")
    assert chain_problems(pki.leaf.cert, [pki.intermediate.cert], pki.anchors, before)[0].startswith(
        "certyfikat nie był jeszcze ważny w chwili podpisu")


def test_an_untrusted_issuer_and_a_missing_intermediate_are_named(pki):
    other = make_pki()
    assert chain_problems(pki.leaf.cert, [pki.intermediate.cert], other.anchors, NOW) == [
        "certyfikat nie pochodzi od zaufanego wystawcy (ścieżka urywa się na wystawcy „Testowe Centrum Kwalifikowane” "
        f"(nr seryjny {pki.intermediate.cert.serial_number:x}))"]
    assert chain_problems(pki.leaf.cert, [], pki.anchors, NOW) == ["certyfikat nie pochodzi od zaufanego wystawcy"]
    assert "nie skonfigurowano zaufanych wystawców" in chain_problems(pki.leaf.cert, [], [], NOW)[0]


def test_an_expired_intermediate_breaks_the_chain():
    root = _ca("Root", "rsa", None, not_before=NOW - dt.timedelta(days=3000), not_after=NOW + dt.timedelta(days=3000),
               path_length=1)
    old = _ca("Old", "rsa", root, not_before=NOW - dt.timedelta(days=1000), not_after=NOW - dt.timedelta(days=10),
              path_length=0)
    leaf = make_leaf(old, not_before=NOW - dt.timedelta(days=100), not_after=NOW + dt.timedelta(days=100))
    assert chain_problems(leaf.cert, [old.cert], [root.cert], NOW) == [
        f"certyfikat wystawcy „Old” (nr seryjny {old.cert.serial_number:x}) nie był ważny w chwili podpisu"]


def test_a_pinned_certificate_is_trusted_itself(pki):
    assert chain_problems(pki.leaf.cert, [], [pki.leaf.cert], NOW) == []


def test_a_short_rsa_key_is_refused(pki):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak = (x509.CertificateBuilder().subject_name(pki.leaf.cert.subject).issuer_name(pki.intermediate.cert.subject)
            .public_key(key.public_key()).serial_number(9).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=1)).sign(pki.intermediate.key, hashes.SHA256()))
    assert chain_problems(weak, [pki.intermediate.cert], pki.anchors, NOW)[0].startswith("klucz RSA certyfikatu ma 1024 bitów")


def test_trust_anchor_bundle(tmp_path, pki):
    path = tmp_path / "zaufani.pem"
    path.write_bytes(pem(pki.root.cert, pki.intermediate.cert))
    assert [c.subject for c in load_trust_anchors(path)] == [pki.root.cert.subject, pki.intermediate.cert.subject]
    from platforma.esign import TrustAnchorError

    with pytest.raises(TrustAnchorError, match="nie zawiera certyfikatów"):
        load_trust_anchors(b"nie PEM")
    with pytest.raises(TrustAnchorError, match="nie można odczytać"):
        load_trust_anchors(tmp_path / "brak.pem")


# -- identities -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (f"PNOPL-{PESEL}", (PESEL, None)),
    (f"PESEL:{PESEL}", (PESEL, None)),
    (f"TINPL-{NIP}", (None, NIP)),
    (f"VATPL-{NIP}", (None, NIP)),
    (f"NIP: {NIP}", (None, NIP)),
    ("IDCPL-ABC123456", (None, None)),
])
def test_identifiers_in_serial_number(text, expected):
    assert identifiers_from([text], []) == expected


def test_an_identifier_with_a_wrong_check_digit_is_dropped_with_a_warning():
    warnings: list[str] = []
    assert identifiers_from(["PNOPL-44051401358", "VATPL-5265877636"], warnings) == (None, None)
    assert warnings == ["numer PESEL w certyfikacie (44051401358) ma błędną cyfrę kontrolną; pominięto go",
                        "numer NIP w certyfikacie (5265877636) ma błędną cyfrę kontrolną; pominięto go"]


def test_signer_from_a_personal_and_an_organisation_certificate(pki):
    person = signer_from_certificate(pki.leaf.cert, [])
    assert (person.name, person.given_names, person.surname, person.pesel, person.nip, person.source) == (
        "Jan Kowalski", "Jan", "Kowalski", PESEL, None, "certyfikat")
    assert person.certificate_issuer == pki.intermediate.cert.subject.rfc4514_string()
    assert f"serialNumber=PNOPL-{PESEL}" in person.certificate_subject
    assert person.certificate_serial == f"{pki.leaf.cert.serial_number:x}" and person.qualified is False
    seal = make_leaf(pki.intermediate, serial_number=None, organization_identifier=f"VATPL-{NIP}")
    assert signer_from_certificate(seal.cert, []).nip == NIP


def test_qualified_statement_is_recognised(pki):
    # qcStatements (RFC 3739) with the single statement id-etsi-qcs-QcCompliance
    statements = bytes.fromhex("300a3008060604008e460101")
    key = _key("rsa")
    cert = (x509.CertificateBuilder().subject_name(pki.leaf.cert.subject).issuer_name(pki.intermediate.cert.subject)
            .public_key(key.public_key()).serial_number(11).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"), statements), critical=False)
            .sign(pki.intermediate.key, hashes.SHA256()))
    assert signer_from_certificate(cert, []).qualified is True


def test_helpers_sign_what_they_are_given(pki):
    signed = etree.fromstring(sign(LETTER, pki))
    assert signed.find(f"{{{DS}}}Signature") is not None
    again = copy.deepcopy(signed)
    resign(again, pki.leaf.key)
    assert again.findtext(f".//{{{DS}}}SignatureValue") == signed.findtext(f".//{{{DS}}}SignatureValue")
