"""The "axe checked N pages" summary at the end of a run, also under pytest-xdist.

Registered by tests/browser/conftest.py; a root conftest may load it too with
`pytest_plugins = ["tests.browser.axe_report"]`, so that the summary is printed by the controller of an
xdist run over the whole suite (which never loads tests/browser/conftest.py itself).
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.helpers import AXE_VISITED


def _print_axe_summary(terminalreporter: Any, visited: list[tuple[str, str]]) -> None:
    if not visited:
        return
    distinct = len({urlsplit(url)._replace(scheme="", netloc="").geturl() for _label, url in visited})
    terminalreporter.section("axe-core")
    terminalreporter.write_line(
        f"axe checked {len(visited)} pages ({distinct} distinct addresses; WCAG 2.1 A/AA, zero violations required):"
    )
    for label, url in visited:
        terminalreporter.write_line(f"  {url}  [{label}]")


class _XdistAxeReport:
    """Under pytest-xdist the pages are checked in the workers: each sends its list to the controller."""

    def __init__(self) -> None:
        self.visited: list[tuple[str, str]] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.visited.extend(tuple(item) for item in json.loads(node.workeroutput.get("axe_visited", "[]")))


def pytest_configure(config: Any) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        if config.pluginmanager.get_plugin("platforma-axe-report") is None:
            config.pluginmanager.register(_XdistAxeReport(), "platforma-axe-report")


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker
        session.config.workeroutput["axe_visited"] = json.dumps(AXE_VISITED)


def pytest_terminal_summary(terminalreporter: Any, config: Any) -> None:
    report = config.pluginmanager.get_plugin("platforma-axe-report")
    _print_axe_summary(terminalreporter, report.visited if report is not None and report.visited else AXE_VISITED)
