"""Sampling lab benchmark: ours and plain transformers side by side, in one run.

Prints one JSON document with:
- `refilter`: on gemma-3-270m's real next-token logits (262,144 tokens), the median ms to apply a
  set of rules and build the chart as the tab does on a control change (`filter_logits` on the
  session's cached `RankedLogits` + `distribution_spec` + its JSON, which is what Gradio sends), for
  every lecture preset and a few harder settings (target <= 10 ms). The peer is the plain way:
  transformers' warpers on the full vocabulary + softmax, then the same chart as a `go.Figure`
  serialised with `figure.to_json()`. `cold_ms` is our
  first filter of a fresh distribution (the top-k candidate search included).
- `generation`: per packaged model and rule set, tokens per second of our step loop
  (`generation.generate`: a step record with raw/processed probabilities, rank, top alternatives,
  EOS probability and both entropies at every token) against `model.generate` with the same
  rules, prompt and token count; runs interleaved so machine load hits both alike; `ratio` =
  ours / peer (target >= 0.9).

Usage: `.venv/bin/python bench/bench_sampling.py [--repeats N] [--tokens N] [--models ID ...]`.
What it leaves out: the browser's drawing time, K-sample batching, GPU figures (run it with
PLAYGROUND_DEVICE=cuda on a GPU box).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import LogitsProcessorList  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground import decoding, generation  # noqa: E402
from playground.models import load_model  # noqa: E402
from playground.plots.sampling import distribution_figure, distribution_spec, spec_json  # noqa: E402
from playground.sampling import (  # noqa: E402
    PRESETS,
    FilterResult,
    RankedLogits,
    SamplingSettings,
    entropy_bits,
    filter_logits,
)

MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
PROMPT = "The capital of France is"
GEN_PROMPT = "Once upon a time, in a small village by the sea,"
REFILTER_SETTINGS = {
    **PRESETS,
    "hot nucleus (T=2, top-p 0.95)": SamplingSettings(temperature=2.0, top_p=0.95),
    "no rules (T=1.3)": SamplingSettings(temperature=1.3),
    "min-p only (T=1.5, 0.05)": SamplingSettings(temperature=1.5, min_p=0.05),
    "temperature last": SamplingSettings(temperature=1.5, top_k=50, top_p=0.9, order="temperature_last"),
}
from timing import median_ms as _median_ms  # noqa: E402  (bench/ is on sys.path)


def median_ms(fn, repeats: int) -> float:
    return _median_ms(fn, repeats, digits=3)


GEN_SETTINGS = {"nucleus": PRESETS["nucleus"], "greedy": PRESETS["greedy"]}




def peer_probs(logits: torch.Tensor, s: SamplingSettings) -> torch.Tensor:
    """transformers' warpers on the full vocabulary, as `model.generate` would build them."""
    if s.greedy:
        probs = torch.zeros_like(logits)
        probs[int(logits.argmax())] = 1
        return probs
    warpers = []
    if s.temperature != 1.0 and s.order == "transformers":
        warpers.append(TemperatureLogitsWarper(s.temperature))
    if s.top_k:
        warpers.append(TopKLogitsWarper(s.top_k))
    if s.top_p < 1:
        warpers.append(TopPLogitsWarper(s.top_p))
    if s.min_p > 0:
        warpers.append(MinPLogitsWarper(s.min_p))
    scores = LogitsProcessorList(warpers)(None, logits[None])[0]
    if s.order == "temperature_last" and s.temperature != 1.0:
        scores = scores / s.temperature
    return torch.softmax(scores, dim=-1)


def bench_refilter(repeats: int) -> dict:
    loaded = load_model("gemma-3-270m")
    tokenizer = loaded.tokenizer
    logits = decoding.next_token_distribution("gemma-3-270m", PROMPT).logits
    ranked = RankedLogits(logits)  # the tab keeps one per distribution
    rows = {}
    for name, settings in REFILTER_SETTINGS.items():

        def ours():  # what the tab sends on a control change
            spec_json(distribution_spec(ranked, filter_logits(ranked, settings), tokenizer, 20))

        def peer():  # no cached ordering: warpers, softmax, entropies, then the same chart builder
            probs = peer_probs(logits, settings)
            kept_ids = torch.nonzero(probs > 0).flatten()
            fresh = RankedLogits(logits)
            result = FilterResult(settings, fresh.raw_probs, kept_ids, probs[kept_ids], fresh.raw_entropy_bits,
                                  entropy_bits(torch.log(probs[kept_ids])), fresh.vocab_size)
            distribution_figure(fresh, result, tokenizer, 20).to_json()

        def filter_only():
            filter_logits(ranked, settings)

        def peer_filter_only():
            peer_probs(logits, settings)

        start = time.perf_counter()
        filter_logits(RankedLogits(logits), settings)
        cold = (time.perf_counter() - start) * 1000
        row = {"ours_ms": median_ms(ours, repeats), "peer_ms": median_ms(peer, repeats),
               "ours_filter_only_ms": median_ms(filter_only, repeats),
               "peer_filter_only_ms": median_ms(peer_filter_only, repeats), "cold_ms": round(cold, 3),
               "kept": filter_logits(ranked, settings).kept_count}
        row["speedup_vs_peer"] = round(row["peer_ms"] / row["ours_ms"], 2)
        rows[name] = row
    all_ours = [r["ours_ms"] for r in rows.values()]
    return {"model": "gemma-3-270m", "vocab_size": loaded.vocab_size, "bars": 20, "repeats": repeats,
            "median_of_settings_ms": round(statistics.median(all_ours), 3),
            "max_of_settings_ms": round(max(all_ours), 3), "target_ms": 10, "settings": rows}


def ours_generate(loaded, ids, settings, tokens, seed):
    result = generation.generate(loaded, ids, settings, tokens, seed=seed)
    return len(result.records)


def peer_generate(loaded, ids, settings, tokens, seed):
    torch.manual_seed(seed)
    kwargs = settings.generate_kwargs()
    with torch.inference_mode():
        out = loaded.model.generate(torch.tensor([ids]), max_new_tokens=tokens, min_new_tokens=tokens,
                                    pad_token_id=loaded.eos_token_ids[0], **kwargs)
    return int(out.shape[1] - len(ids))


def bench_generation(model_id: str, repeats: int, tokens: int) -> dict:
    loaded = load_model(model_id)
    ids = list(decoding.prompt_ids(loaded, GEN_PROMPT))
    rows = {}
    for name, settings in GEN_SETTINGS.items():
        ours_rates, peer_rates, ours_counts = [], [], []
        ours_generate(loaded, ids, settings, 2, 0)  # warm both paths
        peer_generate(loaded, ids, settings, 2, 0)
        for rep in range(repeats):
            start = time.perf_counter()
            n = ours_generate(loaded, ids, settings, tokens, rep)
            ours_rates.append(n / (time.perf_counter() - start))
            ours_counts.append(n)
            start = time.perf_counter()
            n = peer_generate(loaded, ids, settings, tokens, rep)
            peer_rates.append(n / (time.perf_counter() - start))
        ours, peer = statistics.median(ours_rates), statistics.median(peer_rates)
        rows[name] = {"settings": settings.as_dict(), "new_tokens": tokens, "ours_tokens": ours_counts,
                      "ours_tokens_per_s": round(ours, 2), "peer_tokens_per_s": round(peer, 2),
                      "ratio": round(ours / peer, 3), "target_ratio": 0.9}
    return {"device": str(loaded.device), "dtype": str(loaded.dtype).replace("torch.", ""),
            "prompt_tokens": len(ids), "rules": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="generation runs per side (default 3)")
    parser.add_argument("--refilter-repeats", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per generation run (default 32)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()
    report = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "peer": "transformers warpers + softmax on the full vocabulary; model.generate for generation",
        "refilter": bench_refilter(args.refilter_repeats),
    }
    if not args.skip_generation:
        report["generation"] = {m: bench_generation(m, args.repeats, args.tokens) for m in args.models}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
