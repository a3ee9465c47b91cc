"""The "Inside the model" tab's speed: its first view against a plain forward pass, in the same run.

For each packaged model and a text of exactly `--tokens` tokens (64 by default, start token included):
- `plain_forward_ms`: median of the peer, `model(input_ids)` (SDPA, every position's logits), the
  forward pass any tab pays for this text.
- `first_view_ms`: median of the tab's "Look inside" handler with the pass cache emptied each time
  (`inside_tab.look_inside`: the eager pass keeping attentions and hidden states, the card, the
  table, both attention charts, teacher forcing, the KV view, every chart serialised);
  `pass_ms` is the pass alone. The two are measured alternately, so load on the machine hits both.
  Target: `first_view_x` = first view / plain forward <= 2.
- `switch_ms`: median and max of `inside_tab.show_attention` over layer and head changes (the cached
  pass redrawn, every chart serialised). Target <= 50 ms. `switch_forward_calls` must stay 0.
- `lens_ms`: the logit lens over the default number of positions (no target: one output layer per
  layer and position, reported for the record).

Usage: `.venv/bin/python bench/bench_inside.py [--repeats N] [--tokens N] [--models ID ...]`. What it
leaves out: the browser's drawing time (see bench_page.py for the page side), GPU figures (run
it with PLAYGROUND_DEVICE=cuda on a GPU box).
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

from playground import start_tokens  # noqa: E402
from playground.inside import lens, passes  # noqa: E402
from playground.models import load_model  # noqa: E402
from playground.ui import inside_tab  # noqa: E402

MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
SOURCE = ("In the transformer, every layer reads the whole sequence through attention and then an MLP. "
          "A decoder-only model predicts the next token from all the tokens before it, and pre-training "
          "teaches it on all the text its makers could find, one shifted token at a time, again and again.")


def text_of(loaded, tokens: int) -> str:
    """A prefix of SOURCE (repeated) that tokenizes to exactly `tokens` ids, start tokens included."""
    start = len(start_tokens.start_ids(loaded.tokenizer))
    source = SOURCE * 8
    encoded = loaded.tokenizer(source, add_special_tokens=False, return_offsets_mapping=True)
    for cut in range(tokens - start, 0, -1):
        text = source[: encoded["offset_mapping"][cut - 1][1]]
        if len(passes.text_ids(loaded, text)[0]) == tokens:
            return text
    raise RuntimeError("no prefix with that many tokens")


def ms(fn) -> float:
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) * 1000


def bench_model(model_id: str, tokens: int, repeats: int) -> dict:
    loaded = load_model(model_id)
    text = text_of(loaded, tokens)
    ids = torch.tensor([passes.text_ids(loaded, text)[0]], device=loaded.device)

    @torch.inference_mode()
    def plain():
        loaded.model(input_ids=ids).logits.float().cpu()

    def first_view():
        passes.forget_passes(loaded)
        inside_tab.look_inside(text, model_id, 0, 0)

    def only_pass():
        passes.forget_passes(loaded)
        passes.inside_pass(model_id, text)

    plain(), first_view()  # warm-up: the eager twin, the output hooks, the card's count
    plain_times, view_times, pass_times = [], [], []
    for _ in range(repeats):
        plain_times.append(ms(plain))
        view_times.append(ms(first_view))
        pass_times.append(ms(only_pass))
    plain_ms, view_ms = statistics.median(plain_times), statistics.median(view_times)

    looked = inside_tab.look_inside(text, model_id, 0, 0)[0]
    result = passes.cached_pass(model_id, text)
    calls = loaded.forward_calls
    switches = []
    for step in range(max(12, repeats * 3)):
        layer, head = (step * 7) % result.layers, (step * 5) % result.heads
        switches.append(ms(lambda: inside_tab.show_attention(looked, layer, head)))
    switch_calls = loaded.forward_calls - calls
    lens_ms = ms(lambda: inside_tab.show_lens(looked, lens.DEFAULT_POSITIONS))
    return {
        "tokens": result.tokens,
        "plain_forward_ms": round(plain_ms, 1),
        "first_view_ms": round(view_ms, 1),
        "pass_ms": round(statistics.median(pass_times), 1),
        "first_view_x": round(view_ms / plain_ms, 2),
        "first_view_target_met": view_ms / plain_ms <= 2.0,
        "switch_ms": {"median": round(statistics.median(switches), 1), "max": round(max(switches), 1)},
        "switch_target_met": statistics.median(switches) <= 50.0,
        "switch_forward_calls": switch_calls,
        "lens_ms": round(lens_ms, 1),
        "lens_positions": lens.DEFAULT_POSITIONS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    torch.manual_seed(0)
    report = {"bench": "inside", "device": str(load_model(args.models[0]).device), "repeats": args.repeats,
              "torch_threads": torch.get_num_threads(),
              "models": {model_id: bench_model(model_id, args.tokens, args.repeats) for model_id in args.models}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
