"""CLI: `next-token` (the next-token distribution, cut by the sampling rules) and `generate`.

    python -m playground next-token --model gemma-3-270m --top-p 0.9 --top 10 "The capital of France is"
    python -m playground generate --model smollm2-135m-instruct --chat-template --max-new-tokens 20 \
        --seed 1 --preset nucleus "Tell me a joke"

`next-token` prints `tokens`: the N most probable tokens under the raw distribution, each with
`id`, `text`, `raw_prob`, `prob` (after the rules) and `kept`; plus the kept count and both
entropies. `generate` prints the generated `text`, one record per token (`id`, `text`, `prob`,
`raw_prob`, `rank`, `eos_prob` and `eos_raw_prob`: the end-of-sequence probability after the rules and under
the model, as in the sampling lab), the `stop_reason`, the sequence log-probability and perplexity,
and `timing` (`tokens_per_s`, `ms_per_step` over the whole run, prompt included, and the `weights`
that ran: int4 or float32, `PLAYGROUND_WEIGHTS`).
`generate --regex R | --json-schema FILE | --choices a,b,c | --grammar FILE` decodes under the
constraint (`playground.constraints`, an engine's own structured outputs on an engine model): the
output, `complete`, per step `allowed_count` and `removed_mass`, and the free run's text beside it.
`--preset` starts from a lecture preset; explicit rule flags override it. Both run through the
sampling lab's session (`playground.lab`), so an engine model runs the same way (its numbers say
what is exact: `exact`, `label`, `known_tokens`, `rest_mass`).
"""

from __future__ import annotations

import argparse
import time

from playground import constraints, generation, lab, sampling
from playground.backends import backend_for
from playground.cli import read_file_argument, read_text_argument
from playground.commands import chain as chain_commands
from playground.errors import PlaygroundError

MAX_PROMPT_TOKENS = 1_000_000  # no cut of its own: an in-process model's context length still bounds it


def _add_rule_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model id (see `models`)")
    parser.add_argument("--preset", choices=sorted(sampling.PRESETS), help="start from a lecture preset")
    parser.add_argument("--temperature", type=float, help="0 = greedy (default 1)")
    parser.add_argument("--top-k", type=int, help="0 = off (default off)")
    parser.add_argument("--top-p", type=float, help="1 = off (default 1)")
    parser.add_argument("--min-p", type=float, help="0 = off (default 0)")
    parser.add_argument("--order", choices=sampling.ORDERS, help="where temperature goes (default transformers)")
    parser.add_argument("--chat-template", action="store_true", help="wrap the prompt in the model's chat template")
    parser.add_argument("--chain", metavar="CHAIN", help="a sampler chain instead of the rule flags: llama.cpp's "
                        "names, name=value;... in order, or a preset (playground/commands/chain.py)")
    parser.add_argument("prompt", metavar="PROMPT", help="the prompt text; - reads stdin")


def settings_from_args(args) -> sampling.SamplingSettings:
    base = sampling.PRESETS[args.preset] if args.preset else sampling.SamplingSettings()
    changes = {name: value for name, value in (("temperature", args.temperature), ("top_k", args.top_k),
                                                ("top_p", args.top_p), ("min_p", args.min_p), ("order", args.order))
               if value is not None}
    return sampling.with_changes(base, **changes) if changes else base


def next_token_command(args) -> dict:
    if args.chain:
        return chain_commands.next_token_command(args)
    settings = settings_from_args(args)
    if args.top < 1:
        raise PlaygroundError("--top must be >= 1.")
    session = lab.open_session(args.model, read_text_argument(args.prompt), args.chat_template, MAX_PROMPT_TOKENS)
    view = lab.view(session, settings)
    result = view.result
    tokens = view.top_tokens(args.top)
    return {"model": args.model, "prompt_tokens": len(session.prompt_ids), "settings": settings.as_dict(),
            "kept_count": result.kept_count, "vocab_size": result.vocab_size,
            "raw_entropy_bits": result.raw_entropy_bits, "entropy_bits": result.entropy_bits, "tokens": tokens,
            **({"prompt_note": session.prompt_note} if session.prompt_note else {}), **view.details()}


def constraint_from_args(args):
    """The one constraint of --regex, --json-schema FILE, --choices or --grammar FILE (None: none)."""
    given = [(kind, value) for kind, value in (("regex", args.regex), ("json_schema", args.json_schema),
                                               ("choices", args.choices), ("grammar", args.grammar)) if value is not None]
    if len(given) > 1:
        raise PlaygroundError("Give one constraint: --regex, --json-schema, --choices or --grammar.")
    if not given:
        return None
    kind, value = given[0]
    return constraints.parse_constraint(kind, read_file_argument(value) if kind in ("json_schema", "grammar") else value)


def constrained_command(args, settings, constraint) -> dict:
    """`generate` under a constraint, by the model's backend: the output, per step `allowed_count` and
    `removed_mass` (an in-process model), the free run of the same prompt and settings beside it."""
    start = time.perf_counter()
    result = backend_for(args.model).constrained(read_text_argument(args.prompt), constraint, settings,
                                                 args.max_new_tokens, args.seed, args.chat_template)
    return {"model": args.model, "settings": settings.as_dict(), "seed": args.seed, **result.as_dict(),
            "seconds": round(time.perf_counter() - start, 3)}


def generate_command(args) -> dict:
    if args.chain:
        return chain_commands.generate_command(args)
    settings = settings_from_args(args)
    n = args.max_new_tokens
    if not 1 <= n <= generation.MAX_NEW_TOKENS_LIMIT:
        raise PlaygroundError(f"max new tokens must be between 1 and {generation.MAX_NEW_TOKENS_LIMIT}.")
    constraint = constraint_from_args(args)
    if constraint is not None:
        return constrained_command(args, settings, constraint)
    session = lab.open_session(args.model, read_text_argument(args.prompt), args.chat_template, MAX_PROMPT_TOKENS)
    start = time.perf_counter()
    records = [record for record, _after in lab.generate(session, settings, n, args.seed, args.stop or ())]
    seconds = time.perf_counter() - start
    steps = max(len(records), 1)
    stop = records[-1].stop if records and records[-1].stop else ("max_tokens" if len(records) == n else "context")
    backend = backend_for(args.model)
    return {
        "model": args.model, "settings": settings.as_dict(), "seed": args.seed,
        "prompt_tokens": len(session.prompt_ids),
        "text": backend.generated_text(records), "stop_reason": stop,
        "stop_explanation": generation.STOP_REASONS[stop],
        "logprob": generation.sequence_logprob(records), "perplexity": generation.perplexity(records),
        "tokens": [r.as_dict() for r in records],
        "timing": {"tokens_per_s": round(len(records) / seconds, 2), "ms_per_step": round(seconds * 1000 / steps, 2),
                   "weights": backend.weights()},
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
    parser.add_argument("--regex", metavar="R", help="constrain the output to a regular expression")
    parser.add_argument("--json-schema", metavar="FILE", help="constrain the output to a JSON schema (a file; - stdin)")
    parser.add_argument("--choices", metavar="A,B,C", help="constrain the output to one of these choices")
    parser.add_argument("--grammar", metavar="FILE", help="constrain the output to a grammar, Lark or GBNF (a file)")
    parser.set_defaults(handler=generate_command)
