"""Forwarding filed letters to the gmina's document management (EZD): DocumentSink plugins.

A sink receives an export package: the signed document as filed, the content its signature covers, the
sealed receipt, the attachments and a metadata file (``metadane.xml``, schema ``schemas/eksport-1.xsd``)
listing every file with its SHA-256. The built-in ``file_drop`` sink writes the package as a directory
that the document-management system imports (the usual "katalog wymiany" integration); e-Doręczenia and
EZD RP's API can be added as further DocumentSink plugins.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from lxml import etree
from pydantic import BaseModel, ConfigDict, field_validator

from platforma.core.jobs import job_handler
from platforma.core.registry import CheckResult, Plugin, registry
from platforma.core.runtime import Runtime
from platforma.episma import rules

EXPORT_NAMESPACE = "urn:platforma:eksport:1"
EXPORT_XSD = Path(__file__).with_name("schemas") / "eksport-1.xsd"
#: attempts before an export is marked failed (a clerk may forward it again)
MAX_ATTEMPTS = 8


class SinkError(RuntimeError):
    """The sink could not take the package now (Polish message); the export is tried again later."""


@dataclass(frozen=True)
class PackageFile:
    #: the path inside the package, e.g. "dokument.xml" or "zalaczniki/01-wniosek.pdf"
    path: str
    role: str
    content_type: str
    sha256: str
    content: bytes


@dataclass(frozen=True)
class ExportPackage:
    #: a name unique to the letter, usable as a file name
    name: str
    metadata: bytes
    files: tuple[PackageFile, ...]


class DocumentSink(Plugin):
    kind = "DocumentSink"

    def deliver(self, package: ExportPackage) -> str:
        """Hand the package over; return the receiving side's reference. Delivering the same package
        again must change nothing and return the same reference. Raise SinkError when it cannot be
        delivered now."""
        raise NotImplementedError


class FileDropOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the exchange directory the document-management system imports from (an absolute path)
    directory: str

    @field_validator("directory")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not Path(v).is_absolute():
            raise ValueError("directory: podaj ścieżkę bezwzględną katalogu wymiany")
        return v


@registry.register
class FileDropSink(DocumentSink):
    """Writes each package as a directory, atomically: a package appears whole or not at all."""

    id = "file_drop"
    name = "Katalog wymiany z systemem EZD (paczka z metadanymi)"
    Options = FileDropOptions

    @property
    def directory(self) -> Path:
        return Path(self.options.directory)

    def check_config(self) -> CheckResult:
        directory = self.directory
        if not directory.is_dir():
            return CheckResult(False, f"katalog {directory} nie istnieje")
        if not os.access(directory, os.W_OK | os.X_OK):
            return CheckResult(False, f"brak prawa zapisu w katalogu {directory}")
        return CheckResult(True, f"paczki trafiają do {directory}")

    def deliver(self, package: ExportPackage) -> str:
        final = self.directory / package.name
        if final.exists():
            if _same_package(final, package):
                return package.name
            raise SinkError(f"w katalogu wymiany jest już inna paczka {package.name}")
        if not self.directory.is_dir():
            raise SinkError(f"katalog wymiany {self.directory} nie istnieje")
        temporary = self.directory / f".{package.name}.{uuid.uuid4().hex}.tmp"
        try:
            temporary.mkdir()
            for item in package.files:
                _write(temporary / item.path, item.content)
            _write(temporary / "metadane.xml", package.metadata)
            _fsync_dir(temporary)
            os.rename(temporary, final)  # atomic on one filesystem: the importer never sees half a package
            _fsync_dir(self.directory)
        except OSError as exc:
            shutil.rmtree(temporary, ignore_errors=True)
            raise SinkError(f"nie udało się zapisać paczki w {self.directory}: {exc.strerror or exc}") from None
        return package.name


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_package(directory: Path, package: ExportPackage) -> bool:
    try:
        if (directory / "metadane.xml").read_bytes() != package.metadata:
            return False
        return all(rules.sha256_hex((directory / f.path).read_bytes()) == f.sha256 for f in package.files)
    except OSError:
        return False


# -- the package ---------------------------------------------------------------------------------------

_EXTENSION = {"application/xml": "xml", "application/pdf": "pdf"}


def build_package(session, runtime: Runtime, letter) -> ExportPackage:
    from platforma.accounts.models import User
    from platforma.episma.models import Department, LetterFile

    files = session.scalars(
        sa.select(LetterFile).where(LetterFile.letter_id == letter.id, LetterFile.reply_id.is_(None))
        .options(sa.orm.undefer(LetterFile.content)).order_by(LetterFile.id)
    ).all()
    if not any(f.role == "receipt" for f in files):
        raise SinkError("pismo nie ma jeszcze UPO; przekazanie nastąpi po jego wydaniu")
    items: list[PackageFile] = []
    number = 0
    for f in files:
        if f.role == "attachment":
            number += 1
            path = f"zalaczniki/{_within_bytes(f'{number:02d}-{f.filename}', 200)}"
        else:
            base = {"signed": "dokument", "content": "tresc", "receipt": "upo"}[f.role]
            path = f"{base}.{_EXTENSION.get(f.content_type, 'bin')}"
        items.append(PackageFile(path, f.role, f.content_type, f.sha256, f.content))
    author = session.get(User, letter.author_id)
    department = session.get(Department, letter.department_id) if letter.department_id else None
    metadata = package_metadata(runtime, letter, author, department, items)
    name = f"{_safe(letter.registration_number)}_{letter.document_id}"
    return ExportPackage(name=name, metadata=metadata, files=tuple(items))


def _within_bytes(name: str, limit: int) -> str:
    """The name shortened (keeping its extension) to at most `limit` bytes of UTF-8: file systems count
    bytes (255), and a Polish name of 200 characters may take 400."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = dot + ext if dot and len(ext.encode()) <= 16 else ""
    stem = stem if ext else name
    while len((stem + ext).encode()) > limit:
        stem = stem[:-1]
    return stem + ext


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


def _utc(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def package_metadata(runtime: Runtime, letter, author, department, items: list[PackageFile]) -> bytes:
    def E(name: str, text: Any = None, **attrs: str) -> etree._Element:
        element = etree.Element(f"{{{EXPORT_NAMESPACE}}}{name}", nsmap={"e": EXPORT_NAMESPACE})
        for key, value in attrs.items():
            element.set(key, rules.xml_text(value))
        if text is not None:
            element.text = rules.xml_text(str(text))
        return element

    def add(parent: etree._Element, name: str, text: Any = None, **attrs: str) -> etree._Element:
        child = E(name, text, **attrs)
        parent.append(child)
        return child

    gmina = runtime.settings.gmina
    root = E("Przesylka", wersja="1")
    add(root, "NumerWpisu", letter.registration_number)
    add(root, "CzasPrzyjecia", _utc(letter.received_at))
    add(root, "Identyfikator", letter.document_id)
    add(root, "Tytul", letter.title)
    add(root, "Formularz", kod=letter.form_code, wersja=letter.form_version)
    addressee = add(root, "Adresat")
    add(addressee, "Nazwa", gmina.office_name)
    add(addressee, "TERYT", gmina.teryt)
    sender = add(root, "Nadawca")
    add(sender, "Nazwa", author.full_name)
    add(sender, "Email", author.email)
    if letter.taxpayer_id:
        add(sender, "IdentyfikatorPodatnika", letter.taxpayer_id)
    signature = add(root, "Podpis", rodzaj=letter.signature_kind)
    add(signature, "Format", letter.verification.get("format") or "")
    add(signature, "Podpisujacy", letter.signer_name or "—")
    if letter.signer_pesel:
        add(signature, "PESEL", letter.signer_pesel)
    if letter.signer_nip:
        add(signature, "NIP", letter.signer_nip)
    if letter.signed_at:
        add(signature, "CzasPodpisu", _utc(letter.signed_at))
    if department or letter.file_code or letter.case_reference:
        case = add(root, "Dekretacja")
        if department:
            add(case, "Wydzial", department.name, symbol=department.code)
        if letter.file_code:
            add(case, "SymbolJRWA", letter.file_code)
        if letter.case_reference:
            add(case, "ZnakSprawy", letter.case_reference)
    listing = add(root, "Pliki")
    for item in items:
        add(listing, "Plik", sciezka=item.path, rola=item.role, typ=item.content_type, sha256=item.sha256,
            rozmiar=str(len(item.content)))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    _validate(xml)
    return xml


_schema: etree.XMLSchema | None = None


def _validate(xml: bytes) -> None:
    global _schema
    if _schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _schema = etree.XMLSchema(etree.parse(str(EXPORT_XSD), parser))
    if not _schema.validate(etree.fromstring(xml)):
        raise ValueError(f"metadane paczki niezgodne ze schematem: {_schema.error_log.last_error}")


# -- the job -------------------------------------------------------------------------------------------

@job_handler("episma.export")
def _export_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Deliver one export; a failure is recorded on the export and tried again by the job outbox."""
    from platforma.core.db import transaction, utcnow
    from platforma.episma.models import Letter, LetterExport
    from platforma.episma.operations import add_event

    export_id = payload["export_id"]
    try:
        with transaction(runtime.session_factory) as session:
            export = session.get(LetterExport, export_id)
            if export is None or export.status == "done":
                return
            letter = session.get(Letter, export.letter_id)
            sink = registry.instantiate(export.sink, runtime.settings.plugins.options.get(export.sink, {}))
            reference = sink.deliver(build_package(session, runtime, letter))
            export.status, export.reference, export.done_at, export.last_error = "done", reference, utcnow(), ""
            add_event(session, letter, "export", details={"sink": export.sink, "reference": reference, "done": True})
    except Exception as exc:
        message = str(exc) if isinstance(exc, (SinkError, ValueError, KeyError)) else f"{type(exc).__name__}: {exc}"
        with transaction(runtime.session_factory) as session:
            export = session.get(LetterExport, export_id)
            if export is not None:
                export.attempts += 1
                export.last_error = message[:2000]
                if export.attempts >= MAX_ATTEMPTS:
                    export.status = "failed"
                    return
        raise
