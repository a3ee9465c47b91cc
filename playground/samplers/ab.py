"""A chain on a model: the next-token funnel, generation, and A/B on common random numbers.

`chain_next_token(model_id, prompt, chain)` runs the chain on the distribution after the prompt
(the shared distribution cache, `decoding.ranked_after`: re-filtering never calls the model again).
`iter_chain_generation` generates token by token: at position i it draws ONE uniform number u_i
from `generation.step_generator(seed, i)` (then XTC's coin from the same stream) and picks the token
by inverting the chain's cumulative distribution over the raw model's descending order
(`ChainRun.draw`). `ab(...)` runs two chains on the same seed: both sides see the same u_i at every
position, so up to the first divergence any difference is the chains', not the dice's; identical
chains give identical output.

What it leaves out: engine models (the chain needs every logit: the callers ask their backend,
whose `require("sampler_chain")` refuses in words; `engines.chain` has the engine's own run), K
samples A/B, the branching tree, the UI (`playground.ui`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from playground import decoding, generation, limits
from playground.errors import PlaygroundError
from playground.models import LoadedModel, load_model
from playground.samplers.chain import Chain, ChainRun, ChainState, format_chain, run_chain
from playground.samplers.pool import Context
from playground.token_text import display_text, token_bytes


def chain_model(model_id: str) -> LoadedModel:
    """The in-process model a chain runs on (callers ask the backend first: `require("sampler_chain")`
    refuses an engine model in words)."""
    return load_model(model_id)


def token_texts(loaded: LoadedModel):
    """id -> the token's text (what DRY's sequence breakers are matched against)."""
    def text(token_id: int) -> str:
        return token_bytes(loaded.tokenizer, token_id).decode("utf-8", errors="replace")
    return text


def step_draws(seed: int, position: int) -> tuple[float, torch.Generator]:
    """u_i, then the stream the chain's own coins (XTC) continue from: both sides of A/B get the same."""
    rng = generation.step_generator(seed, position)
    return float(torch.rand(1, generator=rng, dtype=torch.float64)), rng


def chain_next_token(model_id: str, prompt: str, chain: Chain, chat_template: bool = False, seed: int = 0
                     ) -> tuple[LoadedModel, list[int], ChainRun]:
    """The chain on the distribution after the prompt, XTC's coin as generation's first step draws it."""
    loaded = chain_model(model_id)
    with limits.deadline():
        ids = decoding.prompt_ids(loaded, prompt, chat_template)
        ranked = decoding.ranked_after(loaded, ids)
    _u, rng = step_draws(seed, 0)
    return loaded, ids, run_chain(chain, ranked.logits, Context.of(ids, rng=rng, token_text=token_texts(loaded)))


def chain_after(model_id: str, ids: Sequence[int], prompt_length: int, chain: Chain) -> tuple[list[dict], ChainRun]:
    """The chain on the cached distribution after `ids` (the lab's session: no model call when the lab
    has shown it), XTC's coin as generation would draw it at this position; the stage rows carry
    their top tokens' text."""
    loaded = chain_model(model_id)
    with limits.deadline():
        ranked = decoding.ranked_after(loaded, list(ids))
    _u, rng = step_draws(0, len(ids) - prompt_length)
    run = run_chain(chain, ranked.logits, Context.of(ids, prompt_length, rng=rng, token_text=token_texts(loaded)))
    rows = run.as_dict()["stages"]
    for row in rows:
        row["top"] = [dict(t, text=display_text(token_bytes(loaded.tokenizer, t["id"]))) for t in row["top"]]
    return rows, run


def next_token_summary(model_id: str, prompt: str, chain: Chain, chat_template: bool = False, top: int = 10) -> dict:
    """What `next-token --chain` prints for an in-process model: every stage and the final top tokens."""
    loaded, ids, run = chain_next_token(model_id, prompt, chain, chat_template)
    final_ids, final_probs = run.ordered()
    order = final_probs.argsort(descending=True, stable=True)[:top]
    tokens = [{"id": int(final_ids[i]), "text": display_text(token_bytes(loaded.tokenizer, int(final_ids[i]))),
               "prob": float(final_probs[i])} for i in order]
    stages = []
    for stage in run.stages:
        row = stage.as_dict()
        row["top"] = [dict(t, text=display_text(token_bytes(loaded.tokenizer, t["id"]))) for t in row["top"]]
        stages.append(row)
    return {"model": model_id, "prompt_tokens": len(ids), "chain": format_chain(chain), "stages": stages,
            "kept_count": run.final.count, "tokens": tokens}


@dataclass(frozen=True)
class ChainStep:
    """One generated token: the uniform number that picked it, its probability under the chain and
    under the model, how many tokens the chain kept."""

    position: int
    token_id: int
    text: str
    u: float
    prob: float
    raw_prob: float
    kept_count: int
    eos: bool

    def as_dict(self) -> dict:
        return {"position": self.position, "id": self.token_id, "text": self.text, "u": self.u, "prob": self.prob,
                "raw_prob": self.raw_prob, "kept_count": self.kept_count}


def iter_chain_generation(loaded: LoadedModel, prompt_ids: Sequence[int], chain: Chain, max_new_tokens: int,
                          seed: int) -> Iterator[ChainStep]:
    """Up to `max_new_tokens` tokens, each drawn by the chain from u_i = the seed's uniform at position i."""
    if not 1 <= max_new_tokens <= generation.MAX_NEW_TOKENS_LIMIT:
        raise PlaygroundError(f"max new tokens must be between 1 and {generation.MAX_NEW_TOKENS_LIMIT}.")
    decoder = generation.Decoder(loaded, prompt_ids)
    texts, state = token_texts(loaded), ChainState()
    try:
        for position in range(max_new_tokens):
            if decoder.at_context_limit:
                return
            limits.check_deadline()
            u, rng = step_draws(seed, position)
            raw = decoder.ranked.logits
            run = run_chain(chain, raw, Context.of(decoder.ids, len(prompt_ids), rng=rng, token_text=texts), state)
            token = run.draw(u)
            probs = run.probs_by_id()
            step = ChainStep(position, token, display_text(token_bytes(loaded.tokenizer, token)), u, probs[token],
                             float(torch.softmax(raw, 0)[token]), run.final.count, token in loaded.eos_token_ids)
            yield step
            if step.eos:
                return
            state = run.next_state(token)
            decoder.push(token)
    finally:
        decoder.close()


@dataclass(frozen=True)
class ABResult:
    """Both sides' tokens on the same uniforms and the first position where they differ (None: never)."""

    a: tuple[ChainStep, ...]
    b: tuple[ChainStep, ...]
    first_divergence: int | None

    def as_dict(self) -> dict:
        def side(steps):
            return {"tokens": [s.as_dict() for s in steps], "text": "".join(s.text for s in steps if not s.eos),
                    "logprob": float(sum(torch.log(torch.tensor(s.prob, dtype=torch.float64)) for s in steps))}
        return {"a": side(self.a), "b": side(self.b), "first_divergence": self.first_divergence}


def ab(model_id: str, prompt: str, chain_a: Chain, chain_b: Chain, seed: int, max_new_tokens: int,
       chat_template: bool = False) -> ABResult:
    loaded = chain_model(model_id)
    with limits.deadline():
        return ab_after(model_id, decoding.prompt_ids(loaded, prompt, chat_template), chain_a, chain_b, seed,
                        max_new_tokens)


def ab_after(model_id: str, ids: Sequence[int], chain_a: Chain, chain_b: Chain, seed: int, max_new_tokens: int
             ) -> ABResult:
    """A/B from the text `ids` (the lab's session: prompt and tokens so far), both sides on one seed."""
    loaded = chain_model(model_id)
    a = tuple(iter_chain_generation(loaded, ids, chain_a, max_new_tokens, seed))
    b = tuple(iter_chain_generation(loaded, ids, chain_b, max_new_tokens, seed))
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x.token_id != y.token_id), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))
    return ABResult(a, b, first)
