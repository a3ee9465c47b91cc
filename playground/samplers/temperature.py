"""Samplers that reshape the distribution: temperature, dynamic temperature, mirostat v2.

Each is one frozen dataclass with one signature, `sampler(pool, context) -> pool`, its formula and
its source in the docstring. Temperature and dynamic temperature keep every token in play (T <= 0 is
greedy: only the best, the lowest id among ties); mirostat v2 cuts by surprise against its running
mu, which the chain carries from step to step (`MirostatV2.next_mu`).

What it leaves out: mirostat v1 (it estimates the Zipf exponent over the top 100 tokens; v2 is
what the lecture and most front ends use), the cuts (`playground.samplers.cuts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from playground.samplers.pool import Context, Pool


def _scaled(pool: Pool, temperature: float) -> Pool:
    """z / T; T <= 0 keeps only the best token (llama.cpp `llama_sampler_temp_impl`)."""
    if temperature <= 0.0:
        best = pool.logits == pool.logits.max()
        first = best.nonzero()[0] if pool.ids is None else best.nonzero().reshape(-1)[
            torch.argmin(pool.ids[best]).reshape(1)]
        return pool.select(first.reshape(1))
    if temperature == 1.0:
        return pool
    return pool.with_logits(pool.logits / temperature, descending=pool.descending)


@dataclass(frozen=True)
class Temperature:
    """`TemperatureLogitsWarper` / llama.cpp `temp`: z_t <- z_t / T. T < 1 sharpens, T > 1 flattens,
    T <= 0 is greedy (llama.cpp: only argmax z stays)."""

    temperature: float

    name = "temperature"

    @property
    def enabled(self) -> bool:
        return self.temperature != 1.0

    def params(self) -> dict:
        return {"temperature": self.temperature}

    def __call__(self, pool: Pool, context: Context) -> Pool:
        return _scaled(pool, self.temperature)


@dataclass(frozen=True)
class DynamicTemperature:
    """llama.cpp `temp_ext` (dynamic temperature, kalomaze; `dynatemp_range`, `dynatemp_exponent`):

    with n tokens in play, H the entropy of p (nats) and H_max = log n,
        T = T_min + (T_max - T_min) * (H / H_max) ^ exponent,   T_min = max(0, T0 - range), T_max = T0 + range
    then z_t <- z_t / T. A flat distribution gets the high temperature, a peaked one the low. range 0
    is plain temperature T0.
    """

    temperature: float
    dynatemp_range: float
    dynatemp_exponent: float = 1.0

    name = "dynatemp"

    @property
    def enabled(self) -> bool:
        return True

    def params(self) -> dict:
        return {"temperature": self.temperature, "dynatemp_range": self.dynatemp_range,
                "dynatemp_exponent": self.dynatemp_exponent}

    def effective_temperature(self, pool: Pool) -> float:
        if self.dynatemp_range <= 0.0 or pool.count <= 1:
            return self.temperature
        low, high = max(0.0, self.temperature - self.dynatemp_range), self.temperature + self.dynatemp_range
        log_probs = torch.log_softmax(pool.logits, dim=0)
        entropy = float(-(log_probs * torch.exp(log_probs)).nansum())
        return low + (high - low) * (entropy / math.log(pool.count)) ** self.dynatemp_exponent

    def __call__(self, pool: Pool, context: Context) -> Pool:
        if self.dynatemp_range > 0.0 and pool.count <= 1:
            return pool
        return _scaled(pool, self.effective_temperature(pool))


@dataclass(frozen=True)
class MirostatV2:
    """Mirostat 2.0 (Basu et al. 2021, llama.cpp `mirostat_v2`; `mirostat_tau`, `mirostat_eta`):

    sorted descending, keep the tokens before the first with surprise -log2 p_t > mu (at least one);
    after the draw of token x from the renormalised survivors, mu <- mu - eta * (-log2 p'_x - tau).
    mu starts at 2 tau. The target surprise tau is reached on average, whatever the text.
    """

    tau: float = 5.0
    eta: float = 0.1

    name = "mirostat"

    @property
    def enabled(self) -> bool:
        return True

    def params(self) -> dict:
        return {"mirostat": 2, "mirostat_tau": self.tau, "mirostat_eta": self.eta}

    def initial_mu(self) -> float:
        return 2.0 * self.tau

    def __call__(self, pool: Pool, context: Context) -> Pool:
        mu = self.initial_mu() if context.mu is None else context.mu
        surprise = -(torch.log_softmax(pool.logits, dim=0)) / math.log(2.0)
        kept = int((surprise <= mu).sum())
        return pool.top(max(kept, 1))  # surprise grows down the descending order: a prefix

    def next_mu(self, mu: float | None, after: Pool, token_id: int) -> float:
        """mu after drawing `token_id` from `after` (this stage's output)."""
        mu = self.initial_mu() if mu is None else mu
        hits = (after.token_ids == int(token_id)).nonzero()
        if hits.numel() == 0:
            return mu
        p = float(after.probs()[hits[0, 0]])
        return mu - self.eta * (-math.log2(p) - self.tau)
