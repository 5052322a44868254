"""Benchmarks of the Activity Feed service (`make bench`, or `python -m bench [NAME ...]`).

Each benchmark module has a `NAME` and a `run() -> list[Check]`; see bench/README.md.
"""
