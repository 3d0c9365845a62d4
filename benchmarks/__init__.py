"""Benchmarks (not tests): run as modules, e.g. ``python -m benchmarks.bench_response``."""
