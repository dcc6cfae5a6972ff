"""Benchmarks (not pure layers: they read the clock). Run with `python -m consortium.benchmarks.<name>`."""
