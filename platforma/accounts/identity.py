"""The built-in identity provider: local accounts with e-mail, password and TOTP."""
from __future__ import annotations

from platforma.accounts.passwords import hash_password, verify_password
from platforma.core.registry import CheckResult, Plugin, registry


@registry.register
class LocalAccounts(Plugin):
    id = "local"
    name = "Konta lokalne (e-mail, hasło, kod TOTP)"
    kind = "IdentityProvider"

    def check_config(self) -> CheckResult:
        sample = hash_password("sprawdzenie-konfiguracji")
        if not sample.startswith("$argon2id$") or not verify_password(sample, "sprawdzenie-konfiguracji"):
            return CheckResult(False, "hashowanie haseł argon2id nie działa")
        return CheckResult(True, "hasła: argon2id; weryfikacja dwuetapowa: TOTP")
