"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's recommendations)."""
from __future__ import annotations

from argon2 import PasswordHasher
from flask_babel import lazy_gettext as _l
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id

# verified against when the e-mail is unknown, so that timing does not reveal which accounts exist
_DUMMY_HASH = _hasher.hash("platforma-nie-ma-takiego-konta")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(password: str, *, min_length: int, email: str = "", name: str = "") -> list:
    """Reasons (Polish) why a new password is not accepted."""
    problems = []
    if len(password) < min_length:
        problems.append(_l("Hasło musi mieć co najmniej %(n)s znaków.", n=min_length))
    if len(password) > 256:
        problems.append(_l("Hasło może mieć najwyżej 256 znaków."))
    lowered = password.lower()
    local_part = email.split("@", 1)[0].lower()
    if local_part and len(local_part) >= 4 and local_part in lowered:
        problems.append(_l("Hasło nie może zawierać adresu e-mail."))
    if len(set(password)) < 5:
        problems.append(_l("Hasło jest zbyt proste: użyj więcej różnych znaków."))
    return problems
