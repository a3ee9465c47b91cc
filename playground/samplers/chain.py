"""The sampler chain: an ordered list of samplers, written with llama.cpp's parameter names.

`parse_chain("repeat_penalty=1.1;top_k=40;top_p=0.9;temperature=0.8")` returns a `Chain`: one
sampler per family, in the order its first parameter appears; `format_chain(chain)` writes it
back (`parse_chain(format_chain(c)) == c`). Parameters of one family configure one stage
(`xtc_probability` and `xtc_threshold` are one XTC stage; `repeat_penalty`, `repeat_last_n`,
`frequency_penalty`, `presence_penalty` llama.cpp's one `penalties` stage; `temperature` with
`dynatemp_range` is dynamic temperature). `PRESETS` names the chains of transformers, llama.cpp's
default, Ollama, KoboldCpp and the lecture's five Modelfile presets.

`run_chain(chain, logits, context, state)` applies the stages in turn and returns a `ChainRun`: one
`StageResult` per stage (kept count, the raw model's probability mass on the kept tokens, the
entropy in bits of the stage's distribution, its top tokens) and the final pool. `ChainRun.draw(u)`
picks a token from one uniform number by inverting the cumulative distribution over the tokens in
the raw model's descending order (ties by id): two chains on the same distribution and the same u
pick comparable tokens (common random numbers: the A/B comparison). `ChainRun.next_state(token)`
carries mirostat's mu to the next step.

What it leaves out: running the model (`playground.decoding`), generation loops and A/B
(`playground.samplers.ab`), the samplers' formulas (`penalties`, `cuts`, `temperature`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from playground.errors import PlaygroundError
from playground.samplers.cuts import Epsilon, Eta, MinP, TopK, TopNSigma, TopP, Typical, Xtc
from playground.samplers.penalties import DEFAULT_BREAKERS, Dry, NoRepeatNGram, OpenAIPenalties, Penalties, RepetitionPenalty
from playground.samplers.pool import Context, Pool
from playground.samplers.temperature import DynamicTemperature, MirostatV2, Temperature

MAX_STAGES = 32
MAX_CHAIN_CHARS = 2000
TOP_TOKENS = 5


@dataclass(frozen=True)
class Param:
    """One chain parameter: its name, type, default and allowed range (inclusive, None = open)."""

    name: str
    kind: type  # int, float or tuple (DRY's breakers)
    default: object
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Family:
    """The parameters that configure one stage and how they build its sampler."""

    key: str
    params: tuple[Param, ...]
    build: Callable[[dict], object]


def _f(name, default, low=None, high=None):
    return Param(name, float, default, low, high)


def _i(name, default, low=None, high=None):
    return Param(name, int, default, low, high)


def _temperature(v: dict):
    if "dynatemp_range" in v:
        return DynamicTemperature(v["temperature"], v["dynatemp_range"], v["dynatemp_exponent"])
    return Temperature(v["temperature"])


FAMILIES: tuple[Family, ...] = (
    Family("penalties", (_f("repeat_penalty", 1.0, 0.0), _i("repeat_last_n", 64, -1), _f("frequency_penalty", 0.0),
                         _f("presence_penalty", 0.0)),
           lambda v: Penalties(v["repeat_penalty"], v["repeat_last_n"], v["frequency_penalty"], v["presence_penalty"])),
    Family("repetition_penalty", (_f("repetition_penalty", 1.0, 0.0),), lambda v: RepetitionPenalty(v["repetition_penalty"])),
    Family("openai_penalties", (_f("openai_presence_penalty", 0.0, -2.0, 2.0), _f("openai_frequency_penalty", 0.0, -2.0, 2.0)),
           lambda v: OpenAIPenalties(v["openai_presence_penalty"], v["openai_frequency_penalty"])),
    Family("no_repeat_ngram_size", (_i("no_repeat_ngram_size", 0, 0),), lambda v: NoRepeatNGram(v["no_repeat_ngram_size"])),
    Family("dry", (_f("dry_multiplier", 0.0, 0.0), _f("dry_base", 1.75, 0.0), _i("dry_allowed_length", 2, 0),
                   _i("dry_penalty_last_n", 64, -1), Param("dry_sequence_breakers", tuple, DEFAULT_BREAKERS)),
           lambda v: Dry(v["dry_multiplier"], v["dry_base"], v["dry_allowed_length"], v["dry_penalty_last_n"],
                         v["dry_sequence_breakers"])),
    Family("top_n_sigma", (_f("top_n_sigma", -1.0),), lambda v: TopNSigma(v["top_n_sigma"])),
    Family("top_k", (_i("top_k", 40),), lambda v: TopK(v["top_k"])),
    Family("typical_p", (_f("typical_p", 1.0, 0.0, 1.0),), lambda v: Typical(v["typical_p"])),
    Family("top_p", (_f("top_p", 1.0, 0.0, 1.0),), lambda v: TopP(v["top_p"])),
    Family("min_p", (_f("min_p", 0.0, 0.0, 1.0),), lambda v: MinP(v["min_p"])),
    Family("epsilon_cutoff", (_f("epsilon_cutoff", 0.0, 0.0, 1.0),), lambda v: Epsilon(v["epsilon_cutoff"])),
    Family("eta_cutoff", (_f("eta_cutoff", 0.0, 0.0, 1.0),), lambda v: Eta(v["eta_cutoff"])),
    Family("xtc", (_f("xtc_probability", 0.0, 0.0, 1.0), _f("xtc_threshold", 0.1, 0.0, 1.0)),
           lambda v: Xtc(v["xtc_probability"], v["xtc_threshold"])),
    Family("temperature", (_f("temperature", 1.0, 0.0, 100.0), _f("dynatemp_range", 0.0, 0.0, 100.0),
                           _f("dynatemp_exponent", 1.0, 0.0, 100.0)), _temperature),
    Family("mirostat", (_i("mirostat", 2, 2, 2), _f("mirostat_tau", 5.0, 0.0, 100.0), _f("mirostat_eta", 0.1, 0.0, 1.0)),
           lambda v: MirostatV2(v["mirostat_tau"], v["mirostat_eta"])),
)
ALIASES = {"temp": "temperature", "typ_p": "typical_p", "typical": "typical_p", "repeat_last_n_penalty": "repeat_last_n"}
PARAMS: dict[str, tuple[Family, Param]] = {p.name: (f, p) for f in FAMILIES for p in f.params}


@dataclass(frozen=True)
class Chain:
    """Samplers applied in this order, first first."""

    stages: tuple = ()

    def __str__(self) -> str:
        return format_chain(self)


def _value(param: Param, text: str):
    text = text.strip()
    if param.kind is tuple:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise PlaygroundError(f"{param.name} must be a JSON list of non-empty strings, like [\"\\n\", \":\"] "
                                  f"(got {text!r}).")
        return tuple(value)
    try:
        number = float(text)
    except ValueError:
        raise PlaygroundError(f"{param.name} must be a number (got {text!r}).") from None
    if not math.isfinite(number):
        raise PlaygroundError(f"{param.name} must be a finite number (got {text!r}).")
    if param.kind is int:
        if number != int(number):
            raise PlaygroundError(f"{param.name} must be a whole number (got {text!r}).")
        number = int(number)
    if (param.low is not None and number < param.low) or (param.high is not None and number > param.high):
        low = "-inf" if param.low is None else f"{param.low:g}"
        high = "inf" if param.high is None else f"{param.high:g}"
        raise PlaygroundError(f"{param.name} must be between {low} and {high} (got {text!r}).")
    return number


def parse_chain(text: str) -> Chain:
    """`name=value;name=value;...` (llama.cpp's names) -> Chain; each family's stage sits where its
    first parameter appears; a family's parameters not given take llama.cpp's defaults."""
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError("The chain is empty: give samplers as name=value separated by ';', "
                              "like top_k=40;top_p=0.9;temperature=0.8.")
    if len(text) > MAX_CHAIN_CHARS:
        raise PlaygroundError(f"The chain is too long ({len(text)} characters, at most {MAX_CHAIN_CHARS}).")
    order: list[Family] = []
    values: dict[str, dict] = {}
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not sep:
            raise PlaygroundError(f"{item!r} has no value: write it as name=value.")
        if name not in PARAMS:
            raise PlaygroundError(f"Unknown sampler parameter {name!r}. Known: {', '.join(sorted(PARAMS))}.")
        family, param = PARAMS[name]
        given = values.setdefault(family.key, {})
        if name in given:
            raise PlaygroundError(f"{name} is given twice; a chain has each sampler once.")
        if not given:
            order.append(family)
        given[name] = _value(param, raw)
    if len(order) > MAX_STAGES:
        raise PlaygroundError(f"The chain has {len(order)} stages (at most {MAX_STAGES}).")
    stages = []
    for family in order:
        given = values[family.key]
        dynamic = any(name.startswith("dynatemp_") for name in given)
        stages.append(family.build({p.name: given.get(p.name, p.default) for p in family.params
                                    if dynamic or not p.name.startswith("dynatemp_")}))
    if sum(isinstance(s, MirostatV2) for s in stages) and not isinstance(stages[-1], MirostatV2):
        raise PlaygroundError("mirostat picks the token itself: it must be the chain's last sampler.")
    return Chain(tuple(stages))


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return json.dumps(list(value))
    return repr(value) if isinstance(value, float) else str(value)


def format_chain(chain: Chain) -> str:
    """The chain in llama.cpp's parameter names, each stage's parameters together, in order."""
    return ";".join(f"{name}={_text(value)}" for stage in chain.stages for name, value in stage.params().items())


# llama.cpp's `common_params_sampling` defaults and order (common/common.h); Ollama's Go sampler
# (top-k, temperature, top-p, min-p; its documented defaults); KoboldCpp's default order with DRY
# first and XTC last; transformers' processors then warpers (generation/utils.py); the lecture's
# Modelfiles, in the order the lab applies them (transformers').
PRESETS: dict[str, str] = {
    "transformers": ("repetition_penalty=1.0;no_repeat_ngram_size=0;temperature=1.0;top_k=50;top_p=1.0;min_p=0.0;"
                     "typical_p=1.0;epsilon_cutoff=0.0;eta_cutoff=0.0"),
    "llama.cpp default": ("repeat_penalty=1.0;repeat_last_n=64;frequency_penalty=0.0;presence_penalty=0.0;"
                          "dry_multiplier=0.0;top_n_sigma=-1.0;top_k=40;typical_p=1.0;top_p=0.95;min_p=0.05;"
                          "xtc_probability=0.0;xtc_threshold=0.1;temperature=0.8"),
    "Ollama": "repeat_penalty=1.1;repeat_last_n=64;top_k=40;temperature=0.8;top_p=0.9;min_p=0.0",
    "KoboldCpp": ("dry_multiplier=0.0;repeat_penalty=1.07;repeat_last_n=360;top_k=100;typical_p=1.0;top_p=0.92;"
                  "temperature=0.7;xtc_probability=0.0;xtc_threshold=0.1"),
    "greedy": "temperature=0.0;top_k=1000;top_p=1.0",
    "random": "temperature=1.0;top_k=1000;top_p=1.0",
    "top-10": "temperature=1.0;top_k=10;top_p=1.0",
    "nucleus": "temperature=1.0;top_k=1000;top_p=0.9",
    "min-p": "temperature=1.0;top_k=1000;top_p=1.0;min_p=0.1",
}


def preset_chain(name: str) -> Chain:
    from playground.errors import UnknownIdError

    if name not in PRESETS:
        raise UnknownIdError("chain preset", name, PRESETS)
    return parse_chain(PRESETS[name])


def chain_from(text_or_preset: str) -> Chain:
    """A preset's name or a chain string."""
    return parse_chain(PRESETS.get(text_or_preset, text_or_preset))


@dataclass(frozen=True)
class StageResult:
    """What one stage left: how many tokens, how much of the raw model's mass, the entropy (bits) of
    the stage's distribution, its most probable tokens as (id, probability)."""

    name: str
    params: dict
    kept_count: int
    kept_mass: float
    entropy_bits: float
    top: tuple[tuple[int, float], ...]
    pool: Pool = field(repr=False, compare=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "params": self.params, "kept_count": self.kept_count,
                "kept_mass": self.kept_mass, "entropy_bits": self.entropy_bits,
                "top": [{"id": i, "prob": p} for i, p in self.top]}


@dataclass(frozen=True)
class ChainState:
    """What a chain carries between steps: mirostat's mu per stage index (None: its start value)."""

    mu: tuple[tuple[int, float], ...] = ()

    def mu_at(self, index: int) -> float | None:
        return dict(self.mu).get(index)


@dataclass(frozen=True)
class ChainRun:
    """One chain on one distribution: the input row, one row per stage, the final pool."""

    chain: Chain
    raw_logits: torch.Tensor = field(repr=False)
    stages: tuple[StageResult, ...]
    state: ChainState = ChainState()

    @property
    def final(self) -> Pool:
        return self.stages[-1].pool

    def ordered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, probs) of the final distribution in the raw model's descending order, ties by id."""
        pool = self.final
        ids = pool.token_ids
        by_id = torch.argsort(ids)
        order = by_id[torch.sort(self.raw_logits[ids[by_id]], descending=True, stable=True).indices]
        return ids[order], pool.probs()[order]

    def probs_by_id(self) -> dict[int, float]:
        pool = self.final
        return dict(zip(pool.token_ids.tolist(), pool.probs().tolist()))

    def draw(self, u: float) -> int:
        """The token whose cumulative interval holds u in [0, 1): the inverse CDF over `ordered()`."""
        ids, probs = self.ordered()
        cumulative = torch.cumsum(probs.double(), dim=0)
        index = int(torch.searchsorted(cumulative, torch.tensor([float(u)], dtype=torch.float64), right=True)[0])
        return int(ids[min(index, ids.numel() - 1)])

    def next_state(self, token_id: int) -> ChainState:
        mu = dict(self.state.mu)
        for index, stage in enumerate(self.chain.stages):
            if isinstance(stage, MirostatV2):
                mu[index] = stage.next_mu(self.state.mu_at(index), self.stages[index + 1].pool, token_id)
        return ChainState(tuple(sorted(mu.items())))

    def as_dict(self) -> dict:
        return {"chain": format_chain(self.chain), "stages": [s.as_dict() for s in self.stages],
                **({"mirostat_mu": dict(self.state.mu)} if self.state.mu else {})}


def _stage(name: str, params: dict, pool: Pool, raw: tuple[torch.Tensor, float] | None,
           before: StageResult | None = None) -> tuple[StageResult, float]:
    """The stage's row and its log normaliser; `raw`: the raw logits and theirs (None: this is the input)."""
    if before is not None and before.pool is pool:  # the stage changed nothing (switched off)
        return StageResult(name, params, before.kept_count, before.kept_mass, before.entropy_bits, before.top, pool), 0.0
    best = pool.top(TOP_TOKENS)
    bits, log_total = _entropy_and_normaliser(pool.logits)
    if raw is None or pool.ids is None:
        mass = 1.0
    else:
        mass = float(torch.exp(raw[0][pool.ids].double() - raw[1]).sum())
    probs = torch.exp(best.logits - log_total)
    top = tuple(zip(best.token_ids.tolist(), probs.tolist()))
    return StageResult(name, params, pool.count, mass, bits, top, pool), log_total


def _entropy_and_normaliser(logits: torch.Tensor) -> tuple[float, float]:
    """(entropy in bits, log sum exp) of softmax(logits) in one pass over exp(z - max):
    H = log Z - sum(e * z) / Z, as `sampling.entropy_bits`; -inf scores contribute nothing."""
    top = float(logits.max())
    z = logits - top
    e = torch.exp(z)
    weighted = e * z
    if math.isinf(float(z.min())):
        weighted = torch.where(e > 0, weighted, torch.zeros_like(weighted))
    total = float(e.sum())
    return max((math.log(total) - float(weighted.sum()) / total) / math.log(2.0), 0.0), top + math.log(total)


def run_chain(chain: Chain, logits: torch.Tensor, context: Context | None = None,
              state: ChainState | None = None) -> ChainRun:
    """Each stage in turn on the full vocabulary; row 0 is the raw distribution ("input")."""
    context = context or Context()
    state = state or ChainState()
    pool = Pool.every_token(logits)
    first, raw_log_total = _stage("input", {}, pool, None)
    raw = (pool.logits, raw_log_total)
    stages = [first]
    for index, sampler in enumerate(chain.stages):
        if isinstance(sampler, MirostatV2):
            pool = sampler(pool, Context(context.history, context.prompt_length, context.rng, state.mu_at(index),
                                         context.token_text))
        else:
            pool = sampler(pool, context)
        stages.append(_stage(sampler.name, sampler.params(), pool, raw, stages[-1])[0])
    return ChainRun(chain, pool_raw(logits), tuple(stages), state)


def pool_raw(logits: torch.Tensor) -> torch.Tensor:
    return logits.detach().reshape(-1).float().cpu()


# llama-server's sampler names (its `samplers` field) for the stages it has.
LLAMA_CPP_SAMPLERS = {"penalties": "penalties", "dry": "dry", "top_n_sigma": "top_n_sigma", "top_k": "top_k",
                      "typical_p": "typ_p", "top_p": "top_p", "min_p": "min_p", "xtc": "xtc",
                      "temperature": "temperature", "dynatemp": "temperature"}


def llama_cpp_request(chain: Chain) -> dict:
    """The fields of a llama-server /completion request that run `chain` there, in its order.

    A sampler llama.cpp lacks is refused in words naming it; mirostat runs in llama.cpp only as
    "temperature, then mirostat" (its chain is replaced).
    """
    fields: dict = {"samplers": [], "mirostat": 0}
    names = [stage.name for stage in chain.stages]
    for stage in chain.stages:
        if stage.name == "mirostat":
            if names not in (["mirostat"], ["temperature", "mirostat"]):
                raise PlaygroundError("llama.cpp runs mirostat only after the temperature (its chain is then "
                                      "temperature, mirostat): remove the other samplers.")
            fields.update(stage.params())
            fields["samplers"] = []
            continue
        if stage.name not in LLAMA_CPP_SAMPLERS:
            raise PlaygroundError(f"llama.cpp has no {stage.name} sampler ({format_chain(Chain((stage,)))}): "
                                  "remove it to run this chain on a llama.cpp engine.")
        fields["samplers"].append(LLAMA_CPP_SAMPLERS[stage.name])
        params = stage.params()
        if stage.name == "dry":
            params["dry_sequence_breakers"] = list(params["dry_sequence_breakers"])
        fields.update(params)
    if "temperature" not in fields:
        fields["temperature"] = 1.0  # llama-server treats temperature <= 0 as greedy whatever the chain
    return fields


# What "add a sampler" puts in the chain: each family switched on at a value worth seeing.
ADD_DEFAULTS: dict[str, str] = {
    "penalties": "repeat_penalty=1.1;repeat_last_n=64", "repetition_penalty": "repetition_penalty=1.2",
    "openai_penalties": "openai_presence_penalty=0.5;openai_frequency_penalty=0.5",
    "no_repeat_ngram_size": "no_repeat_ngram_size=3", "dry": "dry_multiplier=0.8", "top_n_sigma": "top_n_sigma=1.0",
    "top_k": "top_k=40", "typical_p": "typical_p=0.95", "top_p": "top_p=0.9", "min_p": "min_p=0.05",
    "epsilon_cutoff": "epsilon_cutoff=0.0003", "eta_cutoff": "eta_cutoff=0.0003",
    "xtc": "xtc_probability=0.5;xtc_threshold=0.1", "temperature": "temperature=0.8",
    "dynatemp": "temperature=0.8;dynatemp_range=0.5;dynatemp_exponent=1.0",
    "mirostat": "mirostat=2;mirostat_tau=5.0;mirostat_eta=0.1",
}


def _family_of(stage) -> str:
    return "temperature" if stage.name == "dynatemp" else PARAMS[next(iter(stage.params()))][0].key


def add_stage(chain: Chain, sampler: str) -> Chain:
    """`chain` with `sampler` (a key of `ADD_DEFAULTS`) appended, switched on (mirostat stays last)."""
    if sampler not in ADD_DEFAULTS:
        raise PlaygroundError(f"Unknown sampler {sampler!r}. Known: {', '.join(ADD_DEFAULTS)}.")
    stage = parse_chain(ADD_DEFAULTS[sampler]).stages[0]
    same = [s for s in chain.stages if _family_of(s) == _family_of(stage)]
    if same:
        raise PlaygroundError(f"The chain already has a {same[0].name} stage: change its values instead.")
    stages = list(chain.stages)
    at = len(stages) - 1 if stages and isinstance(stages[-1], MirostatV2) else len(stages)
    stages.insert(at, stage)
    return Chain(tuple(stages))


def _index(chain: Chain, index: int) -> int:
    if not isinstance(index, int) or not 0 <= index < len(chain.stages):
        raise PlaygroundError(f"There is no stage {index + 1 if isinstance(index, int) else index!r} "
                              f"(the chain has {len(chain.stages)}).")
    return index


def remove_stage(chain: Chain, index: int) -> Chain:
    index = _index(chain, index)
    return Chain(chain.stages[:index] + chain.stages[index + 1:])


def move_stage(chain: Chain, index: int, delta: int) -> Chain:
    """Stage `index` moved `delta` places (-1 up, +1 down), clamped to the ends; mirostat stays last."""
    index = _index(chain, index)
    stages = list(chain.stages)
    target = max(0, min(len(stages) - 1, index + delta))
    stages.insert(target, stages.pop(index))
    moved = Chain(tuple(stages))
    if any(isinstance(s, MirostatV2) for s in stages) and not isinstance(stages[-1], MirostatV2):
        raise PlaygroundError("mirostat picks the token itself: it must stay the chain's last sampler.")
    return moved
