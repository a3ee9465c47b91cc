"""CLI for prompt attribution: `attribute` ("Why this token?").

    python -m playground attribute --model gemma-3-270m --method integrated-gradients "The capital of France is" --json
    python -m playground attribute --model smollm2-135m-instruct --method occlusion --target " Paris" "..." --json

Prints each prompt token with its score for the target (the most probable next token, or `--target`:
one token's text or `#id`), the target with its probability and rank, the method's formula, and for
integrated gradients f(input), f(baseline) and the completeness error. Occlusion prints both
variants: `score` (the token removed) and `score_replaced` (replaced by the neutral token). TEXT `-`
reads stdin. What it leaves out: the computation (`playground.attribution`), the chips (the UI).
"""

from __future__ import annotations

from playground import attribution
from playground.cli import read_text_argument


def attribution_json(result: attribution.Attribution, key: str) -> dict:
    """One method's scores with the target and the prompt's tokens (the CLI's and the export's JSON)."""
    row = result.method(key)
    replaced = result.method("occlusion-replaced") if key == "occlusion-removed" else None
    tokens = []
    for i, token in enumerate(result.tokens):
        entry = {"position": token.position, "id": token.id, "text": token.text, "start": token.start,
                 "score": row.scores[i]}
        if replaced is not None:
            entry["score_replaced"] = replaced.scores[i]
        tokens.append(entry)
    out = {"model": result.model_id, "method": key, "title": row.title, "formula": row.formula,
           "is_attribution": row.is_attribution,
           "target": {"id": result.target_id, "text": result.target_text, "prob": result.target_prob,
                      "logprob": result.target_logprob, "rank": result.target_rank},
           "top": {"id": result.top_id, "text": result.top_text, "prob": result.top_prob},
           "tokens": tokens, "total": row.total, "seconds": round(row.seconds, 3)}
    if replaced is not None:
        out["replaced_title"] = replaced.title
    if row.completeness_error is not None:
        out.update(steps=row.steps, f_input=row.f_input, f_baseline=row.f_baseline,
                   completeness_error=row.completeness_error)
    return out


def attribute_command(args) -> dict:
    result = attribution.attribute(args.model, read_text_argument(args.text), [args.method], args.target, args.steps)
    return attribution_json(result, "occlusion-removed" if args.method == "occlusion" else args.method)


def register(subparsers) -> None:
    parser = subparsers.add_parser("attribute", help="which prompt tokens made the model predict a token "
                                                     "(occlusion, gradient x input, integrated gradients, "
                                                     "attention rollout)")
    parser.add_argument("--model", required=True, help="model id (see `models`; in-process models only)")
    parser.add_argument("--method", required=True, choices=attribution.METHODS)
    parser.add_argument("--target", default=None,
                        help="the target token: its text (exactly one token) or #id (default: the most probable)")
    parser.add_argument("--steps", type=int, default=attribution.DEFAULT_STEPS,
                        help=f"integrated gradients' path points (default {attribution.DEFAULT_STEPS}, "
                             f"at most {attribution.MAX_STEPS})")
    parser.add_argument("text", metavar="TEXT",
                        help=f"the prompt (at most {attribution.MAX_TOKENS} tokens); - reads stdin")
    parser.set_defaults(handler=attribute_command)
