"""CLI: `next-token` (the next-token distribution, cut by the sampling rules) and `generate`.

    python -m playground next-token --model gemma-3-270m --top-p 0.9 --top 10 "The capital of France is"
    python -m playground generate --model smollm2-135m-instruct --chat-template --max-new-tokens 20 \
        --seed 1 --preset nucleus "Tell me a joke"

`next-token` prints `tokens`: the N most probable tokens under the raw distribution, each with
`id`, `text`, `raw_prob`, `prob` (after the rules) and `kept`; plus the kept count and both
entropies. `generate` prints the generated `text`, one record per token (`id`, `text`, `prob`,
`raw_prob`, `rank`, `eos_prob` and `eos_raw_prob`: the end-of-sequence probability after the rules and under
the model, as in the sampling lab), the `stop_reason`, the sequence log-probability and perplexity.
`--preset` starts from a lecture preset; explicit rule flags override it.
"""

from __future__ import annotations

import argparse

from playground import core, generation, sampling
from playground.cli import read_text_argument
from playground.errors import PlaygroundError
from playground.models import load_model


def _add_rule_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument("--preset", choices=sorted(sampling.PRESETS), help="start from a lecture preset")
    parser.add_argument("--temperature", type=float, help="0 = greedy (default 1)")
    parser.add_argument("--top-k", type=int, help="0 = off (default off)")
    parser.add_argument("--top-p", type=float, help="1 = off (default 1)")
    parser.add_argument("--min-p", type=float, help="0 = off (default 0)")
    parser.add_argument("--order", choices=sampling.ORDERS, help="where temperature goes (default transformers)")
    parser.add_argument("--chat-template", action="store_true", help="wrap the prompt in the model's chat template")
    parser.add_argument("prompt", metavar="PROMPT", help="the prompt text; - reads stdin")


def settings_from_args(args) -> sampling.SamplingSettings:
    base = sampling.PRESETS[args.preset] if args.preset else sampling.SamplingSettings()
    changes = {name: value for name, value in (("temperature", args.temperature), ("top_k", args.top_k),
                                                ("top_p", args.top_p), ("min_p", args.min_p), ("order", args.order))
               if value is not None}
    return sampling.with_changes(base, **changes) if changes else base


def next_token_command(args) -> dict:
    settings = settings_from_args(args)
    if args.top < 1:
        raise PlaygroundError("--top must be >= 1.")
    prompt = read_text_argument(args.prompt)
    distribution = core.next_token_distribution(args.model, prompt, args.chat_template)
    ranked = sampling.RankedLogits(distribution.logits)
    result = sampling.filter_logits(ranked, settings)
    tokens = generation.token_rows(ranked, result, load_model(args.model).tokenizer, args.top)
    return {"model": args.model, "prompt_tokens": len(distribution.input_ids), "settings": settings.as_dict(),
            "kept_count": result.kept_count, "vocab_size": result.vocab_size,
            "raw_entropy_bits": result.raw_entropy_bits, "entropy_bits": result.entropy_bits, "tokens": tokens}


def generate_command(args) -> dict:
    settings = settings_from_args(args)
    prompt = read_text_argument(args.prompt)
    loaded = load_model(args.model)
    ids = core.prompt_ids(loaded, prompt, args.chat_template)
    result = generation.generate(loaded, ids, settings, args.max_new_tokens, args.seed, args.stop or ())
    return {
        "model": args.model, "settings": settings.as_dict(), "seed": args.seed, "prompt_tokens": len(ids),
        "text": result.text, "stop_reason": result.stop_reason,
        "stop_explanation": generation.STOP_REASONS[result.stop_reason],
        "logprob": result.logprob, "perplexity": result.perplexity,
        "tokens": [r.as_dict() for r in result.records],
    }


def register(subparsers) -> None:
    parser = subparsers.add_parser("next-token", help="the next-token distribution under sampling rules")
    _add_rule_flags(parser)
    parser.add_argument("--top", type=int, default=10, help="how many of the most probable tokens to list (default 10)")
    parser.set_defaults(handler=next_token_command)

    parser = subparsers.add_parser("generate", help="sample a continuation token by token")
    _add_rule_flags(parser)
    parser.add_argument("--max-new-tokens", type=int, default=20, help="default 20")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--stop", action="append", metavar="STRING", help="stop string (repeatable)")
    parser.set_defaults(handler=generate_command)
