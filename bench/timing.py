"""Shared timing helper for the bench scripts (run as scripts: bench/ is on sys.path)."""

from __future__ import annotations

import statistics
import time


def median_ms(fn, repeats: int, digits: int = 2) -> float:
    """Median wall time of `fn()` in milliseconds over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), digits)
