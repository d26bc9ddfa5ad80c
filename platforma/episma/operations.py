"""The verbs of e-pisma: drafts, filing a signed letter, the receipt, the registry office's work, replies.

They take a session and never commit (DESIGN.md, rule 3). Filing stores the letter, its files and its
entry in the register of incoming mail in the caller's transaction, and queues the receipt as a job in
that same transaction: the receipt is issued only after the letter is durably stored, and a filing that
fails half-way leaves no letter, no register number and no receipt.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.orm import Session

from platforma.accounts.models import User
from platforma.core import audit
from platforma.core.db import utcnow
from platforma.core.jobs import enqueue, job_handler
from platforma.core.runtime import Runtime
from platforma.episma import rules
from platforma.episma.models import (
    STATUS_TRANSITIONS,
    Department,
    DraftAttachment,
    FileCode,
    Letter,
    LetterEvent,
    LetterExport,
    LetterFile,
    RegisterCounter,
    Reply,
)
from platforma.taxes.models import Taxpayer

log = logging.getLogger("platforma.episma")

#: the register of incoming mail; one register, numbered from 1 each calendar year
INCOMING_REGISTER = "incoming"
MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The attachment limits in force: the configured ones, lowered where a signed letter carrying its
    attachments in base64 (4/3 of their size) would not fit in one request (server.max_request_mb)."""

    one: int
    total: int
    count: int
    kinds: tuple[str, ...]
    signed_document: int

    @property
    def one_mb(self) -> str:
        return rules.format_size(self.one)

    @property
    def total_mb(self) -> str:
        return rules.format_size(self.total)


def limits(settings) -> Limits:
    configured = settings.episma
    request = settings.server.max_request_mb * MB
    fits = max((request - 256 * 1024) * 3 // 4, 0)
    total = min(configured.max_attachments_mb * MB, fits)
    return Limits(one=min(configured.max_attachment_mb * MB, total), total=total, count=configured.max_attachments,
                  kinds=tuple(configured.allowed_attachments), signed_document=request)


class LetterError(ValueError):
    """A refused request; ``reasons`` are Polish sentences for the resident or the clerk."""

    def __init__(self, *reasons: str):
        self.reasons = [r for r in reasons if r]
        super().__init__(" ".join(self.reasons))


def add_event(session: Session, letter: Letter, kind: str, *, actor: User | None = None, from_status: str | None = None,
              to_status: str | None = None, details: dict[str, Any] | None = None) -> None:
    session.add(LetterEvent(letter_id=letter.id, kind=kind, actor_id=actor.id if actor else None,
                            from_status=from_status, to_status=to_status, details=details or {}))


# -- drafts ----------------------------------------------------------------------------------------

def create_draft(session: Session, *, form_code: str, form_version: str, title: str, author: User,
                 taxpayer_id: int | None, data: dict[str, Any]) -> Letter:
    letter = Letter(document_id=str(uuid.uuid4()), form_code=form_code, form_version=form_version,
                    title=title[:300], author_id=author.id, taxpayer_id=taxpayer_id, status="draft", data=data)
    session.add(letter)
    session.flush()
    return letter


def update_draft(session: Session, letter: Letter, *, title: str, taxpayer_id: int | None, data: dict[str, Any]) -> None:
    _require_draft(letter)
    letter.title = title[:300]
    letter.taxpayer_id = taxpayer_id
    letter.data = data
    letter.updated_at = utcnow()


def delete_draft(session: Session, letter: Letter) -> None:
    _require_draft(letter)
    session.execute(sa.delete(DraftAttachment).where(DraftAttachment.letter_id == letter.id))
    session.delete(letter)


def _require_draft(letter: Letter) -> None:
    if letter.status != "draft":
        raise LetterError("To pismo zostało już złożone i nie można go zmieniać.")


def add_draft_attachment(session: Session, runtime: Runtime, letter: Letter, filename: str,
                         content: bytes) -> DraftAttachment:
    """Check the file (kind, size, count, total) before anything is stored; AttachmentRefused otherwise."""
    _require_draft(letter)
    limit = limits(runtime.settings)
    kind = rules.check_attachment(filename, content, allowed=limit.kinds, max_bytes=limit.one)
    count, total = session.execute(
        sa.select(sa.func.count(DraftAttachment.id), sa.func.coalesce(sa.func.sum(DraftAttachment.size), 0))
        .where(DraftAttachment.letter_id == letter.id)
    ).one()
    if count >= limit.count:
        raise rules.AttachmentRefused(f"Do pisma można dołączyć najwyżej {limit.count} plików.")
    if total + len(content) > limit.total:
        raise rules.AttachmentRefused(
            f"Załączniki pisma mogą mieć łącznie najwyżej {limit.total_mb}; ten plik przekroczyłby limit.")
    attachment = DraftAttachment(letter_id=letter.id, filename=rules.safe_filename(filename),
                                 content_type=kind.content_type, size=len(content), sha256=rules.sha256_hex(content),
                                 content=content)
    session.add(attachment)
    letter.updated_at = utcnow()
    session.flush()
    return attachment


def remove_draft_attachment(session: Session, letter: Letter, attachment_id: int) -> bool:
    _require_draft(letter)
    result = session.execute(sa.delete(DraftAttachment).where(DraftAttachment.id == attachment_id,
                                                              DraftAttachment.letter_id == letter.id))
    letter.updated_at = utcnow()
    return result.rowcount == 1


def draft_attachments(session: Session, letter: Letter, *, with_content: bool = False) -> list[DraftAttachment]:
    query = sa.select(DraftAttachment).where(DraftAttachment.letter_id == letter.id).order_by(DraftAttachment.id)
    if with_content:
        query = query.options(sa.orm.undefer(DraftAttachment.content))
    return list(session.scalars(query))


# -- the document to sign ----------------------------------------------------------------------------

def _party_of_taxpayer(taxpayer: Taxpayer, email: str | None = None):
    from platforma.episma.forms import Party

    return Party(name=taxpayer.display_name, pesel=taxpayer.pesel, nip=taxpayer.nip, regon=taxpayer.regon,
                 street=taxpayer.street, postal_code=taxpayer.postal_code, city=taxpayer.city, email=email, phone=None)


def office_party(settings):
    from platforma.episma.forms import Party

    gmina = settings.gmina
    return Party(name=gmina.office_name, pesel=None, nip=gmina.nip or None, regon=gmina.regon or None,
                 street=gmina.address.street, postal_code=gmina.address.postal_code, city=gmina.address.city,
                 email=gmina.contact.email or None, phone=gmina.contact.phone or None)


def author_party(session: Session, letter: Letter, author: User):
    """The author as the document names them: the taxpayer's record when they file for themself,
    otherwise what they declared in their profile."""
    from platforma.episma.forms import Party

    taxpayer = session.get(Taxpayer, letter.taxpayer_id) if letter.taxpayer_id else None
    own = _own_taxpayer(session, author)
    if own is not None:
        return _party_of_taxpayer(own, author.email)
    if taxpayer is not None and (taxpayer.pesel and taxpayer.pesel == author.declared_pesel):
        return _party_of_taxpayer(taxpayer, author.email)
    return Party(name=author.full_name, pesel=author.declared_pesel, nip=author.declared_nip, regon=None,
                 street="", postal_code="", city="", email=author.email, phone=author.phone or None)


def _own_taxpayer(session: Session, user: User) -> Taxpayer | None:
    from platforma.accounts.models import TaxpayerAccess

    return session.scalars(
        sa.select(Taxpayer).join(TaxpayerAccess, TaxpayerAccess.taxpayer_id == Taxpayer.id)
        .where(TaxpayerAccess.user_id == user.id, TaxpayerAccess.relation == "self", TaxpayerAccess.revoked_at.is_(None))
        .order_by(TaxpayerAccess.id).limit(1)
    ).first()


def document_meta(session: Session, settings, letter: Letter, author: User):
    from platforma.episma.forms import DocumentMeta

    taxpayer = session.get(Taxpayer, letter.taxpayer_id) if letter.taxpayer_id else None
    author_p = author_party(session, letter, author)
    on_behalf = None
    if taxpayer is not None and not (taxpayer.pesel and taxpayer.pesel == author_p.pesel) \
            and not (taxpayer.nip and taxpayer.nip == author_p.nip and not author_p.pesel):
        on_behalf = _party_of_taxpayer(taxpayer)
    return DocumentMeta(identifier=letter.document_id, created_at=letter.updated_at or letter.created_at,
                        title=letter.title, author=author_p, addressee=office_party(settings), taxpayer=on_behalf)


def document_to_sign(session: Session, settings, letter: Letter, author: User) -> bytes:
    """The draft as the XML document the resident signs (the form's CRD structure, attachments inside)."""
    from platforma.episma.forms import Attachment, get_form

    form = get_form(letter.form_code)
    attachments = [Attachment(filename=a.filename, content_type=a.content_type, content=a.content)
                   for a in draft_attachments(session, letter, with_content=True)]
    data = form.complete(session, letter.data, dt.datetime.now(rules.WARSAW).date())
    return form.to_xml(data, document_meta(session, settings, letter, author), attachments)


# -- filing ------------------------------------------------------------------------------------------

@dataclass
class Verified:
    """An upload whose signature was verified and whose letter was read from the signed content."""

    kind: str  # xades or pades
    report: Any  # platforma.esign.verify.VerificationReport
    parsed: Any | None  # ParsedLetter; None for a free-form signed PDF (pismo ogólne)
    warnings: list[str] = field(default_factory=list)


def letter_trust_anchors(runtime: Runtime) -> list:
    """The issuers a resident's signature must chain to (``esign.trust_anchors``), read once per change."""
    from platforma.esign.trust import load_trust_anchors

    configured = runtime.settings.esign.trust_anchors
    if not configured:
        return []
    path = Path(configured)
    path = path if path.is_absolute() else runtime.settings.instance_path(str(path))
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    cached = runtime.extras.get("episma.trust")
    if cached is None or cached[0] != (str(path), stamp):
        cached = ((str(path), stamp), load_trust_anchors(path))
        runtime.extras["episma.trust"] = cached
    return cached[1]


def verify_upload(runtime: Runtime, letter: Letter, upload: bytes, *, now: dt.datetime | None = None) -> Verified:
    """Check the signature of an uploaded file and read the letter it carries; LetterError with reasons."""
    from platforma.episma.forms import FormDocumentError, parse_letter
    from platforma.esign.parsing import SignatureError

    max_bytes = limits(runtime.settings).signed_document
    if len(upload) > max_bytes:
        raise LetterError(f"Plik ma {rules.format_size(len(upload))}, a podpisane pismo może mieć najwyżej "
                          f"{rules.format_size(max_bytes)}.")
    anchors = letter_trust_anchors(runtime)
    from platforma.esign.pades import is_pdf as pdf_header

    is_pdf = pdf_header(upload)
    try:
        if is_pdf:
            from platforma.esign.pades import embedded_files, verify_pdf

            report = verify_pdf(upload, trust_anchors=anchors, now=now, max_bytes=max_bytes)
        else:
            from platforma.esign.verify import verify_document

            report = verify_document(upload, trust_anchors=anchors, at=now, max_bytes=max_bytes)
    except SignatureError as exc:
        raise LetterError(f"Nie można odczytać podpisanego dokumentu: {exc}.") from None
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        # a certificate that loads but cannot be read through (e.g. an extension twice)
        log.warning("nieczytelny certyfikat w podpisanym dokumencie: %s", exc)
        raise LetterError("Certyfikat podpisu jest nieczytelny; podpisu nie można sprawdzić.") from None
    if not report.valid:
        raise LetterError("Podpis dokumentu nie został przyjęty.", *report.errors)
    parsed = None
    files: dict[str, bytes] = {}
    try:
        if is_pdf:
            try:
                files = embedded_files(report.signed_content, max_bytes=max_bytes)
            except SignatureError as exc:
                raise LetterError(f"Nie można odczytać załączników podpisanego PDF: {exc}.") from None
            xml = files.get(f"{letter.form_code}.xml")
            if xml is not None:
                parsed = parse_letter(xml)
            elif letter.form_code != "pismo_ogolne":
                raise LetterError("Podpisany PDF nie zawiera danych formularza. Podpisz plik PDF pobrany z tej strony "
                                  "albo plik XML.")
        else:
            parsed = parse_letter(report.signed_content)
    except FormDocumentError as exc:
        raise LetterError(f"Podpisany dokument nie jest poprawnym formularzem: {exc}") from None
    warnings = list(report.warnings)
    try:
        if parsed is not None:
            _check_parsed(runtime, letter, parsed)
            warnings += _signer_warnings(parsed, report)
        else:  # a signed PDF written elsewhere (pismo ogólne): what it carries, and who signed it
            _check_embedded(runtime, files)
            warnings.append(_FREE_PDF_WARNING)
    except rules.AttachmentRefused as exc:
        raise LetterError(str(exc)) from None
    return Verified("pades" if is_pdf else "xades", report, parsed, warnings)


def _check_embedded(runtime: Runtime, files: dict[str, bytes]) -> None:
    """The files a free-form signed PDF carries obey the attachment rules, as attachments of a form do."""
    limit = limits(runtime.settings)
    if len(files) > limit.count or sum(len(c) for c in files.values()) > limit.total:
        raise LetterError(f"Dokument PDF może zawierać najwyżej {limit.count} plików o łącznej wielkości {limit.total_mb}.")
    for name, content in files.items():
        rules.check_attachment(name, content, allowed=limit.kinds, max_bytes=limit.one)


_FREE_PDF_WARNING = ("Pismo to podpisany dokument PDF przygotowany poza platformą: urząd sprawdza, kto go podpisał, "
                     "i czy podpisujący działa we własnym imieniu.")


def _check_parsed(runtime: Runtime, letter: Letter, parsed) -> None:
    if parsed.form.code != letter.form_code:
        raise LetterError(f"Przesłany dokument to inny formularz ({parsed.form.title}) niż to pismo.")
    if parsed.meta.identifier != letter.document_id:
        raise LetterError("Przesłany dokument nie jest tym pismem (ma inny identyfikator). Podpisz plik pobrany z tej "
                          "strony, bez zmian.")
    gmina = runtime.settings.gmina
    addressee = parsed.meta.addressee
    if (gmina.nip and addressee.nip and addressee.nip != gmina.nip) or (not addressee.nip and addressee.name != gmina.office_name):
        raise LetterError(f"Pismo jest zaadresowane do {addressee.name}, a nie do {gmina.office_name}.")
    limit = limits(runtime.settings)
    total = 0
    for attachment in parsed.attachments:
        rules.check_attachment(attachment.filename, attachment.content, allowed=limit.kinds, max_bytes=limit.one)
        total += attachment.size
    if len(parsed.attachments) > limit.count or total > limit.total:
        raise LetterError(f"Pismo może mieć najwyżej {limit.count} załączników o łącznej wielkości {limit.total_mb}.")


def _signer_warnings(parsed, report) -> list[str]:
    signer = report.signer
    if signer is None:
        return []
    people = [p for p in (parsed.meta.author, parsed.meta.taxpayer) if p is not None]
    known = {p.pesel for p in people if p.pesel} | {p.nip for p in people if p.nip}
    theirs = {v for v in (getattr(signer, "pesel", None), getattr(signer, "nip", None)) if v}
    if known and theirs and not (known & theirs):
        return ["Podpisujący nie jest autorem ani podatnikiem wskazanym w piśmie: sprawdź pełnomocnictwo."]
    return []


def next_register_number(session: Session, register: str, year: int) -> int:
    """The next number of the register in the year: no gaps (rolled back with a failed filing), no
    duplicates (the counter's row lock makes concurrent filings take turns)."""
    table = RegisterCounter.__table__
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(register=register, year=year, last=0).on_conflict_do_nothing())
    return session.execute(
        sa.update(table).where(table.c.register == register, table.c.year == year)
        .values(last=table.c.last + 1).returning(table.c.last)
    ).scalar_one()


def file_letter(session: Session, runtime: Runtime, letter: Letter, upload: bytes, filename: str, verified: Verified,
                *, actor: User, on_behalf_of_id: int | None = None, ip: str = "", user_agent: str = "",
                now: dt.datetime | None = None) -> Letter:
    """Store the signed letter, its files and its register entry, and queue its receipt.

    Raises LetterError when the letter is no longer a draft (filed already, e.g. by a second click).
    """
    from platforma.episma.forms import get_form

    now = now or utcnow()
    report, parsed = verified.report, verified.parsed
    files: list[LetterFile] = [
        LetterFile(letter_id=letter.id, role="signed", filename=rules.safe_filename(filename),
                   content_type="application/pdf" if verified.kind == "pades" else "application/xml",
                   size=len(upload), sha256=rules.sha256_hex(upload), content=upload),
        LetterFile(letter_id=letter.id, role="content", filename="tresc.pdf" if verified.kind == "pades" else "tresc.xml",
                   content_type="application/pdf" if verified.kind == "pades" else "application/xml",
                   size=len(report.signed_content), sha256=rules.sha256_hex(report.signed_content),
                   content=report.signed_content),
    ]
    limit = limits(runtime.settings)
    for attachment in parsed.attachments if parsed is not None else ():
        kind = rules.check_attachment(attachment.filename, attachment.content, allowed=limit.kinds, max_bytes=limit.one)
        files.append(LetterFile(letter_id=letter.id, role="attachment", filename=rules.safe_filename(attachment.filename),
                                content_type=kind.content_type, size=attachment.size, sha256=attachment.sha256,
                                content=attachment.content))
    session.add_all(files)
    session.execute(sa.delete(DraftAttachment).where(DraftAttachment.letter_id == letter.id))

    form = get_form(letter.form_code)
    data = dict(parsed.data) if parsed is not None else dict(letter.data)
    # a free-form signed PDF: the title is the resident's label (the signature covers the PDF, the UPO its digest)
    title = parsed.title if parsed is not None else f"{letter.title} (podpisany dokument PDF)"
    duty = form.stamp_duty(session, data, now.astimezone(rules.WARSAW).date()) if form.stamp_duty_setting else None
    signer = report.signer
    year = now.astimezone(rules.WARSAW).year
    # the number is taken last, so that the counter's row lock is held as briefly as possible
    session.flush()
    seq = next_register_number(session, INCOMING_REGISTER, year)
    number = rules.registration_number(runtime.settings.episma.registration_pattern, year, seq)
    verification = report.as_dict() | {"warnings": list(verified.warnings), "kind": verified.kind}
    changed = session.execute(
        sa.update(Letter).where(Letter.id == letter.id, Letter.status == "draft").values(
            status="received", received_at=now, updated_at=now, title=title[:300], data=data,
            signature_kind=verified.kind, document_sha256=files[0].sha256, content_sha256=files[1].sha256,
            verification=verification, signer_name=(signer.name if signer else "")[:300],
            signer_pesel=getattr(signer, "pesel", None), signer_nip=getattr(signer, "nip", None),
            signed_at=report.signed_at, register_year=year, register_seq=seq, registration_number=number,
            stamp_duty=duty,
        ).execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise LetterError("To pismo zostało już złożone.")
    session.refresh(letter)
    add_event(session, letter, "filed", actor=actor, from_status="draft", to_status="received",
              details={"registration_number": number, "sha256": files[0].sha256, "format": report.format})
    audit.record(session, "letter.filed", actor=actor, object_type="letter", object_id=letter.id,
                 taxpayer_id=letter.taxpayer_id, on_behalf_of_id=on_behalf_of_id,
                 details={"registration_number": number, "form": letter.form_code, "sha256": files[0].sha256},
                 ip=ip, user_agent=user_agent)
    enqueue(session, runtime, "episma.issue_receipt", {"letter_id": letter.id})
    return letter


# -- the receipt -------------------------------------------------------------------------------------

def office_seal(runtime: Runtime):
    """The office's seal, read once per runtime (None when none is configured)."""
    from platforma.esign.seal import load_seal

    if "episma.seal" not in runtime.extras:
        runtime.extras["episma.seal"] = load_seal(runtime.settings)
    return runtime.extras["episma.seal"]


def receipt_data(session: Session, runtime: Runtime, letter: Letter) -> rules.ReceiptData:
    gmina = runtime.settings.gmina
    files = session.scalars(sa.select(LetterFile).where(LetterFile.letter_id == letter.id,
                                                        LetterFile.role.in_(("signed", "attachment")))
                            .order_by(LetterFile.id)).all()
    signed = next(f for f in files if f.role == "signed")
    author = session.get(User, letter.author_id)
    return rules.ReceiptData(
        office_name=gmina.office_name, gmina_name=gmina.name, office_nip=gmina.nip, office_regon=gmina.regon,
        teryt=gmina.teryt, office_address=f"{gmina.address.street}, {gmina.address.postal_code} {gmina.address.city}",
        registration_number=letter.registration_number, received_at=letter.received_at,
        document_id=letter.document_id, title=letter.title, form_code=letter.form_code,
        form_version=letter.form_version,
        document=rules.ReceiptFile(signed.filename, signed.size, signed.sha256),
        content_sha256=letter.content_sha256,
        attachments=tuple(rules.ReceiptFile(f.filename, f.size, f.sha256) for f in files if f.role == "attachment"),
        signature_format=letter.verification.get("format") or "",
        signer_name=letter.signer_name or "—", signer_pesel=letter.signer_pesel, signer_nip=letter.signer_nip,
        signed_at=letter.signed_at, sender_name=author.full_name, sender_email=author.email,
    )


def issue_receipt(session: Session, runtime: Runtime, letter_id: int) -> LetterFile | None:
    """Seal the receipt of a stored letter (once); None if it has one already."""
    letter = session.scalars(sa.select(Letter).where(Letter.id == letter_id).with_for_update()).one()
    if letter.status == "draft":
        raise LetterError("Nie wydaje się UPO dla pisma, które nie zostało złożone.")
    if letter.receipt_issued_at is not None:
        return None
    seal = office_seal(runtime)
    if seal is None:
        raise LetterError("Nie skonfigurowano pieczęci urzędu (esign.seal_key, esign.seal_certificate); UPO czeka.")
    xml = rules.receipt_xml(receipt_data(session, runtime, letter))
    sealed = seal.seal(xml)
    receipt = LetterFile(letter_id=letter.id, role="receipt", filename=f"UPO-{_file_safe(letter.registration_number)}.xml",
                         content_type="application/xml", size=len(sealed), sha256=rules.sha256_hex(sealed), content=sealed)
    session.add(receipt)
    letter.receipt_issued_at = utcnow()
    add_event(session, letter, "receipt", details={"sha256": receipt.sha256})
    author = session.get(User, letter.author_id)
    from platforma.core.mail import queue_mail

    queue_mail(session, runtime, to=author.email,
               subject=f"Potwierdzenie złożenia pisma {letter.registration_number}",
               text=(f"Dzień dobry,\n\nurząd otrzymał Twoje pismo „{letter.title}”. Numer wpływu: "
                     f"{letter.registration_number}.\nUrzędowe poświadczenie odbioru (UPO) pobierzesz w serwisie: "
                     f"{runtime.settings.server.base_url}/pisma/{letter.id}\n\n{runtime.settings.gmina.office_name}\n"))
    settings = runtime.settings.episma
    if settings.forward_on_receipt and settings.document_sink:
        request_export(session, runtime, letter, settings.document_sink, actor=None)
    return receipt


def _file_safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


@job_handler("episma.issue_receipt")
def _issue_receipt_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    from platforma.core.db import transaction

    with transaction(runtime.session_factory) as session:
        issue_receipt(session, runtime, payload["letter_id"])


# -- the registry office -------------------------------------------------------------------------------

def assign(session: Session, letter: Letter, *, actor: User, department_id: int, assignee_id: int | None,
           file_code: str | None, case_reference: str, ip: str = "", user_agent: str = "") -> None:
    """Register the letter for handling (dekretacja): department, clerk, JRWA class, case reference."""
    if letter.status == "draft":
        raise LetterError("Wersji roboczej nie można zadekretować.")
    department = session.get(Department, department_id)
    if department is None or not department.active:
        raise LetterError("Wybierz wydział z listy.")
    if file_code:
        code = session.get(FileCode, file_code)
        if code is None or not code.active:
            raise LetterError("Wybierz symbol klasyfikacyjny z wykazu akt.")
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or assignee.role not in ("clerk", "admin") or not assignee.is_active:
            raise LetterError("Wybierz pracownika z listy.")
    before = {"department_id": letter.department_id, "assignee_id": letter.assignee_id, "file_code": letter.file_code,
              "case_reference": letter.case_reference}
    letter.department_id, letter.assignee_id = department_id, assignee_id
    letter.file_code, letter.case_reference = file_code or None, case_reference.strip()[:80]
    after = {"department_id": department_id, "assignee_id": assignee_id, "file_code": file_code or None,
             "case_reference": letter.case_reference}
    from_status = letter.status
    if from_status == "received":
        letter.status = "registered"
    letter.updated_at = utcnow()
    add_event(session, letter, "assigned", actor=actor, from_status=from_status, to_status=letter.status,
              details={"before": before, "after": after})
    audit.record(session, "letter.assigned", actor=actor, object_type="letter", object_id=letter.id,
                 taxpayer_id=letter.taxpayer_id, details=after, ip=ip, user_agent=user_agent)


def change_status(session: Session, letter: Letter, to_status: str, *, actor: User, reason: str = "",
                  ip: str = "", user_agent: str = "") -> None:
    if to_status not in STATUS_TRANSITIONS.get(letter.status, frozenset()) or to_status in ("draft", "received"):
        raise LetterError("Tej zmiany statusu nie można wykonać.")
    if to_status == "closed" and not reason.strip():
        raise LetterError("Podaj powód zakończenia sprawy.")
    from_status = letter.status
    letter.status = to_status
    letter.updated_at = utcnow()
    add_event(session, letter, "status", actor=actor, from_status=from_status, to_status=to_status,
              details={"reason": reason.strip()[:1000]} if reason.strip() else {})
    audit.record(session, "letter.status", actor=actor, object_type="letter", object_id=letter.id,
                 taxpayer_id=letter.taxpayer_id, details={"from": from_status, "to": to_status, "reason": reason[:1000]},
                 ip=ip, user_agent=user_agent)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content: bytes


def send_reply(session: Session, runtime: Runtime, letter: Letter, *, actor: User, title: str, body: str,
               files: list[UploadedFile], document: UploadedFile | None = None, ip: str = "",
               user_agent: str = "") -> Reply:
    """The office's reply, delivered to the author's account with a notice by e-mail: its text, the reply
    document (the caller renders it as a PDF from the text) and the files the clerk attached."""
    if letter.status == "draft":
        raise LetterError("Na wersję roboczą nie można odpowiedzieć.")
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise LetterError("Podaj tytuł i treść odpowiedzi.")
    limit = limits(runtime.settings)
    checked = [(f, rules.check_attachment(f.filename, f.content, allowed=limit.kinds, max_bytes=limit.one))
               for f in files]
    if len(checked) > limit.count or sum(len(f.content) for f in files) > limit.total:
        raise LetterError(f"Odpowiedź może mieć najwyżej {limit.count} załączników o łącznej wielkości {limit.total_mb}.")
    reply = Reply(letter_id=letter.id, author_id=actor.id, title=title[:300], body=body)
    session.add(reply)
    session.flush()
    for upload, kind in checked:
        session.add(LetterFile(letter_id=letter.id, reply_id=reply.id, role="reply_attachment",
                               filename=rules.safe_filename(upload.filename), content_type=kind.content_type,
                               size=len(upload.content), sha256=rules.sha256_hex(upload.content), content=upload.content))
    if document is not None:
        session.add(LetterFile(letter_id=letter.id, reply_id=reply.id, role="reply_document",
                               filename=rules.safe_filename(document.filename), content_type="application/pdf",
                               size=len(document.content), sha256=rules.sha256_hex(document.content),
                               content=document.content))
    from_status = letter.status
    letter.status = "answered"
    letter.updated_at = utcnow()
    add_event(session, letter, "reply", actor=actor, from_status=from_status, to_status="answered",
              details={"reply_id": reply.id, "files": len(checked)})
    audit.record(session, "letter.replied", actor=actor, object_type="letter", object_id=letter.id,
                 taxpayer_id=letter.taxpayer_id, details={"reply_id": reply.id}, ip=ip, user_agent=user_agent)
    author = session.get(User, letter.author_id)
    from platforma.core.mail import queue_mail

    queue_mail(session, runtime, to=author.email, subject=f"Odpowiedź urzędu na pismo {letter.registration_number}",
               text=(f"Dzień dobry,\n\nurząd odpowiedział na Twoje pismo „{letter.title}” "
                     f"({letter.registration_number}). Odpowiedź odbierzesz po zalogowaniu: "
                     f"{runtime.settings.server.base_url}/pisma/{letter.id}\n\n"
                     f"Otwarcie odpowiedzi w serwisie potwierdza jej odbiór.\n\n{runtime.settings.gmina.office_name}\n"))
    return reply


def confirm_reply_read(session: Session, reply: Reply, user: User, *, ip: str = "", user_agent: str = "") -> bool:
    """Record the read confirmation once (the first opening); True when this call recorded it."""
    changed = session.execute(
        sa.update(Reply).where(Reply.id == reply.id, Reply.read_at.is_(None))
        .values(read_at=utcnow(), read_by_id=user.id).execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        return False
    session.refresh(reply)
    letter = session.get(Letter, reply.letter_id)
    add_event(session, letter, "reply_read", actor=user, details={"reply_id": reply.id})
    audit.record(session, "letter.reply_read", actor=user, object_type="reply", object_id=reply.id,
                 taxpayer_id=letter.taxpayer_id, ip=ip, user_agent=user_agent)
    return True


# -- forwarding to document management -----------------------------------------------------------------

def request_export(session: Session, runtime: Runtime, letter: Letter, sink_id: str, *, actor: User | None,
                   ip: str = "", user_agent: str = "") -> LetterExport:
    """Queue the letter's export package for the sink; once per letter and sink (a repeat returns it)."""
    if letter.status == "draft":
        raise LetterError("Wersji roboczej nie można przekazać.")
    existing = session.scalars(sa.select(LetterExport).where(LetterExport.letter_id == letter.id,
                                                              LetterExport.sink == sink_id)).first()
    if existing is not None:
        if existing.status == "failed":
            existing.status = "pending"
            existing.last_error = ""
            existing.attempts = 0
            enqueue(session, runtime, "episma.export", {"export_id": existing.id})
        return existing
    export = LetterExport(letter_id=letter.id, sink=sink_id, requested_by_id=actor.id if actor else None)
    session.add(export)
    session.flush()
    add_event(session, letter, "export", actor=actor, details={"sink": sink_id, "export_id": export.id})
    if actor is not None:
        audit.record(session, "letter.export_requested", actor=actor, object_type="letter", object_id=letter.id,
                     taxpayer_id=letter.taxpayer_id, details={"sink": sink_id}, ip=ip, user_agent=user_agent)
    enqueue(session, runtime, "episma.export", {"export_id": export.id})
    return export


def amount_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
