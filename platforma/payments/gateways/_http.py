"""HTTP to the gateways: one pooled `httpx` client per plugin, explicit timeouts, and every failure
turned into the two errors the payments core understands.

- a timeout, a refused connection, HTTP 5xx or 429: `GatewayUnavailable` (try again later);
- HTTP 4xx or an answer that cannot be read: `GatewayRejected` (for good).

Messages are Polish and never carry a secret: only the gateway's name, the method, the path and what
the gateway said, with any configured secret blanked out should the gateway echo one back.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from typing import Any

import httpx

from platforma.payments.gateways.base import GatewayRejected, GatewayUnavailable

USER_AGENT = "platforma-gminy/1.0"
#: how much of the gateway's error text goes into a message
_MAX_ERROR_TEXT = 200

#: one pooled client per process, gateway address and timeout: the core may make a plugin instance
#: per call, and connections to the gateway should outlive it (httpx clients are thread-safe)
_CLIENTS: dict[tuple[int, str, float], httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_client(base_url: str, timeout_seconds: float) -> httpx.Client:
    key = (os.getpid(), base_url, timeout_seconds)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None or client.is_closed:
            client = _CLIENTS[key] = httpx.Client(
                base_url=base_url,
                timeout=httpx.Timeout(timeout_seconds),
                # PayU answers a new order with 302 and the payer's address: that is the answer
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            )
        return client


class GatewayHttp:
    def __init__(self, gateway: str, base_url: str, timeout_seconds: float, secrets: Iterable[str] = ()):
        self.gateway = gateway
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._secrets = tuple(s for s in secrets if s)

    @property
    def client(self) -> httpx.Client:
        return _shared_client(self.base_url, self.timeout_seconds)

    def request(self, method: str, path: str, *, expected: Iterable[int] = (200,), **kwargs: Any) -> httpx.Response:
        """Send one request; return the answer if its status is expected, else raise."""
        where = f"{method} {path.split('?')[0]}"
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise GatewayUnavailable(
                f"{self.gateway}: brak odpowiedzi w ciągu {self.timeout_seconds:g} s ({where})") from None
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                f"{self.gateway}: nie udało się połączyć z bramką ({where}: {type(exc).__name__})") from None
        status = response.status_code
        if status in tuple(expected):
            return response
        said = self.error_text(response)
        error: GatewayUnavailable | GatewayRejected
        if status >= 500 or status == 429:
            error = GatewayUnavailable(f"{self.gateway}: bramka chwilowo nie działa (HTTP {status}, {where}){said}")
        else:
            error = GatewayRejected(f"{self.gateway}: bramka odrzuciła żądanie (HTTP {status}, {where}){said}")
        #: lets a plugin tell an expired token (401) from other refusals
        error.http_status = status  # type: ignore[attr-defined]
        raise error

    def json_of(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object, or GatewayRejected when it is not one."""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GatewayRejected(
                f"{self.gateway}: odpowiedź bramki nie jest poprawnym JSON-em (HTTP {response.status_code})") from None
        if not isinstance(data, dict):
            raise GatewayRejected(f"{self.gateway}: odpowiedź bramki nie jest obiektem JSON")
        return data

    def error_text(self, response: httpx.Response) -> str:
        """What the gateway said about an error, short, without our secrets."""
        text = ""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            parts = []
            for key in ("error", "error_description", "message", "statusCode", "statusDesc", "codeLiteral", "code"):
                value = data.get(key)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    parts.append(f"{key}={value}")
            status = data.get("status")
            if isinstance(status, dict):
                parts += [f"{k}={v}" for k, v in status.items() if isinstance(v, (str, int)) and not isinstance(v, bool)]
            errors = data.get("errors")
            if isinstance(errors, list):
                for error in errors[:3]:
                    if isinstance(error, dict):
                        parts += [f"{k}={v}" for k, v in error.items() if isinstance(v, str)]
            text = ", ".join(parts)
        text = self.scrub(text)[:_MAX_ERROR_TEXT]
        return f": {text}" if text else ""

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
