"""Tokenizer tab speed, printed as one JSON document (`python bench/bench_tokenizer.py [--quick]`).

- BPE training, 50 KB of the bundled corpus, 500 merges: `playground.bpe.train` (incremental pair
  counts) next to `reference_train` (the slide: recount every pair each merge). Target <= 2 s.
- Tokenize and render 100 KB with three tokenizers (what the explore view does per tokenizer: ids,
  capped spans, HTML, counts), next to the raw library's encode alone. Target <= 1 s in all.
- A 1 MB paste: the tab's explore handler and the compare handler (four tokenizers) on 1 MB.
Tokenizers are loaded before timing (their load times are reported separately). `--quick` runs the
naive trainer for 100 merges only and scales its time by the merge count (marked as estimated).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playground import bpe, tokenizer_registry  # noqa: E402
from playground.html import tokens as token_html  # noqa: E402

CORPUS = ROOT / "assets" / "corpus" / "pride-and-prejudice-ch1-9.txt"
THREE = ["cl100k_base", "o200k_base", "llama-3"]


def timed(fn, *args, repeat: int = 1, **kwargs):
    """(best wall-clock seconds, result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def cpu_timed(fn, *args, repeat: int = 1, **kwargs) -> float:
    """Best CPU seconds of this process (all threads): less distorted than wall time when other
    jobs share the machine's cores."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(*args, **kwargs)
        best = min(best, time.process_time() - start)
    return best


def text_of_size(num_bytes: int) -> str:
    corpus = CORPUS.read_text(encoding="utf-8")
    text = corpus * (num_bytes // len(corpus.encode()) + 1)
    return text.encode()[:num_bytes].decode("utf-8", errors="ignore")


def bench_bpe(quick: bool) -> dict:
    text = text_of_size(50_000)
    out = {"text_bytes": len(text.encode()), "merges": 500}
    for pattern in ("none", "gpt2"):
        seconds, training = timed(bpe.train, text, 500, pattern, repeat=3)
        out[f"ours_s_{pattern}"] = round(seconds, 3)
        out[f"final_length_{pattern}"] = training.lengths[-1]
    naive_merges = 100 if quick else 500
    seconds, naive = timed(bpe.reference_train, text, naive_merges, "gpt2")
    assert [(m.pair, m.count) for m in bpe.train(text, naive_merges, "gpt2").merges] == naive
    out["naive_recount_s_gpt2"] = round(seconds * 500 / naive_merges, 3)
    out["naive_estimated_from_merges"] = naive_merges if quick else None
    out["speedup_vs_naive"] = round(out["naive_recount_s_gpt2"] / out["ours_s_gpt2"], 1)
    out["same_merges_as_naive"] = True
    return out


def render(tokenizer_id: str, text: str, limit: int = 5000) -> str:
    result = tokenizer_registry.tokenize(tokenizer_id, text, max_tokens=limit)
    return token_html.tokenization_html(result, False, limit) + token_html.bytes_table_html(result)


def bench_render(text: str) -> dict:
    load = {}
    for name in THREE:
        seconds, _ = timed(tokenizer_registry.get_tokenizer, name)
        load[name] = round(seconds, 2)
    per, cpu, raw, total = {}, {}, {}, 0.0
    for name in THREE:
        seconds, _ = timed(render, name, text, repeat=3)
        per[name] = round(seconds, 3)
        cpu[name] = round(cpu_timed(render, name, text, repeat=3), 3)
        total += seconds
        tokenizer = tokenizer_registry.get_tokenizer(name)
        raw[name] = round(timed(tokenizer.encode, text, repeat=3)[0], 3)
    raw_total = sum(raw.values())
    return {"text_bytes": len(text.encode()), "tokenize_render_s": per, "total_s": round(total, 3),
            "tokenize_render_cpu_s": cpu, "total_cpu_s": round(sum(cpu.values()), 3),
            "library_encode_only_s": raw, "ratio_to_library_encode": round(total / raw_total, 2),
            "load_s": load}


def bench_paste(text: str) -> dict:
    from playground.ui import tokenizer_tab

    seconds, outputs = timed(tokenizer_tab.explore, "cl100k_base", text, False, False)
    html_bytes = sum(len(o.encode()) for o in outputs[:4])
    compare_s, _ = timed(tokenizer_tab.compare, ["r50k_base", "cl100k_base", "o200k_base", "llama-3"], text,
                         False, False)
    return {"text_bytes": len(text.encode()), "explore_handler_s": round(seconds, 3),
            "tokens": len(outputs[4]), "html_bytes_sent": html_bytes,
            "compare_4_tokenizers_s": round(compare_s, 3)}


def main() -> None:
    quick = "--quick" in sys.argv
    load = os.getloadavg()[0]
    report = {
        "machine": {"cpus": os.cpu_count(), "load_average_1min_at_start": round(load, 2)},
        "bpe_50kb_500_merges": bench_bpe(quick),
        "tokenize_render_100kb_three_tokenizers": bench_render(text_of_size(100_000)),
        "paste_1mb": bench_paste(text_of_size(1_000_000)),
        "targets": {"bpe_s": 2.0, "render_100kb_three_s": 1.0},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
