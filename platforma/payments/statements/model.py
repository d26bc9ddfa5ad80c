"""What a bank statement parser yields: per statement one header, its entries, one end."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class StatementHeader:
    """The start of one statement (MT940 :20:..:60F:, camt Stmt or Ntfctn up to its first entry).

    camt.054 states no balances: its `opening` is 0 and the end's `closing` is the net of its entries.
    """

    #: the statement's account: a 26-digit NRB (no spaces, no "PL") when Polish, else the IBAN or as given
    account: str
    currency: str
    #: signed: a debit balance is negative
    opening: Decimal
    opening_date: date | None
    #: signed closing balance where the format states it before the entries (camt.053), else None
    closing: Decimal | None
    #: MT940 ":20: :28C:", camt "Id ElctrncSeqNb": with the sequence, the natural key of an entry
    statement_id: str


@dataclass(frozen=True)
class Entry:
    """One booked movement of money; a camt batch entry whose transactions carry their own amounts is
    yielded as one Entry per transaction."""

    booking_date: date
    value_date: date | None
    #: positive; the direction is `credit`
    amount: Decimal
    credit: bool
    #: name (and address where given), whitespace-normalised
    counterparty: str
    #: NRB (26 digits) or IBAN without spaces, "" if none
    counterparty_account: str
    #: remittance information as a person reads it
    title: str
    #: for credits: the individual (virtual) account the money was paid to, where the statement says; else ""
    account_credited: str
    #: MT940 :61: bank reference, camt AcctSvcrRef / NtryRef; "" if none
    bank_reference: str
    #: 1-based position of the entry in its statement
    sequence: int


@dataclass(frozen=True)
class StatementEnd:
    #: signed closing balance, checked against the opening balance and the entries
    closing: Decimal
    closing_date: date | None


class StatementError(ValueError):
    """A statement file that cannot be read or does not add up; the message is Polish and says where."""
