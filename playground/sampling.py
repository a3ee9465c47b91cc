"""Sampling rules on one next-token logits vector: temperature, top-k, top-p (nucleus), min-p.

`filter_logits(logits, settings)` returns a `FilterResult`: the raw distribution (softmax of the
logits), the processed distribution after the rules, which tokens the rules kept, both entropies in
bits. `sample_token(result, generator)` draws one token from the processed distribution.

Each rule is one small unit with one signature, `rule(candidates) -> candidates`, its formula in
its docstring (as in transformers' generation/logits_process.py): `Temperature`, `TopK`, `TopP`,
`MinP`, and `Greedy` for T = 0 (only the most probable token, the first by id among ties, like
`argmax`). `rules_for(settings)` lists the rules a `SamplingSettings` switches on in its order and
`filter_logits` applies them in turn (`apply_rules`). The orders are two lists:

- `TRANSFORMERS_ORDER` (order="transformers"): temperature, top-k, top-p, min-p, as
  `model.generate` applies its warpers;
- `LLAMA_CPP_ORDER` (order="temperature_last"): top-k, top-p and min-p on the unscaled logits,
  the temperature last, on the survivors only (llama.cpp's default chain): temperature then
  changes how the kept tokens share the mass, never which tokens are kept.

Every rule has the semantics of its transformers warper (`TemperatureLogitsWarper`,
`TopKLogitsWarper`, `TopPLogitsWarper`, `MinPLogitsWarper`); tests/unit/test_sampling.py and
tests/unit/test_sampling_rules.py check equality against those classes on random logits, ties
included. top_k 0/None, top_p 1 and min_p 0 are off (no rule in the list).

Speed: one full sort of a 262,144-token vocabulary takes ~30 ms on a laptop core, so the rules do
not see the whole vocabulary: they share a `Candidates` view, the first `count` tokens of the
descending order that `RankedLogits` finds with `torch.topk`, and a rule widens the candidates
only when it may keep more tokens than it has read. Everything proportional to the vocabulary is a
single vectorised pass (softmax, entropy, logsumexp). A `RankedLogits` can be kept per distribution
so that moving a control re-uses the ordering.

A new rule is one more unit in the lists, provided it keeps the tokens above some score (the view
is a prefix of the ranked order: epsilon or eta cuts fit). What it leaves out: rules that re-score
tokens unevenly (repetition penalties) or may drop the most probable token (typical-p), which need a
view that carries its own order; beam search (`playground.beam`); running the model
(`playground.decoding`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Literal, Protocol

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
        self._last_filter: tuple | None = None  # (settings, FilterResult) of the latest filter_logits

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


@dataclass(frozen=True)
class Candidates:
    """What the rules hand each other: the `count` most probable tokens are still in play, scores z / T.

    The tokens in play are always a prefix of the raw descending order (ties by id), because every
    rule here keeps the tokens above some score. A rule reads only as many of them as it needs
    (`scaled`, `widened_count`), so the vocabulary is sorted only when a rule may keep most of it.
    """

    ranked: RankedLogits
    count: int  # tokens still in play: the first `count` in descending order
    temperature: float = 1.0  # the scores are logits / temperature

    @classmethod
    def every_token(cls, ranked: RankedLogits) -> Candidates:
        return cls(ranked, ranked.vocab_size)

    def keep(self, count: int) -> Candidates:
        """The first `count` of the tokens in play (at least one)."""
        return replace(self, count=max(1, min(int(count), self.count)))

    def scaled(self, first: int) -> torch.Tensor:
        """Scores of the first `first` tokens in play (fewer if fewer are in play), descending."""
        values = self.ranked.top(first)[0][: min(first, self.count)]
        return _scaled(values, self.ranked.max_logit, self.temperature)

    def widened_count(self, first: int, count_kept: Callable[[torch.Tensor], int]) -> int:
        """`count_kept(scores)` on the first `first` tokens, then on 4x more while it keeps all it saw."""
        want = first
        while True:
            z = self.scaled(want)
            kept = count_kept(z)
            if kept < z.numel() or z.numel() >= self.count:
                return kept
            want = z.numel() * 4

    def log_total(self) -> torch.Tensor:
        """log sum exp of the scores in play: the softmax normaliser, without sorting the rest."""
        if self.count < self.ranked.vocab_size:
            return torch.logsumexp(self.scaled(self.count), dim=0)
        return torch.logsumexp(_scaled(self.ranked.logits, self.ranked.max_logit, self.temperature), dim=0)

    def survivors(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(ids, scores, id_order) of the tokens in play; every token in id order if none was removed
        and the vocabulary was never sorted."""
        ranked = self.ranked
        if self.count >= ranked.vocab_size and not ranked.complete:
            return torch.arange(ranked.vocab_size), _scaled(ranked.logits, ranked.max_logit, self.temperature), True
        values, ids = ranked.top(self.count)
        return ids[: self.count], _scaled(values[: self.count], ranked.max_logit, self.temperature), False


class Rule(Protocol):
    """One sampling rule: `rule(candidates) -> candidates`, keeping a prefix of the tokens in play.

    The classes in an order also have `from_settings(settings) -> rule | None` (None: switched off).
    """

    def __call__(self, candidates: Candidates) -> Candidates: ...


@dataclass(frozen=True)
class Greedy:
    """T = 0: keep only the most probable token, argmax z (the first by id among ties).

    transformers does not sample then (`do_sample=False`); no other rule applies.
    """

    def __call__(self, candidates: Candidates) -> Candidates:
        return replace(candidates.keep(1), temperature=1.0)


@dataclass(frozen=True)
class Temperature:
    """`TemperatureLogitsWarper`: z_i <- z_i / T. T < 1 sharpens, T > 1 flattens; the order stays."""

    temperature: float

    @classmethod
    def from_settings(cls, settings: SamplingSettings) -> Temperature | None:
        return cls(settings.temperature) if settings.temperature != 1.0 else None

    def __call__(self, candidates: Candidates) -> Candidates:
        return replace(candidates, temperature=candidates.temperature * self.temperature)


@dataclass(frozen=True)
class TopK:
    """`TopKLogitsWarper`: keep i if z_i >= z_(k), the k-th largest score (ties at the cut survive)."""

    top_k: int

    @classmethod
    def from_settings(cls, settings: SamplingSettings) -> TopK | None:
        return cls(settings.top_k) if settings.top_k else None

    def __call__(self, candidates: Candidates) -> Candidates:
        k = self.top_k
        if k >= candidates.count:
            return candidates
        # the tie at the cut may run past the first k + 1 candidates: widen until it ends
        return candidates.keep(candidates.widened_count(k + 1, lambda z: int((z >= z[k - 1]).sum())))


@dataclass(frozen=True)
class TopP:
    """`TopPLogitsWarper` (nucleus): keep i if sum_{j : z_j <= z_i} p_j > 1 - p, p = softmax(z).

    Sorted ascending, the tokens whose cumulative mass is <= 1 - p (the least likely ones) go; the
    most probable token always stays.
    """

    top_p: float

    @classmethod
    def from_settings(cls, settings: SamplingSettings) -> TopP | None:
        return cls(settings.top_p) if settings.top_p < 1.0 else None

    def __call__(self, candidates: Candidates) -> Candidates:
        n, log_total, cut = candidates.count, candidates.log_total(), 1.0 - self.top_p

        def count_kept(z: torch.Tensor) -> int:
            if z.numel() >= n:  # every token in play: transformers' own order (ascending softmax, cumsum)
                mass_at_and_below = torch.softmax(z.flip(0), dim=0).cumsum(0).flip(0)
            else:  # the mass at and below a token = 1 - the mass strictly above it
                probs = torch.exp(z - log_total)
                mass_at_and_below = (1.0 - (torch.cumsum(probs, dim=0) - probs)).clamp_min(0.0)
            return int((mass_at_and_below > cut).sum())

        return candidates.keep(candidates.widened_count(min(n, INITIAL_CANDIDATES), count_kept))


@dataclass(frozen=True)
class MinP:
    """`MinPLogitsWarper`: keep i if p_i >= m * max_j p_j, i.e. exp(z_i - z_max) >= m (the normaliser cancels)."""

    min_p: float

    @classmethod
    def from_settings(cls, settings: SamplingSettings) -> MinP | None:
        return cls(settings.min_p) if settings.min_p > 0.0 else None

    def __call__(self, candidates: Candidates) -> Candidates:
        def count_kept(z: torch.Tensor) -> int:
            return int((torch.exp(z - z[0]) >= self.min_p).sum())

        return candidates.keep(candidates.widened_count(min(candidates.count, INITIAL_CANDIDATES), count_kept))


# The rule chains, first applied first. transformers' `model.generate` order; llama.cpp's default
# chain puts the temperature after the cuts (each rule keeps transformers' semantics).
TRANSFORMERS_ORDER: tuple[type, ...] = (Temperature, TopK, TopP, MinP)
LLAMA_CPP_ORDER: tuple[type, ...] = (TopK, TopP, MinP, Temperature)
RULE_ORDERS: dict[str, tuple[type, ...]] = {"transformers": TRANSFORMERS_ORDER, "temperature_last": LLAMA_CPP_ORDER}


def rules_for(settings: SamplingSettings) -> list[Rule]:
    """The rules `settings` switches on, in its order (`[Greedy()]` alone at T = 0)."""
    if settings.greedy:
        return [Greedy()]
    rules = (kind.from_settings(settings) for kind in RULE_ORDERS[settings.order])
    return [rule for rule in rules if rule is not None]


def apply_rules(ranked: RankedLogits, rules: list[Rule]) -> Candidates:
    """Every token in play, then each rule in turn."""
    candidates = Candidates.every_token(ranked)
    for rule in rules:
        candidates = rule(candidates)
    return candidates


def filter_logits(logits: torch.Tensor | RankedLogits, settings: SamplingSettings) -> FilterResult:
    """Apply `settings` to one logits vector (or a reusable `RankedLogits`)."""
    ranked = logits if isinstance(logits, RankedLogits) else RankedLogits(logits)
    last = ranked._last_filter  # the view and the next sampling step filter with the same rules
    if last is not None and last[0] == settings:
        return last[1]
    ids, scaled, id_order = apply_rules(ranked, rules_for(settings)).survivors()
    kept_probs = torch.softmax(scaled, dim=0)
    result = FilterResult(settings, ranked.raw_probs, ids, kept_probs, ranked.raw_entropy_bits, entropy_bits(scaled),
                          ranked.vocab_size, id_order)
    ranked._last_filter = (settings, result)  # one attribute: readers on other threads see a whole pair
    return result


def sample_token(result: FilterResult, generator: torch.Generator | None = None) -> int:
    """One token id drawn from the processed distribution (the top token when greedy)."""
    if result.settings.greedy or result.kept_count == 1:
        return int(result.kept_ids[0])
    index = torch.multinomial(result.kept_probs, 1, generator=generator)
    return int(result.kept_ids[index])


def with_changes(settings: SamplingSettings, **changes) -> SamplingSettings:
    return replace(settings, **changes)
