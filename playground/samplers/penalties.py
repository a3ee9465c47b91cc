"""Samplers that re-score tokens by what came before: repetition penalties, n-gram bans, DRY.

Each is one frozen dataclass with one signature, `sampler(pool, context) -> pool`, its formula and
its source in the docstring. They read `context.history` (prompt + generated ids) and touch only
the entries of tokens that occurred (a gather and a scatter), so on a 262,144-token pool they cost
a fraction of a millisecond. They keep every token (except the n-gram ban, which removes).

Two definitions of "repetition penalty" exist, and both are here:

- `RepetitionPenalty`: transformers' `RepetitionPenaltyLogitsProcessor` (Keskar et al. 2019, CTRL):
  every distinct token of the whole sequence, once, z < 0 -> z * r, else z / r;
- `Penalties`: llama.cpp's `penalties` sampler (`repeat_penalty`, `repeat_last_n`,
  `frequency_penalty`, `presence_penalty`): only the last `repeat_last_n` tokens, z <= 0 -> z * r,
  else z / r, then z -= c * freq + (c > 0) * presence with c the count in that window. This is what
  llama-server (and so Ollama and KoboldCpp's llama.cpp core) applies; it counts the prompt too.

`OpenAIPenalties` is OpenAI's definition: z -= c * freq + (c > 0) * presence with c counted over the
generated tokens only ("how often the token was sampled prior to the current position").

What it leaves out: DRY's multi-token sequence breakers (a breaker here is any token whose text
contains a breaker string; llama.cpp also matches a breaker spread over several tokens), and
penalties by token class (KoboldCpp's rep-pen slope).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from playground.samplers.pool import Context, Pool

DEFAULT_BREAKERS: tuple[str, ...] = ("\n", ":", "\"", "*")
FLOAT_MAX_LOG = 88.7228391  # log(FLT_MAX): llama.cpp clamps DRY's exponent with it


def _rescore(pool: Pool, token_ids: Sequence[int], change) -> Pool:
    """`change(old scores) -> new scores` on the entries of `token_ids` present in the pool."""
    if not token_ids:
        return pool
    wanted = torch.tensor(sorted(set(int(t) for t in token_ids)), dtype=torch.long)
    if pool.ids is None:
        positions = wanted[wanted < pool.vocab_size]
    else:
        positions = torch.isin(pool.ids, wanted).nonzero().reshape(-1)
    if positions.numel() == 0:
        return pool
    token_of = positions if pool.ids is None else pool.ids[positions]
    logits = pool.logits.clone()
    logits[positions] = change(logits[positions], token_of)
    return pool.with_logits(logits)


@dataclass(frozen=True)
class RepetitionPenalty:
    """transformers' `RepetitionPenaltyLogitsProcessor` (Keskar et al. 2019):

    for every distinct token t in the sequence (prompt + generated, each once whatever its count):
    z_t <- z_t * r if z_t < 0 else z_t / r. r > 1 discourages repeats; r = 1 is off.
    """

    penalty: float

    name = "repetition_penalty"

    @property
    def enabled(self) -> bool:
        return self.penalty != 1.0

    def params(self) -> dict:
        return {"repetition_penalty": self.penalty}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        r = self.penalty
        return _rescore(pool, context.history, lambda z, _ids: torch.where(z < 0, z * r, z / r))


@dataclass(frozen=True)
class Penalties:
    """llama.cpp's `penalties` sampler (src/llama-sampler.cpp, `llama_sampler_penalties_apply`):

    over the last N = `repeat_last_n` tokens (prompt included; -1 = all, 0 = off), with c_t the
    count of t there, for each t with c_t > 0:
        z_t <- z_t * r if z_t <= 0 else z_t / r            (r = repeat_penalty)
        z_t <- z_t - c_t * frequency_penalty - presence_penalty
    Unlike transformers, only a window counts, and frequency/presence shift after the division.
    """

    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    name = "penalties"

    @property
    def enabled(self) -> bool:
        return self.repeat_last_n != 0 and (self.repeat_penalty != 1.0 or self.frequency_penalty != 0.0
                                            or self.presence_penalty != 0.0)

    def params(self) -> dict:
        return {"repeat_penalty": self.repeat_penalty, "repeat_last_n": self.repeat_last_n,
                "frequency_penalty": self.frequency_penalty, "presence_penalty": self.presence_penalty}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        window = context.history if self.repeat_last_n < 0 else context.history[-self.repeat_last_n:]
        counts = Counter(window)
        r, freq, presence = self.repeat_penalty, self.frequency_penalty, self.presence_penalty

        def change(z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            c = torch.tensor([counts[int(t)] for t in ids], dtype=torch.float32)
            z = torch.where(z <= 0, z * r, z / r)
            return z - (c * freq + presence)

        return _rescore(pool, list(counts), change)


@dataclass(frozen=True)
class OpenAIPenalties:
    """OpenAI's presence and frequency penalties (platform.openai.com, "Parameter details"):

        z_t <- z_t - c_t * frequency_penalty - (c_t > 0) * presence_penalty
    with c_t how often t was sampled before this position: the generated tokens only, not the prompt.
    """

    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    name = "openai_penalties"

    @property
    def enabled(self) -> bool:
        return self.presence_penalty != 0.0 or self.frequency_penalty != 0.0

    def params(self) -> dict:
        return {"openai_presence_penalty": self.presence_penalty, "openai_frequency_penalty": self.frequency_penalty}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        counts = Counter(context.generated)

        def change(z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            c = torch.tensor([counts[int(t)] for t in ids], dtype=torch.float32)
            return z - c * self.frequency_penalty - self.presence_penalty

        return _rescore(pool, list(counts), change)


@dataclass(frozen=True)
class NoRepeatNGram:
    """transformers' `NoRepeatNGramLogitsProcessor` (Paulus et al. 2017): with n = `size`, ban t if the
    last n - 1 tokens followed by t already occur as an n-gram in the sequence (prompt included)."""

    size: int

    name = "no_repeat_ngram_size"

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def params(self) -> dict:
        return {"no_repeat_ngram_size": self.size}

    def banned(self, history: Sequence[int]) -> set[int]:
        n = self.size
        if len(history) + 1 < n:
            return set()
        prefix = tuple(history[len(history) - n + 1:]) if n > 1 else ()
        return {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == prefix}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        banned = self.banned(context.history)
        if not banned:
            return pool
        ban = torch.isin(pool.token_ids, torch.tensor(sorted(banned), dtype=torch.long))
        return pool.select(~ban)


@dataclass(frozen=True)
class Dry:
    """DRY, "Don't Repeat Yourself" (p-e-w, text-generation-webui PR #5677; llama.cpp's `dry` sampler):

    in the last N = `penalty_last_n` tokens (-1 = all), cut at the latest sequence breaker, let L_t be
    the longest suffix of the text that, followed by t, already occurred. If L_t >= allowed length A:
        z_t <- z_t - multiplier * base ^ (L_t - A)      (exponent clamped at log(FLT_MAX) / log(base))
    Breaker tokens themselves are never penalised. multiplier 0 is off.
    """

    multiplier: float = 0.0
    base: float = 1.75
    allowed_length: int = 2
    penalty_last_n: int = 64
    sequence_breakers: tuple[str, ...] = DEFAULT_BREAKERS

    name = "dry"

    @property
    def enabled(self) -> bool:
        return self.multiplier != 0.0 and self.base >= 1.0 and self.penalty_last_n != 0

    def params(self) -> dict:
        return {"dry_multiplier": self.multiplier, "dry_base": self.base, "dry_allowed_length": self.allowed_length,
                "dry_penalty_last_n": self.penalty_last_n, "dry_sequence_breakers": list(self.sequence_breakers)}

    def _is_breaker(self, context: Context, token: int) -> bool:
        if context.token_text is None:
            return False
        text = context.token_text(int(token))
        return any(b in text for b in self.sequence_breakers)

    def repeat_lengths(self, context: Context) -> dict[int, int]:
        """t -> L_t for every t that would extend a repeat of at least the allowed length."""
        tokens = list(context.history if self.penalty_last_n < 0 else context.history[-self.penalty_last_n:])
        n = len(tokens)
        if n <= self.allowed_length:
            return {}
        rep_limit = n
        for back in range(n):  # the latest breaker limits how far back a repeat may reach
            if self._is_breaker(context, tokens[n - 1 - back]):
                rep_limit = back
                break
        if rep_limit < self.allowed_length:
            return {}
        longest: dict[int, int] = {}
        for end in range(n - 1):  # a suffix of the text that also ends at `end`, followed by tokens[end + 1]
            length = 0
            while length <= end and tokens[end - length] == tokens[n - 1 - length]:
                length += 1
            length = min(length, rep_limit)
            if length >= self.allowed_length:
                token = tokens[end + 1]
                longest[token] = max(longest.get(token, 0), length)
        return longest

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        lengths = {t: length for t, length in self.repeat_lengths(context).items() if not self._is_breaker(context, t)}
        if not lengths:
            return pool
        max_exponent = int(FLOAT_MAX_LOG / math.log(self.base)) if self.base > 1.000001 else 0

        def change(z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            exponents = [lengths[int(t)] - self.allowed_length for t in ids]
            if max_exponent > 0:
                exponents = [min(e, max_exponent) for e in exponents]
            penalty = torch.tensor([self.multiplier * self.base ** e for e in exponents], dtype=torch.float32)
            return z - penalty

        return _rescore(pool, list(lengths), change)
