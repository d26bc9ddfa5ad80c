"""What the gateway plugins share besides HTTP: exact amounts, constant-time comparison, hardened XML,
source-address checks and option validators. No Flask, no session, no network.
"""
from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
)

from platforma.payments.gateways.base import (
    GatewayRejected,
    InvalidSignature,
    MalformedNotification,
)

#: notifications are small; anything larger is not a notification (bounded before parsing)
MAX_NOTIFICATION_BYTES = 64 * 1024
#: the gateways' own clocks, where they send a local time without a zone
WARSAW = ZoneInfo("Europe/Warsaw")

_TWO_PLACES = Decimal("0.01")
_AMOUNT_TEXT = re.compile(r"^\d{1,12}\.\d{2}$")


# -- amounts ---------------------------------------------------------------------------------------

def to_grosze(amount: Decimal) -> int:
    """An amount in złote as whole grosze, exactly; more than two decimals or a non-positive amount is
    refused (a gateway would round it, and a rounded amount is a different amount)."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise GatewayRejected(f"kwota {amount!r} nie jest dokładną liczbą (Decimal)")
    if amount <= 0:
        raise GatewayRejected(f"kwota płatności musi być dodatnia, podano {amount}")
    if amount != amount.quantize(_TWO_PLACES):
        raise GatewayRejected(f"kwota {amount} ma więcej niż dwa miejsca po przecinku")
    return int(amount * 100)


def from_grosze(grosze: int) -> Decimal:
    return (Decimal(grosze) / 100).quantize(_TWO_PLACES)


def amount_text(amount: Decimal) -> str:
    """"12.00": the form Autopay expects (a dot, always two decimals)."""
    return f"{from_grosze(to_grosze(amount)):.2f}"


def parse_amount_text(text: str) -> Decimal:
    """An amount the gateway wrote as "500.00"; anything else is a malformed notification."""
    if not _AMOUNT_TEXT.match(text or ""):
        raise MalformedNotification(f"niepoprawny zapis kwoty w powiadomieniu: {text[:20]!r}")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover (the pattern admits only valid numbers)
        raise MalformedNotification("niepoprawny zapis kwoty w powiadomieniu") from None


def parse_grosze(value: object, field: str) -> int:
    """An integer amount in grosze from a JSON field (an int, or a string of digits as PayU sends)."""
    if isinstance(value, bool):
        raise MalformedNotification(f"pole {field} nie jest kwotą w groszach")
    if isinstance(value, int):
        grosze = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,15}", value):
        grosze = int(value)
    else:
        raise MalformedNotification(f"pole {field} nie jest kwotą w groszach")
    if grosze < 0:
        raise MalformedNotification(f"pole {field} jest ujemne")
    return grosze


# -- comparing and reading -------------------------------------------------------------------------

def same_secret_text(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures (hex or base64 text)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name (WSGI, httpx and tests spell them differently)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def bounded(body: bytes, gateway: str) -> bytes:
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise MalformedNotification(f"{gateway}: powiadomienie jest za duże ({len(body)} bajtów)")
    if not body:
        raise MalformedNotification(f"{gateway}: puste powiadomienie")
    return body


def local_to_utc(value: datetime) -> datetime:
    """A naive local (Europe/Warsaw) time the gateway sent, as UTC; an aware one is only converted."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=WARSAW)
    return value.astimezone(UTC)


# -- XML -------------------------------------------------------------------------------------------

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )


def parse_xml(data: bytes, gateway: str) -> etree._Element:
    """Untrusted XML (DESIGN.md rule 8): size-bounded, no DTD, no entities, no network."""
    bounded(data, gateway)
    if _DOCTYPE.search(data):
        raise MalformedNotification(f"{gateway}: dokument XML z deklaracją DOCTYPE lub ENTITY jest odrzucany")
    try:
        root = etree.fromstring(data, parser=_hardened_parser())
    except etree.XMLSyntaxError:
        raise MalformedNotification(f"{gateway}: powiadomienie nie jest poprawnym dokumentem XML") from None
    if root.getroottree().docinfo.doctype:
        raise MalformedNotification(f"{gateway}: dokument XML z deklaracją DOCTYPE jest odrzucany")
    return root


# -- who may notify --------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_source(remote_addr: str, allowed: Iterable[Network], gateway: str) -> None:
    """When the administrator listed the gateway's published networks, a notification from elsewhere
    is refused before anything in it is read."""
    allowed = list(allowed)
    if not allowed:
        return
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        raise InvalidSignature(f"{gateway}: nieczytelny adres nadawcy powiadomienia") from None
    if not any(address in network for network in allowed):
        raise InvalidSignature(f"{gateway}: powiadomienie z adresu {address} spoza sieci dozwolonych dla bramki")


# -- option validators -----------------------------------------------------------------------------

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def checked_base_url(value: str) -> str:
    """The gateway's address: https, except on this machine (the simulators in tests and the demo)."""
    value = (value or "").strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("adres bramki musi być pełnym adresem http(s)")
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        raise ValueError("adres bramki musi używać https (http tylko dla symulatora na tym komputerze)")
    if parts.query or parts.fragment:
        raise ValueError("adres bramki nie może zawierać parametrów ani fragmentu")
    return value


def _non_blank(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("klucz nie może być pusty")
    return value


#: a key from the gateway's panel: never shown, never empty
Key = Annotated[SecretStr, AfterValidator(_non_blank)]


class GatewayOptions(BaseModel):
    """What every gateway's options share: its address (https, except on this machine) and the networks
    its notifications may come from (empty: any; the signature is checked all the same)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    allowed_sources: list[IPvAnyNetwork] = Field(default_factory=list)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return checked_base_url(value)


class HttpGatewayOptions(GatewayOptions):
    timeout_seconds: float = Field(default=15, gt=0, le=120)
