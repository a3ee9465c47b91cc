"""CLI: the sampler chain. `next-token --chain` and `generate --chain` (flags of the sampling
commands, handled here), and `ab`: two chains on the same random numbers.

    python -m playground next-token --model gemma-3-270m \\
        --chain "repeat_penalty=1.1;dry_multiplier=0.8;top_k=40;typical_p=0.95;top_p=0.9;min_p=0.05;xtc_probability=0.5;xtc_threshold=0.1;temperature=0.8" \\
        --json "The capital of France is"
    python -m playground ab --model gemma-3-270m --a "llama.cpp default" --b "top_k=40;temperature=1.5" \\
        --seed 3 --tokens 20 --json "Once upon a time"

A chain is llama.cpp's parameter names separated by ';' (the order is the chain's order) or a
preset's name (`playground.samplers.chain.PRESETS`). `next-token` prints `stages` (each stage's
kept count, kept mass, entropy and top tokens; row 0 is the model's own distribution) and `tokens`
(the final distribution's most probable tokens). `generate` prints each token with the uniform
number that drew it. `ab` prints both sides and `first_divergence`; `ab --samples K` adds K samples
of the next token per side drawn with the same K uniform numbers (`samples`: counts, `same_token`).
On a llama.cpp engine model `next-token --chain` sends the chain to the engine, which runs it and
sends its final distribution (`stages` is null); `generate --chain` and `ab` run in-process models only.
What it leaves out: the computations (`playground.samplers`, `playground.engines.chain`).
"""

from __future__ import annotations

from playground import decoding, limits
from playground.backends import backend_for
from playground.cli import read_text_argument
from playground.errors import PlaygroundError
from playground.samplers import ab as chain_runs
from playground.samplers.chain import chain_from, format_chain
from playground.token_text import display_text, token_bytes


def next_token_command(args) -> dict:
    """In-process: every stage and the final tokens; a llama.cpp engine runs the chain itself and sends
    the final tokens only (`Backend.chain_next_token`)."""
    if args.top < 1:
        raise PlaygroundError("--top must be >= 1.")
    return backend_for(args.model).chain_next_token(read_text_argument(args.prompt), chain_from(args.chain),
                                                    args.chat_template, args.top)


def generate_command(args) -> dict:
    chain = chain_from(args.chain)
    backend_for(args.model).require("sampler_chain")
    loaded = chain_runs.chain_model(args.model)
    with limits.deadline():
        ids = decoding.prompt_ids(loaded, read_text_argument(args.prompt), args.chat_template)
        steps = list(chain_runs.iter_chain_generation(loaded, ids, chain, args.max_new_tokens, args.seed))
    side = chain_runs.ABResult(tuple(steps), (), None).as_dict()["a"]
    return {"model": args.model, "chain": format_chain(chain), "seed": args.seed, "prompt_tokens": len(ids),
            **side, "stop_reason": "eos" if steps and steps[-1].eos else "max_tokens"}


def ab_command(args) -> dict:
    a, b = chain_from(args.a), chain_from(args.b)
    backend_for(args.model).require("sampler_chain")
    prompt = read_text_argument(args.prompt)
    result = chain_runs.ab(args.model, prompt, a, b, args.seed, args.tokens, args.chat_template)
    out = {"model": args.model, "seed": args.seed, "a_chain": format_chain(a), "b_chain": format_chain(b),
           **result.as_dict()}
    if args.samples:
        loaded = chain_runs.chain_model(args.model)
        ids = decoding.prompt_ids(loaded, prompt, args.chat_template)
        samples = chain_runs.ab_samples(args.model, ids, len(ids), a, b, args.seed, args.samples)
        out["samples"] = samples.as_dict(lambda t: display_text(token_bytes(loaded.tokenizer, t)))
    return out


def register(subparsers) -> None:
    parser = subparsers.add_parser("ab", help="two sampler chains on the same random numbers")
    parser.add_argument("--model", required=True, help="model id (an in-process model)")
    parser.add_argument("--a", required=True, metavar="CHAIN", help="chain A: name=value;... or a preset name")
    parser.add_argument("--b", required=True, metavar="CHAIN", help="chain B")
    parser.add_argument("--seed", type=int, default=0, help="random seed, shared by both sides (default 0)")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per side (default 20)")
    parser.add_argument("--samples", type=int, default=0, metavar="K",
                        help="also K samples of the next token per side on the same K uniforms (first-token counts)")
    parser.add_argument("--chat-template", action="store_true", help="wrap the prompt in the model's chat template")
    parser.add_argument("prompt", metavar="PROMPT", help="the prompt text; - reads stdin")
    parser.set_defaults(handler=ab_command)
