"""The rules of e-pisma as pure functions: register numbers, what an attachment may be, the receipt's XML.

No Flask and no session here; the verbs that store letters are in ``operations``.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

WARSAW = ZoneInfo("Europe/Warsaw")

# -- the register of incoming mail ----------------------------------------------------------------

#: the placeholders a registration number pattern may use
PATTERN_FIELDS = frozenset({"seq", "year"})


def check_registration_pattern(pattern: str) -> str:
    """A pattern such as "KO.{seq}.{year}" or "{year}/{seq:05d}"; ValueError (Polish) when unusable.

    Both {seq} and {year} are required: the sequence starts again each year, so the year is what keeps
    numbers of different years apart.
    """
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise ValueError(f"wzór numeru jest niepoprawny ({exc})") from None
    names = {name for name, _ in fields}
    unknown = names - PATTERN_FIELDS
    if unknown:
        raise ValueError(f"wzór numeru może zawierać tylko {{seq}} i {{year}}, a zawiera {{{sorted(unknown)[0]}}}")
    if names != PATTERN_FIELDS:
        raise ValueError("wzór numeru musi zawierać {seq} (kolejny numer w roku) i {year} (rok)")
    try:
        sample = pattern.format(seq=1, year=2026)
    except (ValueError, IndexError, TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"wzór numeru jest niepoprawny ({exc})") from None
    if not sample.strip() or len(sample) > 40:
        raise ValueError("numer według wzoru musi mieć od 1 do 40 znaków")
    return pattern


def registration_number(pattern: str, year: int, seq: int) -> str:
    return pattern.format(seq=seq, year=year)


# -- attachments ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileKind:
    """A kind of file the office accepts (the formats of the national interoperability framework, KRI
    annex 2, that a clerk can open safely); ``signatures`` are the first bytes that identify it."""

    extension: str
    content_type: str
    label: str


#: text kinds are recognised by decoding, binary ones by their signature (magic bytes)
FILE_KINDS: dict[str, FileKind] = {k.extension: k for k in (
    FileKind("pdf", "application/pdf", "PDF"),
    FileKind("jpg", "image/jpeg", "JPEG"),
    FileKind("png", "image/png", "PNG"),
    FileKind("tif", "image/tiff", "TIFF"),
    FileKind("odt", "application/vnd.oasis.opendocument.text", "ODT"),
    FileKind("ods", "application/vnd.oasis.opendocument.spreadsheet", "ODS"),
    FileKind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "DOCX"),
    FileKind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XLSX"),
    FileKind("doc", "application/msword", "DOC"),
    FileKind("xls", "application/vnd.ms-excel", "XLS"),
    FileKind("rtf", "application/rtf", "RTF"),
    FileKind("txt", "text/plain", "TXT"),
    FileKind("xml", "application/xml", "XML"),
)}
DEFAULT_ALLOWED = ("pdf", "jpg", "png", "tif", "odt", "ods", "docx", "xlsx", "doc", "xls", "rtf", "txt", "xml")
_ALIASES = {"jpeg": "jpg", "tiff": "tif", "xades": "xml"}
_BINARY_DETECTED = {"pdf": "pdf", "jpg": "jpg", "png": "png", "tif": "tif", "odt": "odt", "ods": "ods",
                    "docx": "docx", "xlsx": "xlsx", "doc": "doc", "xls": "xls", "rtf": "rtf"}
_TEXT_KINDS = frozenset({"txt", "xml"})
MAX_FILENAME = 200


class AttachmentRefused(ValueError):
    """The file may not be attached; the message is Polish and names the file."""


def safe_filename(name: str) -> str:
    """The last path component, NFC, without control characters or characters Windows forbids."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*').strip(" .")
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_FILENAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:MAX_FILENAME]
    return name or "plik"


def _extension(name: str) -> str:
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    return _ALIASES.get(ext, ext)


def _detected(content: bytes) -> str | None:
    import filetype  # the maintained magic-number table (pure Python)

    kind = filetype.guess(content[:8192])
    if kind is None:
        return None
    return _BINARY_DETECTED.get(kind.extension, "other:" + kind.extension)


def _looks_like_text(content: bytes) -> bool:
    if b"\x00" in content:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        try:
            content.decode("cp1250")
        except UnicodeDecodeError:
            return False
    return True


def check_attachment(filename: str, content: bytes, *, allowed: tuple[str, ...] = DEFAULT_ALLOWED,
                     max_bytes: int) -> FileKind:
    """The kind of an attachment, or AttachmentRefused: too large, empty, a kind not allowed, or content
    that is not what its name says (an executable named "zdjecie.jpg", a script named "pismo.txt")."""
    name = safe_filename(filename)
    if len(content) > max_bytes:
        raise AttachmentRefused(f"Plik {name} ma {format_size(len(content))}, a dopuszczalny rozmiar załącznika to "
                                f"{format_size(max_bytes)}.")
    if not content:
        raise AttachmentRefused(f"Plik {name} jest pusty.")
    ext = _extension(name)
    allowed_names = ", ".join(FILE_KINDS[a].label for a in allowed if a in FILE_KINDS)
    if ext not in allowed or ext not in FILE_KINDS:
        raise AttachmentRefused(f"Pliku {name} nie można dołączyć: dopuszczalne rodzaje plików to {allowed_names}.")
    detected = _detected(content)
    if ext in _TEXT_KINDS:
        if detected is not None or not _looks_like_text(content):
            raise AttachmentRefused(f"Plik {name} nie jest plikiem tekstowym, choć tak wskazuje jego nazwa.")
        if ext == "xml" and re.search(rb"<!(DOCTYPE|ENTITY)", content):
            raise AttachmentRefused(f"Plik {name} zawiera deklarację DOCTYPE lub ENTITY; takich plików nie przyjmujemy.")
        if ext == "txt" and re.search(rb"<\s*(script|html|svg)\b", content, re.IGNORECASE):
            raise AttachmentRefused(f"Plik {name} zawiera kod HTML lub skrypt; dołącz go jako PDF.")
        return FILE_KINDS[ext]
    # a .doc and a .xls are both OLE containers: either name fits either detection
    compatible = {ext} | ({"doc", "xls"} if ext in ("doc", "xls") else set())
    if detected not in compatible:
        raise AttachmentRefused(f"Zawartość pliku {name} nie odpowiada rozszerzeniu .{ext}; sprawdź, czy to właściwy plik.")
    return FILE_KINDS[ext]


def format_size(size: int) -> str:
    """Polish notation: "850 B", "12,5 kB", "3,2 MB"."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} kB".replace(".", ",")
    return f"{size / 1024 / 1024:.1f} MB".replace(".", ",")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the receipt (UPO, urzędowe poświadczenie odbioru) --------------------------------------------

UPO_NAMESPACE = "urn:platforma:upo:1"
UPO_XSD = Path(__file__).with_name("schemas") / "upo-1.xsd"
SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"


@dataclass(frozen=True)
class ReceiptFile:
    name: str
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class ReceiptData:
    """Everything the receipt states; the office's seal then vouches for it."""

    office_name: str
    gmina_name: str
    office_nip: str
    office_regon: str
    teryt: str
    office_address: str
    registration_number: str
    received_at: dt.datetime  # aware, UTC
    document_id: str
    title: str
    form_code: str
    form_version: str
    document: ReceiptFile  # the file as uploaded
    content_sha256: str  # what its signature covers
    attachments: tuple[ReceiptFile, ...]
    signature_format: str
    signer_name: str
    signer_pesel: str | None
    signer_nip: str | None
    signed_at: dt.datetime | None
    sender_name: str
    sender_email: str


def _b64_digest(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def receipt_xml(data: ReceiptData) -> bytes:
    """The receipt as XML (namespace ``UPO_NAMESPACE``), valid against ``schemas/upo-1.xsd``; unsealed."""
    E = lambda name, *children, **attrs: _element(name, children, attrs)  # noqa: E731
    office = [E("Nazwa", data.office_name), E("Gmina", data.gmina_name)]
    if data.office_nip:
        office.append(E("NIP", data.office_nip))
    if data.office_regon:
        office.append(E("REGON", data.office_regon))
    office += [E("TERYT", data.teryt), E("Adres", data.office_address)]

    def file_element(tag: str, f: ReceiptFile):
        return E(tag, E("NazwaPliku", f.name), E("Rozmiar", str(f.size)),
                 E("Skrot", _b64_digest(f.sha256), algorytm=SHA256_URI))

    document = [
        E("Identyfikator", data.document_id), E("Tytul", data.title),
        E("Formularz", kod=data.form_code, wersja=data.form_version),
        file_element("Plik", data.document),
        E("SkrotTresci", _b64_digest(data.content_sha256), algorytm=SHA256_URI),
    ]
    if data.attachments:
        document.append(E("Zalaczniki", *(file_element("Zalacznik", a) for a in data.attachments)))
    signature = [E("Format", data.signature_format), E("Podpisujacy", data.signer_name)]
    if data.signer_pesel:
        signature.append(E("PESEL", data.signer_pesel))
    if data.signer_nip:
        signature.append(E("NIP", data.signer_nip))
    if data.signed_at:
        signature.append(E("CzasPodpisu", _utc_text(data.signed_at)))
    local = data.received_at.astimezone(WARSAW)
    root = E(
        "UPO",
        E("Urzad", *office),
        E("NumerWpisu", data.registration_number),
        E("CzasPrzyjecia", _utc_text(data.received_at), czasLokalny=local.replace(microsecond=0).isoformat()),
        E("Dokument", *document),
        E("Podpis", *signature),
        E("Nadawca", E("Nazwa", data.sender_name), E("Email", data.sender_email)),
        wersja="1",
    )
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate_receipt(xml)
    return xml


_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """The text without the characters XML 1.0 cannot hold (control characters in a name typed years ago
    must not stop a receipt from being issued)."""
    return _NOT_IN_XML.sub("", value)


def _element(name: str, children, attrs) -> etree._Element:
    element = etree.Element(f"{{{UPO_NAMESPACE}}}{name}", nsmap={"upo": UPO_NAMESPACE})
    for key, value in attrs.items():
        element.set(key, xml_text(value))
    for child in children:
        if isinstance(child, str):
            element.text = xml_text(child)
        else:
            element.append(child)
    return element


_schema: etree.XMLSchema | None = None


def validate_receipt(xml: bytes) -> None:
    """ValueError when the receipt does not match its schema (a bug, never the resident's input)."""
    global _schema
    if _schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _schema = etree.XMLSchema(etree.parse(str(UPO_XSD), parser))
    document = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    if not _schema.validate(document):
        raise ValueError(f"UPO niezgodne ze schematem: {_schema.error_log.last_error}")


def read_receipt(xml: bytes) -> dict[str, str]:
    """The main facts of a (sealed) receipt, for its PDF and for tests."""
    from platforma.esign.parsing import parse_untrusted

    root = parse_untrusted(xml, what="UPO").getroot()
    ns = {"upo": UPO_NAMESPACE}

    def text(path: str) -> str:
        found = root.find(path, ns)
        return found.text or "" if found is not None else ""

    received = root.find("upo:CzasPrzyjecia", ns)
    return {
        "registration_number": text("upo:NumerWpisu"),
        "received_at": received.text if received is not None else "",
        "received_local": received.get("czasLokalny", "") if received is not None else "",
        "document_id": text("upo:Dokument/upo:Identyfikator"),
        "title": text("upo:Dokument/upo:Tytul"),
        "document_name": text("upo:Dokument/upo:Plik/upo:NazwaPliku"),
        "document_digest": text("upo:Dokument/upo:Plik/upo:Skrot"),
        "content_digest": text("upo:Dokument/upo:SkrotTresci"),
        "signer": text("upo:Podpis/upo:Podpisujacy"),
        "office": text("upo:Urzad/upo:Nazwa"),
    }
