"""The office's electronic seal (pieczęć elektroniczna urzędu): sealing receipts (UPO) with XAdES-BES.

A receipt confirms what the office received and when; it is sealed with the office's seal key, an
enveloped XAdES-BES signature (SHA-256, SigningTime, SigningCertificateV2, the certificate chain in
KeyInfo) that ``verify_document`` accepts. In production the key and certificate are the office's
qualified seal (kwalifikowana pieczęć elektroniczna, eIDAS art. 35); ``platforma init`` makes a
self-signed development seal so that an instance works out of the box.

Trust: ``platforma esign verify`` (without ``--trust``) trusts ``esign.trust_anchors`` and, pinned,
the configured seal certificate itself (``configured_trust_anchors``), so the office's own receipts
verify whether its seal is self-signed (development) or issued by a CA that is not in the bundle.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from platforma.config import Settings

#: an organisation identifier by NIP, ETSI EN 319 412-1 section 5.1.4 (as in qualified seal certificates)
ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
DEVELOPMENT_UNIT = "Pieczęć deweloperska, nie do użytku produkcyjnego"
DEVELOPMENT_NOTICE = ("Pieczęć deweloperska wygenerowana przez platforma init. Nie jest pieczęcią kwalifikowaną; "
                      "w produkcji zastąp ją kwalifikowaną pieczęcią elektroniczną urzędu.")
DEVELOPMENT_KEY_FILE = "seal-key.pem"
DEVELOPMENT_CERT_FILE = "seal-cert.pem"
DEVELOPMENT_VALIDITY = dt.timedelta(days=5 * 365)


class SealError(ValueError):
    """The seal's key or certificate cannot be used; the message is Polish."""


@dataclass(frozen=True)
class Seal:
    """The office's seal: the private key and its certificate chain (the seal certificate first)."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    def seal(self, document: bytes, *, signing_time: dt.datetime | None = None) -> bytes:
        return _seal(document, self.key, self.chain, signing_time)


# -- reading the key and the certificate -----------------------------------------------------------

def _public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_seal(key_pem: bytes, cert_chain_pem: bytes, *, key_name: str = "klucz pieczęci",
               cert_name: str = "certyfikat pieczęci") -> Seal:
    """The key and chain from PEM bytes; SealError when unreadable, of an unsupported kind, or not a pair."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # a password is needed
        raise SealError(f"{key_name} jest zaszyfrowany hasłem; zapisz go bez hasła, z uprawnieniami 0600") from None
    except ValueError:
        raise SealError(f"{key_name} nie jest kluczem prywatnym w formacie PEM") from None
    except UnsupportedAlgorithm as exc:
        raise SealError(f"{key_name} nie jest obsługiwanym kluczem prywatnym ({exc})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise SealError(f"{key_name} RSA ma {key.key_size} bitów, wymagane co najmniej 2048")
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size < 256:
            raise SealError(f"{key_name} na krzywej eliptycznej ma {key.curve.key_size} bitów, wymagane co najmniej 256")
    else:
        raise SealError(f"{key_name} musi być kluczem RSA (co najmniej 2048 bitów) albo ECDSA (P-256 lub silniejszym)")
    try:
        chain = tuple(x509.load_pem_x509_certificates(cert_chain_pem))
    except ValueError:
        raise SealError(f"{cert_name} nie zawiera certyfikatów w formacie PEM") from None
    if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
        raise SealError(f"{key_name} nie pasuje do certyfikatu pieczęci (pierwszego certyfikatu w pliku "
                        "certyfikatu): to nie jest para klucz–certyfikat")
    return Seal(key, chain)


def _read(path: Path, what: str, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SealError(f"{setting}: nie ma pliku {what} {path}") from None
    except OSError as exc:
        raise SealError(f"{setting}: nie można odczytać pliku {what} {path}: {exc.strerror}") from None


def seal_paths(settings: "Settings") -> tuple[Path, Path] | None:
    """The configured key and certificate paths (relative ones resolved in the instance), or None."""
    esign = settings.esign
    if not esign.seal_key and not esign.seal_certificate:
        return None

    def resolve(value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else settings.instance_path(value)

    return resolve(esign.seal_key), resolve(esign.seal_certificate)


def seal_problems(settings: "Settings") -> list[str]:
    """Polish lines naming the key, for the configuration check at load; empty when the seal is usable."""
    esign = settings.esign
    if bool(esign.seal_key) != bool(esign.seal_certificate):
        missing, given = ("esign.seal_certificate", "esign.seal_key") if esign.seal_key else \
            ("esign.seal_key", "esign.seal_certificate")
        return [f"{missing}: brak wartości, choć ustawiono {given}; pieczęć wymaga klucza i certyfikatu"]
    try:
        load_seal(settings)
    except SealError as exc:
        message = str(exc)
        return [message if message.startswith("esign.") else f"esign.seal_key: {message}"]
    return []


def load_seal(settings: "Settings") -> Seal | None:
    """The office's seal from ``[esign]`` seal_key and seal_certificate; None when no seal is configured."""
    paths = seal_paths(settings)
    if paths is None:
        return None
    key_path, cert_path = paths
    if not settings.esign.seal_key or not settings.esign.seal_certificate:
        raise SealError("esign.seal_key: pieczęć wymaga obu ustawień, seal_key i seal_certificate")
    key_pem = _read(key_path, "klucza pieczęci", "esign.seal_key")
    cert_pem = _read(cert_path, "certyfikatu pieczęci", "esign.seal_certificate")
    try:
        return parse_seal(key_pem, cert_pem, key_name=f"klucz pieczęci {key_path}",
                          cert_name=f"plik certyfikatu pieczęci {cert_path}")
    except SealError as exc:
        setting = "esign.seal_certificate" if "nie zawiera certyfikatów" in str(exc) else "esign.seal_key"
        raise SealError(f"{setting}: {exc}") from None


def configured_trust_anchors(settings: "Settings") -> list[x509.Certificate]:
    """``esign.trust_anchors`` and the office's own seal certificate (pinned), for verifying by default."""
    from platforma.esign.trust import load_trust_anchors

    anchors: list[x509.Certificate] = []
    if settings.esign.trust_anchors:
        path = Path(settings.esign.trust_anchors)
        anchors.extend(load_trust_anchors(path if path.is_absolute() else settings.instance_path(str(path))))
    paths = seal_paths(settings)
    if paths is not None and settings.esign.seal_certificate:
        own = load_trust_anchors(paths[1])[0]
        if own not in anchors:
            anchors.append(own)
    return anchors


# -- sealing ---------------------------------------------------------------------------------------

def seal_xml(document: bytes, *, key_pem: bytes, cert_chain_pem: bytes,
             signing_time: dt.datetime | None = None) -> bytes:
    """``document`` with an enveloped XAdES-BES signature made with the seal key (SHA-256).

    ``cert_chain_pem`` holds the seal certificate first, then its issuers (they go into KeyInfo);
    ``signing_time`` defaults to now. Raises SealError for an unusable key or certificate and
    SignatureError (from the hardened parser) for a document that is not acceptable XML.
    """
    seal = parse_seal(key_pem, cert_chain_pem)
    return _seal(document, seal.key, seal.chain, signing_time)


def _seal(document: bytes, key, chain: tuple[x509.Certificate, ...], signing_time: dt.datetime | None) -> bytes:
    from lxml import etree
    from signxml import SignatureConstructionMethod, SignatureMethod
    from signxml.xades import XAdESSigner

    from platforma.esign.parsing import parse_untrusted

    root = parse_untrusted(document, what="dokument do opieczętowania").getroot()
    moment = dt.datetime.now(dt.timezone.utc) if signing_time is None else (
        signing_time.replace(tzinfo=dt.timezone.utc) if signing_time.tzinfo is None
        else signing_time.astimezone(dt.timezone.utc))
    when = moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")

    class _Signer(XAdESSigner):
        # signxml always writes the current time; a receipt carries the time it states
        def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
            element = etree.SubElement(signed_signature_properties, "{http://uri.etsi.org/01903/v1.3.2#}SigningTime")
            element.text = when

        # SigningCertificateV2 names the seal certificate only (ETSI EN 319 132-1, 5.2.2)
        def add_signing_certificate(self, signed_signature_properties, sig_root, signing_settings):
            chain = signing_settings.cert_chain
            signing_settings.cert_chain = chain[:1]
            try:
                super().add_signing_certificate(signed_signature_properties, sig_root, signing_settings)
            finally:
                signing_settings.cert_chain = chain

    method = SignatureMethod.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256
    signer = _Signer(method=SignatureConstructionMethod.enveloped, signature_algorithm=method)
    signed = signer.sign(root, key=key, cert=list(chain))
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


# -- the development seal made by `platforma init` -------------------------------------------------

def development_certificate(key, *, office_name: str, gmina_name: str, nip: str = "",
                            now: dt.datetime | None = None) -> x509.Certificate:
    """A self-signed seal certificate that says, in its subject and its policy notice, it is for development."""
    now = now or dt.datetime.now(dt.timezone.utc)
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, gmina_name[:64]),
                  x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEVELOPMENT_UNIT),
                  x509.NameAttribute(NameOID.COMMON_NAME, office_name[:64])]
    if nip:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"VATPL-{nip}"))
        attributes.append(x509.NameAttribute(ORGANIZATION_IDENTIFIER, f"VATPL-{nip}"))
    name = x509.Name(attributes)
    notice = x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"),  # anyPolicy, with a user notice
                                    [x509.UserNotice(None, DEVELOPMENT_NOTICE)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + DEVELOPMENT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # a seal certificate: nonRepudiation (contentCommitment) and digitalSignature
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.CertificatePolicies([notice]), critical=False)
            .sign(key, hashes.SHA256()))


def create_development_seal(directory: Path, *, office_name: str, gmina_name: str, nip: str = "") -> tuple[Path, Path]:
    """Write DIR/seal-key.pem (0600, RSA 2048) and DIR/seal-cert.pem; refuses to overwrite either."""
    key_path, cert_path = directory / DEVELOPMENT_KEY_FILE, directory / DEVELOPMENT_CERT_FILE
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(str(path))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = development_certificate(key, office_name=office_name, gmina_name=gmina_name, nip=nip)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_pem)
    os.chmod(key_path, 0o600)  # whatever the umask
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
