"""Load bench: N concurrent gradio_client sessions against the real app, on loopback only.

Starts the app on a free 127.0.0.1 port (or uses `--url`, which must be a loopback address). Each
client is its own gradio session and loops over a lecture-like cycle: tokenize a text, show the
next-token distribution, generate a few tokens from it (stateful: needs the distribution of its own
session), run a small beam search, each with a prompt of its own. All clients together make at most
`--requests` requests, and none is started after `--seconds`.

The peer, in the same run: one client alone making the same cycle (`--single-cycles` times), so
the JSON shows per endpoint the concurrent figures (requests, errors, throughput, p50/p95/p99 and
mean latency in ms) beside the single-client ones, as ratios (`throughput_x`: total throughput of N
clients over one client's; `p50_x`: how much longer a request takes under load).

Usage: `.venv/bin/python bench/bench_load.py [--clients 8] [--requests 160] [--seconds 240]`.
What it leaves out: anything but loopback (it refuses other hosts), browser rendering time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hall_http import percentile  # noqa: E402

PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):", "My favourite colour is",
           "The weather today", "In 1492 Columbus", "Water boils at", "The quick brown fox"]
MODEL = "smollm2-135m-instruct"
RULES = [1.0, 0, 0.9, 0.0, "transformers"]

# The cycle each client runs: (endpoint, inputs for a prompt and a client number).
CYCLE = [
    ("/tokenize", lambda prompt, n: ["llama-3", prompt, False, False]),
    ("/sampling_distribution", lambda prompt, n: [MODEL, False, prompt, 20, False, *RULES]),
    ("/sampling_generate", lambda prompt, n: [8, "", 20, False, *RULES, n]),
    ("/beam_search", lambda prompt, n: [prompt, MODEL, False, 3, 6, 1.0, "false", 3, False, False, 1, False]),
]


def summary(latencies: list[float], errors: list[str], elapsed: float) -> dict:
    return {
        "requests": len(latencies), "errors": len(errors), "error_samples": errors[:3],
        "throughput_per_s": round(len(latencies) / elapsed, 3) if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "mean_ms": round(statistics.mean(latencies), 1) if latencies else 0.0,
    }


def run_clients(url: str, clients: int, budget: int, seconds: float) -> tuple[dict, dict, float]:
    """(latencies per endpoint, errors per endpoint, elapsed) for `clients` sessions sharing `budget`."""
    from gradio_client import Client

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    lock = threading.Lock()
    remaining = [budget]
    deadline = time.monotonic() + seconds

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or time.monotonic() > deadline:
                return False
            remaining[0] -= 1
            return True

    def client_loop(index: int) -> None:
        client = Client(url, verbose=False)
        cycle = 0
        while True:
            prompt = f"{PROMPTS[(index + cycle) % len(PROMPTS)]} ({index})"
            for endpoint, inputs in CYCLE:
                if not take():
                    return
                start = time.perf_counter()
                try:
                    client.predict(*inputs(prompt, index), api_name=endpoint)
                    latencies[endpoint].append((time.perf_counter() - start) * 1000)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors[endpoint].append(f"{type(exc).__name__}: {str(exc)[:160]}")
            cycle += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i + 1,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=160, help="requests in all, all clients together")
    parser.add_argument("--seconds", type=float, default=240, help="no request starts after this")
    parser.add_argument("--single-cycles", type=int, default=3, help="cycles of the one-client peer run")
    args = parser.parse_args()
    from gradio_client import Client

    process = None
    if args.url:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("bench_load only targets this machine (127.0.0.1)")
        url = args.url
    else:
        from tests.conftest import start_app

        url, process = start_app(log_name="bench-load.log")
    try:
        api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
        missing = [endpoint for endpoint, _ in CYCLE if endpoint not in api]
        if missing:
            sys.exit(f"the app has no endpoint {missing}")
        run_clients(url, 1, len(CYCLE), 600)  # warm-up: models load lazily
        single_lat, single_err, single_elapsed = run_clients(url, 1, len(CYCLE) * args.single_cycles, args.seconds)
        lat, err, elapsed = run_clients(url, args.clients, args.requests, args.seconds)
        report = {"url": url, "clients": args.clients, "seconds": round(elapsed, 1),
                  "requests": sum(map(len, lat.values())), "errors": sum(map(len, err.values())),
                  "total_throughput_per_s": round(sum(map(len, lat.values())) / elapsed, 3),
                  "single_client": {"seconds": round(single_elapsed, 1),
                                    "total_throughput_per_s": round(sum(map(len, single_lat.values()))
                                                                    / single_elapsed, 3)},
                  "endpoints": {}}
        for endpoint, _ in CYCLE:
            ours = summary(lat[endpoint], err[endpoint], elapsed)
            peer = summary(single_lat[endpoint], single_err[endpoint], single_elapsed)
            report["endpoints"][endpoint] = {
                "concurrent": ours, "single_client": peer,
                "throughput_x": round(ours["throughput_per_s"] / peer["throughput_per_s"], 2)
                if peer["throughput_per_s"] else None,
                "p50_x": round(ours["p50_ms"] / peer["p50_ms"], 2) if peer["p50_ms"] else None,
            }
        report["throughput_x"] = round(report["total_throughput_per_s"]
                                       / report["single_client"]["total_throughput_per_s"], 2)
        print(json.dumps(report, indent=2))
    finally:
        if process is not None:
            from tests.conftest import stop_app

            stop_app(process)


if __name__ == "__main__":
    main()
