"""Teacher forcing on a text: every token's log-probability given everything before it.

`ScoredText` (its `ScoredToken`s: id, text, character offsets, log-probability, and for an engine
whether the number is only a bound) is what `chat.score_text` returns, by the model's backend
(`playground.backends`): `local_score` runs the text's forward pass on an in-process model (in
chunks over one KV cache: the time limit is checked between them, and the logits of the whole text
are never held at once),
`engine_scored` asks the engine (`playground.engines.forcing`).
What it leaves out: choosing the backend (`playground.backends`), aligning two scorings
(`chat.align_scores`), views.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from playground import start_tokens
from playground.errors import PlaygroundError
from playground.limits import ATTRIBUTION_TOKENS
from playground.model_call import forward_chunks
from playground.models import load_model
from playground.token_text import display_text, token_bytes

MAX_SCORE_TOKENS = 2048
LN2 = math.log(2.0)


@dataclass(frozen=True)
class ScoredToken:
    index: int
    id: int
    text: str
    start: int  # character offsets into the scored text
    end: int
    logprob: float  # natural log of p(token | everything before it)
    bounded: bool = False  # an engine's: outside its top K, so `logprob` is an upper bound (log p_K)

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)

    @property
    def surprisal_bits(self) -> float:
        return -self.logprob / LN2


@dataclass(frozen=True)
class ScoredText:
    model_id: str
    text: str
    context_ids: tuple[int, ...]  # what the text was scored after (a start token, or a conversation)
    tokens: tuple[ScoredToken, ...]
    note: str = ""  # how an engine scored it, and what is exact

    @property
    def total_bits(self) -> float:
        return sum(t.surprisal_bits for t in self.tokens)

    @property
    def bits_per_char(self) -> float:
        return self.total_bits / max(1, len(self.text))


def local_score(model_id: str, text: str, context_ids: Sequence[int] | None = None) -> ScoredText:
    """Teacher forcing on an in-process model: every token of `text` scored given all before it (the
    text's forward pass, `model_call.SCORE_CHUNK` positions a call over one KV cache); `context_ids`: what it is scored after (default: the model's start tokens)."""
    loaded = load_model(model_id)
    tokenizer = loaded.tokenizer
    if tokenizer is None:
        raise PlaygroundError(f"Model {model_id} has no tokenizer on this machine.")
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = [int(i) for i in encoding["input_ids"]]
    offsets = list(encoding["offset_mapping"])
    context = [int(i) for i in context_ids] if context_ids else start_tokens.start_ids(tokenizer)
    if not context:  # no start token (the model reads none): the first token is context, not scored
        if len(ids) < 2:
            raise PlaygroundError(f"{model_id} reads no start token, so a one-token text has nothing to "
                                  "be scored after: type a longer text.")
        context, ids, offsets = ids[:1], ids[1:], offsets[1:]
    sequence = context + ids
    if len(sequence) > min(MAX_SCORE_TOKENS, loaded.context_length):
        raise PlaygroundError(f"Too long to score: {len(sequence)} tokens (at most "
                              f"{min(MAX_SCORE_TOKENS, loaded.context_length)}).")
    # position p's output scores token p + 1: the text's tokens are scored from position len(context) - 1 on
    targets = torch.tensor(sequence[1:] + [0])
    picked: list[float] = []
    for first, logits in forward_chunks(loaded, sequence):
        logprobs = torch.log_softmax(logits, dim=-1)
        rows = range(max(first, len(context) - 1), min(first + len(logits), len(sequence) - 1))
        if rows:
            local = torch.arange(rows.start - first, rows.stop - first)
            picked += logprobs[local, targets[rows.start:rows.stop].to(logprobs.device)].cpu().tolist()
    tokens = tuple(
        ScoredToken(i, token_id, display_text(token_bytes(tokenizer, token_id)), int(a), int(b), float(lp))
        for i, (token_id, (a, b), lp) in enumerate(zip(ids, offsets, picked))
    )
    return ScoredText(model_id, text, tuple(context), tokens)



def why_prompts(scored: ScoredText) -> tuple[str | None, ...]:
    """For each scored token, the text before it that "Why this token?" attributes it after: the
    text up to the token, where that reads back as exactly the ids it was scored after (start tokens
    included, within attribution's `limits.ATTRIBUTION_TOKENS`), else None (so a text scored after
    a conversation has none). For an in-process model (`playground.chat.why_prompts` asks its backend)."""
    tokenizer = load_model(scored.model_id).tokenizer
    before = list(scored.context_ids)
    prompts = []
    for token in scored.tokens:
        prefix = scored.text[: token.start]
        fits = len(before) <= ATTRIBUTION_TOKENS
        prompts.append(prefix if fits and start_tokens.reads_as(tokenizer, prefix, before) else None)
        before.append(token.id)
    return tuple(prompts)


def engine_scored(spec, text: str, tokenizer_of) -> ScoredText:
    """Teacher forcing by the engine serving `spec` (`playground.engines.forcing`): the engine's own
    tokens and numbers; `tokenizer_of()`: its explorer tokenizer (the engine's /tokenize). A token
    outside the engine's top K has only an upper bound on its probability (`bounded`), so its
    surprisal is a lower bound; `note` says how many."""
    from playground.engines import forcing
    from playground.token_spans import build_result

    forcing.require_tokenize(spec)
    tokenizer = tokenizer_of()
    forced = forcing.teacher_forcing(spec, text, tokenizer)
    ids = [*forced.context_ids[len(forced.context_ids) - forced.text_context:], *(t.id for t in forced.tokens)]
    spans = build_result(spec.id, text, ids, tokenizer.tokens_bytes(ids), tokenizer.special_ids).tokens
    tokens = tuple(ScoredToken(t.index, t.id, span.text, span.start, span.end, t.logprob, not t.in_top_k)
                   for t, span in zip(forced.tokens, spans[forced.text_context:]))
    return ScoredText(spec.id, text, forced.context_ids, tokens, forcing.describe(forced))
