"""E-pisma: letters filed electronically with a signature, their receipts, the registry office and replies (issue 5)."""
from __future__ import annotations

import importlib


def load_built_in() -> None:
    """Register the module's job handlers and built-in plugins (document sinks, signing methods)."""
    for name in ("operations", "sinks", "signing"):
        importlib.import_module(f"platforma.episma.{name}")
