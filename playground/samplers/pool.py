"""The view every sampler in the chain reads and returns: the tokens still in play with their scores.

A `Pool` is llama.cpp's `llama_token_data_array` as tensors: the ids still in play, their current
scores (logits, possibly re-scored by penalties or divided by a temperature) and whether they are
sorted. It starts as the whole vocabulary in id order without a copy or a sort; a penalty re-scores
a handful of entries (one gather, one scatter), a cut keeps a subset. A sort happens only when a
sampler needs an order, and on a subset where one exists: top-k of a 262,144-token vocabulary is a
partial `torch.topk` (~0.5 ms), a full sort ~50-75 ms on this machine's core.

`Context` is what samplers read besides the scores: the tokens so far (prompt + generated, as
each reference counts them), how many of them are the prompt, the random generator (XTC's coin),
mirostat's running mu, and a token's text (DRY's sequence breakers).

What it leaves out: the samplers themselves (`playground.samplers.units`), the chain and its
per-stage statistics (`playground.samplers.chain`), running the model (`playground.decoding`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from playground.errors import PlaygroundError


@dataclass(frozen=True)
class Pool:
    """The tokens in play: `ids` (None: every token, in id order) and their `logits`, same length.

    `descending`: the entries are sorted by logit, descending, ties by ascending id.
    """

    logits: torch.Tensor  # [n] float32
    ids: torch.Tensor | None  # [n] long; None = arange(vocab_size)
    vocab_size: int
    descending: bool = False

    @classmethod
    def every_token(cls, logits: torch.Tensor) -> Pool:
        logits = logits.detach().reshape(-1).float().cpu()
        if logits.numel() == 0:
            raise PlaygroundError("Empty logits vector.")
        if math.isnan(float(logits.max())):  # max propagates NaN
            raise PlaygroundError("The model produced NaN logits.")
        return cls(logits, None, int(logits.numel()))

    @property
    def count(self) -> int:
        return int(self.logits.numel())

    @property
    def token_ids(self) -> torch.Tensor:
        return torch.arange(self.vocab_size) if self.ids is None else self.ids

    def with_logits(self, logits: torch.Tensor, descending: bool = False) -> Pool:
        return replace(self, logits=logits, descending=descending)

    def select(self, index: torch.Tensor, descending: bool | None = None) -> Pool:
        """The entries at `index` (a bool mask or positions); at least one must remain."""
        keeps_order = self.descending if index.dtype == torch.bool else False
        positions = index.nonzero().reshape(-1) if index.dtype == torch.bool else index
        if positions.numel() == 0:
            raise PlaygroundError("A sampler removed every token.")
        ids = positions if self.ids is None else self.ids[positions]
        return Pool(self.logits[positions], ids, self.vocab_size, keeps_order if descending is None else descending)

    def sorted(self) -> Pool:
        """Every entry, descending by logit, ties by ascending id (like `argmax`)."""
        if self.descending:
            return self
        if self.ids is None:  # id order already: a stable sort keeps ties by id
            order = torch.sort(self.logits, descending=True, stable=True).indices
            return self.select(order, descending=True)
        by_id = torch.argsort(self.ids)
        order = by_id[torch.sort(self.logits[by_id], descending=True, stable=True).indices]
        return self.select(order, descending=True)

    def top(self, n: int) -> Pool:
        """The `n` highest entries, descending (ties at the boundary: the lower ids), without a full sort."""
        n = max(1, min(int(n), self.count))
        if self.descending:
            return self.select(torch.arange(n), descending=True)
        if n * 8 >= self.count:
            return self.sorted().top(n)
        values, positions = torch.topk(self.logits, n + 1)  # one more: does a tie straddle the cut?
        if values[n] == values[n - 1]:
            return self.select(self.logits >= values[n - 1], descending=False).sorted().top(n)
        values, positions = values[:n], positions[:n]
        ids = positions if self.ids is None else self.ids[positions]
        by_id = torch.argsort(ids)
        order = by_id[torch.sort(values[by_id], descending=True, stable=True).indices]
        return Pool(values[order], ids[order], self.vocab_size, True)

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def logsumexp(self) -> torch.Tensor:
        return torch.logsumexp(self.logits, dim=0)


@dataclass(frozen=True)
class Context:
    """What a sampler reads besides the scores.

    `history`: every token so far, prompt first (`prompt_length` of them), then the generated ones;
    `rng`: XTC's coin (None: a fresh unseeded generator); `mu`: mirostat's running value for the
    stage being applied (the chain sets it); `token_text`: id -> its text (DRY's breakers).
    """

    history: tuple[int, ...] = ()
    prompt_length: int = 0
    rng: torch.Generator | None = None
    mu: float | None = None
    token_text: Callable[[int], str] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, ids: Sequence[int], prompt_length: int | None = None, **changes) -> Context:
        ids = tuple(int(i) for i in ids)
        return cls(ids, len(ids) if prompt_length is None else int(prompt_length), **changes)

    @property
    def generated(self) -> tuple[int, ...]:
        return self.history[self.prompt_length:]

    def uniform(self) -> float:
        return float(torch.rand(1, generator=self.rng))
