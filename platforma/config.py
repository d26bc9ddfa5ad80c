"""Per-gmina settings: defaults < TOML file < environment, validated at start with clear errors.

The file named by PLATFORMA_CONFIG (default instance/gmina.toml) configures one gmina. Any key can be
overridden from the environment as PLATFORMA__SECTION__KEY (for example PLATFORMA__DATABASE__URL).
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from platforma.payments.rules import VirtualAccountLayout, is_valid_nrb, normalise_nrb
from platforma.taxes.identifiers import validate_nip, validate_regon

DEFAULT_CONFIG_PATH = "instance/gmina.toml"
ENV_PREFIX = "PLATFORMA__"


class ConfigError(Exception):
    """Configuration that cannot be used; `problems` are Polish lines naming the key."""

    def __init__(self, problems: list[str], path: str | None = None):
        self.problems = problems
        self.path = path
        where = f" ({path})" if path else ""
        super().__init__(f"Błędna konfiguracja{where}:\n" + "\n".join(f"  - {p}" for p in problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _relative_luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


class Address(_Section):
    street: str = "ul. Główna 1"
    postal_code: str = "00-000"
    city: str = "Przykładowo"

    @field_validator("postal_code")
    @classmethod
    def _postal(cls, v: str) -> str:
        if not re.fullmatch(r"\d{2}-\d{3}", v):
            raise ValueError("kod pocztowy musi mieć postać 00-000")
        return v


class Contact(_Section):
    email: str = "urzad@example.invalid"
    phone: str = ""
    epuap: str = ""
    website: str = ""
    office_hours: str = "poniedziałek–piątek 7:30–15:30"


class Colours(_Section):
    brand: str = "#1d4f91"
    brand_text: str = "#ffffff"
    accent: str = "#f6b400"

    @field_validator("brand", "brand_text", "accent")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX_COLOUR.match(v):
            raise ValueError("kolor zapisz jako #RRGGBB, np. #1d4f91")
        return v.lower()

    @model_validator(mode="after")
    def _contrast(self) -> "Colours":
        # WCAG 2.1 AA, criterion 1.4.3: text needs 4.5:1 against its background.
        ratio = contrast_ratio(self.brand, self.brand_text)
        if ratio < 4.5:
            raise ValueError(
                f"kontrast brand_text na tle brand wynosi {ratio:.2f}:1, a WCAG 2.1 AA wymaga co najmniej 4,5:1"
            )
        return self


class BankAccount(_Section):
    name: str
    nrb: str
    purpose: str = "podatki i opłaty lokalne"

    @property
    def stamp_duty(self) -> bool:
        """The account of the opłata skarbowa (its purpose names it): never the taxes' account."""
        return "skarbow" in self.purpose.lower()

    @field_validator("nrb")
    @classmethod
    def _nrb(cls, v: str) -> str:
        if not is_valid_nrb(v):
            raise ValueError("numer rachunku (NRB) jest nieprawidłowy: potrzeba 26 cyfr z poprawną sumą kontrolną")
        return normalise_nrb(v)


class Gmina(_Section):
    name: str = "Gmina Przykładowo"
    office_name: str = "Urząd Gminy Przykładowo"
    teryt: str = "0000000"
    nip: str = ""
    regon: str = ""
    address: Address = Field(default_factory=Address)
    contact: Contact = Field(default_factory=Contact)
    colours: Colours = Field(default_factory=Colours)
    #: path of the coat of arms (SVG or PNG); relative paths are relative to the instance directory
    coat_of_arms: str = ""
    service_name: str = "e-Urząd"
    bank_accounts: list[BankAccount] = Field(default_factory=list)

    @field_validator("teryt")
    @classmethod
    def _teryt(cls, v: str) -> str:
        # TERYT gmina code: 2 digits województwo, 2 powiat, 2 gmina, 1 type digit (1-5)
        if not re.fullmatch(r"\d{6}[1-5]", v) and v != "0000000":
            raise ValueError("kod TERYT gminy ma 7 cyfr (województwo, powiat, gmina, rodzaj 1-5)")
        return v

    @field_validator("nip")
    @classmethod
    def _nip(cls, v: str) -> str:
        return validate_nip(v) if v else v

    @field_validator("regon")
    @classmethod
    def _regon(cls, v: str) -> str:
        return validate_regon(v) if v else v


class Server(_Section):
    secret_key: str = ""
    #: public address of the portal, used in links sent by mail
    base_url: str = "http://127.0.0.1:5000"
    #: number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted
    trusted_proxies: int = Field(default=0, ge=0, le=5)
    max_request_mb: int = Field(default=20, ge=1, le=500)
    session_idle_minutes: int = Field(default=30, ge=5, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 7)

    @field_validator("secret_key")
    @classmethod
    def _secret(cls, v: str) -> str:
        if len(v) < 32:
            raise ValueError("klucz musi mieć co najmniej 32 znaki (platforma init generuje go sam)")
        return v

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("adres musi zaczynać się od http:// lub https://")
        return v.rstrip("/")

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


class Database(_Section):
    url: str = "sqlite:///platforma.sqlite3"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", v):
            raise ValueError("obsługiwane bazy to SQLite (sqlite:///plik) i PostgreSQL (postgresql://...)")
        return v


class Mail(_Section):
    #: "smtp" sends through a mail server; "file" writes .eml files to file_dir (demo, tests of a gmina)
    backend: Literal["smtp", "file"] = "file"
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    username: str = ""
    password: str = ""
    security: Literal["none", "starttls", "ssl"] = "none"
    sender: str = "e-urzad@example.invalid"
    file_dir: str = "mail"
    timeout_seconds: int = Field(default=20, ge=1, le=300)


class Jobs(_Section):
    #: "immediate" runs jobs in the process right after commit; "redis" hands them to Huey workers
    backend: Literal["immediate", "redis"] = "immediate"
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_attempts: int = Field(default=8, ge=1, le=100)


class Security(_Section):
    login_max_failures: int = Field(default=5, ge=2, le=50)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    ip_max_failures_per_hour: int = Field(default=50, ge=5, le=10000)
    totp_issuer: str = ""
    password_min_length: int = Field(default=12, ge=8, le=128)


class Plugins(_Section):
    enabled: list[str] = Field(default_factory=list)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)


class VirtualAccounts(_Section):
    """Individual account numbers: NRB = check digits + bank sort code + the gmina's fixed part + payer."""

    enabled: bool = False
    #: 8 digits: the bank's number, the branch and its check digit (numer rozliczeniowy)
    sort_code: str = ""
    #: the digits the bank assigned to the gmina's range (0-12 digits)
    fixed: str = ""
    #: the payer part ends with a Luhn digit (where the bank's layout has one)
    payer_check_digit: bool = False

    @model_validator(mode="after")
    def _layout(self) -> "VirtualAccounts":
        if self.enabled:
            try:
                VirtualAccountLayout(self.sort_code, self.fixed, self.payer_check_digit)
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        return self


class Payments(_Section):
    #: gateways offered to residents, in this order (plugin ids; their options in [plugins.options.ID])
    gateways: list[str] = Field(default_factory=list)
    #: payee name in the QR code (at most 20 characters); empty: the gmina's name
    recipient_name: str = Field(default="", max_length=20)
    #: after this many minutes a payment the gateway never confirmed is asked about, then expired
    pending_expiry_minutes: int = Field(default=120, ge=5, le=60 * 24 * 14)
    virtual_accounts: VirtualAccounts = Field(default_factory=VirtualAccounts)


class Esign(_Section):
    #: PEM bundle of trusted issuers (national qualified CAs, the trusted-profile seal); relative to the instance
    trust_anchors: str = ""
    #: the office's electronic seal for receipts (UPO): PEM private key and certificate (chain), relative to
    #: the instance; both or neither, checked at load (the files exist and the key matches the certificate)
    seal_key: str = ""
    seal_certificate: str = ""


class Episma(_Section):
    """Letters: the register of incoming mail, attachments, forwarding to document management."""

    #: the registration number in the register of incoming mail: {seq} (the next number in the year,
    #: e.g. {seq:05d} for leading zeros) and {year}
    registration_pattern: str = "KO.{seq}.{year}"
    #: the largest attachment and the largest sum of a letter's attachments, in MB
    max_attachment_mb: int = Field(default=5, ge=1, le=100)
    max_attachments_mb: int = Field(default=10, ge=1, le=200)
    max_attachments: int = Field(default=20, ge=1, le=100)
    #: the kinds of files accepted as attachments (extensions; see platforma.episma.rules.FILE_KINDS)
    allowed_attachments: list[str] = Field(default_factory=lambda: list(_default_attachment_kinds()))
    #: a DocumentSink plugin id (enabled in [plugins]) that filed letters are forwarded to; empty: none
    document_sink: str = ""
    #: forward every letter to the document sink as soon as its receipt is issued
    forward_on_receipt: bool = False

    @field_validator("registration_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        from platforma.episma.rules import check_registration_pattern

        return check_registration_pattern(v)

    @field_validator("allowed_attachments")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        from platforma.episma.rules import FILE_KINDS

        unknown = [k for k in v if k.lower() not in FILE_KINDS]
        if unknown:
            raise ValueError(f"nieznany rodzaj pliku {unknown[0]!r}; dozwolone: {', '.join(FILE_KINDS)}")
        return [k.lower() for k in v]

    @model_validator(mode="after")
    def _sizes(self) -> "Episma":
        if self.max_attachment_mb > self.max_attachments_mb:
            raise ValueError("max_attachment_mb nie może przekraczać max_attachments_mb")
        return self


def _default_attachment_kinds() -> tuple[str, ...]:
    from platforma.episma.rules import DEFAULT_ALLOWED

    return DEFAULT_ALLOWED


class Taxes(_Section):
    #: a clerk's manual posting is a proposal until a different clerk approves it (four eyes)
    manual_posting_approval: bool = False


class Settings(_Section):
    #: a demonstration instance: allows loading the demo data
    demo: bool = False
    gmina: Gmina = Field(default_factory=Gmina)
    server: Server
    database: Database = Field(default_factory=Database)
    mail: Mail = Field(default_factory=Mail)
    jobs: Jobs = Field(default_factory=Jobs)
    security: Security = Field(default_factory=Security)
    plugins: Plugins = Field(default_factory=Plugins)
    payments: Payments = Field(default_factory=Payments)
    esign: Esign = Field(default_factory=Esign)
    episma: Episma = Field(default_factory=Episma)
    taxes: Taxes = Field(default_factory=Taxes)
    #: directory of the instance (the folder holding gmina.toml); not read from the file
    instance_dir: str = Field(default="instance", exclude=True)

    def instance_path(self, *parts: str) -> Path:
        return Path(self.instance_dir, *parts)

    @property
    def database_url(self) -> str:
        """A relative SQLite path is relative to the instance directory."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix):])
            if not path.is_absolute():
                path = Path(self.instance_dir) / path
            return prefix + str(path.resolve())
        return url


_PYDANTIC_MESSAGES = {
    "missing": "brak wymaganej wartości",
    "extra_forbidden": "nieznany klucz (literówka?)",
    "int_parsing": "to musi być liczba całkowita",
    "int_type": "to musi być liczba całkowita",
    "bool_parsing": "to musi być true albo false",
    "bool_type": "to musi być true albo false",
    "string_type": "to musi być tekst w cudzysłowie",
    "list_type": "to musi być lista [ ... ]",
    "dict_type": "to musi być sekcja (tabela TOML)",
    "model_type": "to musi być sekcja (tabela TOML)",
    "literal_error": "dozwolone wartości: {expected}",
    "greater_than_equal": "wartość musi być co najmniej {ge}",
    "less_than_equal": "wartość może wynosić co najwyżej {le}",
}


def _polish_errors(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(plik)"
        kind = item["type"]
        if kind == "value_error":
            message = str(item.get("ctx", {}).get("error", item["msg"]))
        elif kind in _PYDANTIC_MESSAGES:
            message = _PYDANTIC_MESSAGES[kind].format(**{k: v for k, v in item.get("ctx", {}).items()})
        else:
            message = item["msg"]
        problems.append(f"{key}: {message}")
    return problems


def _parse_env_value(raw: str) -> Any:
    """Environment values are TOML values when they parse as such, plain strings otherwise."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not path:
            continue
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"{name}: klucz {'.'.join(path)} nie jest sekcją"])
        node[path[-1]] = _parse_env_value(raw)


def config_path_from_env(environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("PLATFORMA_CONFIG", DEFAULT_CONFIG_PATH)


def load_settings(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError with Polish messages."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(path or config_path_from_env(environ))
    if not path.exists():
        raise ConfigError(
            [f"nie ma pliku konfiguracji {path}; utwórz instancję: platforma init --instance {path.parent}"
             " albo wskaż plik zmienną PLATFORMA_CONFIG"],
            str(path),
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(["plik musi być zapisany w UTF-8"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"błąd składni TOML: {exc}"], str(path)) from None
    _apply_env(data, environ)
    data["instance_dir"] = str(path.parent.resolve())
    return settings_from_dict(data, str(path))


def settings_from_dict(data: dict[str, Any], source: str | None = None) -> Settings:
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_polish_errors(exc), source) from None
    if settings.esign.seal_key or settings.esign.seal_certificate:
        from platforma.esign.seal import seal_problems  # reads files: only when a seal is configured

        problems = seal_problems(settings)
        if problems:
            raise ConfigError(problems, source)
    return settings
