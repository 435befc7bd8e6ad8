"""Benchmarks of mashroom-jobs, side by side with APScheduler 3.11.

Run ``python -m benchmarks`` (full, a few minutes) or ``python -m benchmarks --quick``
(about a minute, the CI smoke check).  Each measurement runs in a fresh
subprocess (:mod:`benchmarks.worker`), one scheduler at a time, the two
schedulers alternating; :mod:`benchmarks.run` prints the table and writes JSON.
"""
