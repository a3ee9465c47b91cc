"""CLI: `beam` runs the recorded beam search and prints the tree and the returned sequences.

`python -m playground beam --model ID --num-beams B --max-new-tokens N [--length-penalty L]
[--early-stopping true|false|never] [--num-return-sequences R] [--chat-template] [--eos-id ID ...]
[--compare-greedy] [--sample-seed S] PROMPT` prints `{"nodes": [...], "sequences": [{"ids", "text",
"score"}, ...]}` (sequences best first, `ids` without the prompt) plus the settings and, when asked,
the greedy and sampled paths (the sample draws what `generate --seed S --temperature 1` draws:
one random-number scheme for every tab and command), and `timing`: `ms_per_step` (one step expands
every live beam), `tokens_per_s` (beams x steps per second, whole run) and the `weights` that ran.
PROMPT `-` reads stdin. What it leaves out:
drawing the tree.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from playground import beam
from playground.backends import backend_for
from playground.cli import read_text_argument


def beam_command(args) -> dict:
    settings = beam.BeamSettings(
        num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, length_penalty=args.length_penalty,
        early_stopping=args.early_stopping,
        num_return_sequences=args.num_return_sequences,
    )
    start = time.perf_counter()
    result = backend_for(args.model).beam_search(
        read_text_argument(args.prompt), settings, chat_template=args.chat_template,
        compare_greedy=args.compare_greedy, sample_seed=args.sample_seed,
        eos_token_ids=args.eos_id or None,
    )
    seconds = time.perf_counter() - start
    output = {
        "model": result.model_id,
        "prompt_ids": result.prompt_ids,
        "settings": asdict(result.settings),
        "eos_token_ids": result.eos_token_ids,
        "candidates_per_step": result.candidates_per_step,
        "steps": result.steps,
        "stop_reason": result.stop_reason,
        "nodes": [asdict(node) for node in result.nodes],
        "sequences": [{"ids": s.ids, "text": s.text, "score": s.score, "cumulative": s.cumulative,
                       "node": s.node} for s in result.sequences],
        "timing": {"tokens_per_s": round(result.steps * settings.num_beams / seconds, 2),
                   "ms_per_step": round(seconds * 1000 / max(result.steps, 1), 2),
                   "weights": backend_for(args.model).weights()},
    }
    for path in (result.greedy, result.sampled):
        if path is not None:
            output[path.kind] = asdict(path)
    return output


def register(subparsers) -> None:
    parser = subparsers.add_parser("beam", help="beam search that records its whole tree (transformers' semantics)")
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument("--num-beams", type=int, default=4, help=f"1..{beam.MAX_BEAMS} (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=20, help=f"1..{beam.MAX_NEW_TOKENS} (default 20)")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="score = sum of log-probs / generated length ** L (default 1.0)")
    parser.add_argument("--early-stopping", default="false", help="true, false (default) or never")
    parser.add_argument("--num-return-sequences", type=int, default=1, help="1..num beams (default 1)")
    parser.add_argument("--chat-template", action="store_true", help="wrap the prompt as one user message")
    parser.add_argument("--eos-id", type=int, action="append", help="stop token id (repeatable; default: the model's)")
    parser.add_argument("--compare-greedy", action="store_true", help="also decode the greedy path")
    parser.add_argument("--sample-seed", type=int, default=None, help="also sample one path with this seed")
    parser.add_argument("prompt", metavar="PROMPT", help="the prompt text, or - for stdin")
    parser.set_defaults(handler=beam_command)
