"""Prompt attribution's speed per method, and integrated gradients' completeness error per step count.

For each packaged model and the lecture's prompt ("The capital of France is the city of", target
" Paris"):
- `forward_ms`: the peer every method is counted in, one plain `model(input_ids)` of the prompt
  (the last position's logits): `x_forward` = method / forward.
- `methods_ms`: median wall time of `attribution.attribute(model, prompt, [method])` per method
  (occlusion: both variants; integrated gradients: `--steps`; attention: the Inside pass emptied
  from its cache each time), after one warm-up call.
- `captum_bare_ig_ms`: the peer for integrated gradients: Captum's `LayerIntegratedGradients` on the
  model's embedding layer run bare (no preamble, no compute slot, the same steps, baseline and batch),
  measured alternately with ours; `ig_x_captum` = ours / bare Captum.
- `completeness`: integrated gradients' error for 8, 16, 32 and 64 steps, with f(prompt) -
  f(baseline) for scale (the error's share of it is what the page flags above 10%).

Usage: `.venv/bin/python bench/bench_attribution.py [--repeats N] [--steps N] [--models ID ...]
[--json-out FILE]`. What it leaves out: the page's drawing, GPU figures, prompts longer than the lecture's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import write_report  # noqa: E402
from playground import attribution  # noqa: E402
from playground.inside import passes  # noqa: E402
from playground.models import load_model  # noqa: E402

MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
PROMPT = "The capital of France is the city of"
TARGET = " Paris"


def seconds(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def bare_captum_ig(loaded, ids: list[int], start: int, target_id: int, steps: int):
    """Captum's own recipe: LayerIntegratedGradients over the embedding layer, the start tokens' ids
    left as they are (their embedding equals the baseline's there)."""
    from captum.attr import LayerIntegratedGradients

    def f(input_ids):
        return torch.log_softmax(loaded.model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
                                 .logits[:, -1].float(), -1)[:, target_id]

    neutral = attribution.neutral_token(loaded.tokenizer)
    inputs = torch.tensor([ids])
    baseline = torch.tensor([ids[:start] + [neutral] * (len(ids) - start)])
    per_call = max(1, attribution.TOKENS_PER_CALL // len(ids))
    with torch.enable_grad():
        return LayerIntegratedGradients(f, loaded.model.get_input_embeddings()).attribute(
            inputs, baselines=baseline, n_steps=steps, method="gausslegendre", internal_batch_size=min(steps, per_call))


def bench_model(model_id: str, repeats: int, steps: int) -> dict:
    loaded = load_model(model_id)
    start, own = attribution.prompt_ids(loaded, PROMPT)
    ids = start + own
    target_id = attribution.resolve_target(loaded.tokenizer, TARGET, torch.zeros(loaded.model.config.vocab_size))

    def forward():
        with torch.inference_mode():
            loaded.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)

    def method(name):
        if name == "attention":
            passes.forget_passes(loaded)
        return attribution.attribute(model_id, PROMPT, [name], TARGET, steps)

    forward()
    for name in attribution.METHODS:  # warm-up: every kernel and shape once
        method(name)
    bare_captum_ig(loaded, ids, len(start), target_id, steps)
    times = {name: [] for name in (*attribution.METHODS, "forward", "captum")}
    for _ in range(repeats):
        times["forward"].append(seconds(forward))
        for name in attribution.METHODS:
            times[name].append(seconds(lambda: method(name)))
        times["captum"].append(seconds(lambda: bare_captum_ig(loaded, ids, len(start), target_id, steps)))
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    completeness = []
    for count in (8, 16, 32, 64):
        row = attribution.attribute(model_id, PROMPT, ["integrated-gradients"], TARGET, count).methods[0]
        completeness.append({"steps": count, "error": round(row.completeness_error, 4),
                             "f_difference": round(row.f_input - row.f_baseline, 4),
                             "error_share": round(abs(row.completeness_error) / abs(row.f_input - row.f_baseline), 4)})
    return {
        "model": model_id, "tokens": len(ids), "steps": steps, "repeats": repeats,
        "forward_ms": round(median["forward"], 1),
        "methods_ms": {name: round(median[name], 1) for name in attribution.METHODS},
        "x_forward": {name: round(median[name] / median["forward"], 1) for name in attribution.METHODS},
        "captum_bare_ig_ms": round(median["captum"], 1),
        "ig_x_captum": round(median["integrated-gradients"] / median["captum"], 2),
        "completeness": completeness,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=attribution.DEFAULT_STEPS)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {"bench": "attribution", "prompt": PROMPT, "target": TARGET, "threads": torch.get_num_threads(),
               "models": [bench_model(m, args.repeats, args.steps) for m in args.models]}
    write_report(results, args.json_out, indent=1)


if __name__ == "__main__":
    main()
