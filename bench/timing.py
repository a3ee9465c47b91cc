"""Shared helpers for the bench scripts (run as scripts: bench/ is on sys.path): timing, and the JSON
report every bench prints and writes."""

from __future__ import annotations

import json
import statistics
import threading
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


def in_threads(fn, count: int) -> tuple[list, float]:
    """fn(i) for i in range(count), each in its own thread, all released at once:
    (their results in order, wall seconds from the release until the last one finished)."""
    results = [None] * count
    start = threading.Barrier(count + 1)

    def run(i):
        start.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - began


def write_report(report: dict, path: str | None, echo: bool = True, indent: int = 2) -> None:
    """Print the report as JSON (unless `echo` is False) and write it to `path` if given."""
    text = json.dumps(report, indent=indent)
    if echo:
        print(text, flush=True)
    if path:
        with open(path, "w") as handle:
            handle.write(text + "\n")
