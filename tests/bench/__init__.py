"""Tests of the benchmark tooling (the generator), not timings."""
