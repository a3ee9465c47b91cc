"""A chain on a model: the next-token funnel, generation, and A/B on common random numbers.

`chain_next_token(model_id, prompt, chain)` runs the chain on the distribution after the prompt
(the shared distribution cache, `decoding.ranked_after`: re-filtering never calls the model again).
`iter_chain_generation` generates token by token: at position i it draws ONE uniform number u_i
from `generation.step_generator(seed, i)` (then XTC's coin from the same stream) and picks the token
by inverting the chain's cumulative distribution over the raw model's descending order
(`ChainRun.draw`). `ab(...)` runs two chains on the same seed: both sides see the same u_i at every
position, so up to the first divergence any difference is the chains', not the dice's; identical
chains give identical output.

`ab_samples` is K samples A/B of the next token: the same K uniform numbers for both sides, each
side's first-token counts and how many draws agree.

What it leaves out: engine models (the chain needs every logit: the callers ask their backend,
whose `require("sampler_chain")` refuses in words; `engines.chain` has the engine's own run), K
samples of whole continuations, the branching tree, the UI (`playground.ui`).
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


MAX_AB_SAMPLES = 1024


@dataclass(frozen=True)
class ABSamples:
    """K first tokens per side drawn with the same K uniform numbers: counts per token and how many
    of the K draws picked the same token on both sides."""

    k: int
    a: tuple[tuple[int, int], ...]  # (token id, count), most drawn first
    b: tuple[tuple[int, int], ...]
    same_token: int

    def as_dict(self, text) -> dict:
        def side(counts):
            return [{"id": t, "text": text(t), "count": c} for t, c in counts]
        return {"k": self.k, "a": side(self.a), "b": side(self.b), "same_token": self.same_token}


def _stochastic(chain: Chain) -> bool:
    """Whether a stage draws its own random number (XTC's coin): then each sample runs the chain."""
    return any(stage.name == "xtc" and 0.0 < stage.probability < 1.0 and stage.enabled for stage in chain.stages)


def ab_samples(model_id: str, ids: Sequence[int], prompt_length: int, chain_a: Chain, chain_b: Chain, seed: int,
               k: int) -> ABSamples:
    """K samples A/B of the next token: sample j draws u_j (and XTC's coin) from `step_draws(seed, j)`
    for both sides, each side inverts its own cumulative distribution (`ChainRun.draw`)."""
    if not 1 <= k <= MAX_AB_SAMPLES:
        raise PlaygroundError(f"K must be between 1 and {MAX_AB_SAMPLES}.")
    loaded = chain_model(model_id)
    with limits.deadline():
        logits = decoding.ranked_after(loaded, list(ids)).logits
    texts = token_texts(loaded)
    picks: dict[str, list[int]] = {"a": [], "b": []}
    for side, chain in (("a", chain_a), ("b", chain_b)):
        fixed = None if _stochastic(chain) else run_chain(chain, logits, Context.of(ids, prompt_length, token_text=texts))
        for j in range(k):
            u, rng = step_draws(seed, j)
            run = fixed or run_chain(chain, logits, Context.of(ids, prompt_length, rng=rng, token_text=texts))
            picks[side].append(run.draw(u))

    def counts(tokens: list[int]) -> tuple[tuple[int, int], ...]:
        tally: dict[int, int] = {}
        for t in tokens:
            tally[t] = tally.get(t, 0) + 1
        return tuple(sorted(tally.items(), key=lambda item: (-item[1], item[0])))

    same = sum(x == y for x, y in zip(picks["a"], picks["b"]))
    return ABSamples(k, counts(picks["a"]), counts(picks["b"]), same)
