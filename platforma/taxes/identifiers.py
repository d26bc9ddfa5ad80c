"""Checks of Polish identifiers (PESEL, NIP, REGON) with python-stdnum, with messages in Polish."""
from __future__ import annotations

from stdnum import exceptions as stdnum_errors
from stdnum.pl import nip as _nip
from stdnum.pl import pesel as _pesel
from stdnum.pl import regon as _regon


def _check(module, value: str, label: str) -> str:
    try:
        return module.validate(value)
    except stdnum_errors.InvalidLength:
        raise ValueError(f"{label} ma nieprawidłową długość") from None
    except stdnum_errors.InvalidFormat:
        raise ValueError(f"{label} może zawierać tylko cyfry") from None
    except stdnum_errors.InvalidChecksum:
        raise ValueError(f"{label} ma błędną cyfrę kontrolną") from None
    except stdnum_errors.ValidationError:
        raise ValueError(f"{label} jest nieprawidłowy") from None


def validate_pesel(value: str) -> str:
    """Return the compact PESEL or raise ValueError with a Polish message."""
    return _check(_pesel, value, "PESEL")


def validate_nip(value: str) -> str:
    return _check(_nip, value, "NIP")


def validate_regon(value: str) -> str:
    return _check(_regon, value, "REGON")
