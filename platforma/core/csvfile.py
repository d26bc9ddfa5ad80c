"""CSV files for clerks and accountants: semicolons (as Polish Excel reads them), CRLF line ends, and
no cell a spreadsheet would run as a formula.

A payer writes a transfer's title and the name on their account; a title such as
`=HYPERLINK("http://…")` would become a live formula in the treasurer's spreadsheet (OWASP, "CSV
injection"). A text cell that begins with = + - @, a tab or a carriage return is written after an
apostrophe, which spreadsheets show as text; a plain number ("-12.50") is left as it is.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], *, bom: bool = True) -> str:
    """The file's text; with `bom`, a byte order mark first, so that Excel reads the Polish letters."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return ("\ufeff" if bom else "") + out.getvalue()
