"""Benchmarks on a generated gmina (see bench/README.md)."""
