"""Throughput of a room: concurrent generations sharing one batched forward per decode step.

For each model, in one run and one process (no HTTP: the model work itself):

- ours alone: one session generates `--tokens` tokens (`generation.generate`, the lab's loop, the
  distribution recorded every step), timed `--repeats` times;
- ours, `--sessions` at once: that many sessions (threads, different prompts and seeds) generate
  together; their decode steps are grouped into one forward per step (`playground.batching`);
- the peer: plain transformers `model.generate` (greedy off, the same number of new tokens, output
  scores kept) alone and from the same number of threads at once;
- a cheap call (tokenizing a sentence with the model's tokenizer) timed alone and while the
  sessions generate: its p95 under load over its p95 alone.

It prints JSON: tokens/s for each, `aggregate_x` (tokens/s of N sessions over one alone) for ours
and the peer, the observed batch sizes, and the cheap call's p50/p95 with the ratio. Tokens of each
concurrent session equal the same session run alone (checked, reported as `same_tokens`).

Usage: `.venv/bin/python bench/bench_decode.py [--models smollm2-135m-instruct gemma-3-270m]
[--sessions 16] [--tokens 32]`. What it leaves out: the HTTP and queue layers (bench_hall.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from playground import batching, generation  # noqa: E402
from playground.models import load_model  # noqa: E402
from playground.sampling import SamplingSettings  # noqa: E402
from timing import in_threads  # noqa: E402

SETTINGS = SamplingSettings(temperature=1.0, top_p=0.9)
PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):", "My favourite colour is",
           "The weather today", "In 1492 Columbus", "Water boils at", "The quick brown fox"]
CHEAP_TEXT = "A cat was climbing a tree or Tree."


def prompt(i: int) -> str:
    return f"{PROMPTS[i % len(PROMPTS)]} (student {i})"


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2), "n": len(ordered)}


def cheap_latencies(tokenizer, stop: threading.Event, out: list, limit: int = 400) -> None:
    while not stop.is_set() and len(out) < limit:
        began = time.perf_counter()
        tokenizer(CHEAP_TEXT)
        out.append(time.perf_counter() - began)
        time.sleep(0.02)


def bench_model(model_id: str, sessions: int, tokens: int, repeats: int) -> dict:
    loaded = load_model(model_id)
    ids = [loaded.tokenizer(prompt(i))["input_ids"] for i in range(sessions)]

    def ours(i):
        return generation.generate(loaded, ids[i], SETTINGS, tokens, seed=i).token_ids

    def peer(i):
        torch.manual_seed(i)
        with torch.inference_mode():
            out = loaded.model.generate(torch.tensor([ids[i]]), do_sample=True, top_p=0.9, top_k=0, temperature=1.0,
                                        max_new_tokens=tokens, min_new_tokens=tokens, output_scores=True,
                                        return_dict_in_generate=True, pad_token_id=loaded.eos_token_ids[0])
        return out.sequences.shape[1] - len(ids[i])

    ours(0)  # warm-up
    alone_s = statistics.median(_timed(lambda: ours(0)) for _ in range(repeats))
    expected = [ours(i) for i in range(sessions)]
    cheap_alone: list[float] = []
    cheap_latencies(loaded.tokenizer, threading.Event(), cheap_alone, limit=100)

    batcher = batching.decode_batcher_for(loaded)
    batcher.batch_sizes.clear()
    stop, cheap_loaded = threading.Event(), []
    watcher = threading.Thread(target=cheap_latencies, args=(loaded.tokenizer, stop, cheap_loaded))
    watcher.start()
    together, together_s = in_threads(ours, sessions)
    stop.set()
    watcher.join()
    sizes = list(batcher.batch_sizes)

    peer(0)
    peer_alone_s = statistics.median(_timed(lambda: peer(0)) for _ in range(repeats))
    peer_counts, peer_together_s = in_threads(peer, sessions)

    ours_alone_tps = tokens / alone_s
    ours_together_tps = sessions * tokens / together_s
    peer_alone_tps = tokens / peer_alone_s
    peer_together_tps = sum(peer_counts) / peer_together_s
    cheap = {"alone": percentiles(cheap_alone), "under_load": percentiles(cheap_loaded)}
    cheap["p95_x"] = round(cheap["under_load"]["p95_ms"] / max(cheap["alone"]["p95_ms"], 1e-6), 2)
    return {
        "sessions": sessions, "tokens_each": tokens,
        "ours": {"alone_tokens_per_s": round(ours_alone_tps, 1), "together_tokens_per_s": round(ours_together_tps, 1),
                 "aggregate_x": round(ours_together_tps / ours_alone_tps, 2),
                 "mean_batch_size": round(statistics.mean(sizes), 2) if sizes else None,
                 "max_batch_size": max(sizes) if sizes else None,
                 "same_tokens": together == expected},
        "peer_transformers_generate": {"alone_tokens_per_s": round(peer_alone_tps, 1),
                                       "together_tokens_per_s": round(peer_together_tps, 1),
                                       "aggregate_x": round(peer_together_tps / peer_alone_tps, 2)},
        "ours_together_over_peer_together": round(ours_together_tps / peer_together_tps, 2),
        "cheap_call": cheap,
    }


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report = {"command": "bench/bench_decode.py " + " ".join(sys.argv[1:]), "threads": torch.get_num_threads(),
              "models": {}}
    for model_id in args.models:
        report["models"][model_id] = bench_model(model_id, args.sessions, args.tokens, args.repeats)
        print(json.dumps({model_id: report["models"][model_id]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
