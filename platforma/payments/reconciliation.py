"""Importing bank statements: every credit is matched to a taxpayer and posted once, or waits for a clerk.

Matching, in order: the individual account the money was paid to; the reference of a gateway payment in
the title (the gateway's payout: already posted when the gateway confirmed it, so not posted again); a
decision number in the title; a PESEL or NIP in the title. What none of these finds goes to the
"unmatched" queue, where a clerk assigns it (audited). The whole file is one transaction: a file whose
balances do not add up, or that cannot be read to its end, changes nothing.

A file a clerk uploads is kept (`StatementImport`) and imported by a job (`queue_import`): a statement of
tens of thousands of entries takes minutes, longer than a web request should wait.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO, Callable, Collection, Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session
from stdnum.pl import nip as stdnum_nip
from stdnum.pl import pesel as stdnum_pesel

from platforma.accounts.models import User
from platforma.core import audit
from platforma.core.csvfile import csv_text
from platforma.core.db import insert_rows, transaction, utcnow
from platforma.core.jobs import enqueue, job_handler
from platforma.core.runtime import Runtime
from platforma.payments.models import IMPORT_ENDED, BankStatement, Payment, StatementImport, StatementLine
from platforma.payments.queries import statement_accounts, virtual_layout
from platforma.payments.rules import VirtualAccountLayout, normalise_nrb
from platforma.payments.statements import Entry, StatementEnd, StatementError, StatementHeader, iter_statement
from platforma.taxes import operations as tax_operations
from platforma.taxes.identifiers import validate_nip, validate_pesel
from platforma.taxes.models import Decision, Liability, LiabilityParty, Taxpayer

log = logging.getLogger(__name__)

_REFERENCE = re.compile(r"\bPF-[0-9A-HJKMNP-TV-Z]{12}\b")
_DIGITS = re.compile(r"(?<!\d)(\d[\d -]{8,14}\d)(?!\d)")
_BATCH = 500
_RESOLVED = "Ta pozycja wyciągu jest już rozliczona."
#: PostgreSQL advisory lock: one import at a time, so that a second import of the same statement waits
#: for the first to commit and then finds it imported (instead of failing on its unique key)
_IMPORT_LOCK = 0x706C_6677


class ImportRefused(ValueError):
    """The statement was not imported; the message (Polish) says why, and nothing was stored."""


@dataclass
class ImportResult:
    statements: int = 0
    entries: int = 0
    matched: int = 0
    gateway: int = 0
    unmatched: int = 0
    debits: int = 0
    posted_total: Decimal = Decimal("0")
    unmatched_total: Decimal = Decimal("0")
    already_imported: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"statements": self.statements, "entries": self.entries, "matched": self.matched,
                "gateway": self.gateway, "unmatched": self.unmatched, "debits": self.debits,
                "posted_total": str(self.posted_total), "unmatched_total": str(self.unmatched_total),
                "already_imported": self.already_imported}


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def import_statement(
    session: Session,
    source: bytes | BinaryIO,
    *,
    file_name: str,
    layout: VirtualAccountLayout | None,
    accounts: Collection[str] | None = None,
    imported_by_id: int | None = None,
    max_bytes: int = 100 * 1024 * 1024,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import every statement in the file. Raises ImportRefused (the caller rolls back) for a file that
    cannot be read, whose balances do not add up, or that is the statement of an account other than
    `accounts` (the gmina's accounts for taxes and fees, `queries.statement_accounts`; None: any). A
    statement already imported (same account and statement id) is skipped whole: importing a file
    twice changes nothing. `progress` is told the
    number of entries stored so far after each batch."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_IMPORT_LOCK)))
    else:
        # SQLite reads outside a transaction until the first write: writing first takes the write lock,
        # so what is read next (is this statement imported?) is what other imports committed
        session.execute(sa.update(BankStatement).where(sa.false()).values(id=BankStatement.id)
                        .execution_options(synchronize_session=False))
    digest = hashlib.sha256()
    if isinstance(source, bytes):
        digest.update(source)
        stream: bytes | BinaryIO = source
    else:
        stream = _Hashing(source, digest)
    result = ImportResult()
    matcher = Matcher(session, layout)
    statement: BankStatement | None = None
    skipping = False
    pending: list[Entry] = []
    try:
        for item in iter_statement(stream, max_bytes=max_bytes):
            if isinstance(item, StatementHeader):
                _check_header(item, accounts, layout)
                skipping = session.scalar(sa.select(BankStatement.id).where(
                    BankStatement.account == item.account, BankStatement.statement_id == item.statement_id)) is not None
                if skipping:
                    result.already_imported.append(item.statement_id)
                    statement = None
                    continue
                statement = BankStatement(
                    account=item.account, statement_id=item.statement_id, currency=item.currency, opening=item.opening,
                    closing=item.closing if item.closing is not None else item.opening, opening_date=item.opening_date,
                    file_sha256="", file_name=file_name[:255], format="", imported_by_id=imported_by_id)
                session.add(statement)
                session.flush()
                result.statements += 1
            elif isinstance(item, Entry):
                if skipping or statement is None:
                    continue
                _check_amount(item.amount, f"wyciąg {statement.statement_id[:40]}, pozycja {item.sequence}")
                result.entries += 1
                pending.append(item)
                if len(pending) >= _BATCH:
                    _settle(session, matcher, statement.id, pending, result)
                    pending = []
                    if progress is not None:
                        progress(result.entries)
            elif isinstance(item, StatementEnd):
                if statement is not None:
                    _check_amount(item.closing, f"wyciąg {statement.statement_id[:40]}, saldo zamknięcia")
                if pending and statement is not None:
                    _settle(session, matcher, statement.id, pending, result)
                pending = []
                if statement is not None:
                    statement.closing = item.closing
                    statement.closing_date = item.closing_date
                    statement.entries = session.scalar(sa.select(sa.func.count()).select_from(StatementLine)
                                                       .where(StatementLine.statement_id == statement.id)) or 0
                    statement.credits_total = session.scalar(
                        sa.select(sa.func.coalesce(sa.func.sum(StatementLine.amount), 0))
                        .where(StatementLine.statement_id == statement.id, StatementLine.credit.is_(True))) or Decimal("0")
                statement, skipping = None, False
    except StatementError as exc:
        raise ImportRefused(str(exc)) from None
    session.flush()
    sha = digest.hexdigest()
    session.execute(sa.update(BankStatement).where(BankStatement.file_sha256 == "").values(file_sha256=sha)
                    .execution_options(synchronize_session=False))
    return result


def _check_header(header: StatementHeader, accounts: Collection[str] | None, layout: VirtualAccountLayout | None) -> None:
    """What is stored of a statement's header fits its columns, and the statement is one of the
    gmina's accounts for taxes and fees (or one of its individual accounts, where a bank makes a
    statement of each): the credits of another account (the stamp duty's, another gmina's, the
    office's own) are not payments of these taxpayers, whatever their titles say."""
    if not header.account or len(header.account) > 34:
        raise StatementError(f"wyciąg {header.statement_id[:40]}: numer rachunku „{header.account[:40]}” nie jest "
                             "numerem rachunku (NRB albo IBAN, najwyżej 34 znaki)")
    account = normalise_nrb(header.account)
    if accounts is not None and account not in accounts and (layout is None or layout.taxpayer_for(account) is None):
        raise StatementError(
            f"wyciąg {header.statement_id[:40]} jest wyciągiem rachunku {header.account[:34]}, który nie jest "
            "rachunkiem podatków i opłat gminy (gmina.bank_accounts w pliku konfiguracyjnym)")
    if len(header.statement_id) > 80:
        raise StatementError(f"identyfikator wyciągu „{header.statement_id[:40]}…” jest dłuższy niż 80 znaków")
    if not re.fullmatch(r"[A-Z]{3}", header.currency):
        raise StatementError(f"wyciąg {header.statement_id[:40]}: waluta „{header.currency[:10]}” nie jest kodem ISO 4217")
    if header.currency != "PLN":
        # the ledger is in złoty (ADR 1): 100 EUR on a statement is not 100 zł paid
        raise StatementError(f"wyciąg {header.statement_id[:40]}: rachunek jest prowadzony w walucie {header.currency}, "
                             "a podatki i opłaty księguje się w złotych (PLN)")
    _check_amount(header.opening, f"wyciąg {header.statement_id[:40]}, saldo otwarcia")
    if header.closing is not None:
        _check_amount(header.closing, f"wyciąg {header.statement_id[:40]}, saldo zamknięcia")


#: the largest amount (in złoty) a statement may carry: ten trillion, far above any gmina's account and
#: far below what the ledger's integer grosze can hold
_LARGEST = Decimal("9999999999999.99")


def _check_amount(amount: Decimal, where: str) -> None:
    """Amounts are kept in whole grosze: an amount with a fraction of a grosz, or beyond any account's
    scale, is refused rather than rounded or overflowing."""
    if amount % Decimal("0.01") != 0:
        raise StatementError(f"{where}: kwota {amount} ma ułamek grosza (więcej niż dwa miejsca po przecinku)")
    if abs(amount) > _LARGEST:
        raise StatementError(f"{where}: kwota {amount} przekracza dopuszczalną wielkość")


def queue_import(session: Session, runtime: Runtime, data: bytes, *, file_name: str, clerk,
                 ip: str = "", user_agent: str = "") -> StatementImport:
    """Keep an uploaded statement file and queue its import (audited)."""
    upload = StatementImport(file_name=file_name[:255], file_sha256=file_digest(data), size_bytes=len(data),
                             content=data, uploaded_by_id=clerk.id, status="queued", message="")
    session.add(upload)
    session.flush()
    audit.record(session, "payments.statement_uploaded", actor=clerk, object_type="statement_import",
                 object_id=upload.id, details={"file_name": upload.file_name, "sha256": upload.file_sha256,
                                               "bytes": len(data)}, ip=ip, user_agent=user_agent)
    enqueue(session, runtime, "payments.import_statement", {"import_id": upload.id})
    return upload


@job_handler("payments.import_statement", long=True)
def _import_job(runtime: Runtime, payload: dict) -> None:
    """Import an uploaded file in one transaction and record how it ended. A refusal is final (the file
    will not become readable); any other error is recorded and raised, and the job outbox tries again."""
    import_id = payload["import_id"]
    with transaction(runtime.session_factory) as session:
        upload = session.get(StatementImport, import_id)
        if upload is None or upload.status in IMPORT_ENDED:
            return
        upload.status, upload.started_at, upload.message, upload.entries_done = "importing", utcnow(), "", 0
    try:
        with transaction(runtime.session_factory) as session, _ProgressWriter(runtime, import_id) as progress:
            upload = session.get(StatementImport, import_id, options=[sa.orm.undefer(StatementImport.content)])
            result = import_statement(session, upload.content, file_name=upload.file_name,
                                      layout=virtual_layout(runtime.settings),
                                      accounts=statement_accounts(runtime.settings), imported_by_id=upload.uploaded_by_id,
                                      progress=progress)
            upload.status, upload.result, upload.finished_at = "done", result.as_dict(), utcnow()
            upload.entries_done = result.entries
            clerk = session.get(User, upload.uploaded_by_id) if upload.uploaded_by_id else None
            audit.record(session, "payments.statement_imported", actor=clerk, object_type="statement_import",
                         object_id=upload.id, details={**result.as_dict(), "sha256": upload.file_sha256})
    except ImportRefused as exc:
        _import_ended(runtime, import_id, "refused", str(exc))
    except Exception as exc:
        _import_ended(runtime, import_id, "failed", f"{type(exc).__name__}: {exc}")
        raise


def forget_uploaded_files(session: Session, *, uploaded_before: dt.datetime) -> int:
    """Drop the content of uploaded files imported or refused before a moment; what was imported stays in
    the statements and their lines, and the upload keeps its name, size, SHA-256 and result. Returns how
    many files were dropped. Files still queued, importing or failed are kept: they are still needed."""
    return session.execute(
        sa.update(StatementImport)
        .where(StatementImport.status.in_(IMPORT_ENDED), StatementImport.uploaded_at < uploaded_before,
               sa.func.length(StatementImport.content) > 0)
        .values(content=b"").execution_options(synchronize_session=False)).rowcount


class _ProgressWriter:
    """Writes how many entries an import has stored so far, every few seconds, on a connection of its
    own outside the import's transaction, so that the import's page can show it. PostgreSQL only:
    SQLite has one writer at a time, and that is the import."""

    EVERY_SECONDS = 2.0

    def __init__(self, runtime: Runtime, import_id: int) -> None:
        self.engine, self.import_id = runtime.engine, import_id
        self.connection: sa.Connection | None = None
        self.last = 0.0

    def __enter__(self) -> Callable[[int], None] | None:
        if self.engine.dialect.name != "postgresql":
            return None
        self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self

    def __call__(self, entries: int) -> None:
        now = time.monotonic()
        if now - self.last < self.EVERY_SECONDS:
            return
        self.last = now
        try:
            self.connection.execute(sa.update(StatementImport).where(StatementImport.id == self.import_id)
                                    .values(entries_done=entries))
        except sa.exc.DBAPIError as exc:  # the page shows less progress; the import goes on
            log.warning("wczytanie wyciągu %s: nie zapisano postępu: %s", self.import_id, exc)

    def __exit__(self, *exc_info) -> None:
        if self.connection is not None:
            self.connection.close()


def _import_ended(runtime: Runtime, import_id: int, status: str, message: str) -> None:
    with transaction(runtime.session_factory) as session:
        upload = session.get(StatementImport, import_id)
        upload.status, upload.message, upload.finished_at = status, message[:2000], utcnow()


class _Hashing:
    """A file object that hashes what is read through it."""

    def __init__(self, inner: BinaryIO, digest) -> None:
        self.inner, self.digest = inner, digest

    def read(self, size: int = -1) -> bytes:
        chunk = self.inner.read(size)
        self.digest.update(chunk)
        return chunk

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _settle(session: Session, matcher: Matcher, statement_id: int, batch: list[Entry], result: ImportResult) -> None:
    """Match a batch of entries (a few queries for the whole batch), store them, post the matched ones
    with `post_payments_batch`: the same postings as `post_line` line by line, in a few queries."""
    matches = matcher.match(batch)
    lines = []
    sent_back: list[tuple[int, dt.date, int]] = []
    for entry, match in zip(batch, matches):
        line = {
            "statement_id": statement_id, "sequence": entry.sequence, "booking_date": entry.booking_date,
            "value_date": entry.value_date, "amount": entry.amount, "credit": entry.credit,
            "counterparty": entry.counterparty[:300], "counterparty_account": entry.counterparty_account[:34],
            "title": entry.title[:500], "account_credited": entry.account_credited[:34],
            "bank_reference": entry.bank_reference[:80], "status": "unmatched", "matched_by": "", "taxpayer_id": None,
            "payment_id": None, "payment_ref": None, "resolved_by_id": None, "resolved_at": None, "note": ""}
        if not entry.credit:
            line["status"] = "debit"
            result.debits += 1
            if match.sends_back is not None:
                line["note"] = f"zwrot wpłaty z pozycji wyciągu nr {match.sends_back}"
                sent_back.append((match.sends_back, entry.booking_date, entry.sequence))
        elif match.payment_id is not None:
            line.update(status="gateway", matched_by="payment", payment_id=match.payment_id, taxpayer_id=match.taxpayer_id)
            result.gateway += 1
        elif match.taxpayer_id is not None:
            line.update(status="matched", matched_by=match.how, taxpayer_id=match.taxpayer_id)
            result.matched += 1
            result.posted_total += entry.amount
        else:
            line.update(status="unmatched", note=match.note)
            result.unmatched += 1
            result.unmatched_total += entry.amount
        lines.append(line)
    insert_rows(session, StatementLine.__table__, lines)
    for line_id, day, sequence in sent_back:
        # the bank's debit of a return closes it, as a clerk's "Odesłano" would
        _sent_back(session, line_id, day, debit={"statement": statement_id, "sequence": sequence})
    matched = [line for line in lines if line["status"] == "matched"]
    if not matched:
        return
    # a matched line's posting reference is "W" + its id (as `post_line` sets it)
    first, last = batch[0].sequence, batch[-1].sequence
    in_batch = sa.and_(StatementLine.statement_id == statement_id, StatementLine.sequence.between(first, last))
    ids = dict(session.execute(sa.select(StatementLine.sequence, StatementLine.id).where(
        in_batch, StatementLine.status == "matched")).all())
    session.execute(sa.update(StatementLine).where(in_batch, StatementLine.status == "matched")
                    .values(payment_ref=sa.literal("W") + sa.cast(StatementLine.id, sa.String))
                    .execution_options(synchronize_session=False))
    tax_operations.post_payments_batch(session, [
        tax_operations.PaymentToPost(
            taxpayer_id=line["taxpayer_id"], amount=line["amount"], paid_on=line["value_date"] or line["booking_date"],
            payment_ref=f"W{ids[line['sequence']]}", source="bank", origin="system")
        for line in matched])


def post_line(session: Session, line: StatementLine, *, created_by_id: int | None = None, reason: str = "") -> None:
    """Post a statement credit to its taxpayer's account, dated by art. 60 §1 OP: the day the bank
    debited the payer's account is not on a statement, the day our account was credited is; the
    bank's value date (else its booking date) stands for it."""
    line.payment_ref = f"W{line.id}"
    tax_operations.post_payment(
        session, taxpayer_id=line.taxpayer_id, amount=line.amount, paid_on=line.value_date or line.booking_date,
        payment_ref=line.payment_ref, source="bank", origin="manual" if created_by_id else "system",
        created_by_id=created_by_id, reason=reason)


@dataclass(frozen=True)
class Match:
    taxpayer_id: int | None = None
    how: str = ""
    payment_id: int | None = None
    note: str = ""
    #: a debit: the credit marked for return that it sends back
    sends_back: int | None = None


class Matcher:
    def __init__(self, session: Session, layout: VirtualAccountLayout | None):
        self.session, self.layout = session, layout
        self._decision_sources: list[str] | None = None

    def match(self, entries: list[Entry]) -> list[Match]:
        credits = [e for e in entries if e.credit]
        by_account = self._by_account(credits)
        by_reference = self._by_reference(credits)
        by_decision = self._by_decision(credits)
        by_identifier = self._by_identifier(credits)
        returns = self._returns([e for e in entries if not e.credit])
        out = []
        for entry in entries:
            if not entry.credit:
                out.append(Match(sends_back=returns.get(entry.sequence)))
                continue
            taxpayer = by_account.get(entry.account_credited)
            if taxpayer is not None:
                out.append(Match(taxpayer, "account"))
                continue
            payment = next((by_reference[r] for r in _REFERENCE.findall(entry.title) if r in by_reference), None)
            if payment is not None:
                if payment[2] == "confirmed":
                    out.append(Match(payment[1], "payment", payment[0]))
                else:
                    out.append(Match(note=f"tytuł wskazuje płatność online {payment[3]}, której operator nie potwierdził"))
                continue
            found = self._first(entry.title, by_decision, by_identifier)
            out.append(found or Match(note="nie rozpoznano rachunku, decyzji ani identyfikatora płatnika"))
        return out

    def _first(self, title: str, by_decision: dict[str, int | None], by_identifier: dict[str, int | None]) -> Match | None:
        for token in _tokens(title):
            if token in by_decision and by_decision[token] is not None:
                return Match(by_decision[token], "decision")
        for kind, value in _identifiers(title):
            taxpayer = by_identifier.get(value)
            if taxpayer is not None:
                return Match(taxpayer, kind)
        return None

    def _returns(self, debits: list[Entry]) -> dict[int, int]:
        """A debit's sequence -> the credit marked for return and not yet sent back that it sends back:
        the same amount to the account it came from (the oldest such credit first)."""
        wanted = {e.counterparty_account[:34] for e in debits if e.counterparty_account}
        if not wanted:
            return {}
        waiting: dict[tuple[str, Decimal], list[int]] = {}
        for line_id, account, amount in self.session.execute(
            sa.select(StatementLine.id, StatementLine.counterparty_account, StatementLine.amount)
            .where(TO_SEND_BACK, StatementLine.counterparty_account.in_(wanted))
            .order_by(StatementLine.id)
        ):
            waiting.setdefault((account, amount), []).append(line_id)
        out = {}
        for entry in debits:
            candidates = waiting.get((entry.counterparty_account[:34], entry.amount))
            if candidates:
                out[entry.sequence] = candidates.pop(0)
        return out

    def _by_account(self, credits: list[Entry]) -> dict[str, int]:
        if self.layout is None:
            return {}
        wanted: dict[str, int] = {}
        for entry in credits:
            if entry.account_credited:
                taxpayer_id = self.layout.taxpayer_for(entry.account_credited)
                if taxpayer_id is not None:
                    wanted[entry.account_credited] = taxpayer_id
        if not wanted:
            return {}
        existing = set(self.session.scalars(sa.select(Taxpayer.id).where(Taxpayer.id.in_(set(wanted.values())))))
        return {nrb: tid for nrb, tid in wanted.items() if tid in existing}

    def _by_reference(self, credits: list[Entry]) -> dict[str, tuple[int, int, str, str]]:
        refs = {r for e in credits for r in _REFERENCE.findall(e.title)}
        if not refs:
            return {}
        return {row.reference: (row.id, row.taxpayer_id, row.state, row.reference) for row in self.session.execute(
            sa.select(Payment.id, Payment.taxpayer_id, Payment.state, Payment.reference).where(Payment.reference.in_(refs)))}

    def _by_decision(self, credits: list[Entry]) -> dict[str, int | None]:
        tokens = {t for e in credits if not e.account_credited or self.layout is None for t in _tokens(e.title)}
        if not tokens:
            return {}
        if self._decision_sources is None:
            # decisions are unique (and indexed) by (source, number), not by number alone: naming the
            # sources lets the database use that index instead of reading every decision per batch
            # (found one index probe at a time: DISTINCT would read them all)
            self._decision_sources = []
            source = self.session.scalar(sa.select(sa.func.min(Decision.source)))
            while source is not None:
                self._decision_sources.append(source)
                source = self.session.scalar(sa.select(sa.func.min(Decision.source)).where(Decision.source > source))
        found: dict[str, set[int]] = {}
        for number, taxpayer_id in self.session.execute(
            sa.select(Decision.number, LiabilityParty.taxpayer_id)
            .join(Liability, Liability.decision_id == Decision.id)
            .join(LiabilityParty, LiabilityParty.liability_id == Liability.id)
            .where(Decision.source.in_(self._decision_sources), Decision.number.in_(tokens),
                   LiabilityParty.role == "principal")
        ):
            found.setdefault(number, set()).add(taxpayer_id)
        # a decision with more than one principal payer cannot say who paid
        return {number: (ids.pop() if len(ids) == 1 else None) for number, ids in found.items()}

    def _by_identifier(self, credits: list[Entry]) -> dict[str, int | None]:
        pesels, nips = set(), set()
        for entry in credits:
            for kind, value in _identifiers(entry.title):
                (pesels if kind == "pesel" else nips).add(value)
        out: dict[str, int | None] = {}
        if pesels:
            out.update({p: tid for tid, p in self.session.execute(
                sa.select(Taxpayer.id, Taxpayer.pesel).where(Taxpayer.pesel.in_(pesels)))})
        if nips:
            seen: dict[str, set[int]] = {}
            for tid, n in self.session.execute(sa.select(Taxpayer.id, Taxpayer.nip).where(Taxpayer.nip.in_(nips))):
                seen.setdefault(n, set()).add(tid)
            out.update({n: (ids.pop() if len(ids) == 1 else None) for n, ids in seen.items()})
        return out


def _tokens(title: str) -> list[str]:
    """Words of a title that could be a decision number ("FN.3120.15.2026", "ON/12/2026")."""
    return [t.strip(".,;:()") for t in re.split(r"\s+", title) if any(c.isdigit() for c in t) and len(t) >= 4][:20]


def _identifiers(title: str) -> Iterable[tuple[str, str]]:
    for raw in _DIGITS.findall(title):
        digits = re.sub(r"\D", "", raw)
        if len(digits) == 11 and stdnum_pesel.is_valid(digits):
            yield "pesel", digits
        elif len(digits) == 10 and stdnum_nip.is_valid(digits):
            yield "nip", digits


def taxpayer_for(session: Session, given: str) -> Taxpayer:
    """The taxpayer a clerk names by PESEL (11 digits), NIP (10) or the taxpayer's number."""
    digits = re.sub(r"[\s-]", "", given)
    if not digits.isdigit():
        raise ImportRefused("PESEL, NIP i numer podatnika to cyfry.")
    try:
        if len(digits) == 11:
            found = list(session.scalars(sa.select(Taxpayer).where(Taxpayer.pesel == validate_pesel(digits))))
        elif len(digits) == 10:
            found = list(session.scalars(sa.select(Taxpayer).where(Taxpayer.nip == validate_nip(digits))))
        else:
            numbered = session.get(Taxpayer, int(digits)) if len(digits) <= 9 else None
            found = [numbered] if numbered is not None else []
    except ValueError as exc:  # a PESEL's or a NIP's check digit
        raise ImportRefused(f"{exc}.") from None
    if not found:
        raise ImportRefused(f"Nie ma podatnika o numerze {_NAMED_BY.get(len(digits), '')}{digits}.")
    if len(found) > 1:
        raise ImportRefused(f"Numer NIP {digits} ma {len(found)} podatników: podaj numer podatnika.")
    return found[0]


_NAMED_BY = {11: "PESEL ", 10: "NIP "}


def assign_line(session: Session, line: StatementLine, taxpayer_id: int, *, clerk, reason: str,
                ip: str = "", user_agent: str = "") -> None:
    """A clerk assigns an unmatched credit to a taxpayer: posted now, audited."""
    if line.status != "unmatched" or not line.credit:
        raise ImportRefused(_RESOLVED)
    if not reason.strip():
        raise ImportRefused("Podaj, na jakiej podstawie przypisujesz wpłatę.")
    if session.get(Taxpayer, taxpayer_id) is None:
        raise ImportRefused("Nie ma podatnika o tym numerze.")
    _resolve(session, line, "assigned", clerk, reason, matched_by="clerk", taxpayer_id=taxpayer_id)
    post_line(session, line, created_by_id=clerk.id, reason=reason.strip())
    audit.record(session, "payments.statement_line_assigned", actor=clerk, object_type="statement_line",
                 object_id=line.id, taxpayer_id=taxpayer_id,
                 details={"amount": str(line.amount), "reason": reason.strip()[:1000], "payment_ref": line.payment_ref},
                 ip=ip, user_agent=user_agent)


def mark_returned(session: Session, line: StatementLine, *, clerk, reason: str, ip: str = "",
                  user_agent: str = "") -> None:
    """A credit that belongs to no taxpayer of the gmina: to be sent back (audited, nothing posted)."""
    if line.status != "unmatched" or not line.credit:
        raise ImportRefused(_RESOLVED)
    if not reason.strip():
        raise ImportRefused("Podaj, dlaczego wpłata ma zostać zwrócona.")
    _resolve(session, line, "returned", clerk, reason)
    audit.record(session, "payments.statement_line_returned", actor=clerk, object_type="statement_line",
                 object_id=line.id, details={"amount": str(line.amount), "reason": reason.strip()[:1000]},
                 ip=ip, user_agent=user_agent)


def mark_payout(session: Session, line: StatementLine, *, clerk, gateway_name: str, reason: str, ip: str = "",
                user_agent: str = "") -> None:
    """A credit that is a gateway's payout of payments posted when the gateway confirmed them
    (Przelewy24, PayU and others pay a day's payments out in one transfer, under a title of their
    own): nothing is posted again (audited)."""
    if line.status != "unmatched" or not line.credit:
        raise ImportRefused(_RESOLVED)
    if not reason.strip():
        raise ImportRefused("Podaj, którą wypłatę operatora rozpoznajesz w tej pozycji.")
    _resolve(session, line, "gateway", clerk, f"{gateway_name}: {reason.strip()}", matched_by="clerk")
    audit.record(session, "payments.statement_line_payout", actor=clerk, object_type="statement_line",
                 object_id=line.id, details={"amount": str(line.amount), "gateway": gateway_name,
                                             "reason": reason.strip()[:1000]},
                 ip=ip, user_agent=user_agent)


#: more taxpayers than this paid for from one account: a shared one (a family's, a bookkeeper's)
_SHARED_ACCOUNT = 2


def suggestions(session: Session, line: StatementLine, limit: int = 5) -> list[tuple[Taxpayer, str]]:
    """Whom an unmatched credit may be from, for the clerk, with why: "account", the taxpayer (or two)
    earlier credits from the same payer's account went to (posted by an import or a clerk); "name",
    the residents whose first and last names are both among the words of the payer's name (banks put
    the address there too); "shared", the taxpayers of an account that paid for more than two, after
    the names."""
    by_account: list[int] = []
    if line.counterparty_account:
        for taxpayer_id in session.scalars(
            sa.select(StatementLine.taxpayer_id)
            .where(StatementLine.counterparty_account == line.counterparty_account, StatementLine.id != line.id,
                   StatementLine.status.in_(("matched", "assigned")))
            .order_by(StatementLine.id.desc()).limit(50)
        ):
            if taxpayer_id not in by_account:
                by_account.append(taxpayer_id)
    words = sorted({word.lower() for word in re.findall(r"[^\W\d_]{2,}", line.counterparty)})
    by_name = list(session.scalars(
        sa.select(Taxpayer.id)
        .where(Taxpayer.kind == "natural", sa.func.lower(Taxpayer.last_name).in_(words),
               sa.func.lower(Taxpayer.first_name).in_(words))
        .order_by(Taxpayer.id).limit(limit))) if words else []
    if len(by_account) > _SHARED_ACCOUNT:
        ranked = [(t, "name") for t in by_name] + [(t, "shared") for t in by_account]
    else:
        ranked = [(t, "account") for t in by_account] + [(t, "name") for t in by_name]
    why: dict[int, str] = {}
    for taxpayer_id, reason in ranked:
        why.setdefault(taxpayer_id, reason)
    chosen = list(why)[:limit]
    found = {t.id: t for t in session.scalars(sa.select(Taxpayer).where(Taxpayer.id.in_(chosen)))} if chosen else {}
    return [(found[taxpayer_id], why[taxpayer_id]) for taxpayer_id in chosen if taxpayer_id in found]


def gateway_days(session: Session, *, until: dt.date, days: int = 7) -> list[sa.Row]:
    """Online payments confirmed per day of payment and gateway, for `days` days up to `until`
    (payment_day, gateway, count, total), newest first: what a gateway's payout on a statement
    should add up to (less the gateway's commission, where it keeps one)."""
    return list(session.execute(
        sa.select(Payment.paid_on, Payment.gateway, sa.func.count(Payment.id), sa.func.sum(Payment.amount))
        .where(Payment.paid_on.between(until - dt.timedelta(days=days), until), Payment.state == "confirmed")
        .group_by(Payment.paid_on, Payment.gateway).order_by(Payment.paid_on.desc(), Payment.gateway)))


#: a credit marked for return that the treasury has not sent back yet
TO_SEND_BACK = sa.and_(StatementLine.status == "returned", StatementLine.sent_back_on.is_(None))


def mark_sent_back(session: Session, line_id: int, *, clerk, day: dt.date, ip: str = "", user_agent: str = "") -> None:
    """A clerk's word that a credit marked for return has been transferred back."""
    if not _sent_back(session, line_id, day, actor=clerk, ip=ip, user_agent=user_agent):
        raise ImportRefused("Tej wpłaty nie ma na liście do odesłania: ktoś już ją odesłał albo nie była do zwrotu.")


def _sent_back(session: Session, line_id: int, day: dt.date, *, actor=None, debit: dict | None = None, ip: str = "",
               user_agent: str = "") -> bool:
    """Close a credit to send back (by a clerk, or by the bank's `debit` of it): once, by compare-and-set,
    audited. False: it was not waiting to be sent back."""
    sent = session.execute(sa.update(StatementLine).where(StatementLine.id == line_id, TO_SEND_BACK)
                           .values(sent_back_on=day).execution_options(synchronize_session=False)).rowcount
    if sent:
        audit.record(session, "payments.statement_line_sent_back", actor=actor, object_type="statement_line",
                     object_id=line_id, details={"sent_back_on": day.isoformat(), **({"debit": debit} if debit else {})},
                     ip=ip, user_agent=user_agent)
    return bool(sent)


def _resolve(session: Session, line: StatementLine, status: str, clerk, reason: str, **values) -> None:
    """Compare-and-set, as a payment moves: only an unmatched credit is resolved, and only once. Two
    clerks on one line at one moment (one assigns, the other sends it back): the second waits for the
    first to commit, then finds the line resolved and is refused, instead of posting money that is
    also being returned."""
    resolved = session.execute(
        sa.update(StatementLine)
        .where(StatementLine.id == line.id, StatementLine.status == "unmatched", StatementLine.credit.is_(True))
        .values(status=status, resolved_by_id=clerk.id, resolved_at=utcnow(), note=reason.strip()[:1000], **values)
        .execution_options(synchronize_session=False)).rowcount
    if resolved != 1:
        raise ImportRefused(_RESOLVED)
    session.refresh(line)


def daily_report_rows(session: Session, day: dt.date) -> list[dict]:
    """Every payment posted on a day, for the accountant: gateway payments by the day of payment and
    statement credits by their booking date."""
    rows = []
    for p in session.execute(
        sa.select(Payment.reference, Payment.paid_on, Payment.amount, Payment.gateway, Payment.gateway_txn_id,
                  Payment.taxpayer_id, Taxpayer.pesel, Taxpayer.nip)
        .join(Taxpayer, Taxpayer.id == Payment.taxpayer_id)
        .where(Payment.state == "confirmed", Payment.paid_on == day).order_by(Payment.id)
    ):
        rows.append({"source": p.gateway, "reference": p.reference, "day": p.paid_on, "amount": p.amount,
                     "taxpayer_id": p.taxpayer_id, "identifier": p.pesel or p.nip or "", "detail": p.gateway_txn_id or ""})
    for line in session.execute(
        sa.select(StatementLine.payment_ref, StatementLine.booking_date, StatementLine.value_date, StatementLine.amount,
                  StatementLine.taxpayer_id, StatementLine.matched_by, StatementLine.bank_reference, Taxpayer.pesel, Taxpayer.nip)
        .join(Taxpayer, Taxpayer.id == StatementLine.taxpayer_id)
        .where(StatementLine.status.in_(("matched", "assigned")), StatementLine.booking_date == day)
        .order_by(StatementLine.id)
    ):
        rows.append({"source": "bank", "reference": line.payment_ref, "day": line.value_date or line.booking_date,
                     "amount": line.amount, "taxpayer_id": line.taxpayer_id, "identifier": line.pesel or line.nip or "",
                     "detail": f"{line.matched_by} {line.bank_reference}".strip()})
    return rows


def returned_csv(lines: list[StatementLine]) -> str:
    """The credits marked to be sent back: to whom (name, account), how much, and the title of the
    transfer back ("zwrot wpłaty z <day>: <their title>")."""
    return csv_text(
        ["rachunek_wplacajacego", "wplacajacy", "kwota", "tytul_zwrotu", "data_wplaty", "powod"],
        ([line.counterparty_account, line.counterparty, f"{line.amount:.2f}",
          f"zwrot wpłaty z {line.booking_date:%d.%m.%Y}: {line.title}"[:140], line.booking_date.isoformat(), line.note]
         for line in lines))


def report_csv(rows: list[dict]) -> str:
    return csv_text(
        ["zrodlo", "numer", "dzien_zaplaty", "kwota", "podatnik", "pesel_nip", "szczegoly"],
        ([r["source"], r["reference"], r["day"].isoformat(), f"{r['amount']:.2f}", r["taxpayer_id"], r["identifier"],
          r["detail"]] for r in rows))
