"""Tests of the load generator itself (run: python3 -m pytest bench/tests -q)."""
