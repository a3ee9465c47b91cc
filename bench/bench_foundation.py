"""Foundation benchmark: load times, next-token latency against plain transformers, memory, start-up.

Prints one JSON document:
- `load`: per packaged model, seconds to load cold (GGUF -> dequantize -> write the safetensors
  cache, in a fresh process with an empty cache dir) and warm (from the cache), each measured
  inside a fresh process (`load_seconds`) and as the whole process wall time.
- `next_token`: median latency of one next-token distribution at 32 and 512 prompt tokens,
  ours (`playground.decoding.forward`, last-position logits only) and the peer (plain transformers:
  `model(input_ids).logits[0, -1].softmax(-1)`), on the same loaded model, with the ratio.
- `rss`: peak resident memory of a process with both packaged models loaded and each run once
  (safetensors weights are memory-mapped: they count as resident once a forward pass used them).
- `startup`: seconds from starting `python app.py` to the page being served (warm cache).

Usage: `.venv/bin/python bench/bench_foundation.py [--skip-cold] [--repeats N]`.
What it leaves out: GPU figures (see bench/bench_speed.py), per-tab figures (their own scripts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from timing import median_ms  # noqa: E402  (bench/ is on sys.path when run as a script)

PACKAGED = ["gemma-3-270m", "smollm2-135m-instruct"]

_LOAD_SNIPPET = """
import json, sys, time, resource
from playground import models
report = {}
from playground import decoding
for model_id in sys.argv[1:]:
    loaded = models.load_model(model_id)
    report[model_id] = {"load_seconds": round(loaded.load_seconds, 2), "loaded_from": loaded.loaded_from}
for model_id in sys.argv[1:]:  # touch every weight: memory-mapped weights count once used
    decoding.next_token_distribution(model_id, "The capital of France is")
report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(report))
"""


def run_load(model_ids: list[str], cache_dir: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cache_dir:
        env["PLAYGROUND_CACHE_DIR"] = cache_dir
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _LOAD_SNIPPET, *model_ids], env=env, capture_output=True,
                         text=True, check=True, timeout=900)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["process_seconds"] = round(time.perf_counter() - start, 2)
    return report




def next_token_latency(model_id: str, repeats: int) -> dict:
    import torch

    from playground import decoding, models

    loaded = models.load_model(model_id)
    results = {}
    for length in (32, 512):
        ids = torch.randint(100, 5000, (1, length))

        def ours():
            logits, _ = decoding.forward(loaded, ids)
            return torch.softmax(logits[0], -1)

        @torch.inference_mode()
        def peer():
            return loaded.model(input_ids=ids).logits[0, -1].float().softmax(-1)

        assert torch.allclose(ours(), peer(), atol=1e-5)
        ours_ms, peer_ms = median_ms(ours, repeats), median_ms(peer, repeats)
        results[f"prompt_{length}"] = {"ours_ms": ours_ms, "transformers_ms": peer_ms,
                                       "ours_over_transformers": round(ours_ms / peer_ms, 3)}
    return results


def startup_seconds() -> float:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_app, stop_app

    start = time.perf_counter()
    _, process = start_app(log_name="bench-startup.log")
    elapsed = time.perf_counter() - start
    stop_app(process)
    return round(elapsed, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-cold", action="store_true", help="skip the slow cold (GGUF) loads")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    import torch

    report = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}, "load": {}}
    for model_id in PACKAGED:
        run_load([model_id])  # make sure the real cache exists
        entry = {"warm": run_load([model_id])}
        if not args.skip_cold:
            with tempfile.TemporaryDirectory() as empty_cache:
                entry["cold"] = run_load([model_id], cache_dir=empty_cache)
        report["load"][model_id] = entry
    both = run_load(PACKAGED)
    report["rss"] = {"both_models_peak_rss_mb": both["peak_rss_mb"], "target_mb": 2560}
    report["next_token"] = {model_id: next_token_latency(model_id, args.repeats) for model_id in PACKAGED}
    report["startup"] = {"page_served_seconds": startup_seconds(), "target_seconds": 15}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
