"""Browser tests: a live server on a demo instance, Chromium through Playwright, axe-core on every page.

Chromium must be at /usr/bin/chromium (Playwright's own browser download is not used). When it is
missing the tests are skipped, or fail when PLATFORMA_REQUIRE_BROWSER=1 (CI sets it).

Every page checked with axe is recorded; the list and its length are printed at the end of the run
("axe checked N pages").
"""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pyotp
import pytest
from werkzeug.serving import make_server

import platforma.core.mail  # noqa: F401  (registers the mail job handler)
from platforma.app import create_app
from platforma.core.db import transaction
from platforma.core.migrate import upgrade
from platforma.core.runtime import Runtime
from platforma.demo.load import DEMO_ACCOUNTS, load_demo
from tests.conftest import base_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 900}

RESIDENT, CLERK, ADMIN = DEMO_ACCOUNTS

#: every URL checked with axe in this run (label, URL), printed at the end
AXE_VISITED: list[tuple[str, str]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not AXE_VISITED:
        return
    terminalreporter.section("axe-core")
    terminalreporter.write_line(f"axe checked {len(AXE_VISITED)} pages (WCAG 2.1 A/AA, zero violations required):")
    for label, url in AXE_VISITED:
        terminalreporter.write_line(f"  {url}  [{label}]")


# -- the live server ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The app on a migrated SQLite instance with the demo loaded, served on 127.0.0.1; yields the base URL."""
    instance = tmp_path_factory.mktemp("browser-instance")
    settings = base_settings(instance, f"sqlite:///{instance / 'platforma.sqlite3'}")
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    with transaction(runtime.session_factory) as session:
        load_demo(session)
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
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


_axe = None


def _axe_runner():
    global _axe
    if _axe is None:
        from axe_playwright_python.sync_playwright import Axe

        _axe = Axe()
    return _axe


_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(map(str, node.get("target", []))) for node in v.get("nodes", [])]
        more = f" (+{len(targets) - 3} more)" if len(targets) > 3 else ""
        lines.append(f"  - {v['id']} [{v.get('impact')}]: {v.get('help')}\n      {', '.join(targets[:3])}{more}")
    return "\n".join(lines)


class Tab:
    """A page in its own browser context that collects JS errors and runs axe on demand."""

    def __init__(self, page: Any, base_url: str):
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        #: HTTP error statuses the test expects for documents (Chromium logs them as console errors)
        self.expected_statuses: set[int] = set()
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught JS error on {page.url}: {exc}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console error on {self.page.url}: {message.text}")

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def path(self) -> str:
        return self.page.url.removeprefix(self.base_url)

    def goto(self, path: str, status: int = 200) -> Any:
        if status >= 400:
            self.expected_statuses.add(status)
        response = self.page.goto(self.url(path))
        assert response is not None, path
        assert response.status == status, f"{path}: HTTP {response.status}, expected {status}"
        return response

    def submit(self, locator: Any, status: int = 200) -> Any:
        """Click a submit button and wait for the page that the form leads to."""
        if status >= 400:
            self.expected_statuses.add(status)
        with self.page.expect_navigation() as navigation:
            locator.click()
        response = navigation.value
        assert response is not None
        assert response.status == status, f"{self.page.url}: HTTP {response.status}, expected {status}"
        self.page.wait_for_load_state("load")
        return response

    def js_errors(self) -> list[str]:
        problems = []
        for text in self.errors:
            found = _FAILED_LOAD.search(text)
            if found and int(found.group(1)) in self.expected_statuses:
                continue
            problems.append(text)
        return problems

    def assert_no_js_errors(self) -> None:
        problems = self.js_errors()
        assert not problems, "JavaScript errors or CSP violations:\n" + "\n".join(problems)

    def check(self, label: str | None = None) -> None:
        """axe-core on the current page (WCAG 2.1 A and AA): zero violations, and no JS errors so far."""
        results = _axe_runner().run(self.page, options=AXE_OPTIONS)
        AXE_VISITED.append((label or self.path, self.page.url))
        violations = results.response.get("violations", [])
        assert not violations, f"axe: {len(violations)} violation(s) on {self.page.url}:\n{format_violations(violations)}"
        self.assert_no_js_errors()


@pytest.fixture
def open_tab(chromium, live_server) -> Iterator[Callable[..., Tab]]:
    """Opens a fresh browser context (its own cookies) and page; the JS-error check runs again at the end."""
    contexts: list[Any] = []
    tabs: list[Tab] = []

    def make(viewport: dict | None = None, javascript: bool = True, **kwargs: Any) -> Tab:
        context = chromium.new_context(
            viewport=viewport or DESKTOP, java_script_enabled=javascript, locale="pl-PL", timezone_id="Europe/Warsaw", **kwargs
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        tab = Tab(context.new_page(), live_server)
        tabs.append(tab)
        return tab

    yield make
    try:
        for tab in tabs:
            tab.assert_no_js_errors()
    finally:
        for context in contexts:
            context.close()


# -- logging in ----------------------------------------------------------------------------------------

_last_totp_step: dict[str, int] = {}


def fresh_totp(secret: str) -> str:
    """A TOTP code not yet used in this run: the app refuses a code (time step) used before."""
    totp = pyotp.TOTP(secret)
    while True:
        step = int(time.time() // totp.interval)
        if step > _last_totp_step.get(secret, -1):
            break
        time.sleep(max(0.05, totp.interval - time.time() % totp.interval + 0.05))
    _last_totp_step[secret] = step
    return totp.generate_otp(step)


def log_in(tab: Tab, email: str, password: str, totp_secret: str | None = None, *, check: bool = False) -> None:
    """Log in through the real form (and the TOTP step); optionally axe-check the pages on the way."""
    tab.goto("/konto/logowanie")
    tab.page.get_by_label("Adres e-mail").fill(email)
    tab.page.get_by_label("Hasło", exact=True).fill(password)
    tab.submit(tab.page.locator("main").get_by_role("button", name="Zaloguj się"))
    if totp_secret:
        assert tab.path == "/konto/logowanie/kod", tab.page.url
        if check:
            tab.check("logowanie: kod TOTP")
        tab.page.get_by_label("Kod z aplikacji").fill(fresh_totp(totp_secret))
        tab.submit(tab.page.locator("main").get_by_role("button", name="Dalej"))
    assert not tab.path.startswith("/konto/logowanie"), f"login failed, still on {tab.page.url}"
