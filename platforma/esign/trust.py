"""Certificates: trust anchors, the chain at the time of signing, and who the signer is.

The chain is built and checked by ``cryptography.x509.verification`` (signatures, validity of every
certificate at the given time, basic constraints, path length, key sizes and algorithms). Its default
end-entity policy is for TLS clients; a signing certificate is judged here instead by its key usage:
qualified certificates for electronic signatures often carry only nonRepudiation (contentCommitment),
which ETSI EN 319 412-2 section 4.3.2 allows, so either bit is accepted. A certificate that is itself a
trust anchor (a pinned seal, the office's own development seal) is trusted directly.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError
from stdnum.pl import nip as stdnum_nip
from stdnum.pl import pesel as stdnum_pesel

#: ETSI EN 319 412-1 section 5.1.3: semantics identifier prefixes in subject serialNumber / organizationIdentifier
_PESEL = re.compile(r"(?:PNOPL|PESEL)\D{0,3}(\d{11})\b")
_NIP = re.compile(r"(?:TINPL|VATPL|NIP)\D{0,3}(\d{10})\b")
#: id-etsi-qcs-QcCompliance (0.4.0.1862.1.1) as DER, looked for inside the qcStatements extension (RFC 3739)
_QC_COMPLIANCE = bytes.fromhex("060604008e460101")
_QC_STATEMENTS = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3")

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


class TrustAnchorError(ValueError):
    """The trust anchor bundle cannot be read."""


def load_trust_anchors(source: str | Path | bytes) -> list[x509.Certificate]:
    """Certificates from a PEM bundle (a path or its bytes)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrustAnchorError(f"nie można odczytać pliku zaufanych wystawców {path}: {exc.strerror}") from None
    else:
        data = source
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TrustAnchorError("plik zaufanych wystawców nie zawiera certyfikatów w formacie PEM") from None
    return certificates


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def describe(certificate: x509.Certificate) -> str:
    """A short Polish description: the common name or organisation and the serial number."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME) or \
        certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    name = str(names[0].value) if names else certificate.subject.rfc4514_string()
    return f"„{name}” (nr seryjny {certificate.serial_number:x})"


def _key_usage_allows_signing(_policy, _certificate, key_usage: x509.KeyUsage | None) -> None:
    if key_usage is not None and not (key_usage.digital_signature or key_usage.content_commitment):
        raise ValueError("key usage allows neither digitalSignature nor nonRepudiation")


def _ca_constraints(_policy, _certificate, constraints: x509.BasicConstraints) -> None:
    if not constraints.ca:
        raise ValueError("basicConstraints cA is false")


def _ca_key_usage(_policy, _certificate, key_usage: x509.KeyUsage | None) -> None:
    if key_usage is not None and not key_usage.key_cert_sign:
        raise ValueError("key usage lacks keyCertSign")


_EE_POLICY = ExtensionPolicy.permit_all().may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _key_usage_allows_signing)
_CA_POLICY = (ExtensionPolicy.permit_all()
              .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _ca_constraints)
              .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage))


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def key_problems(certificate: x509.Certificate) -> list[str]:
    """ETSI TS 119 312 / KSeF profile: RSA at least 2048 bits, elliptic curves at least 256 bits."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return [f"klucz RSA certyfikatu ma {key.key_size} bitów, wymagane co najmniej {MIN_RSA_BITS}"]
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return [f"klucz certyfikatu na krzywej eliptycznej ma {key.curve.key_size} bitów, wymagane co najmniej {MIN_EC_BITS}"]
    return []


def chain_problems(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                   anchors: list[x509.Certificate], at: dt.datetime) -> list[str]:
    """Polish reasons why ``leaf`` is not a trusted signing certificate at ``at``; empty when it is."""
    at = _as_utc(at)
    problems = list(key_problems(leaf))
    if at < leaf.not_valid_before_utc:
        problems.append(f"certyfikat nie był jeszcze ważny w chwili podpisu (ważny od {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)")
    elif at > leaf.not_valid_after_utc:
        problems.append(f"certyfikat wygasł przed chwilą podpisu (ważny do {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)")
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        key_usage = None
    if key_usage is not None and not (key_usage.digital_signature or key_usage.content_commitment):
        problems.append("certyfikat nie jest przeznaczony do składania podpisu (brak użycia klucza "
                        "digitalSignature ani nonRepudiation)")
    if not anchors:
        problems.append("nie skonfigurowano zaufanych wystawców (esign.trust_anchors), więc certyfikat nie może "
                        "zostać uznany za zaufany")
        return problems
    leaf_der = leaf.public_bytes(Encoding.DER)
    if any(anchor.public_bytes(Encoding.DER) == leaf_der for anchor in anchors):
        return problems  # pinned: the certificate itself is a trust anchor
    if problems:
        if not _reaches_anchor(leaf, intermediates, anchors):
            problems.append("certyfikat nie pochodzi od zaufanego wystawcy")
        return problems
    try:
        verifier = (PolicyBuilder().store(Store(anchors)).time(at)
                    .extension_policies(ee_policy=_EE_POLICY, ca_policy=_CA_POLICY)
                    .build_client_verifier())
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        return [_explain_chain_failure(leaf, intermediates, anchors, at, str(exc))]
    return []


def _issuer_of(certificate: x509.Certificate, pool: list[x509.Certificate]) -> x509.Certificate | None:
    for candidate in pool:
        if candidate.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except Exception:  # wrong key, algorithm or signature: not this issuer
            continue
        return candidate
    return None


def _reaches_anchor(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                    anchors: list[x509.Certificate]) -> bool:
    """Whether issuer names and signatures lead from ``leaf`` to an anchor (times and extensions aside)."""
    anchor_ders = {a.public_bytes(Encoding.DER) for a in anchors}
    current = leaf
    for _ in range(10):
        issuer = _issuer_of(current, intermediates + anchors)
        if issuer is None:
            return False
        if issuer.public_bytes(Encoding.DER) in anchor_ders:
            return True
        current = issuer
    return False


def _explain_chain_failure(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                           anchors: list[x509.Certificate], at: dt.datetime, detail: str) -> str:
    """Walk up by issuer name and signature to tell the person which link failed."""
    pool = intermediates + anchors
    anchor_ders = {a.public_bytes(Encoding.DER) for a in anchors}
    current = leaf
    for _ in range(10):
        issuer = _issuer_of(current, pool)
        if issuer is None:
            if current is leaf:
                return "certyfikat nie pochodzi od zaufanego wystawcy"
            return f"certyfikat nie pochodzi od zaufanego wystawcy (ścieżka urywa się na wystawcy {describe(current)})"
        if not (issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc):
            return f"certyfikat wystawcy {describe(issuer)} nie był ważny w chwili podpisu"
        if issuer.public_bytes(Encoding.DER) in anchor_ders:
            break
        current = issuer
    return f"ścieżka certyfikacji do zaufanego wystawcy nie spełnia wymagań (szczegóły techniczne: {detail})"


# -- the signer ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Signer:
    """Who signed: from the certificate, or from the ppZP data of a trusted signature (podpis zaufany)."""

    name: str | None
    given_names: str | None
    surname: str | None
    pesel: str | None
    nip: str | None
    organization: str | None
    #: "certyfikat" or "profil zaufany" (ppZP): where the name and PESEL come from
    source: str
    certificate_subject: str
    certificate_issuer: str
    #: hexadecimal, as registers of qualified certificates print it
    certificate_serial: str
    certificate_sha256: str
    #: the certificate declares itself EU-qualified (QcCompliance statement, ETSI EN 319 412-5)
    qualified: bool

    def as_dict(self) -> dict:
        return {
            "name": self.name, "given_names": self.given_names, "surname": self.surname, "pesel": self.pesel,
            "nip": self.nip, "organization": self.organization, "source": self.source,
            "certificate": {"subject": self.certificate_subject, "issuer": self.certificate_issuer,
                            "serial": self.certificate_serial, "sha256": self.certificate_sha256,
                            "qualified": self.qualified},
        }


_NAMES = {NameOID.SERIAL_NUMBER: "serialNumber", NameOID.GIVEN_NAME: "givenName", NameOID.SURNAME: "surname",
          x509.ObjectIdentifier("2.5.4.97"): "organizationIdentifier"}


def _rfc4514(name: x509.Name) -> str:
    return name.rfc4514_string(_NAMES)


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = [str(a.value).strip() for a in name.get_attributes_for_oid(oid) if str(a.value).strip()]
    return " ".join(values) if values else None


def _valid(module, value: str) -> bool:
    try:
        module.validate(value)
        return True
    except Exception:
        return False


def identifiers_from(texts: list[str | None], warnings: list[str]) -> tuple[str | None, str | None]:
    """PESEL and NIP from serialNumber / organizationIdentifier values (PNOPL-, TINPL-, VATPL-, PESEL:, NIP:)."""
    pesel = nip = None
    for text in texts:
        if not text:
            continue
        found = _PESEL.search(text)
        if found and pesel is None:
            if _valid(stdnum_pesel, found.group(1)):
                pesel = found.group(1)
            else:
                warnings.append(f"numer PESEL w certyfikacie ({found.group(1)}) ma błędną cyfrę kontrolną; pominięto go")
        found = _NIP.search(text)
        if found and nip is None:
            if _valid(stdnum_nip, found.group(1)):
                nip = found.group(1)
            else:
                warnings.append(f"numer NIP w certyfikacie ({found.group(1)}) ma błędną cyfrę kontrolną; pominięto go")
    return pesel, nip


def is_qualified(certificate: x509.Certificate) -> bool:
    try:
        extension = certificate.extensions.get_extension_for_oid(_QC_STATEMENTS)
    except x509.ExtensionNotFound:
        return False
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    return _QC_COMPLIANCE in raw


def signer_from_certificate(certificate: x509.Certificate, warnings: list[str]) -> Signer:
    subject = certificate.subject
    given = _attribute(subject, NameOID.GIVEN_NAME)
    surname = _attribute(subject, NameOID.SURNAME)
    common = _attribute(subject, NameOID.COMMON_NAME)
    organization = _attribute(subject, NameOID.ORGANIZATION_NAME)
    pesel, nip = identifiers_from([_attribute(subject, NameOID.SERIAL_NUMBER),
                                   _attribute(subject, x509.ObjectIdentifier("2.5.4.97"))], warnings)
    name = common or (" ".join(p for p in (given, surname) if p) or None) or organization
    return Signer(
        name=name, given_names=given, surname=surname, pesel=pesel, nip=nip, organization=organization,
        source="certyfikat", certificate_subject=_rfc4514(subject),
        certificate_issuer=_rfc4514(certificate.issuer),
        certificate_serial=f"{certificate.serial_number:x}", certificate_sha256=fingerprint(certificate),
        qualified=is_qualified(certificate),
    )
