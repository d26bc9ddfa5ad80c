"""Platforma e-usług gminy."""

__version__ = "0.1.0"
