"""Security headers on every response: CSP with a per-request nonce, framing, referrer, HSTS."""
from __future__ import annotations

import base64
import copy
import os
import threading
import time
from collections import OrderedDict
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature


_random = threading.local()
_NONCE_BYTES = 18
_BATCH = 256


def _nonce_bytes() -> bytes:
    """18 bytes from the operating system's CSPRNG, drawn 256 nonces at a time per thread (one
    getrandom call instead of one per response; each nonce is still fresh, unpredictable randomness
    used once)."""
    buffer = getattr(_random, "buffer", b"")
    if not buffer:
        buffer = os.urandom(_NONCE_BYTES * _BATCH)
    _random.buffer = buffer[_NONCE_BYTES:]
    return buffer[:_NONCE_BYTES]


# a forked worker must not reuse its parent's unused nonces
os.register_at_fork(after_in_child=lambda: _random.__dict__.pop("buffer", None))


def csp_nonce() -> str:
    request_globals = g._get_current_object().__dict__
    nonce = request_globals.get("csp_nonce")
    if nonce is None:
        nonce = request_globals["csp_nonce"] = base64.urlsafe_b64encode(_nonce_bytes()).decode()
    return nonce


_CSP_BEFORE_NONCE = "default-src 'self'; script-src 'self' 'nonce-"
_CSP_AFTER_NONCE = ("'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: the same on every response (set in one step: these headers are on every page, the trivial one too)
_FIXED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def content_security_policy(nonce: str) -> str:
    return _CSP_BEFORE_NONCE + nonce + _CSP_AFTER_NONCE


def init_security_headers(app: Flask, *, https: bool) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        # one look at what the view set (werkzeug's `in` raises and catches a KeyError for every miss)
        present = {key.lower() for key, _value in headers}
        if "content-security-policy" not in present:
            headers.add("Content-Security-Policy", content_security_policy(csp_nonce()))
        for name, value in _FIXED_HEADERS:
            if name.lower() in present:
                headers.set(name, value)
            else:
                headers.add(name, value)
        if https and request.is_secure:
            headers.set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if "cache-control" not in present and request.endpoint != "static":
            # pages carry personal data: never keep them in shared or back-button caches
            headers.add("Cache-Control", "no-store")
        return response


# -- the signed session cookie and the CSRF token, checked once per process --------------------------

class _Bounded:
    """A small thread-safe LRU."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class CheckedCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the cookies already verified kept per process.

    A signed-in browser sends the same cookie on every request until its content changes; checking the
    signature, decompressing and decoding it again each time was a fifth of a cached page's time. A
    cookie is remembered with its content and signing time only after it verified, under the exact
    string, so a hit is the same bytes that were verified with the same key; the age limit is applied
    on every request as before. Each request gets its own copy of the content.
    """

    def __init__(self, size: int = 4096) -> None:
        self.verified = _Bounded(size)

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return super().open_session(app, request)
        max_age = app.permanent_session_lifetime.total_seconds()
        known = self.verified.get((app.secret_key, value))
        if known is None:
            serializer = self.get_signing_serializer(app)
            if serializer is None:
                return None
            try:
                data, signed_at = serializer.loads(value, max_age=int(max_age), return_timestamp=True)
            except BadSignature:
                return self.session_class()
            known = (data, signed_at.timestamp())
            self.verified.put((app.secret_key, value), known)
        data, signed_at = known
        if time.time() - signed_at > max_age:
            return self.session_class()
        return self.session_class(copy.deepcopy(data) if any(isinstance(v, (list, dict)) for v in data.values()) else data)


_signed_csrf = _Bounded(8192)


def csrf_token() -> str:
    """Flask-WTF's CSRF token for the session, signed once per process per session token.

    Tokens never expire here (WTF_CSRF_TIME_LIMIT is None), so the signed form of a session's raw token
    stays valid: signing it again on every page (a fifth of a cached page) bought nothing.
    """
    request_globals = g._get_current_object().__dict__
    signed = request_globals.get("csrf_token")
    if signed is not None:
        return signed
    from flask import session
    from flask_wtf.csrf import generate_csrf

    raw = session.get("csrf_token")
    secret = current_app.secret_key
    signed = _signed_csrf.get((secret, raw)) if raw else None
    if signed is None:
        signed = generate_csrf()
        _signed_csrf.put((secret, session["csrf_token"]), signed)
    request_globals["csrf_token"] = signed
    return signed
