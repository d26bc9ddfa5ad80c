"""Reading untrusted XML: size-bounded, no DTD at all, no entities, no network.

A document type declaration is refused before the parser sees the file: a signed letter never needs
one, and it is the carrier of every entity attack (billion laughs, quadratic blow-up, XXE). The
parser itself is configured so that nothing could be expanded or fetched even if one slipped by,
and libxml2's own limits (depth, text node size) stay on (no ``huge_tree``).
"""
from __future__ import annotations

import codecs

from lxml import etree

#: a letter with its attachments; ``server.max_request_mb`` bounds uploads to the same order
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_DOCTYPE = b"<!DOCTYPE"
_ENTITY = b"<!ENTITY"


class SignatureError(ValueError):
    """The file cannot be read as a signed document at all (not XML, a DTD, too large, no signature)."""


def hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=True,
        collect_ids=False,
    )


def declares_dtd(data: bytes) -> bool:
    """A DOCTYPE or ENTITY declaration anywhere in the bytes (UTF-16/32 files are decoded first)."""
    if _DOCTYPE in data or _ENTITY in data:
        return True
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            return "<!DOCTYPE" in text or "<!ENTITY" in text
    if data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):  # UTF-16 without a byte order mark
        text = data.decode("utf-16-le" if data[0] == 0x3C else "utf-16-be", errors="replace")
        return "<!DOCTYPE" in text or "<!ENTITY" in text
    return False


def parse_untrusted(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "plik") -> etree._ElementTree:
    """Parse ``data`` or raise SignatureError with a Polish reason."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    if len(data) > max_bytes:
        raise SignatureError(f"{what} jest za duży: {len(data)} bajtów, dopuszczalne {max_bytes}")
    if not data.strip():
        raise SignatureError(f"{what} jest pusty")
    if declares_dtd(bytes(data)):
        raise SignatureError(f"{what} zawiera deklarację DOCTYPE lub ENTITY (DTD); ze względów bezpieczeństwa "
                             "takich dokumentów nie przyjmujemy")
    try:
        root = etree.fromstring(bytes(data), hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise SignatureError(f"{what} nie jest poprawnym dokumentem XML ({_syntax_detail(exc)})") from None
    except ValueError as exc:  # e.g. an unsupported encoding declaration
        raise SignatureError(f"{what} nie jest poprawnym dokumentem XML ({exc})") from None
    tree = root.getroottree()
    # defence in depth: the byte scan above should have refused these already
    if tree.docinfo.internalDTD is not None or tree.docinfo.externalDTD is not None or tree.docinfo.doctype:
        raise SignatureError(f"{what} zawiera deklarację DOCTYPE (DTD); takich dokumentów nie przyjmujemy")
    for _ in root.iter(etree.Entity):
        raise SignatureError(f"{what} zawiera odwołania do encji; takich dokumentów nie przyjmujemy")
    return tree


def _syntax_detail(exc: etree.XMLSyntaxError) -> str:
    line = getattr(exc, "lineno", None)
    return f"błąd składni w wierszu {line}" if line else "błąd składni"
