"""ISO 20022 camt.053 (statements) and camt.054 (debit/credit notifications), versions 01 to 13.

Streamed with `lxml.etree.iterparse`: no DTD (a DOCTYPE is refused), no entities, no network, default
size limits; every element is cleared once read, so memory stays flat however many entries there are.

A booked entry (Ntry) with one transaction (TxDtls) or none is one Entry with the entry's amount. A batch
entry whose transactions carry amounts in the account's currency is one Entry per transaction, and those
amounts must add up to the entry's; a batch without such amounts stays one Entry whose texts gather its
transactions'. Entries with a status other than BOOK (pending, information) are left out, as the booked
balances leave them out. For a credit the counterparty is the debtor and `account_credited` the creditor
account (the individual account); for a debit the counterparty is the creditor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from collections.abc import Iterator

from lxml import etree

from platforma.payments.statements.common import (
    BoundedReader,
    normalise_account,
    normalise_space,
    pl_amount,
)
from platforma.payments.statements.model import Entry, StatementEnd, StatementError, StatementHeader

_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.(?P<kind>053|054)\.001\.(?P<version>\d{2})")
_MESSAGE = {"053": ("BkToCstmrStmt", "Stmt"), "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
_AMOUNT = re.compile(r"\d{1,18}(\.\d{1,10})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Ustrd pieces this long were cut mid-text (4 x 35 as Polish transfers carry titles; 140 is the maximum)
_USTRD_WIDTHS = (35, 140)
#: how many different names or titles a batch entry without amounts gathers
_MERGE_LIMIT = 20
_OPENING_CODES = ("OPBD", "PRCD")
_CLOSING_CODES = ("CLBD",)


def refuse_dtd(head: bytes) -> None:
    """A camt file has no reason for a DTD: refuse one before the parser sees it."""
    if re.search(rb"<!DOCTYPE|<!ENTITY", head):
        raise StatementError("plik XML zawiera deklarację DOCTYPE albo ENTITY, której wyciąg bankowy nie może mieć")


def iter_camt(reader: BoundedReader) -> Iterator[StatementHeader | Entry | StatementEnd]:
    refuse_dtd(reader.peek(64 * 1024))
    # events only for the elements that structure the file; the rest is read from them with find()
    events = etree.iterparse(
        reader, events=("start", "end"), tag=("{*}Stmt", "{*}Ntfctn", "{*}Ntry", "{*}TxDtls"),
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False,
        attribute_defaults=False, remove_comments=True, remove_pis=True, recover=False)
    reading = _Reader()
    try:
        for event, element in events:
            if event == "start":
                reading.start(element)
            else:
                yield from reading.end(element)
        if not reading.ns:
            reading.check_root(events.root)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else 0)
        message = str(exc.msg or exc).strip()
        if "Premature end" in message or "EndTag" in message or "end of data" in message.lower():
            raise StatementError(f"wiersz {line}: plik XML jest urwany (brak zamknięcia elementów): {message}") from exc
        raise StatementError(f"wiersz {line}: niepoprawny XML: {message}") from exc
    except etree.LxmlError as exc:
        raise StatementError(f"niepoprawny XML: {exc}") from exc
    yield from reading.finish()


# --- the statement level --------------------------------------------------------------------------

@dataclass
class _Statement:
    element: etree._Element
    number: int
    path: str
    line: int
    fields_read: bool = False
    id: str = ""
    sequence: str = ""
    created: date | None = None
    account: str = ""
    currency: str = ""
    opening: tuple[Decimal, date | None, str, int] | None = None
    closing: tuple[Decimal, date | None, str, int] | None = None
    header: StatementHeader | None = None
    header_sent: bool = False
    ntry_count: int = 0
    entries: int = 0
    credits: Decimal = Decimal(0)
    debits: Decimal = Decimal(0)


@dataclass
class _Transaction:
    """What one TxDtls says, read as soon as it ends."""

    amount: Decimal | None
    credit: bool | None
    counterparty: str
    counterparty_account: str
    title: str
    account_credited: str
    reference: str


@dataclass
class _NtryState:
    element: etree._Element
    number: int
    path: str
    line: int
    fields_read: bool = False
    amount: Decimal | None = None
    currency: str = ""
    credit: bool | None = None
    booked: bool = True
    booking_date: date | None = None
    value_date: date | None = None
    reference: str = ""
    entry_reference: str = ""
    additional_info: str = ""
    held: _Transaction | None = None
    transactions: int = 0
    split: bool = False
    split_total: Decimal = Decimal(0)
    merged: list[_Transaction] = field(default_factory=list)


class _Reader:
    def __init__(self) -> None:
        self.ns = ""
        self.kind = ""
        self.statements = 0
        self.statement: _Statement | None = None
        self.ntry: _NtryState | None = None
        self._paths: dict[str, str] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        self._prefix = "{}"

    # paths like "RltdPties/Dbtr/Nm" in the document's namespace
    def q(self, path: str) -> str:
        full = self._paths.get(path)
        if full is None:
            full = self._paths[path] = "/".join(f"{{{self.ns}}}{part}" for part in path.split("/"))
        return full

    def local(self, element: etree._Element) -> str:
        """The element's name without the document's namespace ("" for other namespaces)."""
        tag = element.tag
        prefix = self._prefix
        return tag[len(prefix):] if isinstance(tag, str) and tag.startswith(prefix) else ""

    def at(self, element: etree._Element | None, path: str) -> etree._Element | None:
        """The first element at `path` (child names joined by "/"); walking the children by hand is
        several times faster than find() with a path, and this runs for every entry."""
        tags = self._tags.get(path)
        if tags is None:
            tags = self._tags[path] = tuple(self.q(name) for name in path.split("/"))
        for tag in tags:
            if element is None:
                return None
            for child in element:
                if child.tag == tag:
                    element = child
                    break
            else:
                return None
        return element

    def every(self, element: etree._Element, name: str) -> list[etree._Element]:
        tag = self.q(name)
        return [child for child in element if child.tag == tag]

    def text(self, element: etree._Element | None, path: str) -> str:
        found = self.at(element, path)
        return normalise_space(found.text or "") if found is not None else ""

    def check_root(self, root: etree._Element | None) -> None:
        if root is None:
            raise StatementError("plik XML nie ma elementu głównego")
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            raise StatementError("plik XML zawiera deklarację DOCTYPE, której wyciąg bankowy nie może mieć")
        try:
            qname = etree.QName(root)
        except ValueError:  # a namespace lxml cannot even name (a "}" in it)
            raise StatementError(f"wiersz {root.sourceline}: to nie jest wyciąg camt.053 ani powiadomienie camt.054 "
                                 "(niepoprawna przestrzeń nazw elementu głównego)") from None
        match = _NAMESPACE.fullmatch(qname.namespace or "")
        if qname.localname != "Document" or match is None:
            raise StatementError(
                f"wiersz {root.sourceline}: to nie jest wyciąg camt.053 ani powiadomienie camt.054 "
                f"(element {qname.localname}, przestrzeń nazw „{qname.namespace or ''}”)")
        self.ns, self.kind = qname.namespace or "", match["kind"]
        self._prefix = "{" + self.ns + "}"

    def _misplaced(self, element: etree._Element) -> StatementError:
        return StatementError(
            f"wiersz {element.sourceline}: element {etree.QName(element).localname} w niewłaściwym miejscu")

    def start(self, element: etree._Element) -> None:
        if not self.ns:
            self.check_root(element.getroottree().getroot())
        if element.tag == self.q("TxDtls"):
            return
        parent = element.getparent()
        if element.tag == self.q(_MESSAGE[self.kind][1]):
            grandparent = parent.getparent() if parent is not None else None
            if (parent is None or parent.tag != self.q(_MESSAGE[self.kind][0]) or grandparent is None
                    or grandparent.getparent() is not None or self.statement is not None):
                raise self._misplaced(element)
            self.statements += 1
            name = _MESSAGE[self.kind][1]
            self.statement = _Statement(element=element, number=self.statements, path=f"{name}[{self.statements}]",
                                        line=element.sourceline or 0)
        elif element.tag == self.q("Ntry"):
            statement = self.statement
            if statement is None or parent is not statement.element or self.ntry is not None:
                raise self._misplaced(element)
            self._read_statement(statement)
            statement.ntry_count += 1
            self.ntry = _NtryState(element=element, number=statement.ntry_count, path=f"{statement.path}/Ntry",
                                   line=element.sourceline or 0)


    def end(self, element: etree._Element) -> Iterator[StatementHeader | Entry | StatementEnd]:
        statement, ntry = self.statement, self.ntry
        if element.tag == self.q("TxDtls"):
            holder = element.getparent()
            if (ntry is None or statement is None or holder is None or holder.tag != self.q("NtryDtls")
                    or holder.getparent() is not ntry.element):
                raise self._misplaced(element)
            yield from self._transaction(statement, ntry, element)
            _forget(element)
        elif element.tag == self.q("Ntry"):
            assert statement is not None and ntry is not None
            yield from self._ntry_end(statement, ntry, element)
            self.ntry = None
            _forget(element)
        elif element.tag == self.q(_MESSAGE[self.kind][1]):
            assert statement is not None
            self._read_statement(statement)
            yield from self._statement_end(statement, element)
            self.statement = None
            _forget(element)

    def finish(self) -> Iterator[StatementHeader | Entry | StatementEnd]:
        if self.statements == 0:
            name = _MESSAGE[self.kind][1] if self.kind else "Stmt"
            raise StatementError(f"w pliku nie ma żadnego wyciągu (elementu {name})")
        return iter(())

    def _read_statement(self, statement: _Statement) -> None:
        """The statement's own elements, all before its first entry."""
        if statement.fields_read:
            return
        statement.fields_read = True
        for child in statement.element:
            name = self.local(child)
            if name == "Ntry":
                break
            if name == "Id":
                statement.id = normalise_space(child.text or "")
            elif name == "ElctrncSeqNb":
                statement.sequence = normalise_space(child.text or "")
            elif name == "CreDtTm":
                statement.created = self._date(child, f"{statement.path}/CreDtTm", required=False)
            elif name == "Acct":
                account = self.text(child, "Id/IBAN") or self.text(child, "Id/Othr/Id")
                statement.account = normalise_account(account)
                statement.currency = self.text(child, "Ccy")
            elif name == "Bal":
                self._balance(statement, child)

    def _balance(self, statement: _Statement, element: etree._Element) -> None:
        code = self.text(element, "Tp/CdOrPrtry/Cd")
        if code not in _OPENING_CODES + _CLOSING_CODES:
            return
        path = f"{statement.path}/Bal[{code}]"
        amount, currency = self._amount(self.at(element, "Amt"), f"{path}/Amt", element)
        credit = self._direction(self.at(element, "CdtDbtInd"), f"{path}/CdtDbtInd", element)
        signed = amount if credit else -amount
        day_element = self.at(element, "Dt")
        day = self._date_choice(day_element, f"{path}/Dt") if day_element is not None else None
        value = (signed, day, currency, element.sourceline or 0)
        if code in _OPENING_CODES:
            # OPBD wins over PRCD
            if statement.opening is None or code == "OPBD":
                statement.opening = value
        elif statement.closing is None:
            statement.closing = value

    def _header(self, statement: _Statement, first_currency: str) -> StatementHeader:
        if statement.header is not None:
            return statement.header
        currency = statement.currency
        opening, opening_date = Decimal(0), None
        if self.kind == "053":
            if statement.opening is None:
                raise StatementError(f"{statement.path} (wiersz {statement.line}): brak salda otwarcia (Bal OPBD)")
            opening, opening_date, opening_currency, line = statement.opening
            if not currency:
                currency = opening_currency
            elif opening_currency != currency:
                raise StatementError(
                    f"{statement.path}/Bal[OPBD] (wiersz {line}): saldo otwarcia jest w walucie {opening_currency}, "
                    f"a rachunek w {currency}")
        currency = currency or first_currency
        statement.currency = currency
        statement_id = " ".join(part for part in (statement.id, statement.sequence) if part)
        statement.header = StatementHeader(
            account=statement.account, currency=currency, opening=opening, opening_date=opening_date,
            closing=statement.closing[0] if statement.closing else None, statement_id=statement_id)
        return statement.header

    def _announce(self, statement: _Statement, currency: str) -> Iterator[StatementHeader]:
        header = self._header(statement, currency)
        if not statement.header_sent:
            statement.header_sent = True
            yield header

    def _statement_end(self, statement: _Statement, element: etree._Element) -> Iterator[
            StatementHeader | Entry | StatementEnd]:
        yield from self._announce(statement, "")
        header = statement.header
        assert header is not None
        expected = header.opening + statement.credits - statement.debits
        if self.kind == "054":
            yield StatementEnd(closing=expected, closing_date=None)
            return
        if statement.closing is None:
            raise StatementError(f"{statement.path} (wiersz {statement.line}): brak salda zamknięcia (Bal CLBD)")
        closing, closing_date, currency, line = statement.closing
        if currency != header.currency:
            raise StatementError(
                f"{statement.path}/Bal[CLBD] (wiersz {line}): saldo zamknięcia jest w walucie {currency}, "
                f"a wyciąg w {header.currency}")
        if closing != expected:
            raise StatementError(
                f"wyciąg {header.statement_id} rachunku {header.account} się nie bilansuje: saldo otwarcia "
                f"{pl_amount(header.opening)} plus uznania {pl_amount(statement.credits)} minus obciążenia "
                f"{pl_amount(statement.debits)} daje {pl_amount(expected)} {header.currency}, a saldo "
                f"zamknięcia CLBD (wiersz {line}) wynosi {pl_amount(closing)} {header.currency}")
        yield StatementEnd(closing=closing, closing_date=closing_date)

    # --- entries ----------------------------------------------------------------------------------

    def _read_ntry(self, ntry: _NtryState) -> None:
        """The entry's own elements, all before its details (NtryDtls)."""
        if ntry.fields_read:
            return
        ntry.fields_read = True
        path = f"{ntry.path}[{ntry.number}]"
        for child in ntry.element:
            name = self.local(child)
            if name == "Amt":
                ntry.amount, ntry.currency = self._amount(child, f"{path}/Amt", child)
            elif name == "CdtDbtInd":
                ntry.credit = self._direction(child, f"{path}/CdtDbtInd", child)
            elif name == "Sts":
                status = normalise_space(child.text or "") or self.text(child, "Cd")
                ntry.booked = status in ("", "BOOK")
            elif name == "BookgDt":
                ntry.booking_date = self._date_choice(child, f"{path}/BookgDt")
            elif name == "ValDt":
                ntry.value_date = self._date_choice(child, f"{path}/ValDt")
            elif name == "AcctSvcrRef":
                ntry.reference = normalise_space(child.text or "")
            elif name == "NtryRef":
                ntry.entry_reference = normalise_space(child.text or "")

    def _transaction(self, statement: _Statement, ntry: _NtryState, element: etree._Element) -> Iterator[
            StatementHeader | Entry]:
        self._read_ntry(ntry)
        if not ntry.booked:
            return
        ntry.transactions += 1
        transaction = self._read_transaction(ntry, element)
        if ntry.transactions == 1:
            ntry.held = transaction
            return
        if ntry.transactions == 2:
            first = ntry.held
            assert first is not None
            ntry.held = None
            _, credit = self._require_entry(statement, ntry)
            if self._usable(first, ntry, credit):
                ntry.split = True
                yield from self._announce(statement, ntry.currency)
                yield self._split_entry(statement, ntry, first, credit)
            else:
                ntry.merged.append(first)
        if ntry.split:
            _, credit = self._require_entry(statement, ntry)
            if not self._usable(transaction, ntry, credit):
                raise StatementError(
                    f"{ntry.path}[{ntry.number}]/NtryDtls/TxDtls[{ntry.transactions}] (wiersz {element.sourceline}): "
                    f"transakcja pozycji zbiorczej nie ma kwoty w walucie {statement.currency} "
                    f"ani kierunku zgodnego z pozycją")
            yield self._split_entry(statement, ntry, transaction, credit)
        elif len(ntry.merged) < _MERGE_LIMIT:
            ntry.merged.append(transaction)

    def _usable(self, transaction: _Transaction, ntry: _NtryState, credit: bool) -> bool:
        return transaction.amount is not None and transaction.credit in (None, credit)

    def _split_entry(self, statement: _Statement, ntry: _NtryState, transaction: _Transaction,
                     credit: bool) -> Entry:
        assert transaction.amount is not None
        ntry.split_total += transaction.amount
        return self._entry(statement, ntry, transaction.amount, credit, transaction,
                           transaction.reference or ntry.reference or ntry.entry_reference)

    def _ntry_end(self, statement: _Statement, ntry: _NtryState, element: etree._Element) -> Iterator[
            StatementHeader | Entry]:
        self._read_ntry(ntry)
        if not ntry.booked:
            return
        ntry.additional_info = self.text(element, "AddtlNtryInf")
        amount, credit = self._require_entry(statement, ntry)
        yield from self._announce(statement, ntry.currency)
        reference = ntry.reference or ntry.entry_reference
        if ntry.split:
            if ntry.split_total != amount:
                raise StatementError(
                    f"{ntry.path}[{ntry.number}] (wiersz {ntry.line}): kwoty transakcji pozycji zbiorczej dają "
                    f"{pl_amount(ntry.split_total)}, a kwota pozycji to {pl_amount(amount)} {statement.currency}")
            return
        if ntry.held is not None:
            transaction = ntry.held
            reference = reference or transaction.reference
        elif ntry.merged:
            transaction = _merge(ntry.merged)
        else:
            transaction = _Transaction(None, None, "", "", "", "", "")
        if not transaction.title and ntry.additional_info:
            transaction = _Transaction(**{**transaction.__dict__, "title": ntry.additional_info})
        yield self._entry(statement, ntry, amount, credit, transaction, reference)

    def _require_entry(self, statement: _Statement, ntry: _NtryState) -> tuple[Decimal, bool]:
        path = f"{ntry.path}[{ntry.number}]"
        if ntry.amount is None:
            raise StatementError(f"{path}/Amt (wiersz {ntry.line}): pozycja nie ma kwoty")
        if ntry.credit is None:
            raise StatementError(f"{path}/CdtDbtInd (wiersz {ntry.line}): pozycja nie ma znacznika CRDT/DBIT")
        header = self._header(statement, ntry.currency) if statement.header is None else statement.header
        if ntry.currency != header.currency:
            raise StatementError(
                f"{path}/Amt (wiersz {ntry.line}): kwota jest w walucie {ntry.currency}, a wyciąg w {header.currency}")
        return ntry.amount, ntry.credit

    def _entry(self, statement: _Statement, ntry: _NtryState, amount: Decimal, credit: bool,
               transaction: _Transaction, reference: str) -> Entry:
        booking_date = ntry.booking_date or ntry.value_date or statement.created
        if booking_date is None:
            raise StatementError(f"{ntry.path}[{ntry.number}]/BookgDt (wiersz {ntry.line}): pozycja nie ma daty")
        statement.entries += 1
        if credit:
            statement.credits += amount
        else:
            statement.debits += amount
        return Entry(
            booking_date=booking_date, value_date=ntry.value_date, amount=amount, credit=credit,
            counterparty=transaction.counterparty, counterparty_account=transaction.counterparty_account,
            title=transaction.title, account_credited=transaction.account_credited if credit else "",
            bank_reference=reference, sequence=statement.entries)

    def _read_transaction(self, ntry: _NtryState, tx: etree._Element) -> _Transaction:
        amount = None
        currency_wanted = ntry.currency or (self.statement.currency if self.statement else "")
        for path in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/CntrValAmt/Amt"):
            element = self.at(tx, path)
            if element is not None and (element.get("Ccy") or "") == currency_wanted:
                text = normalise_space(element.text or "")
                if _AMOUNT.fullmatch(text):
                    amount = Decimal(text)
                    break
        direction = self.text(tx, "CdtDbtInd")
        credit_of_tx = {"CRDT": True, "DBIT": False}.get(direction)
        entry_credit = ntry.credit if ntry.credit is not None else credit_of_tx
        parties = self.at(tx, "RltdPties")
        counterparty = counterparty_account = credited = ""
        if parties is not None:
            if entry_credit is False:
                counterparty = self._party(parties, "Cdtr") or self._party(parties, "UltmtCdtr")
                counterparty_account = self._account(parties, "CdtrAcct")
            else:
                counterparty = self._party(parties, "Dbtr") or self._party(parties, "UltmtDbtr")
                counterparty_account = self._account(parties, "DbtrAcct")
                credited = self._account(parties, "CdtrAcct")
        return _Transaction(
            amount=amount, credit=credit_of_tx, counterparty=counterparty,
            counterparty_account=counterparty_account, title=self._title(tx), account_credited=credited,
            reference=self.text(tx, "Refs/AcctSvcrRef"))

    def _party(self, parties: etree._Element, role: str) -> str:
        party = self.at(parties, role)
        if party is None:
            return ""
        inner = self.at(party, "Pty")
        if inner is not None:
            party = inner
        name = self.text(party, "Nm")
        address = self.at(party, "PstlAdr")
        parts = [name] if name else []
        if address is not None:
            street = " ".join(filter(None, (self.text(address, "StrtNm"), self.text(address, "BldgNb"))))
            town = " ".join(filter(None, (self.text(address, "PstCd"), self.text(address, "TwnNm"))))
            parts += [part for part in (street, town) if part]
            parts += [normalise_space(line.text or "") for line in self.every(address, "AdrLine")
                      if normalise_space(line.text or "")]
        return ", ".join(parts)

    def _account(self, parties: etree._Element, role: str) -> str:
        account = self.text(parties, f"{role}/Id/IBAN") or self.text(parties, f"{role}/Id/Othr/Id")
        return normalise_account(account)

    def _title(self, tx: etree._Element) -> str:
        remittance = self.at(tx, "RmtInf")
        parts: list[str] = []
        if remittance is not None:
            pieces = [line.text or "" for line in self.every(remittance, "Ustrd")]
            joined = ""
            for index, piece in enumerate(pieces):
                if index and len(pieces[index - 1]) not in _USTRD_WIDTHS:
                    joined += " "
                joined += piece
            parts.append(normalise_space(joined))
            for structured in self.every(remittance, "Strd"):
                parts += [self.text(document, "Nb") for document in self.every(structured, "RfrdDocInf")]
                parts.append(self.text(structured, "CdtrRefInf/Ref"))
                parts += [normalise_space(e.text or "") for e in self.every(structured, "AddtlRmtInf")]
        title = "; ".join(_unique(parts))
        return title or self.text(tx, "AddtlTxInf")

    # --- values -----------------------------------------------------------------------------------

    def _amount(self, element: etree._Element | None, where: str, parent: etree._Element) -> tuple[Decimal, str]:
        if element is None:
            raise StatementError(f"{where} (wiersz {parent.sourceline}): brak kwoty")
        text = normalise_space(element.text or "")
        if not _AMOUNT.fullmatch(text):
            raise StatementError(f"{where} (wiersz {element.sourceline}): niepoprawna kwota „{text[:30]}”")
        currency = element.get("Ccy") or ""
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise StatementError(
                f"{where} (wiersz {element.sourceline}): brak albo niepoprawny kod waluty „{currency[:10]}”")
        return Decimal(text), currency

    def _direction(self, element: etree._Element | None, where: str, parent: etree._Element) -> bool:
        text = normalise_space(element.text or "") if element is not None else ""
        if text not in ("CRDT", "DBIT"):
            line = element.sourceline if element is not None else parent.sourceline
            raise StatementError(f"{where} (wiersz {line}): znacznik „{text[:10]}” zamiast CRDT albo DBIT")
        return text == "CRDT"

    def _date_choice(self, element: etree._Element, path: str) -> date | None:
        for name in ("Dt", "DtTm"):
            child = self.at(element, name)
            if child is not None:
                return self._date(child, f"{path}/{name}", required=True)
        return None

    def _date(self, element: etree._Element, path: str, *, required: bool) -> date | None:
        text = normalise_space(element.text or "")
        if _DATE.match(text):
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                pass
        if required:
            raise StatementError(f"{path} (wiersz {element.sourceline}): niepoprawna data „{text[:30]}”")
        return None


def _merge(transactions: list[_Transaction]) -> _Transaction:
    def same(values: list[str]) -> str:
        distinct = _unique(values)
        return distinct[0] if len(distinct) == 1 else ""

    return _Transaction(
        amount=None, credit=None,
        counterparty="; ".join(_unique([t.counterparty for t in transactions])),
        counterparty_account=same([t.counterparty_account for t in transactions]),
        title="; ".join(_unique([t.title for t in transactions])),
        account_credited=same([t.account_credited for t in transactions]),
        reference=same([t.reference for t in transactions]))


def _unique(values: list[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def _forget(element: etree._Element) -> None:
    """Drop what has been read: the element's content and its earlier siblings."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
