"""Benchmarks of tre: timings against a baseline measured in the same run (`python -m bench.run`).

Timings live here only, never in pass/fail tests; every figure that matters is a ratio.
"""
