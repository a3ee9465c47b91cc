"""Beam search benchmark: ours (recording the whole tree) and plain transformers side by side.

Prints one JSON document with, per packaged model:
- `search`: median seconds of `playground.beam.beam_search` (4 beams x 20 new tokens, the tree
  recorded: every candidate's label, ranks, scores) against the peer's
  `model.generate(num_beams=4, max_new_tokens=20, do_sample=False)` on the same prompt, runs
  interleaved so machine load hits both alike; `ratio` = ours / peer in wall time (target <= 1.3),
  `cpu_ratio` the same in this process's CPU time (steadier on a shared machine), and whether both
  returned the same tokens.
- `layout`: median ms to lay out and build the plotly tree of an 8 beams x 40 tokens search
  (`plots.beam.beam_figure`, the full tree and with pruned candidates collapsed; target <= 200),
  and to serialise it to JSON as Gradio does (`figure.to_json()`), reported separately.

Usage: `.venv/bin/python bench/bench_beam.py [--repeats N] [--models ID ...] [--threads T]`. What it leaves out:
the greedy/sampled comparison paths (extra decodes the UI runs only when asked), GPU figures (run it
with PLAYGROUND_DEVICE=cuda on a GPU box), the browser's drawing time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground import beam  # noqa: E402
from playground.decoding import prompt_ids  # noqa: E402
from playground.models import load_model  # noqa: E402
from playground.plots.beam import beam_figure  # noqa: E402
from timing import median_ms  # noqa: E402  (bench/ is on sys.path)

MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
PROMPT = "The best thing about living in a small town is"
SEARCH = beam.BeamSettings(num_beams=4, max_new_tokens=20, length_penalty=1.0, early_stopping=False,
                           num_return_sequences=1)
BIG = beam.BeamSettings(num_beams=8, max_new_tokens=40, length_penalty=1.0, early_stopping="never",
                        num_return_sequences=8)


def peer_generate(loaded, ids, s: beam.BeamSettings) -> list[int]:
    with torch.inference_mode():
        out = loaded.model.generate(
            torch.tensor([ids], device=loaded.device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=loaded.device),
            num_beams=s.num_beams, max_new_tokens=s.max_new_tokens, length_penalty=s.length_penalty,
            early_stopping=s.early_stopping, num_return_sequences=s.num_return_sequences, do_sample=False,
        )
    return out[0, len(ids):].tolist()


def timed_cpu(fn):
    """(wall seconds, CPU seconds of this process, value): CPU time is what a shared machine's load
    does not inflate, so the ratio of CPU times is the steadier figure there."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def bench_search(model_id: str, repeats: int) -> dict:
    loaded = load_model(model_id)
    ids = prompt_ids(loaded, PROMPT)
    ours_result = beam.beam_search(loaded, ids, SEARCH)  # warm-up (also builds the token label table)
    peer_ids = peer_generate(loaded, ids, SEARCH)
    ours_times, peer_times, ours_cpu, peer_cpu = [], [], [], []
    for _ in range(repeats):
        seconds, cpu, ours_result = timed_cpu(lambda: beam.beam_search(loaded, ids, SEARCH))
        ours_times.append(seconds)
        ours_cpu.append(cpu)
        seconds, cpu, peer_ids = timed_cpu(lambda: peer_generate(loaded, ids, SEARCH))
        peer_times.append(seconds)
        peer_cpu.append(cpu)
    ours, peer = statistics.median(ours_times), statistics.median(peer_times)
    best = ours_result.sequences[0].ids
    return {
        "settings": "4 beams x 20 new tokens, length_penalty 1.0, early_stopping False",
        "prompt_tokens": len(ids),
        "steps": ours_result.steps,
        "nodes_recorded": len(ours_result.nodes),
        "ours_s": round(ours, 3),
        "peer_generate_s": round(peer, 3),
        "ratio": round(ours / peer, 3),
        "ours_cpu_s": round(statistics.median(ours_cpu), 3),
        "peer_cpu_s": round(statistics.median(peer_cpu), 3),
        "cpu_ratio": round(statistics.median(ours_cpu) / statistics.median(peer_cpu), 3),
        "ours_all_s": [round(t, 3) for t in ours_times],
        "peer_all_s": [round(t, 3) for t in peer_times],
        "same_tokens": best == peer_ids[: len(best)] and len(peer_ids) >= len(best)
                       and all(t in ours_result.eos_token_ids for t in peer_ids[len(best):]),
    }


def bench_layout(model_id: str, repeats: int) -> dict:
    loaded = load_model(model_id)
    result = beam.add_comparisons(loaded, beam.beam_search(loaded, prompt_ids(loaded, PROMPT), BIG), greedy=True,
                                  sample_seed=0)
    figure = beam_figure(result)
    return {
        "settings": "8 beams x 40 new tokens, early_stopping never, greedy and sampled paths drawn",
        "steps": result.steps,
        "nodes": len(result.nodes),
        "search_s": round(result.seconds, 2),
        "layout_full_ms": median_ms(lambda: beam_figure(result), repeats),
        "layout_collapsed_ms": median_ms(lambda: beam_figure(result, collapse_pruned=True), repeats),
        "layout_step_20_ms": median_ms(lambda: beam_figure(result, upto_step=20), repeats),
        "to_json_ms": median_ms(figure.to_json, repeats),
        "target_ms": 200,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"torch_threads": torch.get_num_threads(), "models": {}}
    for model_id in args.models:
        loaded = load_model(model_id)
        report["models"][model_id] = {
            "device": str(loaded.device), "dtype": str(loaded.dtype).replace("torch.", ""),
            "search": bench_search(model_id, args.repeats),
            "layout": bench_layout(model_id, max(5, args.repeats)),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
