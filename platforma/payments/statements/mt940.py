"""MT940 statements in the Polish banks' dialects, read line by line.

Field :86: comes in three shapes:
- structured, subfields marked "~NN" (PKO BP, ING), "^NN" (Pekao), "<NN" (Millennium) or "?NN"
  (German style): ~20..~25 title, ~32/~33 counterparty name (~27..~29 where a bank puts it there),
  ~62..~63 its address (Pekao puts amounts in ^64), ~30 + ~31 or ~38 its account; PKO fills an empty
  subfield with byte 0xFF;
- free text with ";"-separated "KEY: value" parts (mBank: "Z RACH.:", "OD:", "NA RACH.:", "DLA:", "TYT.:");
- anything else, taken whole as the title.

For a credit the counterparty is the payer. The individual account credited is read from "NA RACH.:"
(free text) or, in structured dialects, from ~29 or ~30/~31 where they name an account other than the
payer's ~38 (banks that report the beneficiary's virtual account there).
"""
from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from collections.abc import Iterator

from platforma.payments.statements.common import (
    CHUNK_SIZE,
    BoundedReader,
    join_chunks,
    looks_like_account,
    nearest_date,
    normalise_account,
    normalise_space,
    nrb_from_parts,
    pl_amount,
)
from platforma.payments.statements.model import Entry, StatementEnd, StatementError, StatementHeader

#: a line longer than this is not MT940
MAX_LINE = 64 * 1024
#: nor is a field (a tag and its continuation lines) longer than this
MAX_FIELD = 256 * 1024

_EOL = re.compile(rb"\r\n|\r|\n")
_TAG = re.compile(r":(\d{2}[A-Z]?|NS):")
_ENVELOPE = re.compile(r"^(\{\d:[^{}]*\})*(\{4:)?")
_BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>.*)")
_AMOUNT = re.compile(r"\d{1,18}(,\d{0,6})?")
_61_HEAD = re.compile(r"(?P<vdate>\d{6})(?P<bdate>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z](?=[\d,]))?")
_61_TAIL = re.compile(r"(?P<amount>[^NSF]*?)(?P<type>[NSF][A-Z0-9]{3})(?P<customer>.*?)(?://(?P<bank>.*))?")
_STRUCTURED = re.compile(r"\s*(?:\d{1,3})?\s*([~^<?])\d{2}")
_FILLER = "\u02d9\u00ff"  # byte 0xFF read as cp1250 / ISO-8859-2 ("˙") or Latin-1 ("ÿ")
_POLISH = frozenset("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")
_CODEPAGES = ("cp1250", "iso8859_2", "cp852")
_CODEC_NAMES = {"utf-8": "UTF-8", "cp1250": "Windows-1250", "iso8859_2": "ISO-8859-2", "cp852": "CP852",
                "ascii": "ASCII"}

#: widths of structured :86: subfields: a piece this long was cut mid-word
_WIDTHS = (27, 35)
#: tags that begin a statement's header when no :20: came first
_OPENING_TAGS = ("25", "28", "28C", "60F", "60M", "60")

# mBank free-text keys
_FROM_ACCOUNT, _TO_ACCOUNT, _FROM_NAME, _TO_NAME, _TITLE = "Z RACH.", "NA RACH.", "OD", "DLA", "TYT."
_PARTY_KEYS = frozenset({_FROM_ACCOUNT, _TO_ACCOUNT, _FROM_NAME, _TO_NAME, _TITLE, "TNR"})
_NOT_TITLE = frozenset({_FROM_ACCOUNT, _TO_ACCOUNT, _FROM_NAME, _TO_NAME, "TNR", "DATA STEMPLA", "ID IPH"})


def iter_mt940(reader: BoundedReader) -> Iterator[StatementHeader | Entry | StatementEnd]:
    parser = _Parser()
    for line_no, tag, lines in _fields(_decoded_lines(reader)):
        yield from parser.field(line_no, tag, lines)
    yield from parser.finish()


# --- lines, encoding and fields -------------------------------------------------------------------

class _ByteLines:
    """Physical lines of the file (CR, LF or CRLF), read in chunks; `rest` is what is buffered ahead."""

    def __init__(self, reader: BoundedReader):
        self._reader = reader
        self._buffer = b""
        self._pos = 0
        self._eof = False
        self.line_no = 0

    @property
    def rest(self) -> bytes:
        return self._buffer[self._pos:]

    def __iter__(self) -> Iterator[bytes]:
        while True:
            match = _EOL.search(self._buffer, self._pos)
            # a CR that ends the buffer may be the first half of CRLF
            if match is None or (not self._eof and match.end() == len(self._buffer) and match.group() == b"\r"):
                if self._eof:
                    if self._pos < len(self._buffer):
                        self.line_no += 1
                        line, self._buffer, self._pos = self._buffer[self._pos:], b"", 0
                        yield line
                    return
                if len(self._buffer) - self._pos > MAX_LINE:
                    raise StatementError(f"wiersz {self.line_no + 1}: wiersz jest za długi jak na MT940")
                chunk = self._reader.read(CHUNK_SIZE)
                self._buffer, self._pos = self._buffer[self._pos:] + chunk, 0
                self._eof = not chunk
                continue
            self.line_no += 1
            line = self._buffer[self._pos:match.start()]
            self._pos = match.end()
            if len(line) > MAX_LINE:
                raise StatementError(f"wiersz {self.line_no}: wiersz jest za długi jak na MT940")
            yield line


def _decoded_lines(reader: BoundedReader) -> Iterator[tuple[int, str]]:
    lines = _ByteLines(reader)
    codec: str | None = None
    for raw in lines:
        if lines.line_no == 1 and raw.startswith(codecs.BOM_UTF8):
            raw, codec = raw[len(codecs.BOM_UTF8):], "utf-8"
        if codec is None and not raw.isascii():
            codec = detect_encoding(raw + b"\n" + lines.rest)
        try:
            text = raw.decode(codec or "ascii")
        except UnicodeDecodeError as exc:
            raise StatementError(
                f"wiersz {lines.line_no}: bajt 0x{raw[exc.start]:02X} nie pasuje do kodowania pliku "
                f"({_CODEC_NAMES[codec or 'ascii']})") from exc
        yield lines.line_no, text


def detect_encoding(sample: bytes) -> str:
    """UTF-8 if the sample is valid UTF-8, else the code page (Windows-1250, ISO-8859-2 or CP852) in
    which it reads as Polish: the most Polish letters, the fewest foreign letters, symbols and controls."""
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best, best_score = "iso8859_2", None
    for codec in _CODEPAGES:
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        score = 0
        for char, count in Counter(re.findall(r"[^\x00-\x7f]", text)).items():
            if char in _POLISH:
                score += 2 * count
            elif unicodedata.category(char) in ("Lu", "Ll"):
                score -= count
            else:
                score -= 3 * count
        if best_score is None or score > best_score:
            best, best_score = codec, score
    return best


def _fields(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str, list[str]]]:
    """(line of the tag, tag, [the value's first line, continuation lines...])."""
    tag: str | None = None
    start = 0
    values: list[str] = []
    size = 0
    for line_no, text in lines:
        text = text.strip("\x01\x03\x00")
        if text.startswith("{"):
            text = _ENVELOPE.sub("", text, count=1)
        if not text.strip() or text.strip() in ("-", "-}", "}"):
            continue
        match = _TAG.match(text)
        if match:
            if tag is not None:
                yield start, tag, values
            tag, start, values, size = match.group(1), line_no, [text[match.end():]], len(text)
            continue
        if tag is None:
            raise StatementError(f"wiersz {line_no}: to nie jest plik MT940 (oczekiwano pola takiego jak :20:)")
        size += len(text)
        if size > MAX_FIELD:
            raise StatementError(f"wiersz {line_no}: pole :{tag}: jest za długie")
        values.append(text)
    if tag is not None:
        yield start, tag, values


# --- statements -----------------------------------------------------------------------------------

@dataclass
class _Pending:
    """A :61: line waiting for its :86: details."""

    line_no: int
    value_date: date
    booking_date: date
    amount: Decimal
    credit: bool
    bank_reference: str
    details: list[list[str]] = field(default_factory=list)


@dataclass
class _Statement:
    reference: str = ""
    account: str = ""
    number: str = ""
    interim_report: bool = False
    header: StatementHeader | None = None
    entries: int = 0
    credits: Decimal = Decimal(0)
    debits: Decimal = Decimal(0)
    closed: bool = False


class _Parser:
    def __init__(self) -> None:
        self.statement: _Statement | None = None
        self.pending: _Pending | None = None
        self.statements = 0

    def field(self, line_no: int, tag: str, lines: list[str]) -> Iterator[StatementHeader | Entry | StatementEnd]:
        value = lines[0].strip()
        statement = self.statement
        if tag == "20":
            if statement is not None and statement.header is not None and not statement.closed:
                raise StatementError(
                    f"wiersz {line_no}: nowy wyciąg (:20:) zaczyna się, zanim wyciąg {statement.header.statement_id} "
                    f"zakończył się saldem końcowym :62F:")
            self.statement = _Statement(reference=value)
            return
        if statement is None or (statement.closed and tag in _OPENING_TAGS):
            if tag not in _OPENING_TAGS + ("61", "62F", "62M", "62"):
                return
            statement = self.statement = _Statement()
        if tag == "25":
            statement.account = normalise_account(value)
        elif tag in ("28", "28C"):
            statement.number = value
        elif tag in ("13", "13D", "34F", "90C", "90D"):
            statement.interim_report = statement.interim_report or statement.header is None
        elif tag in ("60F", "60M", "60"):
            yield self._open(line_no, tag, value, statement)
        elif tag == "61":
            self._require_open(line_no, tag, statement)
            if self.pending is not None:
                yield self._entry(self.pending, statement)
            self.pending = self._line61(line_no, lines, statement)
        elif tag == "86":
            if self.pending is not None:
                self.pending.details.append(lines)
        elif tag in ("62F", "62M", "62"):
            self._require_open(line_no, tag, statement)
            if self.pending is not None:
                yield self._entry(self.pending, statement)
                self.pending = None
            yield self._close(line_no, tag, value, statement)

    def finish(self) -> Iterator[StatementHeader | Entry | StatementEnd]:
        statement = self.statement
        if statement is not None and statement.header is not None and not statement.closed:
            if self.pending is not None:
                yield self._entry(self.pending, statement)
                self.pending = None
            raise StatementError(
                f"plik jest urwany: wyciąg {statement.header.statement_id} nie ma salda końcowego :62F:")
        if self.statements == 0:
            if statement is not None and statement.interim_report:
                raise StatementError("to raport śróddzienny MT942 (bez sald), a nie wyciąg MT940")
            raise StatementError("w pliku nie ma żadnego wyciągu MT940 (brak pól :60F: i :62F:)")

    def _require_open(self, line_no: int, tag: str, statement: _Statement) -> None:
        if statement.header is None:
            if statement.interim_report:
                raise StatementError(
                    f"wiersz {line_no}: to raport śróddzienny MT942 (bez salda otwarcia), a nie wyciąg MT940")
            raise StatementError(f"wiersz {line_no}: pole :{tag}: przed saldem otwarcia :60F:")
        if statement.closed:
            raise StatementError(f"wiersz {line_no}: pole :{tag}: po saldzie końcowym wyciągu")

    def _open(self, line_no: int, tag: str, value: str, statement: _Statement) -> StatementHeader:
        if statement.header is not None:
            raise StatementError(f"wiersz {line_no}: drugie saldo otwarcia :{tag}: w jednym wyciągu")
        if not statement.account:
            raise StatementError(f"wiersz {line_no}: saldo otwarcia bez numeru rachunku (pole :25:)")
        amount, day, currency = _balance(line_no, tag, value)
        statement_id = " ".join(part for part in (statement.reference, statement.number) if part)
        statement.header = StatementHeader(
            account=statement.account, currency=currency, opening=amount, opening_date=day, closing=None,
            statement_id=statement_id)
        self.statements += 1
        return statement.header

    def _close(self, line_no: int, tag: str, value: str, statement: _Statement) -> StatementEnd:
        header = statement.header
        assert header is not None
        closing, day, currency = _balance(line_no, tag, value)
        if currency != header.currency:
            raise StatementError(
                f"wiersz {line_no}: saldo końcowe jest w walucie {currency}, a saldo otwarcia w {header.currency}")
        expected = header.opening + statement.credits - statement.debits
        if expected != closing:
            raise StatementError(
                f"wyciąg {header.statement_id} rachunku {header.account} się nie bilansuje: saldo otwarcia "
                f"{pl_amount(header.opening)} plus uznania {pl_amount(statement.credits)} minus obciążenia "
                f"{pl_amount(statement.debits)} daje {pl_amount(expected)} {header.currency}, a saldo końcowe "
                f":{tag}: (wiersz {line_no}) wynosi {pl_amount(closing)} {header.currency}")
        statement.closed = True
        return StatementEnd(closing=closing, closing_date=day)

    def _line61(self, line_no: int, lines: list[str], statement: _Statement) -> _Pending:
        text = lines[0].strip()
        head = _61_HEAD.match(text)
        if head is None:
            raise StatementError(
                f"wiersz {line_no}: pole :61: nie zaczyna się od daty waluty RRMMDD i znacznika C/D: „{text[:40]}”")
        value_date = _date6(line_no, "61", head["vdate"])
        booking_date = value_date
        if head["bdate"]:
            try:
                booking_date = nearest_date(value_date, int(head["bdate"][:2]), int(head["bdate"][2:]))
            except ValueError:
                raise StatementError(
                    f"wiersz {line_no}: pole :61: ma niepoprawną datę księgowania „{head['bdate']}”") from None
        currency = statement.header.currency if statement.header else ""
        if head["funds"] and currency and head["funds"] != currency[2:3]:
            raise StatementError(
                f"wiersz {line_no}: pole :61: ma kod waluty „{head['funds']}”, który nie pasuje do waluty "
                f"wyciągu {currency}")
        tail = _61_TAIL.fullmatch(text, head.end())
        if tail is None:
            raise StatementError(
                f"wiersz {line_no}: pole :61: nie ma kodu transakcji (np. NTRF) po kwocie: „{text[head.end():][:30]}”")
        amount = _amount(line_no, "61", tail["amount"])
        bank_reference = (tail["bank"] or "").strip()
        if not bank_reference and len(lines) > 1 and lines[1].startswith("//"):
            bank_reference = lines[1][2:].strip()
        return _Pending(
            line_no=line_no, value_date=value_date, booking_date=booking_date, amount=amount,
            credit=head["mark"] in ("C", "RD"), bank_reference=bank_reference)

    def _entry(self, pending: _Pending, statement: _Statement) -> Entry:
        details = _details(pending.details, pending.credit)
        statement.entries += 1
        if pending.credit:
            statement.credits += pending.amount
        else:
            statement.debits += pending.amount
        return Entry(
            booking_date=pending.booking_date, value_date=pending.value_date, amount=pending.amount,
            credit=pending.credit, counterparty=details.counterparty,
            counterparty_account=details.counterparty_account, title=details.title,
            account_credited=details.account_credited, bank_reference=pending.bank_reference,
            sequence=statement.entries)


def _balance(line_no: int, tag: str, value: str) -> tuple[Decimal, date, str]:
    match = _BALANCE.fullmatch(value)
    if match is None:
        raise StatementError(
            f"wiersz {line_no}: pole :{tag}: powinno mieć postać C/D, data RRMMDD, waluta, kwota: „{value[:40]}”")
    amount = _amount(line_no, tag, match["amount"])
    return (-amount if match["mark"] == "D" else amount), _date6(line_no, tag, match["date"]), match["currency"]


def _amount(line_no: int, tag: str, text: str) -> Decimal:
    if not _AMOUNT.fullmatch(text):
        raise StatementError(f"wiersz {line_no}: pole :{tag}: ma niepoprawną kwotę „{text[:30]}”")
    try:
        return Decimal(text.replace(",", ".").rstrip(".") or "0")
    except InvalidOperation:
        raise StatementError(f"wiersz {line_no}: pole :{tag}: ma niepoprawną kwotę „{text[:30]}”") from None


def _date6(line_no: int, tag: str, text: str) -> date:
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise StatementError(f"wiersz {line_no}: pole :{tag}: ma niepoprawną datę „{text}”") from None


# --- field :86: -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Details:
    counterparty: str = ""
    counterparty_account: str = ""
    title: str = ""
    account_credited: str = ""


def _details(blocks: list[list[str]], credit: bool) -> _Details:
    structured = []
    for block in blocks:
        text = "".join(block)
        match = _STRUCTURED.match(text)
        if match:
            structured.append((match.group(1), text))
    if structured:
        marker = structured[0][0]
        return _structured(marker, "".join(text for m, text in structured if m == marker), credit)
    return _free_text(blocks, credit)


def _subfields(marker: str, text: str) -> dict[int, list[str]]:
    parts = re.split(re.escape(marker) + r"(\d{2})", text)
    fields: dict[int, list[str]] = {}
    for index in range(1, len(parts), 2):
        value = parts[index + 1]
        if not value.strip(_FILLER + " \t\xa0"):
            value = ""
        fields.setdefault(int(parts[index]), []).append(value)
    return fields


def _structured(marker: str, text: str, credit: bool) -> _Details:
    fields = _subfields(marker, text)

    def chunks(*numbers: int) -> list[str]:
        return [value for number in numbers for value in fields.get(number, [])]

    def one(number: int) -> str:
        return normalise_space("".join(fields.get(number, [])))

    german = marker == "?"
    title_numbers = (*range(20, 30), *range(60, 64)) if german else range(20, 26)
    # PKO cuts its title anywhere and pads nothing: its pieces always continue directly
    title = join_chunks(chunks(*title_numbers), widths=None if marker == "~" else _WIDTHS)
    names = chunks(32, 33)
    if not "".join(names).strip() and not german:
        names = [value for value in chunks(27, 28, 29) if not looks_like_account(normalise_account(value))]
    address = [] if german else chunks(62, 63)
    counterparty = join_chunks(names + address, widths=_WIDTHS)

    account = normalise_account(one(38))
    if not looks_like_account(account):
        account = normalise_account(one(31))
        if not looks_like_account(account):
            account = nrb_from_parts(one(30), one(31))
    credited = ""
    if credit:
        for candidate in (normalise_account(one(29)), normalise_account(one(31)), nrb_from_parts(one(30), one(31))):
            if looks_like_account(candidate) and candidate != account:
                credited = candidate
                break
    return _Details(counterparty=counterparty, counterparty_account=account, title=title,
                    account_credited=credited)


def _free_text(blocks: list[list[str]], credit: bool) -> _Details:
    lines = [line for block in blocks for line in block]
    # Nest Bank ends :86: with a line holding only the transaction code
    if len(lines) > 1 and re.fullmatch(r"\s*\d{3}\s*", lines[-1]):
        lines = lines[:-1]
    text = normalise_space(" ".join(lines))
    segments = text.split(";")
    keyed: list[tuple[str, str, str]] = []
    for segment in segments[1:]:
        key, colon, value = segment.partition(":")
        key = normalise_space(key).upper()
        keyed.append((key if colon else "", normalise_space(value if colon else segment), segment.strip()))
    if not any(key in _PARTY_KEYS for key, _, _ in keyed):
        return _Details(title=text)

    values: dict[str, str] = {}
    for key, value, _ in keyed:
        if key and value and key not in values:
            values[key] = value
    title = values.get(_TITLE, "")
    if not title:
        title = "; ".join(raw for key, _, raw in keyed if key not in _NOT_TITLE and raw)
    if not title:
        title = normalise_space(re.sub(r"^\d{1,3}(\s+|$)", "", segments[0].strip()))
    if credit:
        return _Details(counterparty=values.get(_FROM_NAME, ""),
                        counterparty_account=normalise_account(values.get(_FROM_ACCOUNT, "")),
                        title=title, account_credited=normalise_account(values.get(_TO_ACCOUNT, "")))
    return _Details(counterparty=values.get(_TO_NAME, ""),
                    counterparty_account=normalise_account(values.get(_TO_ACCOUNT, "")), title=title)
