"""The forms catalogue of e-pisma: six letters a resident can fill, download as a CRD-structured XML
document, sign (XAdES or PAdES) and file.

    CATALOGUE        the forms in display order, by code
    get_form(code)   one form (KeyError when unknown)
    parse_letter(xml) a document (signed or not) of any form, read and validated: a ParsedLetter

Importing this package registers the forms' dated settings (see ``settings``).
"""
from __future__ import annotations

import copy

from lxml import etree

from platforma.episma.forms import settings  # noqa: F401  (registers the dated settings)
from platforma.episma.forms.base import (
    DS, Attachment, DocumentMeta, FormDocumentError, Item, LetterForm, ParsedLetter, Party, SchemaLoadError, Section,
    load_schema, office_party, party_from_taxpayer, party_from_user,
)
from platforma.episma.forms.certificate import CertificateRequest
from platforma.episma.forms.general import GeneralLetter
from platforma.episma.forms.property_info import PropertyInformation
from platforma.episma.forms.refund import RefundRequest
from platforma.episma.forms.relief import ReliefRequest
from platforma.episma.forms.render import render_letter_html, render_letter_pdf, letter_sections
from platforma.episma.forms.waste import WasteDeclaration
from platforma.esign.parsing import DEFAULT_MAX_BYTES, SignatureError, parse_untrusted

CATALOGUE: dict[str, LetterForm] = {form.code: form for form in (
    GeneralLetter(), CertificateRequest(), RefundRequest(), ReliefRequest(), WasteDeclaration(), PropertyInformation(),
)}
_BY_NAMESPACE = {form.namespace: form for form in CATALOGUE.values()}

__all__ = [
    "CATALOGUE", "Attachment", "DocumentMeta", "FormDocumentError", "Item", "LetterForm", "ParsedLetter", "Party",
    "SchemaLoadError", "Section", "get_form", "letter_sections", "load_schema", "office_party", "parse_letter",
    "party_from_taxpayer", "party_from_user", "render_letter_html", "render_letter_pdf",
]


def get_form(code: str) -> LetterForm:
    return CATALOGUE[code]


def _document_root(root: etree._Element) -> etree._Element:
    """The letter itself: the root, or for an enveloping signature (ds:Signature as the root) the one
    catalogue document inside its ds:Object."""
    if root.tag != f"{{{DS}}}Signature":
        return root
    found = [child for obj in root.iterfind(f"{{{DS}}}Object") for child in obj
             if isinstance(child.tag, str) and etree.QName(child).namespace in _BY_NAMESPACE]
    if len(found) != 1:
        raise FormDocumentError("element ds:Signature: podpis otaczający nie zawiera dokładnie jednego dokumentu z katalogu formularzy")
    return found[0]


def parse_letter(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedLetter:
    """Read a letter of any catalogue form, signed (XAdES enveloped or enveloping) or not.

    Hardened parsing (no DTD, no entities, no network, size-bounded); the form is found by the root
    element's namespace and the document validated against that form's XSD. An enveloped ds:Signature
    (a child of the root) is removed from a copy before validation: the schema describes the letter as
    we write it, and the signature is the esign module's to verify. FormDocumentError (Polish, naming
    the element) for anything else.
    """
    try:
        tree = parse_untrusted(xml, max_bytes=max_bytes, what="dokument")
    except SignatureError as exc:
        raise FormDocumentError(str(exc)) from None
    root = _document_root(tree.getroot())
    qname = etree.QName(root)
    form = _BY_NAMESPACE.get(qname.namespace)
    if form is None or qname.localname != "Dokument":
        shown = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
        raise FormDocumentError(f"element {shown}: to nie jest dokument żadnego formularza z katalogu (nieznana "
                                "przestrzeń nazw lub nazwa elementu głównego)")
    document = copy.deepcopy(root)
    for signature in document.findall(f"{{{DS}}}Signature"):
        document.remove(signature)
    return form.read(document)
