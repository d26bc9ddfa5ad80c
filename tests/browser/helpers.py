"""Helpers for the browser tests: a page that collects JS errors and runs axe, logging in, TOTP codes."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pyotp

from platforma.demo.load import DEMO_ACCOUNTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 900}

RESIDENT, CLERK, ADMIN = DEMO_ACCOUNTS

#: every page checked with axe in this run, as (label, URL); printed at the end of the run
AXE_VISITED: list[tuple[str, str]] = []


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

    def __init__(self, page: Any, base_url: str, *, javascript: bool = True):
        self.page = page
        self.base_url = base_url
        self.javascript = javascript
        #: (message, URL of the resource it is about) for console errors and uncaught exceptions
        self.errors: list[tuple[str, str]] = []
        #: (URL, status) of documents that the test expects to fail: Chromium logs them as console errors
        self.expected_failures: set[tuple[str, int]] = set()
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append((f"uncaught JS error on {page.url}: {exc}", page.url)))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            url = message.location.get("url", "")
            self.errors.append((f"console error on {self.page.url}: {message.text} [{url}]", url))

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def path(self) -> str:
        return self.page.url.removeprefix(self.base_url)

    def _expect(self, response: Any, status: int) -> None:
        assert response is not None
        assert response.status == status, f"{response.url}: HTTP {response.status}, expected {status}"
        if status >= 400:
            self.expected_failures.add((response.url, status))

    def goto(self, path: str, status: int = 200) -> Any:
        response = self.page.goto(self.url(path))
        self._expect(response, status)
        return response

    def submit(self, locator: Any, status: int = 200) -> Any:
        """Click a submit button and wait for the page that the form leads to."""
        with self.page.expect_navigation() as navigation:
            locator.click()
        response = navigation.value
        self._expect(response, status)
        self.page.wait_for_load_state("load")
        return response

    def js_errors(self) -> list[str]:
        problems = []
        for text, url in self.errors:
            found = _FAILED_LOAD.search(text)
            if found and (url, int(found.group(1))) in self.expected_failures:
                continue
            problems.append(text)
        return problems

    def assert_no_js_errors(self) -> None:
        problems = self.js_errors()
        assert not problems, "JavaScript errors or CSP violations:\n" + "\n".join(problems)

    def check(self, label: str | None = None) -> None:
        """axe-core on the current page (WCAG 2.1 A and AA): zero violations, and no JS errors so far."""
        # axe.run() waits on timers, which never fire with JavaScript off: it would hang, not fail
        assert self.javascript, "axe cannot run in a context with JavaScript disabled"
        results = _axe_runner().run(self.page, options=AXE_OPTIONS)
        AXE_VISITED.append((label or self.path, self.page.url))
        violations = results.response.get("violations", [])
        assert not violations, f"axe: {len(violations)} violation(s) on {self.page.url}:\n{format_violations(violations)}"
        self.assert_no_js_errors()


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
