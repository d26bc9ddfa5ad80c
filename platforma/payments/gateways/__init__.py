"""Payment gateway plugins: Przelewy24, PayU, Paynow, Autopay and the demo sandbox."""
from __future__ import annotations

import importlib

BUILT_IN = ("sandbox", "przelewy24", "payu", "paynow", "autopay")


def load_built_in() -> None:
    """Register the built-in gateways (each module registers its plugin on import)."""
    for name in BUILT_IN:
        importlib.import_module(f"platforma.payments.gateways.{name}")
