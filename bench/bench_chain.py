"""Sampler chain benchmark: re-filtering one distribution with a 10-stage chain, ours beside transformers.

On gemma-3-270m's real next-token logits (262,144 tokens) after the lecture's prompt, with a
64-token history, the median ms of:
- `ours`: `run_chain` with the 10 stages below, per-stage statistics included (kept count, kept
  raw mass, entropy, top 5 tokens): what the funnel view needs on a control change (target <= 10 ms);
- `peer`: transformers' `LogitsProcessorList` with the stages it has (repetition penalty,
  temperature, top-k, typical, top-p, min-p, eta; no DRY, top-n-sigma or XTC) on the full
  vocabulary, then one softmax: less work than ours, no statistics.
`ratio` = ours / peer. Each is timed in wall time with torch's default thread count and with one
thread (the 2-core machine is shared: two threads on a loaded machine wait on each other), and in
process CPU time with one thread (`*_cpu_ms`: what a quiet core's wall time would be); the load
average is recorded before and after.

Usage: `.venv/bin/python bench/bench_chain.py [--repeats N] [--json-out PATH]`.
What it leaves out: the model call (re-filtering never calls it), the browser's drawing time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import median_ms, write_report  # noqa: E402
from transformers import LogitsProcessorList  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    EtaLogitsWarper,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from playground import decoding  # noqa: E402
from playground.models import load_model  # noqa: E402
from playground.samplers.ab import token_texts  # noqa: E402
from playground.samplers.chain import parse_chain, run_chain  # noqa: E402
from playground.samplers.pool import Context  # noqa: E402

PROMPT = "The capital of France is"
CHAIN = ("repeat_penalty=1.1;repeat_last_n=64;dry_multiplier=0.8;top_n_sigma=3.0;top_k=40;typical_p=0.95;top_p=0.9;"
         "min_p=0.05;eta_cutoff=0.0003;xtc_probability=1.0;xtc_threshold=0.1;temperature=0.8")


def median_cpu_ms(fn, repeats: int) -> float:
    """Median process CPU time of `fn()` in ms (one thread: a loaded machine's waits left out)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) * 1000)
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    load_before = os.getloadavg()
    loaded = load_model("gemma-3-270m")
    ids = decoding.prompt_ids(loaded, PROMPT)
    logits = decoding.ranked_after(loaded, ids).logits
    history = (ids + torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(0)).tolist())
    chain = parse_chain(CHAIN)
    context = Context.of(history, len(ids), rng=torch.Generator().manual_seed(0), token_text=token_texts(loaded))
    peer = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.1), TemperatureLogitsWarper(0.8),
                                TopKLogitsWarper(40), TypicalLogitsWarper(0.95), TopPLogitsWarper(0.9),
                                MinPLogitsWarper(0.05), EtaLogitsWarper(0.0003)])
    history_ids = torch.tensor([history])

    def ours():
        return run_chain(chain, logits, context)

    def theirs():
        return torch.softmax(peer(history_ids, logits.clone().reshape(1, -1)), dim=-1)

    rows = {}
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        ours_ms, peer_ms = median_ms(ours, args.repeats, 3), median_ms(theirs, args.repeats, 3)
        rows[f"threads_{threads}"] = {"ours_ms": ours_ms, "peer_ms": peer_ms, "ratio": round(ours_ms / peer_ms, 3),
                                      "target_ms": 10.0, "meets_target": ours_ms <= 10.0}
    torch.set_num_threads(1)  # CPU time of one thread: what a quiet core's wall time would be
    rows["threads_1"]["ours_cpu_ms"] = median_cpu_ms(ours, args.repeats)
    rows["threads_1"]["peer_cpu_ms"] = median_cpu_ms(theirs, args.repeats)
    rows["threads_1"]["cpu_ratio"] = round(rows["threads_1"]["ours_cpu_ms"] / rows["threads_1"]["peer_cpu_ms"], 3)
    rows["threads_1"]["meets_target_in_cpu_time"] = rows["threads_1"]["ours_cpu_ms"] <= 10.0
    torch.set_num_threads(default_threads)
    run = ours()
    result = {
        "bench": "bench_chain", "model": "gemma-3-270m", "vocab": int(logits.numel()), "prompt": PROMPT,
        "chain": CHAIN, "stages": len(chain.stages), "repeats": args.repeats,
        "funnel": [{"name": s.name, "kept_count": s.kept_count, "kept_mass": round(s.kept_mass, 4),
                    "entropy_bits": round(s.entropy_bits, 3)} for s in run.stages],
        **rows,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "platform": platform.platform(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
    }
    write_report(result, args.json_out)


if __name__ == "__main__":
    main()
