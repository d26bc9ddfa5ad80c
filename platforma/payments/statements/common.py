"""What both formats share: reading a bounded source, and normalising text, accounts and amounts."""
from __future__ import annotations

import io
import os
import re
from datetime import date
from decimal import Decimal
from typing import BinaryIO

from platforma.payments.rules import nrb_check_digits
from platforma.payments.statements.model import StatementError

#: how much is read at once; also the window in which an MT940 file's encoding is decided
CHUNK_SIZE = 1024 * 1024

_IBAN_RE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}")


class BoundedReader:
    """A binary source read in chunks that refuses to go past `max_bytes`; `peek` looks at the start."""

    def __init__(self, raw: BinaryIO, max_bytes: int, *, owned: bool):
        self._raw = raw
        self._max = max_bytes
        self._owned = owned
        self._head = b""
        self.bytes_read = 0

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            chunk = self._read_raw(size - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:size]

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK_SIZE
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._read_raw(size)

    def _read_raw(self, size: int) -> bytes:
        try:
            data = self._raw.read(size)
        except OSError as exc:
            raise StatementError(f"nie można odczytać pliku: {exc}") from exc
        if data is None:
            data = b""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StatementError("plik trzeba otworzyć w trybie binarnym")
        self.bytes_read += len(data)
        if self.bytes_read > self._max:
            raise StatementError(f"plik jest większy niż dopuszczalne {self._max} bajtów")
        return bytes(data)

    def close(self) -> None:
        if self._owned:
            self._raw.close()


def open_source(source: BinaryIO | bytes | str | os.PathLike, max_bytes: int) -> BoundedReader:
    """Open what the caller gave (bytes, a path or a binary file object), refusing a source known to
    be too large before reading it."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), max_bytes)
        return BoundedReader(io.BytesIO(data), max_bytes, owned=True)
    if isinstance(source, str | os.PathLike):
        try:
            size = os.stat(source).st_size
            _check_size(size, max_bytes)
            raw = open(source, "rb")
        except OSError as exc:
            raise StatementError(f"nie można otworzyć pliku {os.fspath(source)}: {exc.strerror or exc}") from exc
        return BoundedReader(raw, max_bytes, owned=True)
    if not hasattr(source, "read"):
        raise StatementError("nieobsługiwane źródło wyciągu: podaj bajty, ścieżkę albo plik binarny")
    try:
        if source.seekable():
            position = source.tell()
            end = source.seek(0, os.SEEK_END)
            source.seek(position)
            _check_size(end - position, max_bytes)
    except (OSError, AttributeError, ValueError):
        pass
    return BoundedReader(source, max_bytes, owned=False)


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise StatementError(f"plik ma {size} bajtów, więcej niż dopuszczalne {max_bytes}")


# --- text -----------------------------------------------------------------------------------------

def normalise_space(text: str) -> str:
    """One space between words, none at the ends (no-break spaces and line breaks included)."""
    return " ".join(text.split())


def join_chunks(chunks: list[str], *, widths: tuple[int, ...] | None) -> str:
    """Join the fixed-width pieces a bank cut a text into. A piece exactly as long as one of `widths`
    was cut mid-text and continues directly; a shorter one ended a phrase, so a space follows it.
    With no widths every piece continues directly."""
    out = ""
    for index, chunk in enumerate(chunks):
        if index and widths is not None and len(chunks[index - 1]) not in widths:
            out += " "
        out += chunk
    return normalise_space(out)


# --- accounts -------------------------------------------------------------------------------------

def normalise_account(value: str) -> str:
    """NRB as 26 digits (no "PL", no spaces); any other IBAN or number without spaces, as given."""
    cleaned = re.sub(r"\s", "", value or "").upper().lstrip("/")
    if re.fullmatch(r"PL\d{26}", cleaned):
        return cleaned[2:]
    return cleaned


def looks_like_account(value: str) -> bool:
    return bool(re.fullmatch(r"\d{26}", value) or _IBAN_RE.fullmatch(value))


def nrb_from_parts(sort_code: str, account: str) -> str:
    """An NRB from a sort code (8 digits) and the rest of the account (16 digits), as MT940 subfields
    ~30 and ~31 give them; "" when they are not those."""
    if re.fullmatch(r"\d{8}", sort_code) and re.fullmatch(r"\d{16}", account):
        bban = sort_code + account
        return nrb_check_digits(bban) + bban
    return ""


# --- amounts and dates ----------------------------------------------------------------------------

def pl_amount(value: Decimal) -> str:
    """An amount the Polish way: "-1 234,56" (at least two decimals, more if the file had more)."""
    text = money_str(abs(value))
    whole, _, fraction = text.partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return ("-" if value < 0 else "") + " ".join(groups) + "," + fraction


def money_str(value: Decimal) -> str:
    """Fixed-point text with at least two decimals, keeping any further decimals the source had."""
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


def nearest_date(year_hint: date, month: int, day: int) -> date:
    """The date with this month and day closest to `year_hint` (MT940 gives a booking date as MMDD
    next to the value date, so an entry booked on 2 January may carry a value date of 31 December)."""
    candidates = []
    for year in (year_hint.year - 1, year_hint.year, year_hint.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue
    if not candidates:
        raise ValueError("no such month and day")
    return min(candidates, key=lambda d: abs((d - year_hint).days))
