"""Sampling rules on one next-token logits vector: temperature, top-k, top-p (nucleus), min-p.

`filter_logits(logits, settings)` returns a `FilterResult`: the raw distribution (softmax of the
logits), the processed distribution after the rules, which tokens the rules kept, both entropies in
bits. `sample_token(result, generator)` draws one token from the processed distribution.

Semantics are those of transformers' `TemperatureLogitsWarper`, `TopKLogitsWarper`,
`TopPLogitsWarper` and `MinPLogitsWarper`, applied in the order `model.generate` applies them
(temperature, then top-k, then top-p, then min-p); tests/unit/test_sampling.py checks equality
against those classes on random logits, ties included:

- temperature T: logits / T. T = 0 means greedy: only the most probable token is kept (the first
  one by id among ties, like `argmax`).
- top-k k: keep every token whose scaled logit is >= the k-th largest (ties at the cut are kept);
  0 or None is off.
- top-p p: sort the probabilities ascending, drop the tokens whose cumulative mass is <= 1 - p (the
  least likely ones), keep at least one; p >= 1 is off.
- min-p m: drop tokens whose probability (after the rules before it) is < m * the largest; 0 is off.

`order="temperature_last"` applies top-k, top-p and min-p to the unscaled logits and the
temperature last, to the survivors only (llama.cpp's default sampler chain does this): temperature
then changes how the kept tokens share the mass, never which tokens are kept.

Speed: one full sort of a 262,144-token vocabulary takes ~30 ms on a laptop core, so the rules work
on the top candidates found by `torch.topk` (`RankedLogits`), widening the candidate set only when
a rule may keep more tokens than it holds. Everything proportional to the vocabulary is a single
vectorised pass (softmax, entropy, logsumexp). A `RankedLogits` can be kept per distribution so
that moving a control re-uses the ordering.

What it leaves out: repetition penalties, typical/eta/epsilon sampling, beam search
(`playground.beam`), running the model (`playground.core`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Literal

import torch

from playground.errors import PlaygroundError

Order = Literal["transformers", "temperature_last"]
ORDERS: tuple[str, ...] = ("transformers", "temperature_last")
MAX_TEMPERATURE = 100.0
INITIAL_CANDIDATES = 1024
LOG2 = math.log(2.0)


@dataclass(frozen=True)
class SamplingSettings:
    """One set of sampling rules. `temperature=0` is greedy; top_k 0/None and top_p 1 are off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    min_p: float = 0.0
    order: Order = "transformers"

    def __post_init__(self):
        problems = []
        if not isinstance(self.temperature, (int, float)) or math.isnan(self.temperature):
            problems.append("temperature must be a number")
        elif not 0 <= self.temperature <= MAX_TEMPERATURE:
            problems.append(f"temperature must be between 0 and {MAX_TEMPERATURE:g} (0 = greedy)")
        if self.top_k is not None and (int(self.top_k) != self.top_k or self.top_k < 0):
            problems.append("top-k must be a whole number >= 0 (0 = off)")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            problems.append("top-p must be in (0, 1] (1 = off)")
        if not isinstance(self.min_p, (int, float)) or not 0 <= self.min_p <= 1:
            problems.append("min-p must be in [0, 1] (0 = off)")
        if self.order not in ORDERS:
            problems.append(f"order must be one of {', '.join(ORDERS)}")
        if problems:
            raise PlaygroundError("Invalid sampling settings: " + "; ".join(problems) + ".")
        # normalise: 0 and None both mean "top-k off"
        object.__setattr__(self, "top_k", int(self.top_k) if self.top_k else None)
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_p", float(self.top_p))
        object.__setattr__(self, "min_p", float(self.min_p))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def generate_kwargs(self) -> dict:
        """The same rules as keyword arguments of transformers' `model.generate`."""
        if self.greedy:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k or 0,
                "top_p": self.top_p, "min_p": self.min_p if self.min_p > 0 else None}


# The lecture's Ollama Modelfiles ("PARAMETER temperature 1 / top_k 1000 / top_p 0.9" ...).
PRESETS: dict[str, SamplingSettings] = {
    "greedy": SamplingSettings(temperature=0.0, top_k=1000, top_p=1.0),
    "random": SamplingSettings(temperature=1.0, top_k=1000, top_p=1.0),
    "top-10": SamplingSettings(temperature=1.0, top_k=10, top_p=1.0),
    "nucleus": SamplingSettings(temperature=1.0, top_k=1000, top_p=0.9),
    "min-p": SamplingSettings(temperature=1.0, top_k=1000, top_p=1.0, min_p=0.1),
}


def preset(name: str) -> SamplingSettings:
    from playground.errors import UnknownIdError

    if name not in PRESETS:
        raise UnknownIdError("preset", name, PRESETS)
    return PRESETS[name]


class RankedLogits:
    """Raw logits plus their descending order, found lazily: top candidates first, all if needed.

    Ties are ordered by ascending token id (like `argmax`). Keep one instance per distribution to
    re-filter it cheaply many times.
    """

    def __init__(self, logits: torch.Tensor):
        logits = logits.detach().reshape(-1).float().cpu()
        if logits.numel() == 0:
            raise PlaygroundError("Empty logits vector.")
        top, bottom = float(logits.max()), float(logits.min())  # max/min propagate NaN: one pass each
        if math.isnan(top):
            raise PlaygroundError("The model produced NaN logits.")
        if math.isinf(top):
            raise PlaygroundError("The model produced infinite logits.")
        self.logits = logits
        self.max_logit = top
        self.has_neg_inf = math.isinf(bottom)
        self.vocab_size = int(logits.numel())
        # (values, ids) as ONE attribute: sessions share a RankedLogits (the prompt cache), and a
        # reader on another thread must never see new values with old ids.
        self._ranked: tuple[torch.Tensor, torch.Tensor] = (logits[:0], torch.zeros(0, dtype=torch.long))
        self._raw_probs: torch.Tensor | None = None
        self._raw_entropy: float | None = None

    def top(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, ids) of at least the `n` largest logits, descending (fewer only if n > vocab)."""
        n = min(max(int(n), 1), self.vocab_size)
        values, ids = self._ranked
        if values.numel() < n:
            size = max(n, 4 * values.numel(), INITIAL_CANDIDATES)
            if size * 8 >= self.vocab_size:
                size = self.vocab_size
            # topk's order among equal values is unspecified: re-sort the candidates stably by id
            # (a tie that straddles the candidate boundary is widened by the callers' checks).
            values, ids = torch.topk(self.logits, size) if size < self.vocab_size else (self.logits, None)
            if ids is None:
                values, ids = torch.sort(self.logits, descending=True, stable=True)
            else:
                by_id = torch.argsort(ids)
                values, ids = values[by_id], ids[by_id]
                order = torch.sort(values, descending=True, stable=True).indices
                values, ids = values[order], ids[order]
            self._ranked = (values, ids)
        return values, ids

    @property
    def complete(self) -> bool:
        return self._ranked[0].numel() >= self.vocab_size

    @property
    def raw_probs(self) -> torch.Tensor:
        if self._raw_probs is None:
            self._raw_probs = torch.softmax(self.logits, dim=-1)
        return self._raw_probs

    @property
    def raw_entropy_bits(self) -> float:
        if self._raw_entropy is None:
            self._raw_entropy = entropy_bits(self.logits)
        return self._raw_entropy


def entropy_bits(logits: torch.Tensor) -> float:
    """Shannon entropy (bits) of softmax(logits); -inf logits contribute nothing.

    H = log Z - sum(e * z) / Z with z = logits - max, e = exp(z), Z = sum(e): two float32 passes
    and two sums (a 262,144-token vocabulary in ~1 ms).
    """
    z = logits.float() - logits.max()
    e = torch.exp(z)
    weighted = e * z
    if math.isinf(float(z.min())):  # exp(-inf) * -inf is NaN: those terms are 0
        weighted = torch.where(e > 0, weighted, torch.zeros_like(weighted))
    total = float(e.sum())  # torch sums float32 pairwise: relative error ~1e-7 at 262k terms
    nats = math.log(total) - float(weighted.sum()) / total
    return max(nats / LOG2, 0.0)


@dataclass(frozen=True)
class FilterResult:
    """The raw and processed next-token distributions for one set of rules.

    `kept_ids` are the surviving token ids ordered by raw logit (descending, ties by id), except
    when every token survives and the vocabulary was never sorted (then in id order);
    `kept_probs` their processed probabilities. `probs`/`kept` are the same over the full vocabulary.
    """

    settings: SamplingSettings
    raw_probs: torch.Tensor  # [vocab], softmax of the raw logits (temperature 1)
    kept_ids: torch.Tensor  # [n] long
    kept_probs: torch.Tensor  # [n] float32, sums to 1
    raw_entropy_bits: float
    entropy_bits: float  # of the processed distribution
    vocab_size: int
    id_order: bool = False  # kept_ids is arange(vocab): nothing removed, the vocabulary never sorted

    @property
    def kept_count(self) -> int:
        return int(self.kept_ids.numel())

    @cached_property
    def probs(self) -> torch.Tensor:
        """Processed probabilities over the full vocabulary (0 for removed tokens)."""
        if self.id_order:
            return self.kept_probs  # every token kept, in id order (the unsorted fast path)
        full = torch.zeros(self.vocab_size, dtype=torch.float32)
        full[self.kept_ids] = self.kept_probs
        return full

    @cached_property
    def kept(self) -> torch.Tensor:
        if self.kept_count == self.vocab_size:
            return torch.ones(self.vocab_size, dtype=torch.bool)
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[self.kept_ids] = True
        return mask

    def prob_of(self, token_id: int) -> float:
        """Processed probability of one token (0 if removed)."""
        if self.kept_count <= 64:
            hits = (self.kept_ids == int(token_id)).nonzero()
            return float(self.kept_probs[hits[0, 0]]) if hits.numel() else 0.0
        return float(self.probs[int(token_id)])


def _scaled(values: torch.Tensor, max_logit: float, temperature: float) -> torch.Tensor:
    """values / T as transformers computes it; shifted by the max first where that would overflow."""
    if temperature == 1.0:
        return values
    if temperature < 1e-30:  # float32 would round such a divisor to 0 (0 / 0 = NaN): shift and divide in float64
        return ((values.double() - max_logit) / temperature).float()
    if abs(max_logit) / temperature < 1e30:
        return values / temperature
    return (values - max_logit) / temperature  # tiny T: same order and softmax, no inf - inf


def _count_at_least(values: torch.Tensor, threshold: torch.Tensor | float) -> int:
    return int((values >= threshold).sum())


def _keep_count(ranked: RankedLogits, scale: float, top_k: int | None, top_p: float, min_p: float) -> int:
    """How many of the top tokens (descending raw order) the rules keep, on logits / scale."""
    vocab = ranked.vocab_size
    n = vocab  # tokens still in play: always the first n in descending order

    def scaled_top(count: int) -> torch.Tensor:
        # only the first `count` candidates (more may be cached): the loops below widen 4x at a time
        return _scaled(ranked.top(count)[0][:count], ranked.max_logit, scale)

    if top_k is not None and top_k < vocab:
        # TopKLogitsWarper: remove scores < the k-th largest score; ties at the cut survive.
        want = top_k + 1
        while True:
            z = scaled_top(want)
            n = _count_at_least(z, z[top_k - 1])
            if n < z.numel() or z.numel() >= vocab:
                break
            want = z.numel() * 4  # the tie at the cut runs past the candidates: widen

    if top_p < 1.0:
        # TopPLogitsWarper: ascending cumulative mass <= 1 - p is removed, the top token stays.
        # Ascending cumulative mass at a token = the mass of it and everything below it.
        if n < vocab:
            z = scaled_top(n)[:n]
            log_total = torch.logsumexp(z, dim=0)
        else:
            log_total = torch.logsumexp(_scaled(ranked.logits, ranked.max_logit, scale), dim=0)
        want = min(n, INITIAL_CANDIDATES)
        while True:
            z = scaled_top(want)[:n]
            if z.numel() >= n:  # every token in play: transformers' order (ascending softmax, cumsum)
                mass_at_and_below = torch.softmax(z.flip(0), dim=0).cumsum(0).flip(0)
            else:
                probs = torch.exp(z - log_total)
                above = torch.cumsum(probs, dim=0) - probs  # mass strictly above each token
                mass_at_and_below = (1.0 - above).clamp_min(0.0)
            kept = int((mass_at_and_below > 1.0 - top_p).sum())
            if kept < z.numel() or z.numel() >= n:
                break
            want = z.numel() * 4
        n = max(kept, 1)

    if min_p > 0.0:
        # MinPLogitsWarper: remove p < min_p * p_max, p after the earlier rules.
        want = min(n, INITIAL_CANDIDATES)
        while True:
            z = scaled_top(want)[:n]
            relative = torch.exp(z - z[0])  # p_i / p_max, the normaliser cancels
            kept = _count_at_least(relative, min_p)
            if kept < z.numel() or z.numel() >= n:
                break
            want = z.numel() * 4
        n = max(kept, 1)
    return n


def filter_logits(logits: torch.Tensor | RankedLogits, settings: SamplingSettings) -> FilterResult:
    """Apply `settings` to one logits vector (or a reusable `RankedLogits`)."""
    ranked = logits if isinstance(logits, RankedLogits) else RankedLogits(logits)
    vocab = ranked.vocab_size
    if settings.greedy:
        n, temperature = 1, 1.0
    elif settings.order == "transformers":
        temperature = settings.temperature
        n = _keep_count(ranked, temperature, settings.top_k, settings.top_p, settings.min_p)
    else:  # temperature last: the rules see the raw logits, the temperature only the survivors
        temperature = settings.temperature
        n = _keep_count(ranked, 1.0, settings.top_k, settings.top_p, settings.min_p)

    id_order = n >= vocab and not ranked.complete
    if id_order:
        # nothing removed: no need to sort the vocabulary; ids stay in id order
        ids = torch.arange(vocab)
        scaled = _scaled(ranked.logits, ranked.max_logit, temperature)
    else:
        values, ids = ranked.top(n)
        values, ids = values[:n], ids[:n]
        scaled = _scaled(values, ranked.max_logit, temperature)
    kept_probs = torch.softmax(scaled, dim=0)
    ent = entropy_bits(scaled)
    return FilterResult(settings, ranked.raw_probs, ids, kept_probs, ranked.raw_entropy_bits, ent, vocab, id_order)


def sample_token(result: FilterResult, generator: torch.Generator | None = None) -> int:
    """One token id drawn from the processed distribution (the top token when greedy)."""
    if result.settings.greedy or result.kept_count == 1:
        return int(result.kept_ids[0])
    index = torch.multinomial(result.kept_probs, 1, generator=generator)
    return int(result.kept_ids[index])


def with_changes(settings: SamplingSettings, **changes) -> SamplingSettings:
    return replace(settings, **changes)
