"""The forms catalogue's building blocks: parties, attachments, the document's metadata, the CRD envelope
(writing, validating and reading it) and `LetterForm`, which every form of the catalogue specialises.

A form declares its content as sections of `Item`s (one item: one web-form field, one data key, one XML
element of TrescDokumentu, one row of the summary) and ships its XSD in ``xsd/``; this module does the
rest the same way for every form.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

from flask_babel import lazy_gettext as _l
from lxml import etree

from platforma.episma.forms.rules import clean_text, decimal_text, parse_decimal

XSD_DIR = Path(__file__).with_name("xsd")

# The CRD namespaces of the envelope's parts (Centralne Repozytorium Wzorów Dokumentów Elektronicznych).
# We reuse their URIs; the schemas in xsd/ are ours and describe what we write (we have no copy of CRD's).
META = "http://crd.gov.pl/xml/schematy/meta/2009/11/16/"
STR = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
OSO = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/"
ADR = "http://crd.gov.pl/xml/schematy/adres/2009/11/16/"
INST = "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/"
DS = "http://www.w3.org/2000/09/xmldsig#"
PREFIXES = {META: "meta", STR: "str", OSO: "oso", ADR: "adr", INST: "inst", DS: "ds"}


class FormDocumentError(ValueError):
    """A document that is not a valid letter of the catalogue; the message is Polish and names the element."""


# -- what a letter is made of ----------------------------------------------------------------------

@dataclass(frozen=True)
class Party:
    """A person or an organisation in a letter: the author, the addressee, the taxpayer.

    Written as oso:Osoba when it has a PESEL or no NIP and no REGON (a person), otherwise as
    inst:Instytucja (a company, the office)."""

    name: str
    pesel: str | None = None
    nip: str | None = None
    regon: str | None = None
    street: str = ""
    postal_code: str = ""
    city: str = ""
    email: str | None = None
    phone: str | None = None

    @property
    def is_institution(self) -> bool:
        return not self.pesel and bool(self.nip or self.regon)

    @property
    def address(self) -> str:
        return ", ".join(part for part in (self.street, f"{self.postal_code} {self.city}".strip()) if part)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class DocumentMeta:
    #: a UUID (lower-case, with hyphens) that the lead generates for each document
    identifier: str
    #: aware, UTC
    created_at: dt.datetime
    title: str
    author: Party
    #: the office (settings.gmina: office_name, address, NIP, REGON)
    addressee: Party
    #: on whose behalf the author writes (a representative); None when the author writes for themself
    taxpayer: Party | None = None


@dataclass(frozen=True)
class Section:
    """A part of the human-readable view of a letter: a heading and (label, value) rows, both text."""

    heading: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ParsedLetter:
    form: LetterForm
    meta: DocumentMeta
    #: JSON-serialisable (str, int, bool, list, None; decimals and dates as strings)
    data: dict[str, Any]
    attachments: tuple[Attachment, ...] = ()

    @property
    def title(self) -> str:
        return self.meta.title


def party_from_taxpayer(taxpayer: Any) -> Party:
    """A platforma.taxes.models.Taxpayer as a Party."""
    name = taxpayer.name if taxpayer.kind == "legal" else f"{taxpayer.first_name} {taxpayer.last_name}".strip()
    return Party(name=name, pesel=taxpayer.pesel or None, nip=taxpayer.nip or None, regon=taxpayer.regon or None,
                 street=taxpayer.street or "", postal_code=taxpayer.postal_code or "", city=taxpayer.city or "")


def party_from_user(user: Any, *, street: str = "", postal_code: str = "", city: str = "") -> Party:
    """A platforma.accounts.models.User (the author) as a Party; an account holds no address of its own."""
    return Party(name=user.full_name, pesel=user.declared_pesel or None, street=street, postal_code=postal_code,
                 city=city, email=user.email or None, phone=(user.phone or None) if hasattr(user, "phone") else None)


def office_party(gmina: Any) -> Party:
    """The addressee: the office of the gmina (platforma.config.Gmina)."""
    return Party(name=gmina.office_name, nip=gmina.nip or None, regon=gmina.regon or None,
                 street=gmina.address.street, postal_code=gmina.address.postal_code, city=gmina.address.city,
                 email=gmina.contact.email or None, phone=gmina.contact.phone or None)


# -- the items a form is made of -------------------------------------------------------------------

KINDS = ("text", "multiline", "int", "decimal", "date", "bool", "choice", "multi")


@dataclass(frozen=True)
class Item:
    """One value of a form: the web field and the data key `key`, the element `element` of
    TrescDokumentu (in the form's namespace), a row labelled `label` in the summary.

    Data values: text and choice -> str, int -> int, decimal -> str with `places` places ("12.50"),
    date -> "YYYY-MM-DD", bool -> bool, multi -> list of str (the element repeated); an empty optional
    value is None (an empty list for multi) and its element is left out."""

    key: str
    element: str
    label: Any
    kind: str = "text"
    places: int = 2
    choices: tuple[tuple[str, Any], ...] = ()
    #: printed after the value in the summary (zł, m², ha)
    unit: str = ""
    #: not typed by the resident: `LetterForm.complete` sets it from the dated settings
    computed: bool = False
    #: how the summary prints the value, when not the kind's way (e.g. an account number in groups)
    formatter: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown item kind {self.kind}")

    # the web form -> data
    def from_field(self, web_field: Any) -> Any:
        data = web_field.data
        if self.kind == "multi":
            return [value for value, _label in self.choices if value in (data or [])]
        if data is None or (isinstance(data, str) and not data.strip()):
            return None
        if self.kind in ("text", "multiline"):
            return clean_text(data, multiline=self.kind == "multiline")
        if self.kind == "int":
            return int(data.strip())
        if self.kind == "decimal":
            return decimal_text(parse_decimal(data, places=self.places), self.places)
        if self.kind == "date":
            return data.isoformat()
        if self.kind == "bool":
            return data == "tak"
        return data.strip()

    # data -> the web form (values a MultiDict takes)
    def to_field(self, value: Any) -> Any:
        if value is None:
            return [] if self.kind == "multi" else ""
        if self.kind == "multi":
            return list(value)
        if self.kind == "int":
            return str(value)
        if self.kind == "decimal":
            return value.replace(".", ",")
        if self.kind == "date":
            day = dt.date.fromisoformat(value)
            return [str(day.day), str(day.month), str(day.year)]
        if self.kind == "bool":
            return "tak" if value else "nie"
        return value

    # data -> XML
    def write(self, parent: etree._Element, namespace: str, value: Any) -> None:
        if value is None:
            return
        for text in (value if self.kind == "multi" else [value]):
            element = etree.SubElement(parent, f"{{{namespace}}}{self.element}")
            if self.kind == "bool":
                element.text = "tak" if text else "nie"
            else:
                element.text = str(text)

    # XML (validated) -> data
    def read(self, parent: etree._Element, namespace: str) -> Any:
        found = parent.findall(f"{{{namespace}}}{self.element}")
        if self.kind == "multi":
            return [element.text or "" for element in found]
        if not found:
            return None
        text = found[0].text or ""
        if self.kind == "int":
            return int(text)
        if self.kind == "decimal":
            return decimal_text(Decimal(text), self.places)
        if self.kind == "bool":
            return text == "tak"
        return text

    # data -> the summary
    def display(self, value: Any) -> str:
        from platforma.web.filters import money

        if self.formatter is not None:
            return self.formatter(value)
        if self.kind == "multi":
            labels = dict(self.choices)
            return ", ".join(str(labels.get(code, code)) for code in value)
        if self.kind == "choice":
            return str(dict(self.choices).get(value, value))
        if self.kind == "bool":
            return str(_l("tak") if value else _l("nie"))
        if self.kind == "date":
            return dt.date.fromisoformat(value).strftime("%d.%m.%Y")
        if self.kind == "decimal":
            if self.unit == "zł":
                return money(Decimal(value))
            number = f"{Decimal(value):,}".replace(",", "\u00a0").replace(".", ",")
            return f"{number}\u00a0{self.unit}" if self.unit else number
        return str(value)


# -- schemas: local files only, compiled once ---------------------------------------------------------

class SchemaLoadError(RuntimeError):
    """A schema could not be compiled (e.g. it names a file outside its folder or on the network)."""


class _LocalOnly(etree.Resolver):
    """Lets a schema include or import only files of its own folder; anything else (a URL, a path
    outside the folder) is refused and remembered."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder.resolve()
        self.refused: list[str] = []

    def resolve(self, url, pubid, context):
        path = Path(url) if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:", url or "") else None
        if url and url.startswith("file://"):
            path = Path(url[len("file://"):])
        if path is not None:
            candidate = (path if path.is_absolute() else self.folder / path).resolve()
            if candidate.parent == self.folder and candidate.is_file():
                return self.resolve_filename(str(candidate), context)
        self.refused.append(url)
        return self.resolve_string('<refused xmlns="urn:platforma:refused"/>', context)


_schemas: dict[Path, tuple[etree.XMLSchema, threading.Lock]] = {}
_schemas_lock = threading.Lock()


def load_schema(path: Path) -> etree.XMLSchema:
    """Compile the XSD at `path`, whose includes and imports may name only files beside it (no network)."""
    resolver = _LocalOnly(path.parent)
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False)
    parser.resolvers.add(resolver)
    try:
        schema = etree.XMLSchema(etree.parse(str(path), parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        if resolver.refused:
            raise SchemaLoadError(f"schemat {path.name} odwołuje się do zasobu spoza swojego katalogu: "
                                  f"{resolver.refused[0]} (odmowa)") from None
        raise SchemaLoadError(f"schemat {path.name} jest błędny: {exc}") from None
    if resolver.refused:
        raise SchemaLoadError(f"schemat {path.name} odwołuje się do zasobu spoza swojego katalogu: "
                              f"{resolver.refused[0]} (odmowa)")
    return schema


def compiled_schema(path: Path) -> tuple[etree.XMLSchema, threading.Lock]:
    """The compiled schema, kept for the process; a validator's error log is per object, hence the lock."""
    with _schemas_lock:
        found = _schemas.get(path)
        if found is None:
            found = _schemas[path] = (load_schema(path), threading.Lock())
        return found


# -- Polish messages for what the schema refused ---------------------------------------------------

_ELEMENT = re.compile(r"^Element '([^']+)'(?:, attribute '([^']+)')?: (.*)$", re.S)
_CLARK = re.compile(r"\{([^}]*)\}([\w.-]+)")
_TYPES = {"xs:integer": "liczba całkowita", "xs:decimal": "liczba", "xs:date": "data RRRR-MM-DD",
          "xs:dateTime": "data i godzina", "xs:base64Binary": "dane w kodowaniu base64"}


def _quote(value: str) -> str:
    return "„" + (value if len(value) <= 40 else value[:40] + "…") + "”"


def prefixed(clark: str, namespace: str) -> str:
    """ "{ns}Tresc" -> "wnio:Tresc" (the form's own namespace is wnio)."""

    def name(match: re.Match) -> str:
        uri, local = match.group(1), match.group(2)
        prefix = "wnio" if uri == namespace else PREFIXES.get(uri)
        return f"{prefix}:{local}" if prefix else (f"{{{uri}}}{local}" if uri else local)

    return _CLARK.sub(name, clark) if "{" in clark else clark


def explain(error: Any, namespace: str) -> str:
    """One schema error as a Polish sentence naming the element."""
    match = _ELEMENT.match(error.message or "")
    if not match:
        return f"dokument jest niezgodny ze schematem formularza (wiersz {error.line})"
    element, attribute, text = prefixed(match.group(1), namespace), match.group(2), match.group(3)
    where = f"element {element}" + (f", atrybut {attribute}" if attribute else "")
    expected = re.search(r"Expected is (?:one of )?\( (.*) \)", text)
    expected_names = prefixed(expected.group(1), namespace) if expected else ""
    value = re.search(r"(?:The value |^)'([^']*)'", text)
    if "Missing child element" in text:
        return f"{where}: brak wymaganego elementu {expected_names}".rstrip()
    if "This element is not expected" in text:
        return f"{where}: element nieoczekiwany w tym miejscu" + (f" (oczekiwano: {expected_names})" if expected_names else "")
    if "is required but missing" in text:
        missing = re.search(r"attribute '([^']+)'", text)
        return f"{where}: brak wymaganego atrybutu {missing.group(1) if missing else ''}".rstrip()
    if "is not allowed" in text and "attribute" in text:
        extra = re.search(r"attribute '([^']+)'", text)
        return f"{where}: niedozwolony atrybut {extra.group(1) if extra else ''}".rstrip()
    if "Character content other than whitespace is not allowed" in text:
        return f"{where}: element nie może zawierać tekstu, tylko inne elementy"
    if "Element content is not allowed" in text:
        return f"{where}: element może zawierać tylko tekst"
    if ("length of '0'" in text) or (value and not value.group(1).strip()):
        return f"{where}: brak wymaganej wartości"
    if "[facet 'maxLength']" in text:
        sizes = re.search(r"length of '(\d+)'.*maximum length of '(\d+)'", text)
        return f"{where}: tekst jest za długi" + (f" ({sizes.group(1)} znaków, dopuszczalne {sizes.group(2)})" if sizes else "")
    if "[facet 'enumeration']" in text:
        return f"{where}: wartość {_quote(value.group(1)) if value else ''} nie jest jedną z dopuszczalnych"
    if "[facet 'minInclusive']" in text or "[facet 'minExclusive']" in text:
        return f"{where}: wartość {_quote(value.group(1)) if value else ''} jest za mała"
    if "[facet 'maxInclusive']" in text or "[facet 'maxExclusive']" in text:
        return f"{where}: wartość {_quote(value.group(1)) if value else ''} jest za duża"
    if "fixed value constraint" in text:
        return f"{where}: wartość {_quote(value.group(1)) if value else ''} jest inna niż wymagana"
    atomic = re.search(r"is not a valid value of the (?:local )?(?:atomic|union|list) type(?: '([^']+)')?", text)
    if atomic:
        kind = _TYPES.get(atomic.group(1) or "", "")
        return f"{where}: wartość {_quote(value.group(1)) if value else ''} jest nieprawidłowa" + (f" (oczekiwano: {kind})" if kind else "")
    if "[facet 'pattern']" in text:
        return f"{where}: wartość {_quote(value.group(1)) if value else ''} ma nieprawidłową postać"
    return f"{where}: niezgodność ze schematem formularza"


# -- the envelope ----------------------------------------------------------------------------------

def _text(element: etree._Element | None) -> str | None:
    return None if element is None else (element.text or "")


def write_party(parent: etree._Element, party: Party) -> None:
    podmiot = etree.SubElement(parent, f"{{{META}}}Podmiot")
    if party.is_institution:
        body = etree.SubElement(podmiot, f"{{{INST}}}Instytucja")
        etree.SubElement(body, f"{{{INST}}}NazwaInstytucji").text = party.name
        ids = [("NIP", party.nip), ("REGON", party.regon)]
        id_name, ns = "IdInstytucji", INST
    else:
        body = etree.SubElement(podmiot, f"{{{OSO}}}Osoba")
        ids = [("PESEL", party.pesel), ("NIP", party.nip), ("REGON", party.regon)]
        id_name, ns = "IdOsoby", OSO
    if any(value for _name, value in ids):
        # the order of the schemas: oso:IdOsoby first; inst:IdInstytucji after the name
        holder = etree.SubElement(body, f"{{{ns}}}{id_name}")
        for name, value in ids:
            if value:
                etree.SubElement(holder, f"{{{ns}}}{name}").text = value
    if not party.is_institution:
        etree.SubElement(body, f"{{{OSO}}}ImieNazwisko").text = party.name
    address = etree.SubElement(body, f"{{{ADR}}}Adres")
    for name, value in (("KodPocztowy", party.postal_code), ("Miejscowosc", party.city), ("Ulica", party.street)):
        if value:
            etree.SubElement(address, f"{{{ADR}}}{name}").text = value
    if party.email or party.phone:
        contact = etree.SubElement(body, f"{{{ADR}}}Kontakt")
        for name, value in (("Email", party.email), ("Telefon", party.phone)):
            if value:
                etree.SubElement(contact, f"{{{ADR}}}{name}").text = value


def read_party(holder: etree._Element) -> Party:
    podmiot = holder.find(f"{{{META}}}Podmiot")
    person = podmiot.find(f"{{{OSO}}}Osoba")
    if person is not None:
        body, ns, name = person, OSO, _text(person.find(f"{{{OSO}}}ImieNazwisko"))
        ids = person.find(f"{{{OSO}}}IdOsoby")
    else:
        body = podmiot.find(f"{{{INST}}}Instytucja")
        ns, name = INST, _text(body.find(f"{{{INST}}}NazwaInstytucji"))
        ids = body.find(f"{{{INST}}}IdInstytucji")

    def identifier(tag: str) -> str | None:
        return None if ids is None else _text(ids.find(f"{{{ns}}}{tag}"))

    address = body.find(f"{{{ADR}}}Adres")
    contact = body.find(f"{{{ADR}}}Kontakt")
    return Party(
        name=name or "", pesel=identifier("PESEL"), nip=identifier("NIP"), regon=identifier("REGON"),
        street=_text(address.find(f"{{{ADR}}}Ulica")) or "",
        postal_code=_text(address.find(f"{{{ADR}}}KodPocztowy")) or "",
        city=_text(address.find(f"{{{ADR}}}Miejscowosc")) or "",
        email=None if contact is None else _text(contact.find(f"{{{ADR}}}Email")),
        phone=None if contact is None else _text(contact.find(f"{{{ADR}}}Telefon")),
    )


def _utc_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("created_at must be an aware datetime")
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _utc_from(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip()).astimezone(dt.timezone.utc)


# -- the form ----------------------------------------------------------------------------------------

class LetterForm:
    """A form of the catalogue. Subclasses set the class attributes and `sections`, ship `xsd_name`
    in ``xsd/`` and may override `prefill`, `hints`, `clean`, `complete`, `check` and `stamp_duty`."""

    code: ClassVar[str]
    title: ClassVar[Any]
    description: ClassVar[Any]
    version: ClassVar[str] = "1"
    #: the form's own namespace (the "wnio" prefix). We are not the CRD: these are our own URNs, not
    #: templates registered in the Centralne Repozytorium Wzorów.
    namespace: ClassVar[str]
    xsd_name: ClassVar[str]
    allows_attachments: ClassVar[bool] = False
    #: the dated-setting key of the stamp duty (opłata skarbowa) the letter costs; None: none
    stamp_duty_setting: ClassVar[str | None] = None
    web_form: ClassVar[type]
    #: (heading, items) in the order of the XML and of the summary
    sections: ClassVar[tuple[tuple[Any, tuple[Item, ...]], ...]]

    @property
    def xsd_path(self) -> Path:
        return XSD_DIR / self.xsd_name

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(item for _heading, items in self.sections for item in items)

    def schema(self) -> tuple[etree.XMLSchema, threading.Lock]:
        return compiled_schema(self.xsd_path)

    def __repr__(self) -> str:
        return f"<LetterForm {self.code}>"

    # -- the web form --------------------------------------------------------------------------
    def prefill(self, taxpayer: Any, user: Any, session: Any, today: dt.date) -> dict[str, Any]:
        """Initial data from the taxpayer (may be None), the user and the account, shaped like `data_from`'s
        (only the keys it knows): `web_form(formdata=MultiDict(form_data(prefill(...))))` shows them."""
        return {}

    def hints(self, session: Any, taxpayer: Any, today: dt.date) -> list[str]:
        """Sentences the page may show above the fields (the rate in force, the overpayment)."""
        return []

    def data_from(self, web_form: Any) -> dict[str, Any]:
        """The data of a validated web form: every item's key, None (or []) where empty."""
        data = {item.key: None if item.computed else item.from_field(web_form[item.key]) for item in self.items}
        return self.clean(data)

    def clean(self, data: dict[str, Any]) -> dict[str, Any]:
        """Drop what does not apply (e.g. the account number when the refund is paid in cash)."""
        return data

    def complete(self, session: Any, data: dict[str, Any], today: dt.date) -> dict[str, Any]:
        """The data with the computed items filled from the dated settings: call it before `to_xml`
        (the stamp duty of the day of filing, the waste fee on the day the declaration applies from)."""
        return dict(data)

    def form_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """The reverse of `data_from`: values for `web_form(formdata=MultiDict(...))`."""
        return {item.key: item.to_field(data.get(item.key)) for item in self.items if not item.computed}

    def stamp_duty(self, session: Any, data: dict[str, Any], day: dt.date) -> Decimal | None:
        return None

    def check(self, data: dict[str, Any]) -> list[str]:
        """What the schema cannot say (a value required by another one): Polish messages naming the element."""
        return []

    # -- the document ----------------------------------------------------------------------------
    def element_name(self, item_key: str) -> str:
        return "wnio:" + next(item.element for item in self.items if item.key == item_key)

    def to_xml(self, data: dict[str, Any], meta: DocumentMeta, attachments: Iterable[Attachment] = ()) -> bytes:
        """The document in the CRD structure, UTF-8 with a declaration; it is validated before it is returned."""
        attachments = tuple(attachments)
        if attachments and not self.allows_attachments:
            raise ValueError(f"form {self.code} takes no attachments")
        ns = self.namespace
        nsmap = {"wnio": ns, "meta": META, "str": STR, "oso": OSO, "adr": ADR, "inst": INST}
        root = etree.Element(f"{{{ns}}}Dokument", nsmap=nsmap)
        opis = etree.SubElement(root, f"{{{ns}}}OpisDokumentu")
        ident = etree.SubElement(opis, f"{{{META}}}Identyfikator", typIdentyfikatora="idDokumentu")
        etree.SubElement(ident, f"{{{META}}}Wartosc").text = meta.identifier
        date = etree.SubElement(opis, f"{{{META}}}Data", typDaty="utworzony")
        etree.SubElement(date, f"{{{META}}}Czas").text = _utc_text(meta.created_at)
        etree.SubElement(opis, f"{{{META}}}Tytul").text = meta.title
        write_party(etree.SubElement(opis, f"{{{META}}}Autor"), meta.author)
        write_party(etree.SubElement(opis, f"{{{META}}}Adresat"), meta.addressee)
        dane = etree.SubElement(root, f"{{{ns}}}DaneDokumentu")
        write_party(etree.SubElement(dane, f"{{{STR}}}Adresaci"), meta.addressee)
        write_party(etree.SubElement(dane, f"{{{STR}}}Nadawcy"), meta.author)
        if meta.taxpayer is not None:
            write_party(etree.SubElement(dane, f"{{{ns}}}Podatnik"), meta.taxpayer)
        tresc = etree.SubElement(root, f"{{{ns}}}TrescDokumentu")
        for item in self.items:
            item.write(tresc, ns, data.get(item.key))
        if attachments:
            holder = etree.SubElement(root, f"{{{STR}}}Zalaczniki")
            for attachment in attachments:
                element = etree.SubElement(holder, f"{{{STR}}}Zalacznik", nazwaPliku=attachment.filename,
                                           format=attachment.content_type, kodowanie="base64")
                etree.SubElement(element, f"{{{STR}}}DaneZalacznika").text = base64.b64encode(attachment.content).decode("ascii")
                etree.SubElement(element, f"{{{STR}}}SkrotSHA256").text = attachment.sha256
        self._validate(root)
        problems = self.check(data)
        if problems:
            raise FormDocumentError(problems[0])
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def _validate(self, root: etree._Element) -> None:
        schema, lock = self.schema()
        with lock:
            if schema.validate(root):
                return
            errors = list(schema.error_log)
        raise FormDocumentError("; ".join(explain(error, self.namespace) for error in errors[:3]))

    def read(self, root: etree._Element) -> ParsedLetter:
        """A ParsedLetter from a root element of this form's namespace (no signature inside)."""
        self._validate(root)
        ns = self.namespace
        opis = root.find(f"{{{ns}}}OpisDokumentu")
        dane = root.find(f"{{{ns}}}DaneDokumentu")
        author = read_party(dane.find(f"{{{STR}}}Nadawcy"))
        addressee = read_party(dane.find(f"{{{STR}}}Adresaci"))
        if read_party(opis.find(f"{{{META}}}Autor")) != author:
            raise FormDocumentError("element meta:Autor: dane autora różnią się od danych nadawcy w str:Nadawcy")
        if read_party(opis.find(f"{{{META}}}Adresat")) != addressee:
            raise FormDocumentError("element meta:Adresat: dane adresata różnią się od danych w str:Adresaci")
        taxpayer_element = dane.find(f"{{{ns}}}Podatnik")
        meta = DocumentMeta(
            identifier=opis.find(f"{{{META}}}Identyfikator/{{{META}}}Wartosc").text,
            created_at=_utc_from(opis.find(f"{{{META}}}Data/{{{META}}}Czas").text),
            title=opis.find(f"{{{META}}}Tytul").text,
            author=author, addressee=addressee,
            taxpayer=None if taxpayer_element is None else read_party(taxpayer_element),
        )
        tresc = root.find(f"{{{ns}}}TrescDokumentu")
        data = {item.key: item.read(tresc, ns) for item in self.items}
        problems = self.check(data)
        if problems:
            raise FormDocumentError(problems[0])
        attachments = []
        for element in root.iterfind(f"{{{STR}}}Zalaczniki/{{{STR}}}Zalacznik"):
            name = element.get("nazwaPliku")
            try:
                content = base64.b64decode(element.find(f"{{{STR}}}DaneZalacznika").text or "", validate=False)
            except (binascii.Error, ValueError):
                raise FormDocumentError(f"element str:DaneZalacznika: załącznik {name} nie jest poprawnie zakodowany (base64)") from None
            attachment = Attachment(filename=name, content_type=element.get("format"), content=content)
            if attachment.sha256 != element.find(f"{{{STR}}}SkrotSHA256").text:
                raise FormDocumentError(f"element str:SkrotSHA256: skrót załącznika {name} nie zgadza się z jego treścią")
            attachments.append(attachment)
        if attachments and not self.allows_attachments:
            raise FormDocumentError(f"element str:Zalaczniki: formularz „{self.title}” nie przyjmuje załączników")
        return ParsedLetter(form=self, meta=meta, data=data, attachments=tuple(attachments))

    # -- for people ------------------------------------------------------------------------------
    def summary(self, data: dict[str, Any]) -> list[Section]:
        sections = []
        for heading, items in self.sections:
            rows = []
            for item in items:
                value = data.get(item.key)
                if value is None or value == []:
                    continue
                rows.append((str(item.label), item.display(value)))
            if rows:
                sections.append(Section(str(heading), tuple(rows)))
        return sections
