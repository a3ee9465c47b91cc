"""Base-vs-chat benchmark: ours and plain transformers side by side, in one run, as ratios.

Prints one JSON document:
- `template`: median ms to label a 4-message conversation (`chat.template_view`: incremental and
  sentinel renderings, offsets, roles, loss mask) against the peer's bare
  `tokenizer.apply_chat_template(tokenize=True)`.
- `score`: median ms to teacher-force a ~60-token text (`chat.score_text`) against the peer's
  `model(ids).logits.log_softmax(-1).gather(...)`, per packaged model.
- `side_by_side`: seconds for both packaged models to generate N greedy tokens together
  (`side_by_side.iter_side_by_side`, per-step records included) against the peer's
  `model.generate(max_new_tokens=N, do_sample=False)` run for each model one after the other, and
  whether the greedy tokens agree.

Usage: `.venv/bin/python bench/bench_chat.py [--repeats N] [--tokens N]`. What it leaves out: GPU
figures (run it on a GPU box with PLAYGROUND_DEVICE=cuda), the UI's HTML rendering.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground import chat, side_by_side  # noqa: E402
from playground.models import load_model, load_tokenizer  # noqa: E402
from playground.sampling import SamplingSettings  # noqa: E402
from timing import median_ms  # noqa: E402  (bench/ is on sys.path)

BASE, CHAT = "gemma-3-270m", "smollm2-135m-instruct"
DIALOGUE = [
    {"role": "user", "content": "What is the color of oranges?"},
    {"role": "assistant", "content": "The answer, of course, depends on the type of orange!"},
    {"role": "user", "content": "I have a green orange, can I eat it?"},
    {"role": "assistant", "content": "You might be surprised to know that some oranges are indeed green!"},
]
TEXT = ("In silicon halls, they whisper low, a chorus of code that few may know. The large language "
        "models, a wonder to see, generating text with eerie glee.")
POEM = "Write me a poem about large language models"




def bench_template(repeats: int) -> dict:
    tokenizer = load_tokenizer(CHAT)
    ours = median_ms(lambda: chat.template_view(CHAT, DIALOGUE), repeats)
    peer = median_ms(lambda: tokenizer.apply_chat_template(DIALOGUE, tokenize=True, return_dict=False), repeats)
    return {"ours_ms": ours, "peer_ms": peer, "ratio": round(ours / peer, 2)}


@torch.inference_mode()
def peer_score(loaded, ids: list[int]) -> list[float]:
    logits = loaded.model(input_ids=torch.tensor([ids], device=loaded.device)).logits[0, :-1].float()
    return logits.log_softmax(-1).gather(1, torch.tensor(ids[1:], device=loaded.device)[:, None])[:, 0].tolist()


def bench_score(repeats: int) -> dict:
    report = {}
    for model_id in (BASE, CHAT):
        loaded = load_model(model_id)
        scored = chat.score_text(model_id, TEXT)
        ids = list(scored.context_ids) + [t.id for t in scored.tokens]
        ours = median_ms(lambda: chat.score_text(model_id, TEXT), repeats)
        peer = median_ms(lambda: peer_score(loaded, ids), repeats)
        agree = max(abs(a - t.logprob) for a, t in zip(peer_score(loaded, ids), scored.tokens))
        report[model_id] = {"tokens": len(scored.tokens), "ours_ms": ours, "peer_ms": peer,
                            "ratio": round(ours / peer, 2), "max_logprob_difference": agree}
    return report


@torch.inference_mode()
def peer_generate(loaded, ids: list[int], tokens: int) -> list[int]:
    out = loaded.model.generate(torch.tensor([ids], device=loaded.device), max_new_tokens=tokens,
                                min_new_tokens=tokens, do_sample=False)
    return out[0, len(ids):].tolist()


def bench_side_by_side(tokens: int) -> dict:
    contenders = [side_by_side.contender(BASE, "raw", POEM), side_by_side.contender(CHAT, "template", POEM)]
    start = time.perf_counter()
    for columns in side_by_side.iter_side_by_side(contenders, SamplingSettings(temperature=0.0), tokens, 0):
        pass
    ours = time.perf_counter() - start
    start = time.perf_counter()
    peer_ids = [peer_generate(load_model(c.model_id), list(c.prompt_ids), tokens) for c in contenders]
    peer = time.perf_counter() - start
    ours_ids = [[r.id for r in column.records] for column in columns]
    agree = [o == p[:len(o)] for o, p in zip(ours_ids, peer_ids)]
    return {"new_tokens_per_model": tokens, "ours_seconds": round(ours, 2), "peer_seconds": round(peer, 2),
            "ratio": round(ours / peer, 2), "greedy_tokens_agree": agree}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    load_model(BASE), load_model(CHAT)
    report = {"device": str(load_model(CHAT).device), "torch_threads": torch.get_num_threads(),
              "template": bench_template(args.repeats), "score": bench_score(args.repeats),
              "side_by_side": bench_side_by_side(args.tokens)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
