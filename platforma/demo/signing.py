"""A demonstration signer, so that letters can be filed in a demo instance without a real signature.

``platforma init --demo`` makes a demonstration certification authority (its certificate becomes the
instance's trust anchor; its key is thrown away) and a certificate for the demo resident, Jan Kowalski,
with his PESEL in the serialNumber as qualified certificates carry it. ``platforma demo sign FILE`` then
signs a downloaded letter: XML with an enveloped XAdES-BES signature, PDF with a PAdES signature. None of
this exists outside demo instances.
"""
from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CA_FILE = "demo-ca.pem"
SIGNER_KEY_FILE = "demo-signer-key.pem"
SIGNER_CERT_FILE = "demo-signer-cert.pem"
NOTICE = "Certyfikat demonstracyjny, nie do użytku produkcyjnego"
VALIDITY = dt.timedelta(days=5 * 365)


def _name(common: str, *extra: x509.NameAttribute) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, NOTICE), *extra,
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def create_demo_signer(directory: Path, *, given: str, surname: str, pesel: str) -> tuple[Path, Path, Path]:
    """Write DIR/demo-ca.pem, DIR/demo-signer-key.pem (0600) and DIR/demo-signer-cert.pem (the signer's
    certificate followed by the CA's); refuses to overwrite them."""
    paths = directory / CA_FILE, directory / SIGNER_KEY_FILE, directory / SIGNER_CERT_FILE
    for path in paths:
        if path.exists():
            raise FileExistsError(str(path))
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("Demonstracyjne Centrum Certyfikacji")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(f"{given} {surname}", x509.NameAttribute(NameOID.GIVEN_NAME, given),
                    x509.NameAttribute(NameOID.SURNAME, surname),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, f"PNOPL-{pesel}"))
    # like a qualified signature certificate: nonRepudiation only (ETSI EN 319 412-2)
    leaf = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths[0].write_bytes(ca.public_bytes(pem))
    descriptor = os.open(paths[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[2].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    return paths


def sign_demo(document: bytes, directory: Path) -> bytes:
    """The document signed by the demo signer: a PDF with PAdES, anything else as XML with XAdES-BES."""
    key_pem = (directory / SIGNER_KEY_FILE).read_bytes()
    chain_pem = (directory / SIGNER_CERT_FILE).read_bytes()
    if document[:5] == b"%PDF-":
        return _sign_pdf(document, key_pem, chain_pem)
    from platforma.esign.seal import seal_xml

    return seal_xml(document, key_pem=key_pem, cert_chain_pem=chain_pem)


def _sign_pdf(document: bytes, key_pem: bytes, chain_pem: bytes) -> bytes:
    from asn1crypto import keys as asn1_keys
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    from platforma.esign.pades import outside_event_loop

    certificates = [asn1_x509.Certificate.load(der) for _, _, der in asn1_pem.unarmor(chain_pem, multiple=True)]
    key = serialization.load_pem_private_key(key_pem, password=None)
    key_info = asn1_keys.PrivateKeyInfo.load(key.private_bytes(serialization.Encoding.DER,
                                                                serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption()))
    signer = signers.SimpleSigner(signing_cert=certificates[0], signing_key=key_info,
                                  cert_registry=SimpleCertificateStore.from_certs(certificates))
    meta = signers.PdfSignatureMetadata(field_name="Podpis", md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES)
    output = outside_event_loop(signers.sign_pdf, IncrementalPdfFileWriter(io.BytesIO(document)), meta, signer=signer)
    return output.getvalue()
