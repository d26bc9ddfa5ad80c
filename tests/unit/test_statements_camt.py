"""camt.053 / camt.054: the genkgo/camt and OCA samples against their golden results, batch entries,
the hardened streaming parser, and the benchmark's file writer."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bench.statement_file import bare_iterparse_count, write_camt053
from platforma.payments.statements import Entry, StatementError, StatementHeader, iter_statement, parse_statement_json
from tests.unit.test_statements_mt940 import collect, parse, reference, statements

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data" / "statements" / "camt"
OCA = "OCA_bank-statement-import__account_statement_import_camt_test_files_"


def account(value: str) -> str:
    compact = value.replace(" ", "").upper()
    return compact[2:] if re.fullmatch(r"PL\d{26}", compact) else compact


# --- genkgo/camt (.json golden results) --------------------------------------------------------------

def minor(money: dict) -> Decimal:
    """genkgo's Money: an integer count of cents (all these samples' currencies have two decimals)."""
    return Decimal(money["getAmount"]) / 100


def blocks(info: dict, one: str, many: str) -> list[dict]:
    found = [info[one]] if info.get(one) else []
    return found + [block for block in info.get(many) or [] if isinstance(block, dict)]


def genkgo_records(path: Path) -> list[tuple[dict, list[dict]]]:
    records: list[tuple[dict, list[dict]]] = []
    for entry in json.loads(path.read_text(encoding="utf-8"))["getEntries"]:
        record = entry["getRecord"]
        if not records or records[-1][0]["getId"] != record["getId"]:
            records.append((record, []))
        records[-1][1].append(entry)
    return records


GENKGO = {
    # sample: what the parser must say at the end (None: it adds up)
    "camt053.v2.all-balance-types": "się nie bilansuje: saldo otwarcia 1,01 plus uznania 8,850 minus obciążenia 0,00 "
                                    "daje 9,860 EUR, a saldo zamknięcia CLBD (wiersz 68) wynosi 4,04 EUR",
    "camt053.v2.five.decimals": "się nie bilansuje: saldo otwarcia 18,150 plus uznania 8,850 minus obciążenia 0,00 "
                                "daje 27,000 EUR, a saldo zamknięcia CLBD (wiersz 49) wynosi 27,050 EUR",
    "camt053.v2.minimal": "Stmt[1]/Bal[CLBD] (wiersz 54): saldo zamknięcia jest w walucie SEK, a wyciąg w EUR",
    "camt053.v2.with-party-ids": "Stmt[1]/Bal[CLBD] (wiersz 54): saldo zamknięcia jest w walucie SEK, a wyciąg w EUR",
    "camt053.v8": "Stmt[1]/Bal[CLBD] (wiersz 74): saldo zamknięcia jest w walucie SEK, a wyciąg w EUR",
    "camt053.v2.multi.statement": None,
    "camt054.v2": None,
    "camt054.v8": None,
    "camt054.v8-with-UETR": None,
}


@pytest.mark.parametrize("sample", sorted(GENKGO))
def test_genkgo_samples_match_golden_results(sample):
    items, error = collect(DATA / f"genkgo_camt__test_data_{sample}.xml")
    expected_error = GENKGO[sample]
    if expected_error is None:
        assert error is None, str(error)
    else:
        assert expected_error in str(error)
    found = {header.statement_id.split()[0]: (header, entries, end) for header, entries, end in statements(items)}
    golden = genkgo_records(DATA / f"genkgo_camt__test_data_{sample}.json")
    # genkgo's message lists the entries of its last statement only (multi.statement: the first is not there)
    assert len(golden) == (1 if sample.startswith("camt053.v2.multi") else len(found))
    for record, golden_entries in golden:
        header, entries, end = found[record["getId"]]
        sequence = record.get("getElectronicSequenceNumber")
        assert header.statement_id == " ".join(filter(None, (record["getId"], sequence)))
        assert header.account == account(record["getAccount"]["getIdentification"])
        balances = record.get("getBalances") or []
        # genkgo calls both OPBD and PRCD "opening", OPBD first: the parser takes OPBD
        opening = [b for b in balances if b["getType"] == "opening"][:1]
        closing = [b for b in balances if b["getType"] == "closing"][:1]
        for balance in opening:
            assert header.opening == minor(balance["getAmount"])
            assert header.opening_date == date.fromisoformat(balance["getDate"]["0"][:10])
            assert header.currency == balance["getAmount"]["getCurrency"]["getCode"]
        for balance in closing:
            assert header.closing == minor(balance["getAmount"])
            if end is not None:
                assert end.closing == header.closing
        if sample.startswith("camt054"):
            assert header.opening == 0 and header.closing is None
        assert len(entries) == len(golden_entries)
        for entry, golden_entry in zip(entries, golden_entries, strict=True):
            compare_genkgo_entry(entry, golden_entry, header)


def compare_genkgo_entry(entry: Entry, golden: dict, header: StatementHeader) -> None:
    amount = minor(golden["getAmount"])
    assert (entry.amount if entry.credit else -entry.amount) == amount
    assert golden["getAmount"]["getCurrency"]["getCode"] == header.currency
    assert entry.credit == (golden["getCreditDebitIndicator"] == "CRDT")
    if golden.get("getBookingDate"):
        assert entry.booking_date == date.fromisoformat(golden["getBookingDate"]["0"][:10])
    if golden.get("getValueDate"):
        assert entry.value_date == date.fromisoformat(golden["getValueDate"]["0"][:10])
    else:
        assert entry.value_date is None
    assert entry.bank_reference == (golden["getAccountServicerReference"] or "")
    details = [golden["getTransactionDetail"]] + [d for d in golden["getTransactionDetails"][1:] if isinstance(d, dict)]
    single = len(details) == 1
    for detail in details:
        for party in detail["getRelatedParties"]:
            kind = party["getRelatedPartyType"]["__CLASS__"].rsplit("\\", 1)[-1]
            iban = (party.get("getAccount") or {}).get("getIban") or {}
            party_account = account(iban.get("getIban", "")) if iban else ""
            person = party["getRelatedPartyType"]
            ours = (kind == "Debtor") == entry.credit  # the payer of a credit, the payee of a debit
            if ours:
                assert person["getName"] in entry.counterparty
                address = person.get("getAddress") or {}
                for piece in [*address.get("getAddressLines", []), address.get("getStreetName"),
                              address.get("getTownName"), address.get("getPostCode")]:
                    if piece:
                        assert piece in entry.counterparty
                if single:
                    assert entry.counterparty_account == party_account
            elif kind == "Creditor" and entry.credit and single:
                assert entry.account_credited == party_account
        remittance = detail.get("getRemittanceInformation") or {}
        for block in blocks(remittance, "getUnstructuredBlock", "getUnstructuredBlocks"):
            assert block["getMessage"] in entry.title
        for block in blocks(remittance, "getStructuredBlock", "getStructuredBlocks"):
            reference_information = block.get("getCreditorReferenceInformation")
            if isinstance(reference_information, dict):
                assert reference_information["getRef"] in entry.title
            if block.get("getAdditionalRemittanceInformation"):
                assert block["getAdditionalRemittanceInformation"] in entry.title
        if remittance.get("getMessage"):
            assert remittance["getMessage"] in entry.title


def test_genkgo_values_in_our_words():
    [(header, [entry], end)] = statements(collect(DATA / "genkgo_camt__test_data_camt053.v2.minimal.xml")[0])
    assert entry.counterparty == "NAME NAME, ADDR ADDR 10, 2000 ANTWERPEN"
    assert (entry.counterparty_account, entry.account_credited, entry.title) == (
        "NL56AGDH9619008421", "NL56AGDH9619008421", "4654654654654654")
    [(_, [entry], _)] = statements(collect(DATA / "genkgo_camt__test_data_camt053.v2.five.decimals.xml")[0])
    assert str(entry.amount) == "8.850"
    # a notification without booking date falls back on its creation date
    [(header, [entry], end)] = statements(parse(DATA / "genkgo_camt__test_data_camt054.v8-with-UETR.xml"))
    assert entry.booking_date == date(2007, 10, 18) and entry.value_date is None
    assert (header.currency, end.closing, end.closing_date) == ("SEK", Decimal("-200000"), None)
    # three transactions without amounts of the entry's currency stay one entry
    [(_, [entry], _)] = statements(parse(DATA / "genkgo_camt__test_data_camt054.v8.xml"))
    assert entry.counterparty.split("; ")[0] == (
        "Example Creditor 3 - V1, Example Street 3 - V1 31, 3131 Example Town 3 - V1")
    assert entry.counterparty_account == ""
    [(_, [entry], _)] = statements(parse(DATA / "genkgo_camt__test_data_camt054.v2.xml"))
    assert entry.title.startswith("Unstructured Remittance Information V1; ISR ref number V1; Additional Remittance")
    assert ("Unstructured Remittance Information V3 block 1 Unstructured Remittance Information V3 block 2"
            in entry.title)


def test_genkgo_wrong_sample_has_no_statement():
    items, error = collect(DATA / "genkgo_camt__test_data_camt053.v2.wrong.xml")
    assert items == [] and str(error) == "w pliku nie ma żadnego wyciągu (elementu Stmt)"


def test_five_decimals_stay_exact_in_json():
    # drop the closing balance that does not add up, to see the whole file as JSON
    data = (DATA / "genkgo_camt__test_data_camt053.v2.five.decimals.xml").read_bytes().replace(b"27.050", b"27.000")
    result = parse_statement_json(data)
    [statement] = result["statements"]
    assert (statement["opening"], statement["closing"]) == ("18.150", "27.000")
    assert statement["entries"][0]["amount"] == "8.850"
    assert statement["entries"][0]["value_date"] == "2015-01-02"


# --- OCA/bank-statement-import (AGPL: read from shared/reference-data) ----------------------------------

OCA_SAMPLES = {
    "test-camt053": ("golden-camt053.pydata", "się nie bilansuje"),
    "test-camt053-multi-currency": ("golden-camt053-multi-currency.pydata", None),
    "test-camt053-txdtls": ("golden-camt053-txdtls.pydata", None),
    "test-camt054": ("golden-camt054.pydata", None),
    "test-camt053-no-ntry": ("golden-camt053-no-ntry.pydata", None),
    "test-camt053-wrong-amount": (None, "Stmt[1]/Ntry[2]/Amt (wiersz 93): pozycja nie ma kwoty"),
}


def narration(text: str, label: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(label + ": ")]


@pytest.mark.parametrize("sample", sorted(OCA_SAMPLES))
def test_oca_samples_match_golden_results(sample):
    golden_name, expected_error = OCA_SAMPLES[sample]
    items, error = collect(reference("camt", OCA + sample))
    if expected_error is None:
        assert error is None, str(error)
    else:
        assert expected_error in str(error)
    found = statements(items)
    if golden_name is None:
        # the negative sample: what precedes the entry without an amount is read, then it stops there
        [(header, [entry], end)] = found
        assert (entry.amount, entry.credit, end) == (Decimal("134.00"), True, None)
        return
    currency, account_number, golden = ast.literal_eval(reference("camt", OCA + golden_name).read_text())
    if not golden:
        # OCA leaves out a statement without entries; we report it, empty and balanced
        [(header, entries, end)] = found
        assert entries == [] and header.opening == end.closing == Decimal("1520.76")
        return
    [(header, entries, end)] = found
    [expected] = golden
    assert header.currency == currency
    assert header.account == account(account_number)
    assert header.statement_id.split()[0] == expected["name"]
    assert header.opening == Decimal(str(expected["balance_start"]))
    if sample != "test-camt054":
        assert header.closing == Decimal(str(expected["balance_end_real"]))
    else:
        # camt.054 has no balances: OCA puts 0 at both ends, we end with the net of the entries
        assert expected["balance_end_real"] == 0 and end.closing == Decimal("5.00")
    assert len(entries) == len(expected["transactions"])
    for entry, transaction in zip(entries, expected["transactions"], strict=True):
        assert (entry.amount if entry.credit else -entry.amount) == Decimal(str(transaction["amount"])).quantize(
            entry.amount)
        assert entry.booking_date == date.fromisoformat(transaction["date"])
        assert entry.counterparty_account == transaction.get("account_number", "")
        assert entry.counterparty.startswith(transaction["partner_name"])
        for label in ("Unstructured Reference (RmtInf/Ustrd)", "Structured Reference (RmtInf/Strd/CdtrRefInf/Ref)"):
            for text in narration(transaction["narration"], label):
                assert text in entry.title


def test_oca_batch_entry_is_split_into_its_transactions():
    items, _ = collect(reference("camt", OCA + "test-camt053"))
    [(_, entries, _)] = statements(items)
    assert [(e.sequence, e.amount, e.title) for e in entries[1:3]] == [
        (2, Decimal("564.05"), "Direct Debit S14 0410"), (3, Decimal("100.00"), "Direct Debit S14 0410")]
    # no remittance information: the additional transaction information stands in for the title
    assert entries[3].title == "#RD PARTY MEDIA CUSNO 90782 4210773"


# --- batches of payments to individual accounts ----------------------------------------------------------

def camt(body: str, *, kind: str = "054", version: str = "08") -> bytes:
    root = {"053": "BkToCstmrStmt", "054": "BkToCstmrDbtCdtNtfctn"}[kind]
    record = {"053": "Stmt", "054": "Ntfctn"}[kind]
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.'
            f'{version}"><{root}><GrpHdr><MsgId>M1</MsgId><CreDtTm>2025-11-20T10:00:00</CreDtTm></GrpHdr>'
            f'<{record}><Id>N-2025-11-20</Id><CreDtTm>2025-11-20T10:00:00</CreDtTm><Acct><Id>'
            f'<IBAN>PL61109010140000071219812874</IBAN></Id><Ccy>PLN</Ccy></Acct>{body}</{record}></{root}>'
            f'</Document>').encode()


def payment(amount: str, payer: str, account_credited: str, title: str, *, ccy: str = "PLN") -> str:
    return (f'<TxDtls><Refs><AcctSvcrRef>R-{payer}</AcctSvcrRef></Refs><Amt Ccy="{ccy}">{amount}</Amt>'
            f'<CdtDbtInd>CRDT</CdtDbtInd><RltdPties><Dbtr><Pty><Nm>{payer}</Nm><PstlAdr><StrtNm>Polna</StrtNm>'
            f'<BldgNb>1</BldgNb><PstCd>00-001</PstCd><TwnNm>Wieś</TwnNm></PstlAdr></Pty></Dbtr><DbtrAcct><Id>'
            f'<IBAN>PL27114020040000300201355387</IBAN></Id></DbtrAcct><CdtrAcct><Id><IBAN>{account_credited}</IBAN>'
            f'</Id></CdtrAcct></RltdPties><RmtInf><Ustrd>{title}</Ustrd></RmtInf></TxDtls>')


def batch(total: str, *transactions: str, status: str = "<Sts><Cd>BOOK</Cd></Sts>") -> str:
    return (f'<Ntry><NtryRef>E1</NtryRef><Amt Ccy="PLN">{total}</Amt><CdtDbtInd>CRDT</CdtDbtInd>{status}'
            f'<BookgDt><Dt>2025-11-20</Dt></BookgDt><ValDt><DtTm>2025-11-19T23:10:00+01:00</DtTm></ValDt>'
            f'<AcctSvcrRef>B-1</AcctSvcrRef><NtryDtls><Btch><NbOfTxs>{len(transactions)}</NbOfTxs></Btch>'
            f'{"".join(transactions)}</NtryDtls><AddtlNtryInf>WPŁATY ZBIORCZE</AddtlNtryInf></Ntry>')


def test_batch_to_individual_accounts_gives_one_entry_per_payment():
    data = camt(batch("150.50",
                      payment("100.00", "Jan Kowalski", "PL34102028922001000071219812", "Podatek rolny rata 1"),
                      payment("50.50", "Anna Nowak", "PL08102028922001000071219829", "Opłata za odpady")))
    [(header, entries, end)] = statements(parse(data))
    assert header == StatementHeader(account="61109010140000071219812874", currency="PLN", opening=Decimal(0),
                                     opening_date=None, closing=None, statement_id="N-2025-11-20")
    assert entries == [
        Entry(booking_date=date(2025, 11, 20), value_date=date(2025, 11, 19), amount=Decimal("100.00"), credit=True,
              counterparty="Jan Kowalski, Polna 1, 00-001 Wieś", counterparty_account="27114020040000300201355387",
              title="Podatek rolny rata 1", account_credited="34102028922001000071219812",
              bank_reference="R-Jan Kowalski", sequence=1),
        Entry(booking_date=date(2025, 11, 20), value_date=date(2025, 11, 19), amount=Decimal("50.50"), credit=True,
              counterparty="Anna Nowak, Polna 1, 00-001 Wieś", counterparty_account="27114020040000300201355387",
              title="Opłata za odpady", account_credited="08102028922001000071219829",
              bank_reference="R-Anna Nowak", sequence=2),
    ]
    assert end.closing == Decimal("150.50")


def test_batch_problems():
    _, error = collect(camt(batch("150.00", payment("100.00", "A", "PL1", "x"), payment("50.50", "B", "PL2", "y"))))
    assert str(error) == ("Ntfctn[1]/Ntry[1] (wiersz 2): kwoty transakcji pozycji zbiorczej dają 150,50, "
                          "a kwota pozycji to 150,00 PLN")
    _, error = collect(camt(batch("150.00", payment("100.00", "A", "PL1", "x"),
                                  payment("50.00", "B", "PL2", "y", ccy="EUR"))))
    assert "TxDtls[2]" in str(error) and "nie ma kwoty w walucie PLN" in str(error)
    # pending entries are left out, as the booked balance leaves them out
    [(_, entries, end)] = statements(parse(camt(batch("1.00", payment("1.00", "A", "PL1", "x"),
                                                      status="<Sts><Cd>PDNG</Cd></Sts>"))))
    assert entries == [] and end.closing == 0


def test_statement_problems():
    bal = ('<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="PLN">{amount}</Amt><CdtDbtInd>{ind}'
           '</CdtDbtInd><Dt><Dt>2025-11-20</Dt></Dt></Bal>')
    entry = ('<Ntry><Amt Ccy="PLN">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{day}</Dt>'
             '</BookgDt></Ntry>')
    good = bal.format(code="OPBD", amount="10.00", ind="CRDT") + bal.format(code="CLBD", amount="5.00", ind="DBIT")
    [(header, [debit], end)] = statements(parse(camt(good + entry.format(amount="15", day="2025-11-20"), kind="053")))
    assert (header.opening, header.closing, debit.amount, end.closing) == (
        Decimal("10.00"), Decimal("-5.00"), Decimal("15"), Decimal("-5.00"))
    cases = {
        entry.format(amount="1,5", day="2025-11-20"): "Stmt[1]/Ntry[1]/Amt (wiersz 2): niepoprawna kwota „1,5”",
        entry.format(amount="15", day="2025-13-20"):
            "Stmt[1]/Ntry[1]/BookgDt/Dt (wiersz 2): niepoprawna data „2025-13-20”",
        entry.format(amount="15", day="x").replace("DBIT", "DEBT"):
            "Stmt[1]/Ntry[1]/CdtDbtInd (wiersz 2): znacznik „DEBT” zamiast CRDT albo DBIT",
        entry.format(amount="15", day="2025-11-20").replace('Ccy="PLN"', 'Ccy="EUR"'):
            "Stmt[1]/Ntry[1]/Amt (wiersz 2): kwota jest w walucie EUR, a wyciąg w PLN",
    }
    for body, message in cases.items():
        assert str(collect(camt(good + body, kind="053"))[1]) == message
    no_opening = bal.format(code="CLBD", amount="5.00", ind="DBIT")
    assert str(collect(camt(no_opening, kind="053"))[1]) == "Stmt[1] (wiersz 2): brak salda otwarcia (Bal OPBD)"
    no_closing = bal.format(code="OPBD", amount="5.00", ind="DBIT")
    assert str(collect(camt(no_closing, kind="053"))[1]) == "Stmt[1] (wiersz 2): brak salda zamknięcia (Bal CLBD)"


@pytest.mark.parametrize("version", ["02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13"])
def test_every_version_of_the_namespace(version):
    data = (DATA / "genkgo_camt__test_data_camt053.v2.multi.statement.xml").read_bytes()
    data = data.replace(b"camt.053.001.02", f"camt.053.001.{version}".encode())
    assert len(statements(parse(data))) == 2


# --- hardening ---------------------------------------------------------------------------------------------

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>&c;</Id></Stmt>
</BkToCstmrStmt></Document>"""


def test_doctype_and_entities_are_refused(tmp_path):
    assert str(collect(BOMB)[1]) == \
        "plik XML zawiera deklarację DOCTYPE albo ENTITY, której wyciąg bankowy nie może mieć"
    external = BOMB.replace(b'<!ENTITY a "aaaaaaaaaa">', b'<!ENTITY a SYSTEM "file:///etc/passwd">')
    assert "DOCTYPE" in str(collect(external)[1])
    # a DOCTYPE hidden behind 70 kB of comments still meets the parser's own check
    hidden = b'<?xml version="1.0"?>\n' + b"<!--" + b"x" * 70000 + b"-->\n" + BOMB.split(b"\n", 1)[1]
    assert "DOCTYPE" in str(collect(hidden)[1])
    # an undeclared entity is an error, not text
    undeclared = camt("<Ntry><Amt Ccy='PLN'>&x;</Amt></Ntry>", kind="053")
    assert "niepoprawny XML" in str(collect(undeclared)[1])


def test_not_a_camt_file():
    assert str(collect(b"<Document><x/></Document>")[1]) == (
        "wiersz 1: to nie jest wyciąg camt.053 ani powiadomienie camt.054 (element Document, przestrzeń nazw „”)")
    camt052 = camt("", kind="053").replace(b"camt.053.001.08", b"camt.052.001.08")
    assert "to nie jest wyciąg camt.053" in str(collect(camt052)[1])
    html = b"<html><body><p>Stmt</p></body></html>"
    assert "to nie jest wyciąg camt.053" in str(collect(html)[1])


def test_truncated_and_broken_xml():
    data = camt(batch("1.00", payment("1.00", "A", "PL1", "x")))
    cut = data.index(b"</Ntry>") + len(b"</Ntry>")
    items, error = collect(data[:cut])
    assert str(error).startswith("wiersz 2: plik XML jest urwany (brak zamknięcia elementów)")
    # the entry had ended and was given out; its statement never ends
    assert [type(item).__name__ for item in items] == ["StatementHeader", "Entry"]
    assert str(collect(data[:cut + 3])[1]).startswith("wiersz 2: niepoprawny XML: expected '>'")
    assert str(collect(data.replace(b"</Ntry>", b"</Ntri>"))[1]).startswith("wiersz 2: niepoprawny XML")
    nested = camt(batch("1.00", payment("1.00", "A", "PL1", "x")).replace("<NtryDtls>", "<NtryDtls><Ntry>", 1)
                  .replace("</NtryDtls>", "</Ntry></NtryDtls>", 1))
    assert str(collect(nested)[1]) == "wiersz 2: element Ntry w niewłaściwym miejscu"


def test_size_limit_while_streaming_xml():
    data = camt("".join(batch("1.00", payment("1.00", "A", "PL1", "x")) for _ in range(200)))
    assert len([i for i in parse(data) if isinstance(i, Entry)]) == 200
    assert str(collect(data, max_bytes=5000)[1]) == f"plik ma {len(data)} bajtów, więcej niż dopuszczalne 5000"


# --- the benchmark's file ------------------------------------------------------------------------------------

def rows(count: int):
    for i in range(count):
        sign = 1 if i % 5 else -1
        yield (date(2025, 1, 1) + timedelta(days=i % 300), sign * Decimal(i % 997 + 1) / 100, f"Płatnik {i}",
               "27114020040000300201355387", f"Podatek od nieruchomości {i}", f"{i:026d}")


def test_bench_file_reads_back(tmp_path):
    path = tmp_path / "camt053.xml"
    assert write_camt053(path, account="61109010140000071219812874", entries=rows(300), opening=Decimal("5.00"),
                         statement_id="BENCH/7") == 300
    assert bare_iterparse_count(path) == 300
    [(header, entries, end)] = statements(parse(path))
    assert (header.account, header.statement_id, header.opening) == (
        "61109010140000071219812874", "BENCH/7", Decimal("5.00"))
    for entry, row in zip(entries, rows(300), strict=True):
        booked, amount, counterparty, counterparty_account, title, credited = row
        assert (entry.booking_date, entry.credit, entry.amount) == (booked, amount > 0, abs(amount))
        assert (entry.counterparty, entry.counterparty_account, entry.title) == (
            counterparty, counterparty_account, title)
        assert entry.account_credited == (credited if amount > 0 else "")
    assert end.closing == Decimal("5.00") + sum(row[1] for row in rows(300))


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys
    from platforma.payments.statements import iter_statement
    count = sum(1 for _ in iter_statement(sys.argv[1], max_bytes=10**10))
    print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_memory_stays_flat_on_a_large_file(tmp_path):
    """Peak memory reading 30,000 entries is that of reading 1,000 (a tree kept whole would need
    well over 20 MB more)."""
    peaks = []
    for count in (1000, 30000):
        path = tmp_path / f"camt{count}.xml"
        write_camt053(path, account="61109010140000071219812874", entries=rows(count))
        output = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True,
                                cwd=ROOT, check=True).stdout.split()
        assert int(output[0]) == count + 2
        peaks.append(int(output[1]))
    assert peaks[1] - peaks[0] < 8 * 1024  # kB


COVERED = {OCA + name for name in OCA_SAMPLES} | {f"genkgo_camt__test_data_{name}.xml" for name in GENKGO} | {
    "genkgo_camt__test_data_camt053.v2.wrong.xml"}


def test_every_reference_sample_has_a_test():
    folder = reference("camt")
    present = {path.name for path in folder.iterdir() if path.is_file()}
    golden = {name for name in present if name.endswith((".json", ".pydata"))} | {"PROVENANCE.txt"}
    assert present - golden == COVERED
    assert {path.name for path in DATA.iterdir()} <= present


def test_a_namespace_lxml_cannot_name_is_refused_in_polish():
    """Found by the fuzz test: a "}" in the root's namespace made lxml's QName raise a bare ValueError."""
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xmlns="}rn:iso:std:iso:20022:tech:xsd:camt.053.001.02">\n<BkToCstmrStmt><Stmt><Id>1</Id></Stmt>'
            b'</BkToCstmrStmt></Document>\n')
    with pytest.raises(StatementError) as refused:
        list(iter_statement(data))
    assert "to nie jest wyciąg camt.053" in str(refused.value) and refused.value.__cause__ is None
