"""Samplers that remove tokens: top-k, top-p, min-p, typical-p, top-n-sigma, epsilon, eta, XTC.

Each is one frozen dataclass with one signature, `sampler(pool, context) -> pool`, its formula and
its source in the docstring, p = softmax(z) over the tokens still in play. Where transformers has
the warper the semantics are transformers' (ties at a cut survive; at least one token stays), and
tests/unit/test_samplers.py checks equality on random logits; llama.cpp's version of the same rule
differs only in floating-point order, except top-k (llama.cpp keeps exactly k among ties).

Speed: a cut that keeps few tokens never sorts the whole pool: top-k is one `torch.topk`; top-p and
typical-p read the best m tokens of their order (m = 1024, then 4x more while the cut is not
reached), normalised by one logsumexp over the pool; min-p, top-n-sigma, epsilon and eta are one
pass each.

What it leaves out: samplers that change scores without removing (`penalties`, `temperature`),
tail-free sampling and top-a (deprecated in llama.cpp), adaptive-p.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from playground.samplers.pool import Context, Pool

FIRST_LOOK = 1024
ROUNDING = 1e-5  # a cut this close to a token's running mass is decided in the reference's arithmetic


def _widened(pool: Pool, count_kept: Callable[[torch.Tensor, bool], int | None]) -> Pool:
    """Keep the first `count_kept(probs, whole)` tokens in descending order, reading m = 1024 then 4x more.

    probs are those of the first m tokens, normalised over the whole pool; `whole`: m covers the
    pool. `count_kept` returns m only when it would keep at least all it saw, and None when float
    rounding could decide the cut (then the whole pool is read, in the reference's own arithmetic).
    """
    log_total = pool.logsumexp()
    m = min(FIRST_LOOK, pool.count)
    while True:
        prefix = pool.top(m)
        whole = prefix.count >= pool.count
        kept = count_kept(torch.exp(prefix.logits - log_total), whole)
        if kept is None:
            m = pool.count
            continue
        if kept < prefix.count or whole:
            return prefix.select(torch.arange(max(kept, 1)))
        m = min(m * 4, pool.count)


@dataclass(frozen=True)
class TopK:
    """`TopKLogitsWarper` / llama.cpp `top_k`: keep t if z_t >= z_(k), the k-th largest. k <= 0 is off.

    Ties at the cut survive here (transformers); llama.cpp keeps exactly k.
    """

    k: int

    name = "top_k"

    @property
    def enabled(self) -> bool:
        return self.k > 0

    def params(self) -> dict:
        return {"top_k": self.k}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled or self.k >= pool.count:
            return pool
        kth = torch.topk(pool.logits, self.k).values[-1]
        return pool.select(pool.logits >= kth)


@dataclass(frozen=True)
class TopP:
    """`TopPLogitsWarper` / llama.cpp `top_p` (Holtzman et al. 2020, nucleus sampling):

    sorted descending, keep t if the mass strictly above it is < p (equivalently transformers' "mass at
    and below t > 1 - p"); the most probable token always stays. p >= 1 is off.
    """

    p: float

    name = "top_p"

    @property
    def enabled(self) -> bool:
        return self.p < 1.0

    def params(self) -> dict:
        return {"top_p": self.p}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        cut = 1.0 - self.p

        def count_kept(probs: torch.Tensor, whole: bool) -> int | None:
            if whole:  # transformers' own arithmetic: ascending softmax, cumsum
                return int((probs.flip(0).cumsum(0).flip(0) > cut).sum())
            at_and_below = (1.0 - (probs.cumsum(0) - probs)).clamp_min(0.0)
            kept = int((at_and_below > cut).sum())
            near = at_and_below[max(kept - 1, 0): kept + 1]
            return None if bool(((near - cut).abs() < ROUNDING).any()) else kept

        return _widened(pool, count_kept)


@dataclass(frozen=True)
class MinP:
    """`MinPLogitsWarper` / llama.cpp `min_p` (Nguyen et al. 2024): keep t if p_t >= m * max p,
    i.e. exp(z_t - z_max) >= m (the normaliser cancels). m <= 0 is off."""

    p: float

    name = "min_p"

    @property
    def enabled(self) -> bool:
        return self.p > 0.0

    def params(self) -> dict:
        return {"min_p": self.p}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        return pool.select(torch.exp(pool.logits - pool.logits.max()) >= self.p)


@dataclass(frozen=True)
class Typical:
    """`TypicalLogitsWarper` / llama.cpp `typical` (Meister et al. 2022, locally typical sampling):

    H = -sum p log p; order tokens by |-log p_t - H| ascending; keep the shortest prefix of that order
    whose mass reaches p (transformers: the first index where the running mass is >= p, included,
    with every token scoring the same as it). p >= 1 is off. The most probable token may go.
    """

    p: float

    name = "typical_p"

    @property
    def enabled(self) -> bool:
        return self.p < 1.0

    def params(self) -> dict:
        return {"typical_p": self.p}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        log_probs = torch.log_softmax(pool.logits, dim=0)
        probs = torch.exp(log_probs)
        entropy = -(log_probs * probs).nansum()
        shifted = (-log_probs - entropy).abs()
        m = min(FIRST_LOOK, pool.count)
        while True:
            if m >= pool.count:
                scores, order = torch.sort(shifted, stable=True)
            else:
                scores, order = torch.topk(shifted, m, largest=False)
            cumulative = probs[order].cumsum(0)
            last = int((cumulative < self.p).sum())
            if last < m or m >= pool.count:
                last = min(last, pool.count - 1, m - 1)
                return pool.select(shifted <= scores[last])
            m = min(m * 4, pool.count)


@dataclass(frozen=True)
class TopNSigma:
    """llama.cpp `top_n_sigma` (Tang et al. 2024, "Top-nσ: Not All Logits Are You Need"):

    over the finite scores, keep t if z_t >= max z - n * sigma(z) (sigma: population standard
    deviation). n <= 0 is off. Invariant to the temperature, unlike p-based cuts.
    """

    n: float

    name = "top_n_sigma"

    @property
    def enabled(self) -> bool:
        return self.n > 0.0

    def params(self) -> dict:
        return {"top_n_sigma": self.n}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled or pool.count <= 1:
            return pool
        logits = pool.logits
        finite = logits if math.isfinite(float(logits.min())) else logits[torch.isfinite(logits)]
        centred = finite - finite.sum() / finite.numel()
        std = math.sqrt(float(torch.dot(centred, centred)) / finite.numel())  # torch.std_mean is 30x slower here
        return pool.select(logits >= float(finite.max()) - self.n * std)


def _keep_at_least_top(pool: Pool, remove: torch.Tensor) -> Pool:
    """transformers' min_tokens_to_keep = 1: the best-scored tokens always stay."""
    return pool.select(~remove | (pool.logits >= pool.logits.max()))


@dataclass(frozen=True)
class Epsilon:
    """`EpsilonLogitsWarper` (Hewitt et al. 2022, truncation sampling): keep t if p_t >= epsilon, and
    always the most probable token. epsilon <= 0 is off."""

    epsilon: float

    name = "epsilon_cutoff"

    @property
    def enabled(self) -> bool:
        return self.epsilon > 0.0

    def params(self) -> dict:
        return {"epsilon_cutoff": self.epsilon}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        return _keep_at_least_top(pool, pool.probs() < self.epsilon)


@dataclass(frozen=True)
class Eta:
    """`EtaLogitsWarper` (Hewitt et al. 2022, eta sampling): with H the entropy in nats,
    eta = min(epsilon, sqrt(epsilon) * exp(-H)); keep t if p_t >= eta, and always the most probable
    token. epsilon <= 0 is off."""

    epsilon: float

    name = "eta_cutoff"

    @property
    def enabled(self) -> bool:
        return self.epsilon > 0.0

    def params(self) -> dict:
        return {"eta_cutoff": self.epsilon}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled:
            return pool
        log_probs = torch.log_softmax(pool.logits, dim=0)
        probs = torch.exp(log_probs)
        entropy = float(-(log_probs * probs).nansum())
        eta = min(self.epsilon, math.sqrt(self.epsilon) * math.exp(-entropy))
        return _keep_at_least_top(pool, probs < eta)


@dataclass(frozen=True)
class Xtc:
    """XTC, "Exclude Top Choices" (p-e-w, text-generation-webui PR #6335; llama.cpp `xtc`):

    with probability `probability` (one uniform draw u: applied when u <= probability), sorted
    descending, remove every token with p_t >= threshold except the least probable of them; nothing
    happens when fewer than two tokens reach the threshold. threshold > 0.5 or probability <= 0 is off.
    """

    probability: float = 0.0
    threshold: float = 0.1

    name = "xtc"

    @property
    def enabled(self) -> bool:
        return self.probability > 0.0 and self.threshold <= 0.5

    def params(self) -> dict:
        return {"xtc_probability": self.probability, "xtc_threshold": self.threshold}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if not self.enabled or pool.count < 2:
            return pool
        if self.probability < 1.0 and context.uniform() > self.probability:
            return pool
        at_least = int((pool.probs() >= self.threshold).sum())  # those reaching it are the top ones
        if at_least < 2:
            return pool
        removed = pool.top(at_least).token_ids[: at_least - 1]
        return pool.select(~torch.isin(pool.token_ids, removed))
