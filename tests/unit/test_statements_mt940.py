"""MT940 statements: real samples of Polish banks against their golden results or hand-checked values,
the :86: dialects, the encodings, and every refusal."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from platforma.payments.statements import (
    Entry,
    StatementEnd,
    StatementError,
    StatementHeader,
    iter_statement,
    parse_statement_json,
)
from platforma.payments.statements.mt940 import detect_encoding

DATA = Path(__file__).resolve().parents[1] / "data" / "statements" / "mt940"
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference-data"


def reference(*parts: str) -> Path:
    """A sample that may not be copied into the project (unknown licence): read where it lies."""
    path = REFERENCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (the shared/ folder next to the project root)")
    return path


def collect(source, **kw) -> tuple[list, StatementError | None]:
    """Everything the parser yields before it stops, and the error it stopped with (if any)."""
    items: list = []
    try:
        for item in iter_statement(source, **kw):
            items.append(item)
    except StatementError as exc:
        return items, exc
    return items, None


def parse(source, **kw) -> list:
    items, error = collect(source, **kw)
    assert error is None, str(error)
    return items


def statements(items: list) -> list[tuple[StatementHeader, list[Entry], StatementEnd | None]]:
    out: list = []
    for item in items:
        if isinstance(item, StatementHeader):
            out.append([item, [], None])
        elif isinstance(item, Entry):
            out[-1][1].append(item)
        else:
            out[-1][2] = item
    return [tuple(s) for s in out]


def squash(text: str) -> str:
    return " ".join(text.split())


# --- golden results of wolph/mt940 (.yml) ----------------------------------------------------------

def load_golden_yaml(path: Path) -> dict:
    """The .yml files are PyYAML dumps of mt940's Python objects; read them as plain data."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the golden .yml files (test dependency)")

    class Loader(yaml.SafeLoader):
        pass

    def python_object(loader, suffix, node):
        data: dict = {}
        yield data
        data.update(loader.construct_mapping(node, deep=True))

    def python_apply(loader, suffix, node):
        args = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else []
        if suffix == "decimal.Decimal":
            return Decimal(args[0])
        if suffix == "mt940.models.Date":  # the pickled state of datetime.date: year (2 bytes), month, day
            raw = args[0]
            return date(raw[0] * 256 + raw[1], raw[2], raw[3])
        return None

    Loader.add_multi_constructor("tag:yaml.org,2002:python/object:", python_object)
    Loader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", python_apply)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)


def signed(balance: dict) -> Decimal:
    amount = balance["amount"]["amount"]
    return -amount if balance["status"] == "D" else amount


@pytest.mark.parametrize("name, balanced", [("mt940", True), ("with_newline_in_tnr", False)])
def test_mbank_samples_match_wolph_golden_results(name, balanced):
    golden = load_golden_yaml(DATA / f"wolph_mt940__mt940_tests_mBank_{name}.yml")
    items, error = collect(DATA / f"wolph_mt940__mt940_tests_mBank_{name}.sta")
    [(header, entries, end)] = statements(items)
    data = golden["data"]

    assert header.account == data["account_identification"].removeprefix("PL")
    assert header.statement_id.split()[0] == data["transaction_reference"]
    assert header.statement_id.split()[1] == f"{data['statement_number']}/{data['sequence_number']}"
    opening = data["final_opening_balance"]
    assert header.opening == signed(opening)
    assert header.opening_date == opening["date"]
    assert header.currency == opening["amount"]["currency"]

    assert len(entries) == len(golden["transactions"])
    for sequence, (entry, transaction) in enumerate(zip(entries, golden["transactions"], strict=True), start=1):
        expected = transaction["data"]
        assert entry.sequence == sequence
        assert entry.amount == expected["amount"]["amount"]
        assert entry.credit == (expected["status"] == "C")
        assert expected["amount"]["currency"] == header.currency
        assert entry.value_date == expected["date"]
        assert entry.booking_date == expected["entry_date"]
        assert entry.bank_reference == expected["bank_reference"]
        details = squash(expected["transaction_details"])
        # the :86: text, taken apart: every piece we report is in it, in the golden result's words
        assert f"Z RACH.: {entry.counterparty_account};" in details
        assert f"OD: {entry.counterparty};" in details
        assert f"TYT.: {entry.title} ;" in details
        assert entry.account_credited == ""

    if balanced:
        assert error is None
        closing = data["final_closing_balance"]
        assert end == StatementEnd(closing=signed(closing), closing_date=closing["date"])
    else:
        # the anonymised sample's closing balance (860,17) is not 0,46 + 45,00 + 44,00
        assert end is None
        assert "się nie bilansuje" in str(error)
        assert "89,46" in str(error) and "860,17" in str(error)
        assert signed(data["final_closing_balance"]) == Decimal("860.17")


def test_mbank_sample_values_read_from_the_text():
    [(header, entries, end)] = statements(parse(DATA / "wolph_mt940__mt940_tests_mBank_mt940.sta"))
    assert entries[0].counterparty == "JAN NOWAK UL. NIJAKA 1 M 2 31-234 KRAKOW"
    assert entries[0].counterparty_account == "56114010810000267002001001"
    assert entries[0].title == "PRZELEW SRODKOW"
    [(_, entries, _)] = statements(collect(DATA / "wolph_mt940__mt940_tests_mBank_with_newline_in_tnr.sta")[0])
    assert entries[0].title == "_FAKTURA VAT NR FVD-0000/02/2017 A AAAAA AAAAAA UL. AAAAAAAAAAA 220/22"
    assert entries[0].counterparty == "AAAAAA AAAAAA UL.AAAAAAAAAAA 27 M.32 31-000 AAAAAA"


def test_mt942_interim_report_is_refused():
    items, error = collect(DATA / "wolph_mt940__mt940_tests_mBank_mt942.sta")
    assert items == []
    assert str(error) == "wiersz 7: to raport śróddzienny MT942 (bez salda otwarcia), a nie wyciąg MT940"


# --- mBank samples of ksdev-pl (ISO-8859-2, no golden results: values checked by hand) --------------

def test_mbank_iph_sample_is_truncated_after_its_entries():
    items, error = collect(DATA / "ksdev-pl_mbank-mt940-parser__tests_MT940_IPH.txt")
    [(header, entries, end)] = statements(items)
    assert str(error) == "plik jest urwany: wyciąg ST100604CYC/1 107/1 nie ma salda końcowego :62F:"
    assert end is None
    assert header == StatementHeader(account="45114011370000310211001001", currency="PLN", opening=Decimal("0.00"),
                                     opening_date=date(2010, 6, 4), closing=None, statement_id="ST100604CYC/1 107/1")
    assert len(entries) == 24
    first = entries[0]
    assert first == Entry(
        booking_date=date(2010, 6, 4), value_date=date(2010, 6, 4), amount=Decimal("6979.18"), credit=True,
        counterparty="GWARANT-CYNKOWANIE SPÓŁKA Z O.O. UL.CIEPŁOWNICZA 27 98-300 WIELUŃ",
        counterparty_account="04105014611000002345271577", title="210F1163", account_credited="",
        bank_reference="EL004391-000970", sequence=1)
    assert entries[1].title == "ZAPŁATA ZA F-RĘ NR 110F02574 Z DN. 20.05.2010"
    assert entries[12].counterparty == "KEMIRA ŚWIECIE SP. Z O.O. UL. BYDGOSKA 1 ŚWIECIE"
    assert entries[-1].credit is False and entries[-1].amount == Decimal("15.00")
    assert entries[-1].title == "OPŁATY GRUPOWE"
    assert sum(e.amount for e in entries if e.credit) == Decimal("340109.70")  # the sum of the 23 ":61:…CN" amounts


def test_mbank_multiple_accounts_sample():
    found = statements(parse(DATA / "ksdev-pl_mbank-mt940-parser__tests_MT940_multiple_accounts.txt"))
    assert [(h.account, h.currency, h.opening, len(e), end.closing) for h, e, end in found] == [
        ("46114010100000579009004001", "PLN", Decimal("8985995772.25"), 38, Decimal("8987999030.37")),
        ("19114010100000579009004002", "PLN", Decimal("100000026.49"), 2, Decimal("100000074.77")),
        ("89114010100000579009004003", "EUR", Decimal("995274499.72"), 7, Decimal("995273634.59")),
        ("62114010100000579009004004", "EUR", Decimal("12.94"), 0, Decimal("12.94")),
        ("35114010100000579009004005", "USD", Decimal("56.48"), 1, Decimal("12.61")),
        ("12114010100000579009005001", "PLN", Decimal("277.87"), 1, Decimal("283.86")),
        ("82114010100000579009005002", "EUR", Decimal("-959.45"), 7, Decimal("-492.89")),
        ("55114010100000579009005003", "USD", Decimal("144.46"), 0, Decimal("144.46")),
    ]
    first = found[0][1]
    post = first[2]
    assert (post.credit, post.amount, post.counterparty, post.title) == (
        False, Decimal("1.51"), "JAN ZAMOJSKI BOHATERÓW GRUNWALDU 4 23 96-300 ŚWINOUJŚCIE",
        "WYGRANA W KONKURSIE TENISOWYM")
    zus = first[3]
    assert zus.counterparty_account == "83101010230000261395100000"
    assert zus.title == ("RODZAJ SKŁADKI: UBEZPIECZENIE SPOŁECZNE; DEKLARACJA: S 200710 01; NIP: 6571112238; "
                         "ID UZUP.: 2 DW2589634; REF. KLIENTA: R12865")
    assert first[4].counterparty == "URZĄD SKARBOWY WARSZAWA-BIELANY WARSZAWA"
    assert first[27] == Entry(
        booking_date=date(2007, 10, 23), value_date=date(2007, 10, 23), amount=Decimal("24.14"), credit=True,
        counterparty="FIRMA 1 SP. Z O.O.", counterparty_account="35109010560000000006093440",
        title="ZAPŁATA ZA FAKTURĘ NR 1/2007", account_credited="", bank_reference="EL002363-000001", sequence=28)
    # "DD": a debit whose funds code D is the third letter of USD
    usd = found[4][1][0]
    assert (usd.credit, usd.amount, usd.title) == (False, Decimal("43.87"), "PRZEKAZANIE ŚRODKÓW")


# --- Pekao "^NN" (MIT samples; values checked by hand) ------------------------------------------------

def test_pekao_caret_sample_1():
    [(header, entries, end)] = statements(parse(DATA / "pekao_caret_sample1.sta"))
    assert (header.account, header.currency, header.opening, header.statement_id) == (
        "50124062921978001062009446", "EUR", Decimal("2376582.31"), "1 00075")
    debit, credit = entries
    assert (debit.credit, debit.amount, debit.booking_date) == (False, Decimal("500000.00"), date(2023, 5, 29))
    # ^20 is 27 characters long, so ^21 continues its word: "dewizo" + "wym"
    assert debit.title == ("Transakcja w obrocie dewizowym, 235T000172FX/4885 :K: 4,500000 :S: 1,000000 :O: "
                           "2 250 000,00 PLN")
    assert debit.counterparty_account == "12124010371111001045285562"
    assert debit.counterparty == ""
    assert credit.title == "/INV S/105/EUR/2023 05/08/2023"
    assert credit.counterparty == ("APTIV Svsc Poland S.A. 2,ULICA PODGORKI TYNIECKIE KRAKOW,30-399 LESSER "
                                   "POLAND,PL")
    assert credit.counterparty_account == "IE27CITI99005133974035"
    assert end == StatementEnd(closing=Decimal("1892582.31"), closing_date=date(2023, 5, 29))


def test_pekao_caret_sample_2_usd_funds_code():
    [(header, [entry], end)] = statements(parse(DATA / "pekao_caret_sample2.sta"))
    assert header.currency == "USD"
    assert (entry.credit, entry.amount) == (True, Decimal("300000.00"))
    assert entry.counterparty == "COLLIERS POLAND SPOŁKA Z O.O. PL PIŁSUDSKIEGO 3 00-078 WARSZAWA PL"
    assert end.closing == Decimal("481716.24")


def test_pekao_caret_sample_3_names_cut_across_subfields():
    [(header, entries, end)] = statements(parse(DATA / "pekao_caret_sample3.sta"))
    first, second, third = entries
    assert first.booking_date == date(2024, 2, 28) and first.value_date == date(2024, 2, 26)
    assert first.title == "FVS/019/EUR/2024"
    assert first.counterparty == ("KR HSBC 002-707644-001 COLLIERS INTERNATIONAL KOREA LTD. 14TH FLOOR,82,"
                                  "SAEMUNAN-RO,JONGNO-GUKW0")
    assert second.counterparty == ("TACAKIEWICZ FERMA KRESEK SPOLKA Z OGRANICZONA ODPOWIEDZIALNOSCIA "
                                   "JELENIOGORSKA 18B 60-179 POZNAN")
    assert second.title == "TF/2024/01/001/EUR netto w eur"
    assert third.counterparty == (
        "OLIVIA SEVEN SPOLKA Z OGRANICZONA ODPOWIEDZIALNOSCIA AL. GRUNWALDZKA 472 80-309 GDANSK")
    assert third.counterparty_account == "81102018110000070203330818"
    assert end.closing == Decimal("1535647.51")


# --- samples of unknown licence, read from shared/reference-data ------------------------------------

def test_pko_tilde_sample():
    path = reference("mt940", "pkobp_tilde_sample_utf8.sta")
    [(header, entries, end)] = statements(parse(path))
    assert (header.account, header.opening, header.statement_id) == (
        "44102055610000380209739045", Decimal("-2671.79"), "MT940 1")
    first, second, third, fourth = entries
    # empty subfields filled with byte 0xFF ("˙") are empty
    assert (first.title, first.counterparty) == ("PRZELEW SRODKÓW", "FSDFSFDSF")
    assert first.counterparty_account == "50102055619000361245650240"
    assert first.bank_reference == "6460500500000513"
    # PKO cuts its title anywhere: ~20 "P 85100158550 0 PI" + ~21 "T-23"
    assert second.title == "P 85100158550 0 PIT-23"
    assert second.counterparty == "DRUGI MAZOWIECKI URZˇD SKARBOWY WARSZAWA"
    assert third.counterparty_account == "FR7630004013280001089882824"
    assert fourth.amount == Decimal("0.75")
    assert all(not e.credit and e.account_credited == "" for e in entries)
    assert end == StatementEnd(closing=Decimal("-3336.72"), closing_date=date(2021, 5, 31))


def test_pko_sample_in_its_original_iso_8859_2():
    """The sample was an ISO-8859-2 file read as Windows-1250 ("URZĄD" became "URZˇD"): writing it back
    as Windows-1250 gives the original bytes, whose encoding the parser must recognise."""
    text = reference("mt940", "pkobp_tilde_sample_utf8.sta").read_text(encoding="utf-8")
    original = text.encode("cp1250")
    assert detect_encoding(original) == "iso8859_2"
    [(_, entries, _)] = statements(parse(original))
    assert entries[1].counterparty == "DRUGI MAZOWIECKI URZĄD SKARBOWY WARSZAWA"
    assert entries[0].title == "PRZELEW SRODKÓW"


def test_mbank_companynet_sample_does_not_add_up():
    items, error = collect(reference("mt940", "mbank_companynet_sample_utf8.sta"))
    [(header, entries, end)] = statements(items)
    assert end is None
    assert str(error) == (
        "wyciąg ST050112CYC/1 8/1 rachunku 06114010100000111111001001 się nie bilansuje: saldo otwarcia "
        "60 213,04 plus uznania 0,00 minus obciążenia 537,33 daje 59 675,71 PLN, a saldo końcowe :62F: "
        "(wiersz 29) wynosi 18 667,79 PLN")
    assert [e.amount for e in entries] == [Decimal(x) for x in ("2.50", "449.77", "2.50", "76.03", "2.50", "4.03")]
    transfer = entries[1]
    assert transfer.counterparty == "PHU Test ul.Dolna 1 00-950 Warszawa"
    assert transfer.counterparty_account == "35109010560000000006093440"
    assert transfer.title == "fv 100/2007"
    assert entries[0].title == "OPŁATA ZA PRZELEW ELIXIR"
    assert entries[0].booking_date == date(2007, 10, 9)
    assert entries[3].title == ("rodzaj składki: Ubezpieczenie społeczne; deklaracja S 200708 01; NIP: 12345678901; "
                                "ID uzup.: R 123456789; ref. Klienta: teścik")


def test_nest_bank_published_example():
    items, error = collect(reference("mt940", "published_examples", "nestbank_mksiegowa_example.sta"))
    (first, entries, end), (second, second_entries, second_end) = statements(items)
    assert (first.account, first.statement_id) == ("00191010482516025400000001", "190827 191")
    assert [(e.amount, e.credit, e.title) for e in entries] == [
        (Decimal("300.00"), False, "Test"), (Decimal("121.77"), False, "")]
    assert entries[0].value_date == date(2020, 2, 4)
    assert entries[0].bank_reference == ""
    assert end.closing == Decimal("1873.15")
    # the page's second statement does not add up (1 873,15 + 6 000,00 is not 1 485,92)
    assert second_end is None and second_entries[0].amount == Decimal("6000.00")
    assert "7 873,15" in str(error) and "1 485,92" in str(error)


def test_nest_bank_lines_ending_in_cr_and_crlf_alternately():
    """The page says Nest Bank ends lines with CR, every second one with CRLF."""
    lines = reference("mt940", "published_examples", "nestbank_mksiegowa_example.sta").read_bytes().split(b"\r\n")
    mixed = b"".join(line + (b"\r\n" if index % 2 else b"\r") for index, line in enumerate(lines))
    assert statements(collect(mixed)[0]) == statements(
        collect(reference("mt940", "published_examples", "nestbank_mksiegowa_example.sta"))[0])


def test_ing_subfields_snippet():
    """The page store collapsed the snippet's line breaks: the two :86: fields are put back on their lines."""
    snippet = reference("mt940", "published_examples", "ing_mksiegowa_86_snippet.txt").read_text(encoding="utf-8")
    fields = snippet.strip().replace(" :86:", "\n:86:")
    statement = (":20:ING\n:25:/PL35105010251000009030193521\n:28C:1\n:60F:C240102PLN100,00\n"
                 ":61:2401020102D12,34NTRFNONREF//ING1\n" + fields + "\n:62F:C240102PLN87,66\n")
    [(_, [entry], end)] = statements(parse(statement.encode()))
    assert entry.title == "FAKTURA 1/F/03 FAKTURA 2/F/03"
    assert entry.counterparty == "KONTRAHENT SP. Z O.O. Ul. GRZYBOWSKA 12 00-950 WARSZAWA"
    assert entry.counterparty_account == "19114020040000350230599137"
    assert entry.account_credited == ""
    assert end.closing == Decimal("87.66")


# --- encodings -------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, detected", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("cp1250", "cp1250"), ("iso8859_2", "iso8859_2"), ("cp852", "cp852")])
def test_the_same_statement_in_every_encoding(encoding, detected):
    text = (DATA / "ksdev-pl_mbank-mt940-parser__tests_MT940_multiple_accounts.txt").read_bytes().decode("iso8859_2")
    data = text.encode(encoding)
    if encoding != "utf-8-sig":
        assert detect_encoding(data) == detected
    expected = parse(text.encode("utf-8"))
    assert parse(data) == expected
    assert any("ŚWINOUJŚCIE" in item.counterparty for item in expected if isinstance(item, Entry))


def test_encoding_is_decided_when_the_first_polish_letter_appears():
    ascii_part = (":20:X\n:25:/PL61109010140000071219812874\n:60F:C250101PLN0,00\n"
                  ":61:2501020102C1,00NTRFNONREF//A\n:86:020~00X~20AAAA\n")
    body = "".join(f":61:2501020102C1,00NTRFNONREF//B{i}\n:86:020~00X~20Wpłata {i} za śmieci\n" for i in range(3))
    data = (ascii_part + body + ":62F:C250102PLN4,00\n").encode("cp852")
    [(_, entries, _)] = statements(parse(data))
    assert entries[3].title == "Wpłata 2 za śmieci"


def test_bytes_that_do_not_fit_the_encoding():
    data = ":20:X\n:25:/PL61109010140000071219812874\n:60F:C250101PLN0,00\n:86:zażółć\n".encode() + b"\xff\xfe\n"
    items, error = collect(b"\xef\xbb\xbf" + data)
    assert str(error) == "wiersz 5: bajt 0xFF nie pasuje do kodowania pliku (UTF-8)"


# --- dialects and rules, on small statements --------------------------------------------------------

def statement(*lines: str, opening: str = "C250101PLN1000,00", closing: str = "C250101PLN1000,00") -> bytes:
    return "\r\n".join((":20:WYCIAG/1", ":25:/PL61109010140000071219812874", ":28C:5/1", f":60F:{opening}", *lines,
                        f":62F:{closing}", "-")).encode("cp1250")


def test_pko_credit_to_an_individual_account():
    data = statement(
        ":61:2511201120C123,45N152NONREF//P1",
        ":86:020~00152", "~20Podatek od nieruchomości I ra", "~21ta 2025", "~22\u02d9", "~3010202892",
        "~312001000071219812", "~32JAN KOWALSKI", "~33\u02d9", "~38PL27114020040000300201355387",
        "~62UL. POLNA 1", "~6300-001 WIEŚ", closing="C251120PLN1123,45")
    assert b"~22\xff" in data  # PKO's filler byte
    [(header, [entry], end)] = statements(parse(data))
    assert entry.credit and entry.amount == Decimal("123.45")
    assert entry.title == "Podatek od nieruchomości I rata 2025"
    assert entry.counterparty == "JAN KOWALSKI UL. POLNA 1 00-001 WIEŚ"
    assert entry.counterparty_account == "27114020040000300201355387"
    # ~30/~31 name an account other than the payer's ~38: the individual account credited
    assert entry.account_credited == "34102028922001000071219812"
    assert entry.booking_date == date(2025, 11, 20)


def test_mbank_credit_names_the_account_credited():
    data = statement(
        ":61:2511201120CN50,00NTRFNONREF//MB1", "911-TRANSAKCJA IPH",
        ":86:911 TRANSAKCJA IPH; ID IPH: XX01; Z RACH.: 27114020040000300201355387; NA RACH.: ",
        "49102028922001000071219812; OD: ANNA NOWAK UL. LIPOWA 2; TYT.: OPŁATA ZA ODPADY 11/2025; TNR: 1.2",
        closing="C251120PLN1050,00")
    [(_, [entry], _)] = statements(parse(data))
    assert (entry.counterparty, entry.counterparty_account, entry.account_credited, entry.title) == (
        "ANNA NOWAK UL. LIPOWA 2", "27114020040000300201355387", "49102028922001000071219812",
        "OPŁATA ZA ODPADY 11/2025")


def test_millennium_and_german_subfields():
    data = statement(
        ":61:2511201120C10,00NTRFNONREF//M1",
        ":86:073<00PRZELEW<20Rata 1<30<3161109010140000071219812874<32Firma A",
        ":61:2511201120D5,00NMSCNONREF//G1",
        ":86:166?00GUTSCHRIFT?20EREF+1234?21SVWZ+Rechnung 7?3012345678?31DE89370400440532013000?32Max Muster",
        closing="C251120PLN1005,00")
    [(_, [first, second], _)] = statements(parse(data))
    assert (first.title, first.counterparty, first.counterparty_account) == (
        "Rata 1", "Firma A", "61109010140000071219812874")
    assert (second.title, second.counterparty, second.counterparty_account) == (
        "EREF+1234 SVWZ+Rechnung 7", "Max Muster", "DE89370400440532013000")


def test_booking_date_across_new_year_and_reversals():
    data = statement(
        ":61:2512310102C100,00NTRFNONREF//R1", ":86:a",
        ":61:2601021231D40,00NTRFNONREF//R2", ":86:b",
        ":61:260102RC7,00NTRFNONREF//R3", ":86:c",
        ":61:260102RD2,00NTRFNONREF//R4", ":86:d",
        closing="C260102PLN1055,00")
    [(_, entries, end)] = statements(parse(data))
    assert [(e.value_date, e.booking_date) for e in entries[:2]] == [
        (date(2025, 12, 31), date(2026, 1, 2)), (date(2026, 1, 2), date(2025, 12, 31))]
    # a reversed credit takes money away, a reversed debit gives it back
    assert [(e.credit, e.amount) for e in entries[2:]] == [(False, Decimal("7.00")), (True, Decimal("2.00"))]
    assert [e.title for e in entries] == ["a", "b", "c", "d"]
    assert end.closing == Decimal("1055.00")


def test_swift_envelope_and_cr_line_ends():
    data = (b"{1:F01BANKPLPWAXXX0000000000}{2:O9401200}{4:\r:20:A\r:25:61109010140000071219812874\r"
            b":60F:D250101PLN5,00\r:61:2501010101C5,00NTRFNONREF//X\r:86:ZWROT\r:62F:C250101PLN0,00\r-}")
    [(header, [entry], end)] = statements(parse(data))
    assert header.opening == Decimal("-5.00") and header.statement_id == "A"
    assert entry.title == "ZWROT" and end.closing == Decimal("0.00")


@pytest.mark.parametrize("lines, message", [
    ((":61:2511201120C12,3XNTRFNONREF//A",), "wiersz 5: pole :61: ma niepoprawną kwotę „12,3X”"),
    ((":61:2513201120C12,30NTRFNONREF//A",), "wiersz 5: pole :61: ma niepoprawną datę „251320”"),
    ((":61:2511201131C12,30NTRFNONREF//A",), "wiersz 5: pole :61: ma niepoprawną datę księgowania „1131”"),
    ((":61:2511201120CR12,30NTRFNONREF//A",),
     "wiersz 5: pole :61: ma kod waluty „R”, który nie pasuje do waluty wyciągu PLN"),
    ((":61:2511201120C12,30",), "wiersz 5: pole :61: nie ma kodu transakcji (np. NTRF) po kwocie: „12,30”"),
    ((":61:X",), "wiersz 5: pole :61: nie zaczyna się od daty waluty RRMMDD i znacznika C/D: „X”"),
])
def test_bad_entry_lines(lines, message):
    items, error = collect(statement(*lines))
    assert str(error) == message
    assert len(items) == 1  # the header came before the bad line


def test_closing_balance_problems():
    _, error = collect(statement(closing="C250101EUR1000,00"))
    assert str(error) == "wiersz 5: saldo końcowe jest w walucie EUR, a saldo otwarcia w PLN"
    _, error = collect(statement(closing="C250101PLN1000,0,0"))
    assert str(error) == "wiersz 5: pole :62F: ma niepoprawną kwotę „1000,0,0”"
    _, error = collect(statement(":61:2501010101D0,01NTRFNONREF//A"))
    assert str(error) == (
        "wyciąg WYCIAG/1 5/1 rachunku 61109010140000071219812874 się nie bilansuje: saldo otwarcia 1 000,00 "
        "plus uznania 0,00 minus obciążenia 0,01 daje 999,99 PLN, a saldo końcowe :62F: (wiersz 6) wynosi "
        "1 000,00 PLN")


def test_structure_problems():
    assert str(collect(b":20:A\n:25:1\n:61:2501010101C1,00NTRFX\n")[1]) == \
        "wiersz 3: pole :61: przed saldem otwarcia :60F:"
    assert str(collect(b":20:A\n:60F:C250101PLN1,00\n")[1]) == \
        "wiersz 2: saldo otwarcia bez numeru rachunku (pole :25:)"
    assert str(collect(b":20:A\n:25:1\n:60F:C250101PLN1,00\n:20:B\n")[1]) == \
        "wiersz 4: nowy wyciąg (:20:) zaczyna się, zanim wyciąg A zakończył się saldem końcowym :62F:"
    assert str(collect(b"hello\n:20:A\n")[1]) == \
        "nieznany format pliku: to nie jest wyciąg MT940 ani plik XML camt.053/camt.054"
    assert str(collect(b":20:A\nhello\n")[1]) == "w pliku nie ma żadnego wyciągu MT940 (brak pól :60F: i :62F:)"
    assert str(collect(b"  \n\n")[1]) == "plik jest pusty"
    assert str(collect(b":20:A\n:25:1\n:60F:C250101PLN1,00\n:60F:C250101PLN1,00\n")[1]) == \
        "wiersz 4: drugie saldo otwarcia :60F: w jednym wyciągu"
    assert str(collect(b":20:A\n:25:1\n:60F:C250101PLN1,00\n:62F:C250101PLN1,00\n:61:2501010101C1,00NTRFX\n")[1]) \
        == "wiersz 5: pole :61: po saldzie końcowym wyciągu"
    assert str(collect(b":20:A\n:25:1\n:60F:X250101PLN1,00\n")[1]).startswith(
        "wiersz 3: pole :60F: powinno mieć postać C/D, data RRMMDD, waluta, kwota")
    assert str(collect(b":20:A\n:86:" + b"x" * 70000 + b"\n")[1]) == "wiersz 2: wiersz jest za długi jak na MT940"


def test_size_limit_is_checked_before_and_while_reading(tmp_path):
    data = statement(*[f":61:2501010101C1,00NTRFNONREF//{i}" for i in range(50)], closing="C250101PLN1050,00")
    assert len(parse(data)) == 52
    _, error = collect(data, max_bytes=1000)
    assert str(error) == f"plik ma {len(data)} bajtów, więcej niż dopuszczalne 1000"
    path = tmp_path / "wyciag.sta"
    path.write_bytes(data)
    assert str(collect(path, max_bytes=1000)[1]) == f"plik ma {len(data)} bajtów, więcej niż dopuszczalne 1000"

    class Pipe(io.RawIOBase):  # not seekable: the size shows only while reading
        def __init__(self) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self._data.read(min(len(buffer), 300))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    assert str(collect(io.BufferedReader(Pipe(), 300), max_bytes=1000)[1]) == \
        "plik jest większy niż dopuszczalne 1000 bajtów"
    assert len(parse(io.BufferedReader(Pipe(), 300))) == 52
    assert str(collect(tmp_path / "brak.sta")[1]).startswith("nie można otworzyć pliku")


def test_statement_as_json():
    result = parse_statement_json(statement(
        ":61:2511201120C123,45NTRFNONREF//A", ":86:020~00152~20Opłata~32Jan", closing="C251120PLN1123,45"))
    assert result == {"statements": [{
        "account": "61109010140000071219812874", "currency": "PLN", "opening": "1000.00", "closing": "1123.45",
        "entries": [{"booking_date": "2025-11-20", "value_date": "2025-11-20", "amount": "123.45", "credit": True,
                     "counterparty": "Jan", "counterparty_account": "", "title": "Opłata", "account_credited": ""}],
    }]}


# --- every sample is covered ------------------------------------------------------------------------

COVERED = {
    "wolph_mt940__mt940_tests_mBank_mt940.sta", "wolph_mt940__mt940_tests_mBank_mt942.sta",
    "wolph_mt940__mt940_tests_mBank_with_newline_in_tnr.sta", "ksdev-pl_mbank-mt940-parser__tests_MT940_IPH.txt",
    "ksdev-pl_mbank-mt940-parser__tests_MT940_multiple_accounts.txt", "pekao_caret_sample1.sta",
    "pekao_caret_sample2.sta", "pekao_caret_sample3.sta", "pkobp_tilde_sample_utf8.sta",
    "mbank_companynet_sample_utf8.sta", "published_examples/nestbank_mksiegowa_example.sta",
    "published_examples/ing_mksiegowa_86_snippet.txt",
}
GOLDEN_OR_NOTES = {"PROVENANCE.txt", "published_examples/BANK_FORMAT_NOTES.md",
                   "wolph_mt940__mt940_tests_mBank_mt940.yml", "wolph_mt940__mt940_tests_mBank_with_newline_in_tnr.yml"}


def test_every_reference_sample_has_a_test():
    folder = reference("mt940")
    present = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    assert present - GOLDEN_OR_NOTES == COVERED
    copied = {path.name for path in DATA.iterdir()}
    assert copied <= present
