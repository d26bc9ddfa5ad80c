"""Verifying a XAdES-signed document (ETSI EN 319 132-1, XML Signature 1.1) as the office must.

``verify_document`` answers four questions and says in Polish why the answer is no:

1. Is the signature intact? signxml's XAdESVerifier canonicalizes SignedInfo, checks the
   SignatureValue with the signing certificate's key (RSA, RSA-PSS, ECDSA), the KeyValue/certificate
   consistency, the schema and the SigningCertificate digest; every ds:Reference (and every reference
   of a signed ds:Manifest) is dereferenced and transformed here (``transforms``), including the XPath
   and XPath Filter 2.0 transforms signxml skips.
2. What exactly was signed? Only verified bytes are read: the signed document returned to the caller is
   the canonical form that was digested, never the parsed input. The signature must cover the whole
   document (enveloped) or every ds:Object it carries (enveloping); an identifier that occurs twice, a
   signed element moved under an unsigned wrapper, or a second set of SignedProperties is refused
   (signature wrapping).
3. Is it XAdES with signed properties? The SignedProperties of this signature's QualifyingProperties
   must be referenced and intact; the signing time and the signing certificate are read from them.
4. Is the certificate trusted? It must chain to a configured trust anchor and be valid at the time of
   signing (``trust``); a qualified certificate with only nonRepudiation is accepted.

Revocation (CRL, OCSP) and time-stamp tokens are not checked: the report says so in ``warnings``.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.hashes import Hash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from signxml import SignatureConfiguration, VerifyResult, XMLVerifier
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    digest_algorithm_implementations,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, SignXMLException
from signxml.xades import XAdESVerifier

from platforma.esign import trust
from platforma.esign.parsing import DEFAULT_MAX_BYTES, SignatureError, declares_dtd, hardened_parser, parse_untrusted
from platforma.esign.transforms import (
    DS,
    NodeSet,
    TransformContext,
    Transformed,
    TransformError,
    apply_transforms,
    dereference,
    detached_copy,
)

XADES = "http://uri.etsi.org/01903/v1.3.2#"
XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
PPZP = "http://crd.gov.pl/xml/schematy/ppzp/"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
COUNTERSIGNED_TYPE = "http://uri.etsi.org/01903#CountersignedSignature"
MANIFEST_TYPE = "http://www.w3.org/2000/09/xmldsig#Manifest"
NS = {"ds": DS, "xades": XADES, "xades141": XADES141, "ppzp": PPZP}

MAX_REFERENCES = 100
#: a signing time this far after the moment of verification cannot be true (clock skew allowance)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)

#: ETSI TS 119 312: no SHA-1, no HMAC (XAdES needs a certificate); DSA is not used by Polish signers
SIGNATURE_METHODS = frozenset(m for m in SignatureMethod
                              if "SHA1" not in m.name and not m.name.startswith(("HMAC", "DSA")))
DIGEST_METHODS = frozenset(d for d in DigestAlgorithm if d is not DigestAlgorithm.SHA1)


def _ds(name: str) -> str:
    return f"{{{DS}}}{name}"


def _xades(name: str) -> str:
    return f"{{{XADES}}}{name}"


@dataclass(frozen=True)
class ReferenceReport:
    """One ds:Reference: what it points at, its role, whether its digest matched."""

    uri: str | None
    type: str | None
    #: "dokument", "obiekt", "właściwości podpisu", "certyfikat", "manifest", "kontrasygnowany podpis", "inne"
    role: str
    intact: bool


@dataclass(frozen=True)
class VerificationReport:
    valid: bool
    #: "XAdES-BES", "XAdES-EPES", "XAdES-T", "XAdES-C", "XAdES-X", "XAdES-X-L", "XAdES-A", "XMLDSig" or None
    format: str | None
    signer: trust.Signer | None
    #: the XAdES SigningTime, in UTC (as declared by the signer unless a time-stamp vouches for it)
    signed_at: dt.datetime | None
    #: what was signed, from the verified bytes only: store and show this, never the uploaded tree
    signed_content: bytes | None
    #: ``signed_content`` parsed, when it is XML
    signed_xml: etree._Element | None = field(default=None, compare=False, repr=False)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    references: tuple[ReferenceReport, ...] = ()
    #: the content was enveloped by the signature (True) or carried in its ds:Object (False)
    enveloped: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The shape ``platforma esign verify`` prints."""
        return {
            "valid": self.valid,
            "signer": self.signer.as_dict() if self.signer else None,
            "signed_at": self.signed_at.isoformat().replace("+00:00", "Z") if self.signed_at else None,
            "format": self.format,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


# -- signxml, with the reference processing of this module ------------------------------------------

class _SignxmlCore(XAdESVerifier):
    """signxml's verifier over the already parsed, hardened tree.

    signxml checks SignedInfo, the SignatureValue, KeyValue against the certificate, the schema and (for
    XAdES) the SigningCertificate digest. Reference digests are computed once, by ``_check_reference``,
    and handed to signxml through ``_verify_reference``, which it calls for every reference of the
    SignedInfo it has verified.
    """

    def __init__(self, signature: etree._Element, references: list["_Reference"], *, xades: bool):
        super().__init__()
        self._signature = signature
        self._references = references
        self._xades = xades
        self._parser = hardened_parser()

    @property
    def parser(self):
        return self._parser

    def get_root(self, data):
        return data  # parsed once by parse_untrusted; nothing here modifies it

    def _get_signature(self, root):
        return self._signature

    def _c14n(self, nodes, algorithm, inclusive_ns_prefixes=None):
        # an element is canonicalized as the root of a copy (see transforms.detached_copy for the libxml2 bug)
        nodes = nodes if isinstance(nodes, list) else [nodes]
        nodes = [n if n.getparent() is None else detached_copy(n) for n in nodes]
        return super()._c14n(nodes, algorithm=algorithm, inclusive_ns_prefixes=inclusive_ns_prefixes)

    def _check_key_value_matches_cert_public_key(self, key_value, public_key, signature_alg):
        # signxml compares KeyValue with the certificate for RSA_* methods only; RSA-PSS (RFC 9231
        # "sha256-rsa-MGF1", in the KSeF profile) ended in NotImplementedError
        if signature_alg.name.endswith("_RSA_MGF1") and isinstance(public_key, rsa.RSAPublicKey):
            rsa_key_value = self._find(key_value, "RSAKeyValue")
            numbers = public_key.public_numbers()
            return (self._get_long(rsa_key_value, "Modulus"), self._get_long(rsa_key_value, "Exponent")) == (
                numbers.n, numbers.e)
        return super()._check_key_value_matches_cert_public_key(key_value, public_key, signature_alg)

    def _check_cert_validity(self, cert, cert_source):
        pass  # validity is judged at the time of signing, by trust.chain_problems

    def _verify_reference(self, reference, index, root, uri_resolver, c14n_algorithm, signature, signature_key_used):
        ours = self._references[index] if index < len(self._references) else None
        if ours is None or ours.uri != reference.get("URI") or ours.digest_value != _text(reference, "ds:DigestValue"):
            raise InvalidSignature("SignedInfo differs from the one whose references were checked")
        key = signature_key_used.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        # signxml reads the SignedProperties from here; other content is parsed only when the caller needs it
        signed_xml = ours.xml() if ours.intact and ours.role == "właściwości podpisu" else None
        return VerifyResult(ours.octets or b"", signed_xml, signature, signature_key=key)

    def verify_with(self, root: etree._Element, leaf: x509.Certificate):
        config = SignatureConfiguration(expect_references=True, signature_methods=SIGNATURE_METHODS,
                                        digest_algorithms=DIGEST_METHODS)
        if self._xades:
            return self.verify(root, x509_cert=leaf, expect_config=config)
        return XMLVerifier.verify(self, root, x509_cert=leaf, expect_config=config)


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, NS)
    return found.text if found is not None else None


@dataclass
class _Reference:
    index: int
    uri: str | None
    type: str | None
    digest_value: str | None
    target: etree._Element | None = None
    result: Transformed | None = None
    intact: bool = False
    error: str | None = None
    role: str = "inne"
    _xml: etree._Element | None = None
    _parsed: bool = False

    @property
    def octets(self) -> bytes | None:
        return self.result.octets if self.result else None

    @property
    def nodes(self) -> NodeSet | None:
        return self.result.nodes if self.result else None

    def xml(self) -> etree._Element | None:
        """The digested octets parsed (hardened), when they are XML."""
        if not self._parsed:
            self._parsed = True
            if self.result is not None and self.result.octets.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
                try:
                    self._xml = parse_untrusted(self.result.octets, what="podpisana treść").getroot()
                except SignatureError:
                    self._xml = None
        return self._xml


# -- one signature ----------------------------------------------------------------------------------

class _SignatureCheck:
    """The integrity checks of one ds:Signature (the main one or a counter-signature)."""

    def __init__(self, tree: etree._ElementTree, signature: etree._Element, *, prefix: str = ""):
        self.tree = tree
        self.signature = signature
        self.prefix = prefix
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.references: list[_Reference] = []
        self.certificates: list[x509.Certificate] = []
        self.leaf: x509.Certificate | None = None
        self.qualifying: etree._Element | None = None
        self.signed_properties: etree._Element | None = None  # the verified copy
        self.signed_properties_reference: _Reference | None = None
        self.signing_time: dt.datetime | None = None
        self.value_intact = False

    def error(self, message: str) -> None:
        message = self.prefix + message
        if message not in self.errors:
            self.errors.append(message)

    def warn(self, message: str) -> None:
        message = self.prefix + message
        if message not in self.warnings:
            self.warnings.append(message)

    # SignedInfo and its references
    def run(self) -> None:
        signed_info = self.signature.find(_ds("SignedInfo"))
        if signed_info is None:
            self.error("podpis nie zawiera elementu SignedInfo")
            return
        verified_info = self._canonical_signed_info(signed_info)
        if verified_info is None:
            return
        self._load_certificates()
        elements = verified_info.findall(_ds("Reference"))
        if not elements:
            self.error("podpis nie obejmuje treści dokumentu (SignedInfo nie zawiera żadnego odwołania)")
        if len(elements) > MAX_REFERENCES:
            self.error(f"podpis ma {len(elements)} odwołań; dopuszczalne {MAX_REFERENCES}")
            return
        context = TransformContext(self.signature, _locator(verified_info, signed_info))
        self.references = [self._check_reference(i, e, context) for i, e in enumerate(elements)]
        self._check_manifests(context)
        self._read_xades()
        self._choose_leaf()
        self._check_signature_value()

    def _canonical_signed_info(self, signed_info: etree._Element) -> etree._Element | None:
        method_element = signed_info.find(_ds("CanonicalizationMethod"))
        try:
            method = CanonicalizationMethod(method_element.get("Algorithm") if method_element is not None else None)
        except (InvalidInput, ValueError):
            self.error("nieobsługiwana metoda kanonikalizacji SignedInfo")
            return None
        prefixes = None
        inclusive = method_element.find("{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces")
        if inclusive is not None and inclusive.get("PrefixList"):
            prefixes = inclusive.get("PrefixList").split()
        canonical = etree.tostring(detached_copy(signed_info), method="c14n",
                                   exclusive=method.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#"),
                                   with_comments=method.value.endswith("#WithComments"), inclusive_ns_prefixes=prefixes)
        return etree.fromstring(canonical, hardened_parser())

    def _load_certificates(self) -> None:
        for element in self.signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
            try:
                der = base64.b64decode("".join((element.text or "").split()), validate=True)
                self.certificates.append(x509.load_der_x509_certificate(der))
            except (binascii.Error, ValueError):
                self.error("certyfikat zapisany w podpisie (KeyInfo) jest uszkodzony")

    def _check_reference(self, index: int, element: etree._Element, context: TransformContext) -> _Reference:
        reference = _Reference(index, element.get("URI"), element.get("Type"), _text(element, "ds:DigestValue"))
        try:
            method = element.find(_ds("DigestMethod"))
            algorithm = method.get("Algorithm") if method is not None else None
            try:
                digest = DigestAlgorithm(algorithm)
            except (InvalidInput, ValueError):
                raise TransformError(f"nieobsługiwany algorytm skrótu „{algorithm}”") from None
            if digest not in DIGEST_METHODS:
                raise TransformError("odwołanie używa przestarzałego algorytmu skrótu SHA-1")
            try:
                expected = base64.b64decode("".join((reference.digest_value or "").split()), validate=True)
            except (binascii.Error, ValueError):
                raise TransformError("wartość skrótu (DigestValue) nie jest poprawnie zakodowana w base64") from None
            nodes = dereference(self.tree, reference.uri)
            reference.target = nodes.apexes[0] if reference.uri else None
            reference.role = self._role(reference)
            transforms = element.findall("ds:Transforms/ds:Transform", NS)
            reference.result = apply_transforms(nodes, transforms, context)
            hasher = Hash(digest_algorithm_implementations[digest]())
            hasher.update(reference.result.octets)
            reference.intact = hmac.compare_digest(hasher.finalize(), expected)
        except TransformError as exc:
            reference.error = str(exc)
        if reference.role == "inne" and reference.target is None and reference.uri == "":
            reference.role = "dokument"
        return reference

    def _role(self, reference: _Reference) -> str:
        target = reference.target
        if reference.type == SIGNED_PROPERTIES_TYPE or (target is not None and target.tag == _xades("SignedProperties")):
            return "właściwości podpisu"
        if reference.type == COUNTERSIGNED_TYPE:
            return "kontrasygnowany podpis"
        if reference.type == MANIFEST_TYPE or (target is not None and target.tag == _ds("Manifest")):
            return "manifest"
        if target is not None and target.tag in (_ds("KeyInfo"), _ds("X509Data")):
            return "certyfikat"
        if target is None or target is self.tree.getroot():
            return "dokument"
        return "obiekt"

    def _check_manifests(self, context: TransformContext) -> None:
        """XMLDSig 5.1: a signed Manifest's own references are checked too (ETSI validation does)."""
        for reference in list(self.references):
            if reference.role != "manifest" or reference.target is None:
                continue
            manifest = reference.result and reference.xml()
            if manifest is None:
                continue
            for index, element in enumerate(manifest.findall(_ds("Reference"))):
                checked = self._check_reference(len(self.references) + index, element, context)
                checked.role = "dokument" if checked.role == "inne" else checked.role
                self.references.append(checked)

    # XAdES
    def _read_xades(self) -> None:
        qualifying = self.signature.findall("ds:Object/xades:QualifyingProperties", NS)
        if not qualifying:
            return
        if len(qualifying) > 1:
            self.error("podpis zawiera więcej niż jeden zestaw właściwości XAdES (QualifyingProperties)")
        self.qualifying = qualifying[0]
        signature_id = self.signature.get("Id")
        if not signature_id or self.qualifying.get("Target") != f"#{signature_id}":
            self.error("właściwości XAdES (QualifyingProperties) nie wskazują tego podpisu (atrybut Target)")
        properties = self.qualifying.findall(_xades("SignedProperties"))
        if len(properties) != 1:
            self.error("podpis XAdES musi mieć dokładnie jeden element SignedProperties w QualifyingProperties")
        if not properties:
            return
        element = properties[0]
        pointing = [r for r in self.references if r.role == "właściwości podpisu"]
        matching = [r for r in pointing if r.target is element]
        if not matching:
            if any(r.target is not None for r in pointing):
                self.error("podpisane właściwości (SignedProperties) nie są tymi, które podpis przedstawia; "
                           "to ślad ataku przez podmianę właściwości podpisu (signature wrapping)")
            else:
                self.error("właściwości podpisu (SignedProperties) nie są podpisane")
            return
        reference = matching[0]
        self.signed_properties_reference = reference
        if reference.type != SIGNED_PROPERTIES_TYPE:
            self.warn("odwołanie do SignedProperties nie ma wymaganego atrybutu Type (ETSI EN 319 132-1, 6.3)")
        if not reference.intact:
            if reference.error is None:
                self.error("zmieniono podpisane właściwości podpisu (SignedProperties)")
            return
        self.signed_properties = reference.xml()
        if self.signed_properties is None:
            self.error("podpisane właściwości (SignedProperties) nie są poprawnym XML")
            return
        signing_time = self.signed_properties.findtext("xades:SignedSignatureProperties/xades:SigningTime", None, NS)
        if signing_time:
            try:
                parsed = dt.datetime.fromisoformat(signing_time.strip().replace("Z", "+00:00"))
                if parsed.tzinfo is None:
                    self.warn("czas podpisu (SigningTime) nie podaje strefy czasowej; przyjęto UTC")
                    parsed = parsed.replace(tzinfo=dt.timezone.utc)
                self.signing_time = parsed.astimezone(dt.timezone.utc)
            except ValueError:
                self.error(f"czas podpisu (SigningTime) „{signing_time.strip()}” ma niepoprawny format")

    def _signing_certificate_digests(self) -> list[tuple[DigestAlgorithm, bytes]]:
        if self.signed_properties is None:
            return []
        digests = []
        for cert in self.signed_properties.findall(
                "xades:SignedSignatureProperties/xades:SigningCertificateV2/xades:Cert", NS) + \
                self.signed_properties.findall("xades:SignedSignatureProperties/xades:SigningCertificate/xades:Cert", NS):
            method = cert.find("xades:CertDigest/ds:DigestMethod", NS)
            value = cert.findtext("xades:CertDigest/ds:DigestValue", None, NS)
            try:
                algorithm = DigestAlgorithm(method.get("Algorithm") if method is not None else None)
                digests.append((algorithm, base64.b64decode("".join((value or "").split()), validate=True)))
            except (InvalidInput, ValueError, binascii.Error):
                self.error("skrót certyfikatu podpisującego w SignedProperties jest nieczytelny")
        return digests

    def _choose_leaf(self) -> None:
        if not self.certificates:
            self.error("podpis nie zawiera certyfikatu podpisującego (X509Certificate w KeyInfo)")
            return
        digests = self._signing_certificate_digests()
        if self.signed_properties is not None and not digests:
            self.error("podpisane właściwości nie wskazują certyfikatu podpisującego (SigningCertificate)")
        if digests:
            algorithm, value = digests[0]
            if algorithm is DigestAlgorithm.SHA1:
                self.warn("certyfikat podpisującego jest wskazany skrótem SHA-1 (dopuszczalne, lecz przestarzałe)")
            implementation = digest_algorithm_implementations[algorithm]()
            for certificate in self.certificates:
                if certificate.fingerprint(implementation) == value:
                    self.leaf = certificate
                    return
            self.error("skrót certyfikatu podpisującego zapisany w SignedProperties nie zgadza się z certyfikatem "
                       "z podpisu")
        # without XAdES: the certificate that issued none of the others
        issuers = {c.issuer for c in self.certificates}
        candidates = [c for c in self.certificates if c.subject not in issuers or c.subject == c.issuer]
        self.leaf = (candidates or self.certificates)[0]

    def _check_signature_value(self) -> None:
        value = self.signature.find(_ds("SignatureValue"))
        if value is None:
            self.error("podpis nie zawiera wartości podpisu (SignatureValue)")
            return
        try:
            base64.b64decode("".join((value.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            self.error("wartość podpisu (SignatureValue) nie jest poprawnie zakodowana w base64")
            return
        if self.leaf is None:
            return
        core = _SignxmlCore(self.signature, self.references, xades=self.qualifying is not None)
        try:
            core.verify_with(self.tree.getroot(), self.leaf)
            self.value_intact = True
        except etree.DocumentInvalid as exc:
            self.error(f"podpis ma budowę niezgodną ze schematem XML Signature/XAdES ({_first_line(exc)})")
        except InvalidSignature as exc:
            if "SignedInfo differs" in str(exc):
                self.error("podpis ma nieprawidłową budowę (niejednoznaczne SignedInfo)")
            else:
                self.error("wartość podpisu nie zgadza się z podpisanymi danymi: podpis został zmieniony "
                           "albo złożono go innym kluczem niż klucz z certyfikatu")
        except InvalidDigest:
            self.error("skrót certyfikatu podpisującego zapisany w SignedProperties nie zgadza się z certyfikatem "
                       "z podpisu")
        except InvalidCertificate as exc:
            self.error(f"certyfikat podpisującego jest nieprawidłowy ({_first_line(exc)})")
        except InvalidInput as exc:
            self._signxml_input_error(str(exc))
        except (SignXMLException, ValueError, TypeError, NotImplementedError) as exc:
            self.error(f"podpis ma nieprawidłową budowę (szczegóły techniczne: {_first_line(exc)})")

    def _signxml_input_error(self, message: str) -> None:
        if "forbidden by configuration" in message or "Unrecognized" in message:
            self.error("podpis używa algorytmu, którego nie przyjmujemy (SHA-1, HMAC, DSA lub nieznanego)")
        elif "KeyValue" in message:
            self.error("klucz publiczny zapisany w KeyInfo nie zgadza się z certyfikatem")
        elif "SignedProperties" in message:
            if not any("SignedProperties" in e for e in self.errors):
                self.error("właściwości podpisu (SignedProperties) nie są podpisane")
        elif "SigningCertificate" in message:
            self.error("podpisane właściwości nie wskazują certyfikatu podpisującego (SigningCertificate)")
        else:
            self.error(f"podpis ma nieprawidłową budowę (szczegóły techniczne: {_first_line(message)})")

    def reference_errors(self) -> None:
        for reference in self.references:
            where = f"„{reference.uri}”" if reference.uri else "dokumentu"
            if reference.error:
                self.error(f"odwołanie do {where}: {reference.error}")
            elif not reference.intact:
                if reference.role in ("dokument", "obiekt"):
                    self.error("zmieniono treść podpisanego dokumentu")
                elif reference.role == "właściwości podpisu":
                    self.error("zmieniono podpisane właściwości podpisu (SignedProperties)")
                elif reference.role == "certyfikat":
                    self.error("zmieniono podpisane informacje o certyfikacie (KeyInfo)")
                else:
                    self.error(f"zmieniono podpisaną treść wskazaną przez odwołanie {where}")


def _first_line(exc: object) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _element_children(element: etree._Element) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str)]


def _locator(verified: etree._Element, original: etree._Element):
    """Maps an element of the verified SignedInfo copy to the same element in the document (for here())."""
    def locate(element: etree._Element) -> etree._Element:
        path = []
        while element is not verified:
            parent = element.getparent()
            if parent is None:
                raise TransformError("funkcja here() jest obsługiwana tylko w przekształceniach z SignedInfo")
            path.append(_element_children(parent).index(element))
            element = parent
        target = original
        for index in reversed(path):
            target = _element_children(target)[index]
        return target
    return locate


# -- the document -----------------------------------------------------------------------------------

def _find_signature(tree: etree._ElementTree) -> etree._Element:
    root = tree.getroot()
    if root.tag == _ds("Signature"):
        return root
    outermost = [s for s in root.iter(_ds("Signature"))
                 if not any(a.tag == _ds("Signature") for a in s.iterancestors())]
    if not outermost:
        raise SignatureError("plik nie zawiera podpisu elektronicznego (elementu ds:Signature)")
    top_level = [s for s in outermost if s.getparent() is root]
    if len(top_level) == 1:
        return top_level[0]
    if len(outermost) == 1:
        return outermost[0]
    raise _SeveralSignatures(f"dokument zawiera {len(outermost)} podpisy; weryfikacja dokumentów podpisanych przez "
                             "kilka osób nie jest jeszcze obsługiwana")


class _SeveralSignatures(Exception):
    """A readable signed document this verifier cannot judge yet: refused as invalid, not as unreadable."""


def _format(check: _SignatureCheck) -> str:
    if check.qualifying is None:
        return "XMLDSig"
    if check.signed_properties is None:
        return "XAdES"
    unsigned = check.qualifying.find("xades:UnsignedProperties/xades:UnsignedSignatureProperties", NS)

    def has(*names: str) -> bool:
        return unsigned is not None and any(unsigned.find(n, NS) is not None for n in names)

    if has("xades141:ArchiveTimeStamp", "xades:ArchiveTimeStamp"):
        return "XAdES-A"
    if has("xades:CertificateValues", "xades:RevocationValues"):
        return "XAdES-X-L"
    if has("xades:SigAndRefsTimeStamp", "xades:RefsOnlyTimeStamp"):
        return "XAdES-X"
    if has("xades:CompleteCertificateRefs"):
        return "XAdES-C"
    if has("xades:SignatureTimeStamp"):
        return "XAdES-T"
    if check.signed_properties.find("xades:SignedSignatureProperties/xades:SignaturePolicyIdentifier/"
                                    "xades:SignaturePolicyId", NS) is not None:
        return "XAdES-EPES"
    return "XAdES-BES"


def _covers_whole_document(nodes: NodeSet | None) -> bool:
    return nodes is not None and nodes.is_whole_subtree_of_root() and all(h.tag == _ds("Signature") for h in nodes.holes)


def _object_of(check: _SignatureCheck, element: etree._Element | None) -> etree._Element | None:
    """The ds:Object child of the signature that is, or directly holds, ``element``."""
    if element is None:
        return None
    if element.tag == _ds("Object") and element.getparent() is check.signature:
        return element
    parent = element.getparent()
    if parent is not None and parent.tag == _ds("Object") and parent.getparent() is check.signature:
        return parent
    return None


def _content(check: _SignatureCheck, enveloped: bool) -> tuple[_Reference | None, list[str]]:
    """The reference whose octets are the signed document, and what is wrong with the coverage."""
    problems = []
    data = [r for r in check.references if r.role in ("dokument", "obiekt") and r.error is None]
    if enveloped:
        whole = [r for r in data if _covers_whole_document(r.nodes)]
        if whole:
            return whole[0], problems
        if not data:
            problems.append("podpis nie obejmuje treści dokumentu")
        else:
            problems.append("podpis obejmuje tylko część dokumentu; pozostała treść mogła zostać dopisana "
                            "lub zmieniona bez naruszenia podpisu")
        return None, problems
    # enveloping: every ds:Object but the XAdES one is signed, whole, where it stands
    covered: set[int] = set()
    for reference in check.references:
        holder = _object_of(check, reference.target) if reference.role == "manifest" and reference.intact else None
        if holder is not None:
            covered.add(id(holder))
    chosen = None
    for reference in data:
        nodes = reference.nodes
        target = reference.target
        holder = _object_of(check, target)
        if holder is None or (nodes is not None and nodes.holes):
            problems.append("podpisana treść nie znajduje się tam, gdzie czyta ją aplikacja (element przeniesiony "
                            "do innego miejsca podpisu); to ślad ataku przez opakowanie podpisu (signature wrapping)")
            continue
        if target is holder or len(_element_children(holder)) == 1 and not (holder.text or "").strip():
            covered.add(id(holder))
        chosen = chosen or reference
    for number, obj in enumerate(check.signature.findall(_ds("Object")), start=1):
        if obj.find(_xades("QualifyingProperties")) is not None:
            continue
        if id(obj) not in covered:
            name = f"Id=„{obj.get('Id')}”" if obj.get("Id") else f"nr {number}"
            problems.append(f"podpis zawiera niepodpisaną treść (ds:Object {name}); mogła zostać dopisana "
                            "po złożeniu podpisu")
    if chosen is None and not problems:
        problems.append("podpis nie obejmuje treści dokumentu")
    return (chosen if not problems else None), problems


def _signed_document(reference: _Reference, enveloped: bool) -> tuple[bytes, etree._Element | None]:
    """The bytes and XML the caller must store and show."""
    octets = reference.octets or b""
    xml = reference.xml()
    if reference.result is not None and reference.result.decoded:
        return octets, xml
    if not enveloped and xml is not None and xml.tag == _ds("Object"):
        children = _element_children(xml)
        if len(children) == 1:
            child = children[0]
            return etree.tostring(child, method="c14n", exclusive=False, with_comments=False), child
        return octets, None
    return octets, xml


def _ppzp_signer(check: _SignatureCheck, data_references: list[_Reference]) -> dict[str, str] | None:
    """Trusted signature (podpis zaufany): ppZP:PodpisZP in the signed properties or a signed ds:Object."""
    sources = [check.signed_properties] + [r.xml() for r in data_references if r.intact and not r.result.decoded]
    for source in sources:
        if source is None:
            continue
        person = source.find(".//ppzp:PodpisZP//ppzp:DaneZPOsobyFizycznej", NS)
        if person is None:
            continue

        def value(local: str) -> str | None:
            found = person.xpath(f"*[local-name()='{local}']")
            return found[0].text.strip() if found and found[0].text and found[0].text.strip() else None

        return {"given_names": value("Imie"), "surname": value("Nazwisko"), "pesel": value("PESEL")}
    return None


def verify_document(data: bytes, *, trust_anchors: list[x509.Certificate], at: dt.datetime | None = None,
                    max_bytes: int = DEFAULT_MAX_BYTES, require_xades: bool = True) -> VerificationReport:
    """Verify a XAdES-signed document; raise SignatureError when it cannot be read as one at all.

    ``at`` is the moment of verification (default: now); the certificate must have been valid at the
    XAdES SigningTime (at ``at`` when the signature declares none). ``require_xades=False`` accepts a
    plain XML signature with a certificate (interoperability checks); letters always need XAdES.
    """
    now = dt.datetime.now(dt.timezone.utc) if at is None else (
        at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at.astimezone(dt.timezone.utc))
    tree = parse_untrusted(data, max_bytes=max_bytes)
    try:
        signature = _find_signature(tree)
    except _SeveralSignatures as exc:
        return VerificationReport(valid=False, format=None, signer=None, signed_at=None, signed_content=None,
                                  errors=[str(exc)])
    enveloped = signature is not tree.getroot()
    check = _SignatureCheck(tree, signature)
    check.run()
    check.reference_errors()
    errors, warnings = check.errors, check.warnings

    if check.qualifying is None and require_xades:
        errors.append("podpis nie jest podpisem XAdES: brak podpisanych właściwości (czasu podpisu i wskazania "
                      "certyfikatu)")
    reference, coverage = _content(check, enveloped)
    if reference is not None and reference.result is not None and reference.result.decoded \
            and declares_dtd(reference.result.octets):
        coverage.append("podpisana treść zawiera deklarację DOCTYPE lub ENTITY (DTD); takich dokumentów nie przyjmujemy")
    for problem in coverage:
        if problem not in errors:
            errors.append(problem)

    _check_counter_signatures(tree, check, errors, warnings)
    if not check.value_intact and not errors:
        errors.append("nie udało się sprawdzić wartości podpisu")
    #: what is wrong with the signature and its structure, as opposed to trust in the certificate
    integrity_errors = len(errors)

    signing_time = check.signing_time
    if signing_time is None and check.qualifying is not None:
        warnings.append("podpis nie podaje czasu złożenia (SigningTime); ważność certyfikatu sprawdzono na chwilę "
                        "weryfikacji")
    if signing_time is not None and signing_time > now + FUTURE_TOLERANCE:
        errors.append(f"czas złożenia podpisu ({signing_time:%Y-%m-%d %H:%M} UTC) jest późniejszy niż chwila weryfikacji")

    signer = None
    if check.leaf is not None:
        moment = signing_time or now
        intermediates = [c for c in check.certificates if c is not check.leaf]
        errors.extend(p for p in trust.chain_problems(check.leaf, intermediates, trust_anchors, moment) if p not in errors)
        if signing_time is not None and now > check.leaf.not_valid_after_utc >= signing_time:
            warnings.append("certyfikat wygasł po złożeniu podpisu; czas podpisu jest deklaracją podpisującego, "
                            "niepotwierdzoną znacznikiem czasu")
        signer = trust.signer_from_certificate(check.leaf, warnings)
        data_references = [r for r in check.references if r.role in ("dokument", "obiekt") and r.result is not None]
        person = _ppzp_signer(check, data_references)
        if person is not None:
            pesel, _ = trust.identifiers_from([f"PESEL:{person['pesel']}" if person["pesel"] else None], warnings)
            name = " ".join(p for p in (person["given_names"], person["surname"]) if p) or None
            signer = trust.Signer(
                name=name, given_names=person["given_names"], surname=person["surname"], pesel=pesel, nip=None,
                organization=None, source="profil zaufany", certificate_subject=signer.certificate_subject,
                certificate_issuer=signer.certificate_issuer, certificate_serial=signer.certificate_serial,
                certificate_sha256=signer.certificate_sha256, qualified=signer.qualified)

    format_ = _format(check)
    if format_ not in ("XAdES-BES", "XAdES-EPES", "XMLDSig"):
        warnings.append("znaczniki czasu i dane walidacyjne podpisu nie zostały sprawdzone; czas podpisu przyjęto "
                        "z SigningTime")
    warnings.append("nie sprawdzono, czy certyfikat nie został unieważniony (CRL/OCSP)")

    signed_content = signed_xml = None
    if integrity_errors == 0 and check.value_intact and reference is not None:
        signed_content, signed_xml = _signed_document(reference, enveloped)
    return VerificationReport(
        valid=not errors, format=format_, signer=signer, signed_at=signing_time, signed_content=signed_content,
        signed_xml=signed_xml, errors=errors, warnings=warnings,
        references=tuple(ReferenceReport(r.uri, r.type, r.role, r.intact) for r in check.references),
        enveloped=enveloped,
    )


def _check_counter_signatures(tree: etree._ElementTree, check: _SignatureCheck, errors: list[str],
                              warnings: list[str]) -> None:
    """XAdES CounterSignature: intact, and countersigning this signature's SignatureValue (EN 319 132-1, 5.2.7)."""
    if check.qualifying is None:
        return
    value = check.signature.find(_ds("SignatureValue"))
    for counter in check.qualifying.findall(
            "xades:UnsignedProperties/xades:UnsignedSignatureProperties/xades:CounterSignature/ds:Signature", NS):
        inner = _SignatureCheck(tree, counter, prefix="kontrasygnata: ")
        inner.run()
        inner.reference_errors()
        countersigned = [r for r in inner.references if r.type == COUNTERSIGNED_TYPE]
        if not any(r.target is value and r.intact for r in countersigned):
            inner.error("nie obejmuje wartości tego podpisu (SignatureValue)")
        errors.extend(e for e in inner.errors if e not in errors)
        warnings.extend(w for w in inner.warnings if w not in warnings)
        if not inner.errors:
            warnings.append("kontrasygnata jest nienaruszona, lecz zaufania do jej certyfikatu nie sprawdzono")
