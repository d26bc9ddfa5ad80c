"""Pure rules about account numbers (no Flask, no session)."""
from __future__ import annotations

import re

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
