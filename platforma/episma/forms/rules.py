"""The forms' rules as pure functions: amounts typed the Polish way, the land register number, the waste fee.

No Flask and no session here.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

ZERO = Decimal(0)
CENT = Decimal("0.01")

# -- amounts and quantities typed by people -------------------------------------------------------

_NUMBER = re.compile(r"^\d{1,3}(?:[ \u00a0]\d{3})+(?:[.,]\d+)?$|^\d+(?:[.,]\d+)?$")


def parse_decimal(text: str, *, places: int) -> Decimal:
    """ "1 234,5" or "1234.50" as Decimal; ValueError when it is not a non-negative number with at most
    `places` decimal places (nothing is rounded: a figure the person typed is kept as typed)."""
    cleaned = (text or "").strip()
    if not _NUMBER.match(cleaned):
        raise ValueError("not a number")
    try:
        number = Decimal(cleaned.replace(" ", "").replace("\u00a0", "").replace(",", "."))
    except InvalidOperation:
        raise ValueError("not a number") from None
    quantum = Decimal(1).scaleb(-places)
    if number != number.quantize(quantum):
        raise ValueError("too many places")
    return number.quantize(quantum)


def decimal_text(value: Decimal, places: int) -> str:
    """The XML and JSON form: a dot and exactly `places` places."""
    return str(value.quantize(Decimal(1).scaleb(-places)))


# -- the land register number (numer księgi wieczystej) --------------------------------------------

#: the characters of a court code and their values for the check digit (rozporządzenie Ministra
#: Sprawiedliwości o zakładaniu i prowadzeniu ksiąg wieczystych w systemie teleinformatycznym)
_KW_VALUES = {**{str(d): d for d in range(10)}, "X": 10,
              **{ch: 11 + i for i, ch in enumerate("ABCDEFGHIJKLMNOPRSTUWYZ")}}
_KW_WEIGHTS = (1, 3, 7) * 4
KW_PATTERN = re.compile(r"^([A-Z0-9]{4})/(\d{8})/(\d)$")


def kw_check_digit(court: str, number: str) -> int:
    """The check digit of a land register number: the 12 characters weighted 1, 3, 7 in turn, mod 10."""
    chars = court + number
    if len(chars) != 12 or any(ch not in _KW_VALUES for ch in chars):
        raise ValueError("a court code of 4 characters and 8 digits expected")
    return sum(_KW_VALUES[ch] * weight for ch, weight in zip(chars, _KW_WEIGHTS)) % 10


def normalise_kw(text: str) -> str:
    """ "po1p/00012345/1" -> "PO1P/00012345/1"; ValueError (Polish) for a wrong form or check digit."""
    value = re.sub(r"\s+", "", text or "").upper()
    match = KW_PATTERN.match(value)
    if not match or any(ch not in _KW_VALUES for ch in match.group(1)):
        raise ValueError("Wpisz numer księgi wieczystej w postaci KOD/NUMER/CYFRA, np. PO1P/00012345/1")
    if kw_check_digit(match.group(1), match.group(2)) != int(match.group(3)):
        raise ValueError("Numer księgi wieczystej ma błędną cyfrę kontrolną: sprawdź go w odpisie z księgi")
    return value


# -- the waste fee ---------------------------------------------------------------------------------

def waste_fee(persons: int, rate: Decimal, discount: Decimal | None, composting: bool) -> Decimal:
    """The monthly waste fee of a declaration DO: persons × the rate per person (art. 6j ust. 1 pkt 1,
    art. 6k ust. 1 pkt 1 ucpg), less persons × the discount for composting bio-waste in a home
    composter (art. 6k ust. 4a ucpg), never below zero. Kept in grosze, not rounded to złoty
    (art. 63 OP applies to taxes, not to this fee)."""
    if persons < 0:
        raise ValueError("persons must not be negative")
    fee = persons * rate
    if composting and discount:
        fee -= persons * discount
    return max(fee, ZERO).quantize(CENT)


# -- text that XML can carry ------------------------------------------------------------------------

#: XML 1.0 "Char": no control characters other than tab and line breaks, no surrogates, no U+FFFE/FFFF
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> bool:
    return _NOT_XML.search(text) is None


def clean_text(text: str | None, *, multiline: bool = False) -> str:
    """What a text field keeps: line breaks as "\\n" (XML reads "\\r\\n" as "\\n"), outer blanks trimmed;
    a one-line field has no line breaks at all."""
    value = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not multiline:
        value = " ".join(value.split("\n"))
    return value
