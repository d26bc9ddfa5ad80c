"""Browser tests: a live server on a demo instance, Chromium through Playwright, axe-core on every page.

Chromium must be at /usr/bin/chromium (Playwright's own browser download is not used). When it is
missing the tests are skipped, or fail when PLATFORMA_REQUIRE_BROWSER=1 (CI sets it).

Every page checked with axe is recorded; the list and its length are printed at the end of the run
("axe checked N pages").
"""
from __future__ import annotations

import re

import os
import socket
import threading
from typing import Any, Callable, Iterator

import pytest
from werkzeug.serving import make_server

import platforma.core.mail  # noqa: F401  (registers the mail job handler)
from platforma.app import create_app
from platforma.core.db import transaction
from platforma.core.migrate import upgrade
from platforma.core.runtime import Runtime
from platforma.demo.load import load_demo
from tests.browser import axe_report
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, CLERK, DESKTOP, Tab, log_in
from tests.conftest import base_settings


def pytest_configure(config: Any) -> None:
    # the "axe checked N pages" summary; tests/conftest.py may also load it (pytest_plugins) so that it
    # prints when the controller of an xdist run never loads this directory's conftest
    if not config.pluginmanager.is_registered(axe_report):
        config.pluginmanager.register(axe_report, "platforma-axe-report-module")


#: where the live instance writes its mail (the "file" mail backend)
LIVE_MAIL_DIR = None
#: the live instance's runtime, for a test that puts something in its database the way a job would find it
LIVE_RUNTIME = None


def _letter_pki():
    from tests.unit.test_esign_pki import make_pki

    return make_pki()


#: the certification authority the live instance trusts for residents' signatures, and a signer it issued
LETTER_PKI = _letter_pki()


@pytest.fixture
def live_mail(live_server):
    """Mail the live instance has sent: a function returning the links in messages to an address."""
    import email
    import email.policy

    def links_to(address: str) -> list[str]:
        found = []
        for path in sorted(LIVE_MAIL_DIR.glob("*.eml"), key=lambda p: p.stat().st_mtime):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address:
                found += re.findall(r"http://127\.0\.0\.1:\d+(/\S+)", message.get_content())
        return found

    return links_to


# -- the live server ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The app on a migrated SQLite instance with the demo loaded, served on 127.0.0.1; yields the base URL."""
    instance = tmp_path_factory.mktemp("browser-instance")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # letters: residents sign with the test PKI's certificate, the office seals receipts with a development seal
    from platforma.esign.seal import create_development_seal
    from tests.unit.test_esign_pki import pem

    (instance / "zaufani.pem").write_bytes(pem(LETTER_PKI.root.cert))
    create_development_seal(instance, office_name="Urząd Gminy Testowo", gmina_name="Gmina Testowo", nip="7794242429")
    # the configured public address is the server's own: gateways' redirects and return links use it
    settings = base_settings(
        instance, f"sqlite:///{instance / 'platforma.sqlite3'}", server={"base_url": f"http://127.0.0.1:{port}"},
        payments={"gateways": ["sandbox"], "virtual_accounts": {"enabled": True, "sort_code": "90900004", "fixed": "2001"}},
        esign={"trust_anchors": "zaufani.pem", "seal_key": "seal-key.pem", "seal_certificate": "seal-cert.pem"},
    )
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    with transaction(runtime.session_factory) as session:
        load_demo(session)
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    global LIVE_MAIL_DIR, LIVE_RUNTIME
    LIVE_MAIL_DIR = instance / "mail"
    LIVE_RUNTIME = runtime
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    runtime.engine.dispose()


# -- the browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM}: browser tests skipped"
        if os.environ.get("PLATFORMA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM} and PLATFORMA_REQUIRE_BROWSER=1")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()
    playwright.stop()


def new_tab(browser: Any, base_url: str, viewport: dict | None = None, javascript: bool = True, **kwargs: Any) -> tuple[Any, Tab]:
    """A fresh browser context (its own cookies) with one page."""
    context = browser.new_context(
        viewport=viewport or DESKTOP, java_script_enabled=javascript, locale="pl-PL", timezone_id="Europe/Warsaw", **kwargs
    )
    # generous: a loaded 2-core machine runs argon2 and the account pages for two test processes at once
    context.set_default_timeout(30_000)
    return context, Tab(context.new_page(), base_url, javascript=javascript)


@pytest.fixture
def open_tab(chromium, live_server) -> Iterator[Callable[..., Tab]]:
    """Opens a fresh browser context and page; the JS-error check runs again at the end of the test."""
    contexts: list[Any] = []
    tabs: list[Tab] = []

    def make(viewport: dict | None = None, javascript: bool = True, **kwargs: Any) -> Tab:
        context, tab = new_tab(chromium, live_server, viewport, javascript, **kwargs)
        contexts.append(context)
        tabs.append(tab)
        return tab

    yield make
    try:
        for tab in tabs:
            tab.assert_no_js_errors()
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="session")
def clerk_cookies(chromium, live_server) -> dict:
    """The demo clerk signed in once per test process (through the real form, with TOTP), as Playwright
    storage state: a code can be used only once, and the clerk's and the administrator's tests both need
    a signed-in clerk, in whichever order or xdist worker they run."""
    context, tab = new_tab(chromium, live_server)
    try:
        log_in(tab, CLERK.email, CLERK.password, CLERK.totp_secret, check=True)
        assert tab.path == "/urzad/", tab.page.url
        tab.assert_no_js_errors()
        return context.storage_state()
    finally:
        context.close()
