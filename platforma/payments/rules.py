"""Pure rules about account numbers (no Flask, no session)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

_NRB_RE = re.compile(r"^\d{26}$")


def normalise_nrb(value: str) -> str:
    """Strip spaces and an optional "PL" prefix, as people copy numbers from statements."""
    cleaned = re.sub(r"[\s-]", "", value or "").upper()
    if cleaned.startswith("PL"):
        cleaned = cleaned[2:]
    return cleaned


def nrb_check_digits(bban: str) -> str:
    """Check digits of an NRB for its 24-digit BBAN (ISO 13616: "PL" is 2521, then "00")."""
    if not re.fullmatch(r"\d{24}", bban):
        raise ValueError("BBAN must have 24 digits")
    return f"{98 - int(bban + '252100') % 97:02d}"


def is_valid_nrb(value: str) -> bool:
    nrb = normalise_nrb(value)
    if not _NRB_RE.match(nrb):
        return False
    return nrb_check_digits(nrb[2:]) == nrb[:2]


def format_nrb(value: str) -> str:
    """The usual printed form: 2 digits, then groups of 4."""
    nrb = normalise_nrb(value)
    return nrb[:2] + " " + " ".join(nrb[i:i + 4] for i in range(2, 26, 4))


# --- individual account numbers (rachunki wirtualne) -------------------------------------------

@dataclass(frozen=True)
class VirtualAccountLayout:
    """How the gmina's bank builds an individual account: BBAN = sort code (8 digits: bank, branch and
    its check digit) + the gmina's fixed part + the payer part (the taxpayer id, zero-padded, optionally
    followed by a Luhn check digit so that a mistyped number is not credited to someone else)."""

    sort_code: str
    fixed: str
    payer_check_digit: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{8}", self.sort_code):
            raise ValueError("numer rozliczeniowy banku musi mieć 8 cyfr")
        if not re.fullmatch(r"\d{0,12}", self.fixed):
            raise ValueError("stała część gminy może mieć od 0 do 12 cyfr")

    @property
    def payer_digits(self) -> int:
        """Digits left for the payer part, check digit included."""
        return 24 - len(self.sort_code) - len(self.fixed)

    @property
    def max_taxpayer_id(self) -> int:
        return 10 ** (self.payer_digits - (1 if self.payer_check_digit else 0)) - 1

    def account_for(self, taxpayer_id: int) -> str:
        if not 1 <= taxpayer_id <= self.max_taxpayer_id:
            raise ValueError(f"identyfikator podatnika {taxpayer_id} nie mieści się w numeracji rachunków")
        width = self.payer_digits - (1 if self.payer_check_digit else 0)
        payer = f"{taxpayer_id:0{width}d}"
        if self.payer_check_digit:
            payer += luhn_digit(payer)
        bban = self.sort_code + self.fixed + payer
        return nrb_check_digits(bban) + bban

    def taxpayer_for(self, nrb: str) -> int | None:
        """The taxpayer whose individual account this is, or None when it is not one of ours (another
        bank or range, a wrong check digit)."""
        nrb = normalise_nrb(nrb)
        if not is_valid_nrb(nrb):
            return None
        bban = nrb[2:]
        prefix = self.sort_code + self.fixed
        if not bban.startswith(prefix):
            return None
        payer = bban[len(prefix):]
        if self.payer_check_digit:
            payer, digit = payer[:-1], payer[-1]
            if luhn_digit(payer) != digit:
                return None
        taxpayer_id = int(payer)
        return taxpayer_id or None


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


# --- ZBP 2D code (Rekomendacja ZBP, 2013) ------------------------------------------------------

#: six digits of grosze: 9 999,99 zł is the largest amount one code carries
QR_MAX_AMOUNT = Decimal("9999.99")


@dataclass(frozen=True)
class QrPayload:
    text: str
    #: False when the amount was too large for the code and the payer must type it
    carries_amount: bool


def zbp_qr_payload(*, nip: str | None, account: str, amount: Decimal | None, recipient: str, title: str) -> QrPayload:
    """The payload of the ZBP 2D code: NIP | PL | NRB | grosze (6 digits) | name (20) | title (32) | | |.

    The limits are characters (the recommendation counts characters), "|" is not allowed inside a field.
    Above 9 999,99 zł, or with no amount, the code carries 000000 and the payer types the amount.
    """
    nip = re.sub(r"\D", "", nip or "")
    if nip and len(nip) != 10:
        raise ValueError("NIP odbiorcy musi mieć 10 cyfr")
    nrb = normalise_nrb(account)
    if not is_valid_nrb(nrb):
        raise ValueError("numer rachunku (NRB) jest nieprawidłowy")
    carries = amount is not None and Decimal("0") < amount <= QR_MAX_AMOUNT
    if amount is not None and amount != amount.quantize(Decimal("0.01")):
        raise ValueError("kwota może mieć najwyżej dwa miejsca po przecinku")
    grosze = int(amount * 100) if carries and amount is not None else 0

    def field(value: str, limit: int) -> str:
        cleaned = re.sub(r"\s+", " ", value.replace("|", " ")).strip()
        return cleaned[:limit]

    text = "|".join([nip, "PL", nrb, f"{grosze:06d}", field(recipient, 20), field(title, 32), "", "", ""])
    return QrPayload(text, carries)
