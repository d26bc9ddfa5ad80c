"""Simulators of the four payment gateways: each a small WSGI app on 127.0.0.1 that speaks the gateway's
own HTTP API, checks signatures and credentials as the gateway does, shows the payer's page and sends
signed notifications. Tests, the demo and the benchmarks talk to them over real HTTP.

    with Przelewy24Simulator(merchant_id=12345, crc="...", api_key="...") as sim:
        options = {..., "base_url": sim.base_url}
        ...
        sim.pay("PAY-1")                      # the payer paid: notification sent, our answer returned
        sim.transaction("PAY-1")["verified"]  # did our verify call arrive, correctly signed?

Standalone (the demo and the benchmarks):

    python -m tests.simulators.gateways --gateway przelewy24 [--port 0] [--set crc=...] [--notify-url URL]

prints "READY <port>" once it listens, and runs until SIGTERM or SIGINT. Without --set it uses the
demo credentials in DEMO_OPTIONS.

This module holds what the simulators share; each gateway's protocol is in its own module (p24, payu,
paynow, autopay). The simulators do not import the plugins: they sign and check with their own code,
so that a mistake on one side cannot hide the same mistake on the other.
"""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
import html
import importlib
import json
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

OUTCOMES = ("pending", "confirmed", "failed", "cancelled", "expired")

#: class name -> module, for `from tests.simulators.gateways import Przelewy24Simulator`
_CLASSES = {
    "Przelewy24Simulator": "tests.simulators.p24",
    "PayUSimulator": "tests.simulators.payu",
    "PaynowSimulator": "tests.simulators.paynow",
    "AutopaySimulator": "tests.simulators.autopay",
}
#: --gateway name -> class name
GATEWAYS = {
    "przelewy24": "Przelewy24Simulator",
    "payu": "PayUSimulator",
    "paynow": "PaynowSimulator",
    "autopay": "AutopaySimulator",
}
#: the credentials the demo configures its plugins with (not secrets: they open nothing but a simulator)
DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "przelewy24": {"merchant_id": 12345, "crc": "demo-crc-0123456789abcdef", "api_key": "demo-api-key-0123456789abcdef"},
    "payu": {"pos_id": "300746", "second_key": "demo-second-key-0123456789abcd", "client_id": "300746",
             "client_secret": "demo-client-secret-0123456789ab"},
    "paynow": {"api_key": "demo-api-key-0123456789abcdef", "signature_key": "demo-signature-key-0123456789ab"},
    "autopay": {"service_id": "123456", "shared_key": "demo-shared-key-0123456789abcdef"},
}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(name)


def simulator_class(gateway: str) -> type[GatewaySimulator]:
    return __getattr__(GATEWAYS[gateway])


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status, headers=headers,
                    content_type="application/json; charset=utf-8")


def polish_amount(grosze: int) -> str:
    zl, gr = divmod(grosze, 100)
    return f"{zl:,}".replace(",", "\u00a0") + f",{gr:02d}\u00a0zł"


def grosze_of(amount: Decimal | str | int) -> int:
    value = Decimal(str(amount))
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("kwota ma więcej niż dwa miejsca po przecinku")
    return int(value * 100)


class GatewaySimulator(ABC):
    """The shared machinery: a threaded server, call counts, injected faults, the payer's page,
    notification delivery and the control API tests use."""

    #: shown on the payer's page
    title: ClassVar[str]
    #: the names `calls()` and `fail_next()` take
    endpoints: ClassVar[tuple[str, ...]]

    def __init__(self, *, timeout_delay: float = 3.0, notify_timeout: float = 10.0, notify_url: str | None = None):
        #: how long an injected "timeout" keeps the caller waiting (longer than the client's timeout)
        self.timeout_delay = timeout_delay
        self.notify_timeout = notify_timeout
        #: where notifications go: the panel setting for Paynow and Autopay; for Przelewy24 and PayU,
        #: when set, it replaces the address each registration names
        self.notify_url = notify_url
        self._lock = threading.RLock()
        self._calls: Counter[str] = Counter()
        self._faults: dict[str, deque[str]] = {}
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None
        self._sender: httpx.Client | None = None
        #: every transaction, by our reference
        self._transactions: dict[str, dict[str, Any]] = {}
        self._last_notification: dict[str, tuple[str, dict[str, str], bytes]] = {}
        #: every notification sent: reference, url, status (None when unreachable), answer body
        self.deliveries: list[dict[str, Any]] = []
        self._url_map = Map(self.rules(), strict_slashes=False)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int = 0) -> GatewaySimulator:
        self._server = make_server("127.0.0.1", port, self, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        self._sender = httpx.Client(timeout=self.notify_timeout, follow_redirects=False, trust_env=False)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sender is not None:
            self._sender.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "symulator nie działa"
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- WSGI ------------------------------------------------------------------------------------

    @abstractmethod
    def rules(self) -> Iterable[Rule]:
        """The gateway's URL map."""

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = 1024 * 1024
        try:
            endpoint, args = self._url_map.bind_to_environ(environ).match()
            response = self._fault(endpoint) or getattr(self, f"on_{endpoint}")(request, **args)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    def _fault(self, endpoint: str) -> Response | None:
        with self._lock:
            self._calls[endpoint] += 1
            queue = self._faults.get(endpoint)
            kind = queue.popleft() if queue else None
        if kind == "timeout":
            # the caller gives up before this answer comes (or the simulator stops)
            self._stopping.wait(self.timeout_delay)
            return Response("przekroczono czas", status=504)
        if kind == "503":
            return json_response({"error": "Service Unavailable", "code": 503}, status=503)
        return None

    # -- control API for tests -------------------------------------------------------------------

    def fail_next(self, endpoint: str, kind: str = "timeout", count: int = 1) -> None:
        """The next `count` calls of `endpoint` time out ("timeout") or answer 503 ("503")."""
        if endpoint not in self.endpoints:
            raise ValueError(f"nieznany punkt {endpoint!r}; znane: {', '.join(self.endpoints)}")
        if kind not in ("timeout", "503"):
            raise ValueError("rodzaj awarii: 'timeout' albo '503'")
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend([kind] * count)

    def calls(self, endpoint: str) -> int:
        if endpoint not in self.endpoints:
            raise ValueError(f"nieznany punkt {endpoint!r}; znane: {', '.join(self.endpoints)}")
        with self._lock:
            return self._calls[endpoint]

    def transaction(self, key: str) -> dict[str, Any]:
        """A copy of a transaction, found by our reference or the gateway's id: `state` (pending,
        confirmed, failed, cancelled, expired), `amount` in grosze, `gateway_id`, and what the gateway
        records of the merchant's side (Przelewy24: `verified`; Autopay: `itn_confirmed`)."""
        with self._lock:
            txn = self._find(key)
            return {**txn, "state": txn["outcome"]}

    def transactions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t) for t in self._transactions.values()]

    def pay(self, key: str, outcome: str = "confirmed") -> int | None:
        """The payer finished: the transaction takes `outcome` and its notification is sent. Returns the
        HTTP status our webhook answered, or None when the gateway sends nothing for this outcome or
        our webhook could not be reached."""
        if outcome not in OUTCOMES:
            raise ValueError(f"nieznany wynik {outcome!r}")
        with self._lock:
            txn = self._find(key)
            self._mark(txn, outcome)
            built = self._remember_notification(txn)
        return self._deliver(txn["reference"], built) if built else None

    def notify(self, key: str, times: int = 1) -> list[int | None]:
        """Send the last notification of a payment again, `times` times (gateways repeat them)."""
        with self._lock:
            reference = self._find(key)["reference"]
            built = self._last_notification.get(reference)
        if built is None:
            raise KeyError(f"dla płatności {reference} nie wysłano jeszcze powiadomienia")
        return [self._deliver(reference, built) for _ in range(times)]

    def notification_for(self, key: str, outcome: str | None = None) -> tuple[dict[str, str], bytes]:
        """A correctly signed notification (headers, body) that is not sent: the benchmarks send them
        themselves. The transaction takes `outcome` (by default its own outcome, or "confirmed" for one
        not decided yet), as if the payer had paid."""
        with self._lock:
            txn = self._find(key)
            wanted = outcome or (txn["outcome"] if txn["outcome"] != "pending" else "confirmed")
            if wanted not in OUTCOMES:
                raise ValueError(f"nieznany wynik {wanted!r}")
            self._mark(txn, wanted)
            built = self._remember_notification(txn)
        if built is None:
            raise ValueError(f"{self.title} nie wysyła powiadomienia dla wyniku {wanted!r}")
        _, headers, body = built
        return dict(headers), body

    def notification_url(self, key: str) -> str | None:
        with self._lock:
            return self._notify_url_of(self._find(key))

    # -- to be provided by each gateway ----------------------------------------------------------

    def _find(self, key: str) -> dict[str, Any]:
        """Caller holds the lock."""
        txn = self._transactions.get(key)
        if txn is None:
            for candidate in self._transactions.values():
                if key in (candidate.get("gateway_id"), candidate.get("token")):
                    txn = candidate
                    break
        if txn is None:
            raise KeyError(f"{self.title}: nie ma transakcji {key!r}")
        return txn

    def _mark(self, txn: dict[str, Any], outcome: str) -> None:
        txn["outcome"] = outcome

    @abstractmethod
    def _build_notification(self, txn: dict[str, Any]) -> tuple[dict[str, str], bytes] | None:
        """The signed notification of a transaction's outcome, or None where the gateway sends none."""

    def _notify_url_of(self, txn: dict[str, Any]) -> str | None:
        return self.notify_url or txn.get("notify_url")

    def _after_delivery(self, reference: str, response: httpx.Response) -> None:
        """Hook: Autopay reads the confirmation in our answer."""

    def _return_url(self, txn: dict[str, Any]) -> str | None:
        return txn.get("return_url")

    # -- notifications ---------------------------------------------------------------------------

    def _remember_notification(self, txn: dict[str, Any]) -> tuple[str, dict[str, str], bytes] | None:
        built = self._build_notification(txn)
        url = self._notify_url_of(txn)
        if built is None or not url:
            return None
        headers, body = built
        record = (url, headers, body)
        self._last_notification[txn["reference"]] = record
        return record

    def _deliver(self, reference: str, built: tuple[str, dict[str, str], bytes]) -> int | None:
        url, headers, body = built
        assert self._sender is not None, "symulator nie działa"
        try:
            response = self._sender.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            with self._lock:
                self.deliveries.append({"reference": reference, "url": url, "status": None, "error": type(exc).__name__})
            return None
        with self._lock:
            self.deliveries.append({"reference": reference, "url": url, "status": response.status_code,
                                    "answer": response.content})
            txn = self._transactions.get(reference)
            if txn is not None:
                txn["notifications_sent"] = txn.get("notifications_sent", 0) + 1
        self._after_delivery(reference, response)
        return response.status_code

    # -- the payer's page ------------------------------------------------------------------------

    def payer_page(self, txn: dict[str, Any], action: str, hidden: dict[str, str] | None = None,
                   status: int = 200) -> Response:
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in (hidden or {}).items())
        if txn["outcome"] == "pending" and not txn.get("decided"):
            form = (f'<form method="post" action="{html.escape(action)}">{fields}'
                    '<button type="submit" name="decision" value="pay">Zapłać</button> '
                    '<button type="submit" name="decision" value="cancel">Anuluj płatność</button></form>')
        else:
            form = f'<p role="status">Ta płatność jest już zakończona ({html.escape(txn["outcome"])}).</p>'
        page = f"""<!DOCTYPE html>
<html lang="pl">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Płatność – {html.escape(self.title)} (symulator)</title></head>
<body><main>
<h1>Płatność w serwisie {html.escape(self.title)} (symulator)</h1>
<dl>
<dt>Tytuł</dt><dd>{html.escape(txn.get("description") or "")}</dd>
<dt>Kwota</dt><dd>{polish_amount(txn["amount"])}</dd>
<dt>Numer płatności</dt><dd>{html.escape(txn["reference"])}</dd>
</dl>
{form}
</main></body></html>"""
        return Response(page, status=status, content_type="text/html; charset=utf-8")

    def payer_decision(self, request: Request, txn_key: str) -> Response:
        """The payer's form: mark the transaction, send its notification, send the payer back (303)."""
        decision = request.form.get("decision")
        if decision not in ("pay", "cancel"):
            return Response("Nieznana decyzja.", status=400, content_type="text/plain; charset=utf-8")
        with self._lock:
            txn = self._find(txn_key)
            if txn.get("decided"):
                built = None
            else:
                self._mark(txn, "confirmed" if decision == "pay" else "cancelled")
                txn["decided"] = True
                built = self._remember_notification(txn)
            back = self._return_url(txn)
        if built:
            self._deliver(txn["reference"], built)
        if not back:
            return Response("Płatność zakończona. Możesz zamknąć tę stronę.", content_type="text/plain; charset=utf-8")
        return Response("", status=303, headers={"Location": back})


# -- standalone ------------------------------------------------------------------------------------

def _value(text: str) -> Any:
    return int(text) if text.isdigit() and not text.startswith("0") else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Symulator bramki płatności (127.0.0.1)")
    parser.add_argument("--gateway", required=True, choices=sorted(GATEWAYS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KLUCZ=WARTOŚĆ",
                        help="opcja symulatora (np. crc=..., api_key=...); domyślnie dane demonstracyjne")
    parser.add_argument("--notify-url", help="adres powiadomień (ustawienie z panelu bramki)")
    parser.add_argument("--return-url", help="adres powrotu płatnika (Autopay: ustawienie z panelu)")
    parser.add_argument("--timeout-delay", type=float, default=3.0)
    args = parser.parse_args(argv)
    options: dict[str, Any] = dict(DEMO_OPTIONS[args.gateway])
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set oczekuje KLUCZ=WARTOŚĆ, podano {item!r}")
        options[key.replace("-", "_")] = _value(value)
    if args.notify_url:
        options["notify_url"] = args.notify_url
    if args.return_url:
        options["return_url"] = args.return_url
    simulator = simulator_class(args.gateway)(timeout_delay=args.timeout_delay, **options)
    simulator.start(args.port)
    print(f"READY {simulator.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    simulator.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
