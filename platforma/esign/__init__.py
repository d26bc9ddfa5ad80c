"""Electronic signatures: verifying XAdES-signed letters and PAdES-signed PDFs, and sealing the office's receipts
(issue 5, parts 2-4).

The names below are loaded on first use, so that mounting ``platforma esign`` does not import signxml, pyHanko and
cryptography into every command.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "DEFAULT_MAX_BYTES": "platforma.esign.parsing",
    "SignatureError": "platforma.esign.parsing",
    "Signer": "platforma.esign.trust",
    "TrustAnchorError": "platforma.esign.trust",
    "load_trust_anchors": "platforma.esign.trust",
    "Seal": "platforma.esign.seal",
    "SealError": "platforma.esign.seal",
    "configured_trust_anchors": "platforma.esign.seal",
    "load_seal": "platforma.esign.seal",
    "seal_xml": "platforma.esign.seal",
    "ReferenceReport": "platforma.esign.verify",
    "VerificationReport": "platforma.esign.verify",
    "verify_document": "platforma.esign.verify",
    "embedded_files": "platforma.esign.pades",
    "is_pdf": "platforma.esign.pades",
    "signed_form_xml": "platforma.esign.pades",
    "verify_pdf": "platforma.esign.pades",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
