"""E-pisma: letters filed electronically with a signature, their receipts, the registry office and replies (issue 5)."""
from __future__ import annotations

import importlib


def load_built_in() -> None:
    """Register the module's job handlers, built-in plugins (document sinks, signing methods) and the
    forms' dated settings (the stamp duty, the waste-fee rates)."""
    for name in ("forms", "operations", "sinks", "signing"):
        importlib.import_module(f"platforma.episma.{name}")
