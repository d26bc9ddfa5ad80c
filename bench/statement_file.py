"""Large camt.053 files for the statement-parser benchmark, and the baseline that reads them.

`write_camt053` streams a valid camt.053.001.02 statement: entries go to a temporary file as they come
(so a generator of 200,000 entries never sits in memory), their sum gives the closing balance, and the
document is then assembled around them. Credits carry the payer as debtor and the individual account
credited as CdtrAcct, where `platforma.payments.statements` reads `account_credited`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date, datetime, UTC
from decimal import Decimal
from pathlib import Path
from collections.abc import Iterable

from lxml import etree

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"

#: (booking date, signed amount: positive credits / negative debits, counterparty, its account, title,
#: account credited)
EntryRow = tuple[date, Decimal, str, str, str, str]


def _iban(account: str) -> str:
    compact = account.replace(" ", "")
    return "PL" + compact if compact.isdigit() and len(compact) == 26 else compact


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, tag, **attributes)
    if text is not None:
        element.text = text
    return element


def _account(parent: etree._Element, tag: str, account: str) -> None:
    identification = _sub(_sub(parent, tag), "Id")
    value = _iban(account)
    if value[:2].isalpha():
        _sub(identification, "IBAN", value)
    else:
        _sub(_sub(identification, "Othr"), "Id", value)


def _entry(row: EntryRow, currency: str, index: int) -> bytes:
    booked, amount, counterparty, counterparty_account, title, account_credited = row
    credit = amount >= 0
    ntry = etree.Element("Ntry")
    _sub(ntry, "Amt", f"{abs(amount):.2f}", Ccy=currency)
    _sub(ntry, "CdtDbtInd", "CRDT" if credit else "DBIT")
    _sub(ntry, "Sts", "BOOK")
    _sub(_sub(ntry, "BookgDt"), "Dt", booked.isoformat())
    _sub(_sub(ntry, "ValDt"), "Dt", booked.isoformat())
    _sub(ntry, "AcctSvcrRef", f"BENCH{index:09d}")
    domain = _sub(_sub(ntry, "BkTxCd"), "Domn")
    _sub(domain, "Cd", "PMNT")
    family = _sub(domain, "Fmly")
    _sub(family, "Cd", "RCDT" if credit else "ICDT")
    _sub(family, "SubFmlyCd", "DMCT")
    details = _sub(_sub(ntry, "NtryDtls"), "TxDtls")
    parties = _sub(details, "RltdPties")
    if credit:
        if counterparty:
            _sub(_sub(parties, "Dbtr"), "Nm", counterparty)
        if counterparty_account:
            _account(parties, "DbtrAcct", counterparty_account)
        if account_credited:
            _account(parties, "CdtrAcct", account_credited)
    else:
        if counterparty:
            _sub(_sub(parties, "Cdtr"), "Nm", counterparty)
        if counterparty_account:
            _account(parties, "CdtrAcct", counterparty_account)
    if title:
        _sub(_sub(details, "RmtInf"), "Ustrd", title)
    return etree.tostring(ntry, encoding="utf-8")


def _balance(parent: etree._Element, code: str, amount: Decimal, currency: str, day: date) -> None:
    balance = _sub(parent, "Bal")
    _sub(_sub(_sub(balance, "Tp"), "CdOrPrtry"), "Cd", code)
    _sub(balance, "Amt", f"{abs(amount):.2f}", Ccy=currency)
    _sub(balance, "CdtDbtInd", "CRDT" if amount >= 0 else "DBIT")
    _sub(_sub(balance, "Dt"), "Dt", day.isoformat())


def write_camt053(path: str | os.PathLike, *, account: str, entries: Iterable[EntryRow],
                  opening: Decimal = Decimal("0"), statement_id: str = "BENCH/1", currency: str = "PLN") -> int:
    """Write the statement; returns the number of entries written."""
    path = Path(path)
    total = Decimal(0)
    count = 0
    first_day: date | None = None
    last_day: date | None = None
    with tempfile.TemporaryFile(dir=path.parent) as body:
        for row in entries:
            count += 1
            total += row[1]
            first_day = min(first_day, row[0]) if first_day else row[0]
            last_day = max(last_day, row[0]) if last_day else row[0]
            body.write(_entry(row, currency, count))
        opening_day = first_day or date.today()
        closing_day = last_day or opening_day

        document = etree.Element("Document", nsmap={None: NAMESPACE})
        message = _sub(document, "BkToCstmrStmt")
        header = _sub(message, "GrpHdr")
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        _sub(header, "MsgId", statement_id)
        _sub(header, "CreDtTm", now)
        statement = _sub(message, "Stmt")
        _sub(statement, "Id", statement_id)
        _sub(statement, "CreDtTm", now)
        own = _sub(_sub(statement, "Acct"), "Id")
        _sub(own, "IBAN", _iban(account))
        statement[-1].append(etree.Element("Ccy"))
        statement[-1][-1].text = currency
        _balance(statement, "OPBD", opening, currency, opening_day)
        _balance(statement, "CLBD", opening + total, currency, closing_day)
        marker = "@@ENTRIES@@"
        _sub(statement, "AddtlStmtInf", marker)
        text = etree.tostring(document, encoding="utf-8", xml_declaration=True)
        before, after = text.split(f"<AddtlStmtInf>{marker}</AddtlStmtInf>".encode())

        body.seek(0)
        with open(path, "wb") as out:
            out.write(before)
            shutil.copyfileobj(body, out, 1024 * 1024)
            out.write(after)
    return count


def bare_iterparse_count(path: str | os.PathLike) -> int:
    """The baseline: count Ntry elements with a bare iterparse that only frees what it has seen."""
    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag="{*}Ntry"):
        count += 1
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
    return count
