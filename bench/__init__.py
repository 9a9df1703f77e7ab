"""Benchmarks that print ratios against a baseline measured in the same run: `python -m bench`.

See docs/performance.md for what each one measures and the numbers on these machines.
"""
