"""The reference samples of shared/reference-data/xades/, each with what EU DSS or signxml asserts for it.

* EU DSS (LGPL-2.1, read from shared/reference-data/xades/dss/; skipped with the place looked at when
  absent): the intact samples pass every signature and reference check, and their only errors are about
  the certificate (the DSS test PKI is not shipped, so it is untrusted); every tampered, wrapped, DTD and
  malformed sample is refused with its reason.
* signxml (Apache-2.0) and the xmlsec interop vectors (MIT), copied to tests/data/xades/signxml/: the
  vectors verify against their CA; the XML bombs, XXE and DTD files are refused quickly, unexpanded.
* KSeF (MIT, tests/data/xades/ksef/): documents of the Ministry of Finance's schemas, signed here with
  the algorithms and transforms its XAdES profile (auth/podpis-xades.md) accepts, verify.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree
from signxml import SignatureConstructionMethod, SignatureMethod
from signxml.algorithms import DigestAlgorithm

from platforma.esign import SignatureError, load_trust_anchors, verify_document
from tests.unit.test_esign_pki import NIP, NOW, _TimedSigner, make_pki, resign

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "xades"
SHARED = ROOT.parent / "shared" / "reference-data" / "xades"
DS = "http://www.w3.org/2000/09/xmldsig#"
N = {"ds": DS, "xades": "http://uri.etsi.org/01903/v1.3.2#"}

UNTRUSTED_GOOD_CA = "certyfikat nie pochodzi od zaufanego wystawcy (ścieżka urywa się na wystawcy „good-ca” (nr seryjny 4))"


def dss(name: str) -> bytes:
    path = SHARED / "dss" / name
    if not path.is_file():
        pytest.skip(f"{name} (EU DSS, LGPL-2.1, not copied here) not found at {path}")
    return path.read_bytes()


@pytest.fixture(scope="module")
def unrelated_anchors():
    """A trust store that holds none of the samples' CAs: their chains must end as untrusted."""
    return make_pki().anchors


def check(data: bytes, anchors, **kwargs):
    return verify_document(data, trust_anchors=anchors, at=kwargs.pop("at", NOW), **kwargs)


def certificate_errors_only(report) -> bool:
    return all(e.startswith("certyfikat") for e in report.errors)


# -- EU DSS: intact samples ------------------------------------------------------------------------

@pytest.mark.parametrize("name, format_, signed_at", [
    ("dss-signed.xml", "XAdES-BES", "2019-02-19T12:29:01Z"),
    ("xades-lta-valid.xml", "XAdES-A", "2021-07-13T13:27:44Z"),
])
def test_dss_intact_samples_pass_every_check_but_trust(name, format_, signed_at, unrelated_anchors):
    report = check(dss(name), unrelated_anchors)
    assert report.errors == [UNTRUSTED_GOOD_CA]
    assert report.format == format_ and report.as_dict()["signed_at"] == signed_at
    assert all(r.intact for r in report.references) and report.signed_content is not None
    assert report.signer.name == "good-user"


def test_dss_signed_xml_returns_the_table_without_the_signature(unrelated_anchors):
    report = check(dss("dss-signed.xml"), unrelated_anchors)
    assert report.signed_xml.tag == "{http://www.w3.org/TR/html4/}table"
    assert [td.text for td in report.signed_xml.iter("{http://www.w3.org/TR/html4/}td")] == ["Hello", "World"]
    assert b"Signature" not in report.signed_content


def test_dss_valid_xades_copy_was_reindented_after_signing(unrelated_anchors):
    """valid-xades.xml (enveloping, base64 object) as stored here carries indentation added after signing:
    refused as changed. With the whitespace between elements removed again, signature and references
    verify, and only the DSS fake certificate (keyCertSign only, expired, untrusted root) is at fault."""
    data = dss("valid-xades.xml")
    report = check(data, unrelated_anchors)
    assert "wartość podpisu nie zgadza się z podpisanymi danymi: podpis został zmieniony albo złożono go innym " \
           "kluczem niż klucz z certyfikatu" in report.errors
    assert "zmieniono podpisane właściwości podpisu (SignedProperties)" in report.errors
    compact = re.sub(rb">\s+<", b"><", data)
    root = etree.fromstring(compact)
    ders = [base64.b64decode(c.text) for c in root.findall(".//ds:X509Certificate", N)]
    fake_root = x509.load_der_x509_certificate(ders[1])
    report = check(compact, [fake_root], at=dt.datetime(2015, 12, 8, tzinfo=dt.timezone.utc))
    assert all(r.intact for r in report.references) and report.format == "XAdES-X-L"
    assert report.errors == ["certyfikat nie jest przeznaczony do składania podpisu (brak użycia klucza "
                             "digitalSignature ani nonRepudiation)"]
    # the signed object is base64: the content is the decoded file, parsed when it is XML
    assert report.signed_content.startswith(b"\xef\xbb\xbf<?xml")
    assert report.signed_xml.tag == "{http://www.w3.org/TR/html4/}table"


# -- EU DSS: refused samples -----------------------------------------------------------------------

SIGNATURE_VALUE = ("wartość podpisu nie zgadza się z podpisanymi danymi: podpis został zmieniony albo złożono go "
                   "innym kluczem niż klucz z certyfikatu")


@pytest.mark.parametrize("name, reasons", [
    # XAdESNoReferenceTest: the data reference deleted from SignedInfo
    ("dss-signed-altered-refRemoved.xml", [SIGNATURE_VALUE, "podpis nie obejmuje treści dokumentu"]),
    # XAdESNoSignedPropertiesTest: the SignedProperties reference deleted
    ("dss-signed-altered-signedPropsRemoved.xml", ["właściwości podpisu (SignedProperties) nie są podpisane",
                                                   SIGNATURE_VALUE]),
    # XAdESTemperedReferenceValidationTest: a DigestValue that is not base64
    ("xades-tampered-reference.xml", ["wartość skrótu (DigestValue) nie jest poprawnie zakodowana w base64"]),
    # XAdESTemperedKeyInfoValidationTest: the certificate in KeyInfo altered
    ("xades-tampered-keyinfo.xml", ["certyfikat zapisany w podpisie (KeyInfo) jest uszkodzony",
                                    "podpis nie zawiera certyfikatu podpisującego (X509Certificate w KeyInfo)"]),
    # XAdESTemperedManifestValidationTest: a manifest entry changed (and detached files we cannot check)
    ("xades-tampered-manifest.xml", ["zmieniono podpisaną treść wskazaną przez odwołanie „#manifest”",
                                     "podpisy zewnętrzne (detached) nie są przyjmowane"]),
    # XAdESInjectedCounterSignatureTest / XAdESFakeCounterSignatureTest
    ("xades-counter-signature-injected.xml", ["kontrasygnata: nie obejmuje wartości tego podpisu (SignatureValue)"]),
    ("xades-fake-counter-signature.xml", ["kontrasygnata: nie obejmuje wartości tego podpisu (SignatureValue)"]),
    # XAdESWithWrongSignCertificateDigestTest
    ("xades-wrong-sign-cert-digest.xml", ["skrót certyfikatu podpisującego zapisany w SignedProperties nie zgadza "
                                          "się z certyfikatem z podpisu"]),
    # XAdESWithNotBase64EncodedSignatureValueTest
    ("xades-not-base64-sigValue.xml", ["wartość podpisu (SignatureValue) nie jest poprawnie zakodowana w base64"]),
    # XMLDSigOnlyValidationTest: intact XMLDSig, but no certificate and no XAdES properties
    ("xmldsig-only.xml", ["podpis nie zawiera certyfikatu podpisującego (X509Certificate w KeyInfo)",
                          "podpis nie jest podpisem XAdES"]),
    # xsw/XAdESEnvelopedFakeSignedPropertiesTest
    ("xsw_XSW-enveloped-fake-signedProperties.xml", ["podpisane właściwości (SignedProperties) nie są tymi, które "
                                                     "podpis przedstawia"]),
    # xsw/XAdESEnvelopingFakeManifestTest
    ("xsw_XSW-enveloping-fake-manifest.xml", ["podpis zawiera niepodpisaną treść (ds:Object nr 2)",
                                              "podpisy zewnętrzne (detached) nie są przyjmowane"]),
    # xsw/XAdESEnvelopingFakeObjectTest
    ("xsw_XSW-enveloping-fake-object.xml", ["signature wrapping", "podpis zawiera niepodpisaną treść (ds:Object Id=„evil”)"]),
    # xsw/XSWProtectionDefaultBehaviorTest: only the image element is signed, not the document around it
    ("xsw_disable-checks.xml", ["podpis obejmuje tylko część dokumentu"]),
])
def test_dss_altered_samples_are_refused_with_their_reason(name, reasons, unrelated_anchors):
    report = check(dss(name), unrelated_anchors)
    assert not report.valid
    for reason in reasons:
        assert any(reason in error for error in report.errors), (reason, report.errors)
    assert report.signed_content is None


@pytest.mark.parametrize("name, message", [
    ("xades-with-dtd-injection.xml", "DOCTYPE"),                 # DTDInjectionTest
    ("malformed-xades.xml", "nie jest poprawnym dokumentem XML"),  # corrupted XML declaration
])
def test_dss_unreadable_samples_cannot_be_read_as_signed_documents(name, message, unrelated_anchors):
    with pytest.raises(SignatureError, match=message):
        check(dss(name), unrelated_anchors)


# -- signxml: xmlsec interop vectors, bombs, XXE, DTD ------------------------------------------------

@pytest.mark.parametrize("number", range(1, 9))
def test_xmlsec_interop_vectors_verify_against_their_ca(number):
    """Plain XMLDSig (no XAdES): valid when XAdES is not required; for a letter, refused for that alone.
    The CA is a version-1 self-signed certificate, also used to sign: trusted as a pinned anchor."""
    data = (DATA / "signxml" / f"aleksey-xmldsig-01-enveloped_enveloped-sha256-rsa-sha256-test-{number}.xml").read_bytes()
    anchors = load_trust_anchors(DATA / "signxml" / "aleksey-xmldsig-01-enveloped_cacert.pem")
    report = check(data, anchors, require_xades=False)
    assert report.errors == [] and report.valid and report.format == "XMLDSig"
    assert check(data, anchors).errors == ["podpis nie jest podpisem XAdES: brak podpisanych właściwości (czasu "
                                           "podpisu i wskazania certyfikatu)"]


def test_xmlsec_invalid_enveloped_transform_is_refused():
    data = (DATA / "signxml" / "aleksey-xmldsig-01-enveloped_invalid_enveloped_transform.xml").read_bytes()
    anchors = load_trust_anchors(DATA / "signxml" / "aleksey-xmldsig-01-enveloped_cacert.pem")
    report = check(data, anchors, require_xades=False)
    assert "odwołanie do „#object”: przekształcenie enveloped-signature usuwa podpisaną treść: odwołanie wskazuje " \
           "wnętrze samego podpisu" in report.errors
    assert SIGNATURE_VALUE in report.errors


@pytest.mark.parametrize("name", ["xmlbomb", "xmlbomb2", "quadratic", "cyclic", "dtd", "external", "external_file"])
def test_entity_attacks_are_refused_before_parsing(name):
    data = (DATA / "signxml" / f"defusedxml-test-data_{name}.xml").read_bytes()
    started = time.perf_counter()
    with pytest.raises(SignatureError, match="DOCTYPE lub ENTITY"):
        check(data, [])
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("name", ["simple", "simple-ns"])
def test_unsigned_files_are_refused(name):
    with pytest.raises(SignatureError, match="nie zawiera podpisu"):
        check((DATA / "signxml" / f"defusedxml-test-data_{name}.xml").read_bytes(), [])


def test_a_large_billion_laughs_is_refused_in_a_second_with_bounded_memory(tmp_path):
    """Ten levels of ten (10^10 expansions) padded to 5 MB, in a child process whose address space is capped."""
    levels = ['<!ENTITY l0 "ha">'] + [f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 11)]
    bomb = ('<?xml version="1.0"?><!DOCTYPE bomb [' + "".join(levels) + ']><bomb>&l10;' + " " * 5_000_000
            + "</bomb>").encode()
    path = tmp_path / "bomb.xml"
    path.write_bytes(bomb)
    program = (
        "import resource, sys, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (768 * 2**20, 768 * 2**20))\n"
        "from platforma.esign import SignatureError, verify_document\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "started = time.perf_counter()\n"
        "if sys.argv[2] == 'baseline':\n"
        "    print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'DOCTYPE lub ENTITY')\n"
        "    sys.exit(0)\n"
        "try:\n"
        "    verify_document(data, trust_anchors=[])\n"
        "except SignatureError as exc:\n"
        "    print(round(time.perf_counter() - started, 4), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, exc)\n"
    )

    def child(mode: str) -> tuple[float, int, str]:
        result = subprocess.run([sys.executable, "-c", program, str(path), mode], capture_output=True, text=True,
                                timeout=60, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        seconds, peak_kib, message = result.stdout.split(" ", 2)
        return float(seconds), int(peak_kib), message

    _, baseline_kib, _ = child("baseline")  # the same imports and the same 5 MB file, not parsed
    seconds, peak_kib, message = child("bomb")
    assert "DOCTYPE lub ENTITY" in message
    assert seconds < 1.0
    # refusing the bomb costs next to nothing beyond holding the file (the machine decides the baseline)
    assert peak_kib - baseline_kib < 32 * 1024, (peak_kib, baseline_kib)


# -- KSeF: the Ministry of Finance's XAdES profile --------------------------------------------------

KSEF_AUTH = ("<AuthTokenRequest xmlns=\"http://ksef.mf.gov.pl/auth/token/2.1\">"
             "<Challenge>20250916-CR-1A2B3C4D5E-6F7A8B9C0D-E1</Challenge>"
             f"<ContextIdentifier><Nip>{NIP}</Nip></ContextIdentifier>"
             "<SubjectIdentifierType>certificateSubject</SubjectIdentifierType></AuthTokenRequest>").encode()

PROFILE = [  # (key, SignatureMethod, DigestAlgorithm, data transforms) as listed in podpis-xades.md
    ("rsa", SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256, ["enveloped", "c14n11"]),
    ("rsa", SignatureMethod.SHA256_RSA_MGF1, DigestAlgorithm.SHA512, ["xpath", "exc"]),
    ("rsa", SignatureMethod.RSA_SHA512, DigestAlgorithm.SHA3_256, ["filter2", "c14n10"]),
    ("ec", SignatureMethod.ECDSA_SHA256, DigestAlgorithm.SHA256, ["enveloped", "exc"]),
    ("ec", SignatureMethod.ECDSA_SHA384, DigestAlgorithm.SHA384, ["xpath", "c14n11"]),
]
TRANSFORM = {
    "enveloped": '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>',
    "xpath": '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>'
             'not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>',
    "filter2": '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2"><f:XPath '
               'xmlns:f="http://www.w3.org/2002/06/xmldsig-filter2" Filter="subtract">/descendant::ds:Signature'
               '</f:XPath></ds:Transform>',
    "c14n11": '<ds:Transform Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>',
    "c14n10": '<ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>',
    "exc": '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
}


@pytest.fixture(scope="module")
def ksef_pkis():
    return {"rsa": make_pki("rsa", serial_number=f"TINPL-{NIP}"), "ec": make_pki("ec", serial_number=f"TINPL-{NIP}")}


def ksef_sign(document: bytes, pki, signature_method, digest, steps) -> bytes:
    signer = _TimedSigner(NOW - dt.timedelta(minutes=5), method=SignatureConstructionMethod.enveloped,
                          signature_algorithm=signature_method, digest_algorithm=digest)
    root = signer.sign(etree.fromstring(document), key=pki.leaf.key, cert=[pki.leaf.cert, pki.intermediate.cert])
    reference = root.find("ds:Signature/ds:SignedInfo/ds:Reference", N)
    transforms = etree.fromstring(f'<ds:Transforms xmlns:ds="{DS}">{"".join(TRANSFORM[s] for s in steps)}</ds:Transforms>')
    reference.replace(reference.find("ds:Transforms", N), transforms)
    exclusive = "exc" in steps
    expected = etree.tostring(etree.fromstring(document).getroottree(), method="c14n", exclusive=exclusive)
    reference.find("ds:DigestValue", N).text = base64.b64encode(hashlib.new(
        {"SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512", "SHA3_256": "sha3_256"}[digest.name],
        expected).digest()).decode()
    _resign_with(root, pki.leaf.key, signature_method)
    return etree.tostring(root)


def _resign_with(root, key, method) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    from tests.unit.test_esign_pki import canonical

    data = canonical(root.find("ds:Signature/ds:SignedInfo", N))
    algorithm = {"RSA_SHA256": hashes.SHA256(), "SHA256_RSA_MGF1": hashes.SHA256(), "RSA_SHA512": hashes.SHA512(),
                 "ECDSA_SHA256": hashes.SHA256(), "ECDSA_SHA384": hashes.SHA384()}[method.name]
    if method.name.startswith("ECDSA"):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
        value = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif method.name.endswith("MGF1"):
        value = key.sign(data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
    else:
        value = key.sign(data, padding.PKCS1v15(), algorithm)
    root.find("ds:Signature/ds:SignatureValue", N).text = base64.b64encode(value).decode()


def test_the_ksef_sample_document_matches_its_schema():
    schema = etree.XMLSchema(etree.parse(str(DATA / "ksef" / "schemat_auth_v2-1.xsd")))
    schema.assertValid(etree.fromstring(KSEF_AUTH))


@pytest.mark.parametrize("kind, signature_method, digest, steps", PROFILE,
                         ids=[f"{m.name}-{d.name}-{'+'.join(s)}" for _, m, d, s in PROFILE])
def test_ksef_profile_signatures_verify(kind, signature_method, digest, steps, ksef_pkis):
    pki = ksef_pkis[kind]
    report = check(ksef_sign(KSEF_AUTH, pki, signature_method, digest, steps), pki.anchors)
    assert report.errors == [] and report.valid
    assert report.signer.nip == NIP and report.format == "XAdES-BES"
    assert report.signed_xml.findtext("{http://ksef.mf.gov.pl/auth/token/2.1}Challenge").startswith("20250916-CR")


def test_a_sealed_ksef_receipt_verifies_and_a_changed_one_does_not(ksef_pkis):
    """A KSeF UPO (v4-3 sample) sealed enveloped, as the office will seal its own receipts."""
    pki = ksef_pkis["rsa"]
    upo = (DATA / "ksef" / "przyklady_v4-3_kontekst-nip_upo-sesja-kontekst-id-nip.xml").read_bytes()
    sealed = ksef_sign(upo, pki, SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256, ["enveloped", "c14n11"])
    assert check(sealed, pki.anchors).valid
    forged = sealed.replace(b"<CalkowitaLiczbaDokumentow>2<", b"<CalkowitaLiczbaDokumentow>3<")
    assert check(forged, pki.anchors).errors == ["zmieniono treść podpisanego dokumentu"]


def test_ksef_signatures_with_sha1_are_refused(ksef_pkis):
    """The KSeF profile still lists rsa-sha1 and sha1; ETSI TS 119 312 no longer allows them for new signatures."""
    pki = ksef_pkis["rsa"]
    data = ksef_sign(KSEF_AUTH, pki, SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256, ["enveloped"])
    root = etree.fromstring(data)
    root.find(".//ds:SignedInfo/ds:Reference/ds:DigestMethod", N).set("Algorithm", DigestAlgorithm.SHA1.value)
    resign(root, pki.leaf.key)
    assert "odwołanie do dokumentu: odwołanie używa przestarzałego algorytmu skrótu SHA-1" in \
        check(etree.tostring(root), pki.anchors).errors
