"""Bank statements: MT940 in the Polish banks' dialects, ISO 20022 camt.053 and camt.054.

`iter_statement` streams a file as, per statement, a `StatementHeader`, its `Entry`s and a
`StatementEnd`, checking as it goes; anything wrong raises `StatementError` with a Polish message that
says where. A caller stores a statement only once its `StatementEnd` has arrived: a statement that does
not add up fails at its end, after its entries.
"""
from __future__ import annotations

import codecs
import os
from typing import Any, BinaryIO
from collections.abc import Iterator

from platforma.payments.statements.camt import iter_camt
from platforma.payments.statements.common import money_str, open_source
from platforma.payments.statements.model import Entry, StatementEnd, StatementError, StatementHeader
from platforma.payments.statements.mt940 import iter_mt940

__all__ = [
    "Entry",
    "StatementEnd",
    "StatementError",
    "StatementHeader",
    "iter_statement",
    "parse_statement_json",
]

Source = BinaryIO | bytes | str | os.PathLike

DEFAULT_MAX_BYTES = 100 * 1024 * 1024


def iter_statement(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[
        StatementHeader | Entry | StatementEnd]:
    """Read a statement file (bytes, a path, or a binary file object, which is left open), detecting
    MT940 or camt.053/camt.054 and, for MT940, the encoding and the dialect of field :86:."""
    reader = None
    try:
        reader = open_source(source, max_bytes)
        head = reader.peek(4096)
        kind = _detect(head)
        yield from (iter_camt(reader) if kind == "camt" else iter_mt940(reader))
    except StatementError:
        raise
    except RecursionError as exc:
        raise StatementError("plik jest zbyt zagnieżdżony") from exc
    except Exception as exc:  # a bug must still reach the caller as a refusal of the file
        raise StatementError(
            f"nie udało się odczytać wyciągu: {type(exc).__name__}: {exc}") from exc
    finally:
        if reader is not None:
            reader.close()


def _detect(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "camt"
    text = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n\x00\x01")
    if not text:
        raise StatementError("plik jest pusty")
    if text.startswith(b"<"):
        return "camt"
    if text.startswith((b":", b"{")):
        return "mt940"
    raise StatementError("nieznany format pliku: to nie jest wyciąg MT940 ani plik XML camt.053/camt.054")


def parse_statement_json(source: Source, **kw: Any) -> dict[str, Any]:
    """The whole file as plain data (for `platforma payments parse-statement FILE`): amounts as strings
    with at least two decimals, dates in ISO form."""
    statements: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for item in iter_statement(source, **kw):
        if isinstance(item, StatementHeader):
            current = {"account": item.account, "currency": item.currency, "opening": money_str(item.opening),
                       "closing": None, "entries": []}
            statements.append(current)
        elif isinstance(item, Entry):
            assert current is not None
            current["entries"].append({
                "booking_date": item.booking_date.isoformat(),
                "value_date": item.value_date.isoformat() if item.value_date else None,
                "amount": money_str(item.amount),
                "credit": item.credit,
                "counterparty": item.counterparty,
                "counterparty_account": item.counterparty_account,
                "title": item.title,
                "account_credited": item.account_credited,
            })
        else:
            assert current is not None
            current["closing"] = money_str(item.closing)
    return {"statements": statements}
