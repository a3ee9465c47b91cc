"""The sampling lab on an engine model: the engine's top-K plus the rest, our rules, our draws.

An engine gives the K most probable next tokens (`engines.topk`) and so the remaining mass R, not
the whole distribution. `known_distribution` completes it into a full vector, in token-id space:
the K known log-probabilities, and R spread evenly over the other V - K tokens (V: the vocabulary
size, from the entry's tokenizer or the engine's metadata). The rules (`playground.sampling`) run
on that vector unchanged; what is exact and what is not:

- the kept set and the processed probabilities are exact when the kept set lies inside the top K
  (`inside_top_k`): greedy, top-k <= K, min-p removing the K-th known token, or top-p whose cut
  is reached within the known tokens at the temperature it sees (for T <= 1 the unknown tokens
  share at most R p_K^(1/T - 1) of the scaled mass, each being below p_K); otherwise they assume
  the even tail and are labelled "approximate: only the top K are known";
- the model's entropy is known only within bounds: at least the entropy with the tail packed into
  tokens of p_K each, at most with it spread evenly over V - K tokens (`entropy_bounds`).

Sampling stays ours: the draw at a position uses `generation.step_generator(seed, position)` and
`sampling.sample_token`, as in-process; when the kept set reaches into the unknown tail, the draw
is made among the kept known tokens (the tail's tokens are not known, so none can be sent). One
request per token: the sequence goes back to the engine as token ids where it takes them
(`token_prompts`), so the text is never re-tokenized; otherwise as text.

Engine state (client, vocabulary size, tokenizer, a small LRU of top-Ks by sequence) hangs off a
per-model registry (`engine_for`); a session holds only ids and records.
`open_ids`, `session_view` and `session_steps` are the lab's operations on a `lab.LabSession`
(`backends.EngineBackend` calls them). What it leaves out: K samples (refused by the backend),
beam search (`engines.beam`), the session itself (`playground.lab`), views (`playground.ui.sampling_tab`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

import torch

from playground import generation, start_tokens
from playground.engines.client import EngineClient, EngineError
from playground.engines.topk import TopK, next_token_topk
from playground.errors import PlaygroundError
from playground.lru import BoundedLRU
from playground.model_spec import ModelSpec
from playground.sampling import FilterResult, RankedLogits, SamplingSettings, filter_logits, sample_token
from playground.token_text import display_text

MAX_K = 100  # alternatives asked per position (capped by the entry's top_logprobs)
CACHED_POSITIONS = 256  # top-Ks kept per engine model, by sequence
APPROXIMATE = "approximate: only the top {k} are known"
EXACT = "exact: the kept tokens lie inside the top {k}"


@dataclass
class EngineState:
    spec: ModelSpec
    client: EngineClient
    tokenizer: object | None  # the entry's `tokenizer` (a registry model's), or None
    vocab_size: int | None
    eos_token_ids: tuple[int, ...]
    cache: BoundedLRU
    _explorer: object | None = None

    @property
    def k(self) -> int:
        return max(1, min(MAX_K, self.spec.engine.top_logprobs))

    def explorer(self):
        """The engine's /tokenize as an explorer tokenizer (`engines.tokenizer`), built on first use
        through this client (a failure is not kept: the next call asks again)."""
        if self._explorer is None:
            from playground.engines.tokenizer import EngineTokenizer

            self._explorer = EngineTokenizer(self.spec, self.client)
        return self._explorer


_ENGINES: dict[str, EngineState] = {}
_LOCK = threading.Lock()


def _engine_vocab(client: EngineClient) -> int | None:
    """llama.cpp's /v1/models carries `meta.n_vocab`; other engines: None."""
    try:
        answer = client.get("/v1/models")
        return int(answer["data"][0]["meta"]["n_vocab"])
    except (EngineError, KeyError, IndexError, TypeError, ValueError):
        return None


def engine_for(spec: ModelSpec, client: EngineClient | None = None) -> EngineState:
    """The engine state of an engine model (built on first use; `client`: a test's own)."""
    if spec.source != "engine":
        raise PlaygroundError(f"Model {spec.id} is not an engine model.")
    with _LOCK:
        state = _ENGINES.get(spec.id)
        if state is not None and client is None:
            return state
        tokenizer = None
        if spec.tokenizer_from:
            from playground.models import load_tokenizer

            tokenizer = load_tokenizer(spec.tokenizer_from)
        client = client or EngineClient(spec.engine, name=spec.id)
        vocab = len(tokenizer) if tokenizer is not None else _engine_vocab(client)
        eos = getattr(tokenizer, "eos_token_id", None)
        state = EngineState(spec, client, tokenizer, vocab, (int(eos),) if eos is not None else (),
                            BoundedLRU(CACHED_POSITIONS))
        _ENGINES[spec.id] = state
        return state


def built(spec: ModelSpec) -> EngineState | None:
    """The engine state of `spec` if one was built (its client answers for the model), else None."""
    with _LOCK:
        return _ENGINES.get(spec.id)


def forget_engines() -> None:
    """Close every engine client (tests)."""
    with _LOCK:
        for state in _ENGINES.values():
            state.client.close()
        _ENGINES.clear()


# ---------------------------------------------------------------------------------------------
# Prompts


def prompt_ids(state: EngineState, prompt: str, chat_template: bool) -> list[int]:
    """The ids the engine sees for `prompt`: for a plain text the ids every tab reads
    (`playground.start_tokens`), asked of its own /tokenize, else of the entry's tokenizer; a chat
    template needs the entry's tokenizer."""
    if not chat_template:
        return plain_text_ids(state, prompt)
    if state.tokenizer is None or not getattr(state.tokenizer, "chat_template", None):
        raise PlaygroundError(f"Model {state.spec.id} names no tokenizer with a chat template "
                              "(the entry's `tokenizer` field): turn the chat template off.")
    text = state.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                               add_generation_prompt=True, tokenize=False)
    if state.spec.engine.tokenize:
        ids = state.client.tokenize(text, add_special=False)
    else:
        ids = list(state.tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise PlaygroundError("Type a prompt: the engine needs at least one token.")
    return [int(i) for i in ids]


def plain_text_ids(state: EngineState, text: str) -> list[int]:
    """A plain text's ids as every tab reads it (`playground.start_tokens`): by default what the
    engine's /tokenize adds (llama.cpp: the GGUF's add_bos_token, which is the model's tokenizer's
    choice too), else the entry's tokenizer decides the start tokens."""
    mode = start_tokens.mode_or_default()
    ids: list[int] = []
    if state.spec.engine.tokenize and mode in ("model", "none") and text:
        ids = [int(i) for i in state.client.tokenize(text, add_special=mode == "model")]
    elif state.tokenizer is not None:
        ids = start_tokens.text_ids(state.tokenizer, text, mode).ids
    elif not state.spec.engine.tokenize:
        raise PlaygroundError(f"{state.client._who()} has no /tokenize and the entry names no tokenizer: "
                              "the Sampling lab needs token ids.")
    else:
        raise PlaygroundError(f"Model {state.spec.id} names no tokenizer (the entry's `tokenizer` field), so "
                              f"its start token cannot be chosen here (start-token mode {mode!r}): type a prompt, "
                              "or use the mode 'model'.")
    if not ids:
        raise PlaygroundError("Type a prompt: the engine needs at least one token.")
    return ids


def fit_ids(ids: list[int], max_tokens: int) -> tuple[list[int], str | None]:
    """The last `max_tokens` ids, with a note when the prompt was cut."""
    if len(ids) <= max_tokens:
        return ids, None
    return ids[-max_tokens:], f"The prompt was cut to its last {max_tokens} tokens (it had {len(ids)})."


# ---------------------------------------------------------------------------------------------
# The distribution: known top-K plus the rest


class KnownTokens:
    """Token bytes as the engine named them (a `token_text.token_bytes` tokenizer-like), falling back
    to the entry's tokenizer, else `<id N>`."""

    def __init__(self, topk: TopK, tokenizer=None):
        self.tokenizer = tokenizer
        self.known = {t.token_id: (t.token_bytes if t.token_bytes is not None else t.text.encode("utf-8"))
                      for t in topk.tokens}

    def decode_single_token_bytes(self, token_id: int) -> bytes:
        if int(token_id) in self.known:
            return self.known[int(token_id)]
        if self.tokenizer is not None:
            from playground.token_text import token_bytes

            return token_bytes(self.tokenizer, int(token_id))
        return f"<id {int(token_id)}>".encode()


@dataclass(frozen=True)
class KnownDistribution:
    topk: TopK
    ids: tuple[int, ...]  # the known tokens, best first
    ranked: RankedLogits  # the completed vector (known log-probs, the rest spread evenly)
    vocab_size_known: bool  # False: V is a guess (max id + 1)

    @property
    def k(self) -> int:
        return len(self.ids)

    @property
    def rest_mass(self) -> float:
        return self.topk.rest_mass

    @property
    def probs(self) -> list[float]:
        return [t.prob for t in self.topk.tokens]


def known_distribution(topk: TopK, vocab_size: int | None) -> KnownDistribution:
    ids = [t.token_id for t in topk.tokens]
    if any(i is None for i in ids):
        raise EngineError("The engine names its top tokens by text only, without token ids: the Sampling lab "
                          "needs ids (llama.cpp gives them).", "unsupported")
    size = max(int(vocab_size or 0), max(ids) + 1, len(ids) + 1)
    rest = topk.rest_mass
    tail = math.log(rest / (size - len(ids))) if rest > 0 else -math.inf
    logits = torch.full((size,), tail, dtype=torch.float32)
    logits[torch.tensor(ids)] = torch.tensor([t.logprob for t in topk.tokens], dtype=torch.float32)
    ranked = RankedLogits(logits)
    # the logits are log-probabilities already: exp in float64, not a float32 softmax, whose sum over
    # ~50k equal tail terms drifts by ~1e-4
    ranked._raw_probs = torch.exp(logits.double()).float()
    return KnownDistribution(topk, tuple(ids), ranked, vocab_size is not None)


def inside_top_k(settings: SamplingSettings, probs: list[float], rest: float) -> bool:
    """Whether the rules' kept set surely lies inside the known tokens (`probs`, best first)."""
    k = len(probs)
    if rest <= 0 or settings.greedy or (settings.top_k and settings.top_k <= k):
        return True
    a = 1.0 / settings.temperature if settings.order == "transformers" else 1.0  # what the cuts see
    if settings.min_p > 0 and (probs[-1] / probs[0]) ** a < settings.min_p:
        return True  # every unknown token is below the K-th known one, which min-p removes
    if settings.top_p < 1 and a >= 1:
        known = math.fsum(p ** a for p in probs)
        tail = rest * probs[-1] ** (a - 1)  # the most the unknown tokens can weigh once scaled
        return tail / (known + tail) <= 1 - settings.top_p
    return False


def entropy_bounds(probs: list[float], rest: float, vocab_size: int | None) -> tuple[float, float | None]:
    """(at least, at most) the model's entropy in bits; at most is None when V is unknown."""
    known = -math.fsum(p * math.log2(p) for p in probs if p > 0)
    if rest <= 0:
        return known, known
    low_p = probs[-1]
    full, part = divmod(rest, low_p)
    low = known + full * (-low_p * math.log2(low_p)) + (-part * math.log2(part) if part > 0 else 0.0)
    if vocab_size is None or vocab_size <= len(probs):
        return low, None
    each = rest / (vocab_size - len(probs))
    return low, known - rest * math.log2(each)


# ---------------------------------------------------------------------------------------------
# One position


def topk_after(state: EngineState, ids: list[int], text: str | None = None) -> TopK:
    """The engine's top-K after `ids` (cached by sequence); sent as ids where the engine takes them,
    else as `text`."""
    key = tuple(ids)
    cached = state.cache.get(key)
    if cached is not None:
        return cached
    prompt = list(ids) if state.spec.engine.token_prompts or text is None else text
    topk = next_token_topk(state.client, prompt, state.k)
    state.cache.put(key, topk)
    return topk


def distribution_after(state: EngineState, ids: list[int], text: str | None = None) -> KnownDistribution:
    return known_distribution(topk_after(state, ids, text), state.vocab_size)


@dataclass(frozen=True)
class RecordSource:
    """What `generation.step_record` reads of a model: its tokenizer and end-of-sequence ids."""

    tokenizer: KnownTokens
    eos_token_ids: tuple[int, ...]


def owner(state: EngineState, known: KnownDistribution) -> RecordSource:
    return RecordSource(KnownTokens(known.topk, state.tokenizer), state.eos_token_ids)


def draw(known: KnownDistribution, settings: SamplingSettings, seed: int, position: int) -> tuple[FilterResult, int]:
    """The rules on the completed distribution and our draw at `position` (among the kept known
    tokens when the kept set reaches into the unknown tail)."""
    result = filter_logits(known.ranked, settings)
    generator = generation.step_generator(seed, position)
    ids = torch.tensor(known.ids)
    kept = result.probs[ids]
    if result.settings.greedy or float(kept.sum()) >= float(result.kept_probs.sum()) - 1e-6:
        return result, sample_token(result, generator)  # all kept tokens are known: as in-process
    if float(kept.sum()) <= 0:
        return result, known.ids[0]
    return result, int(ids[torch.multinomial(kept, 1, generator=generator)])


def step(state: EngineState, known: KnownDistribution, settings: SamplingSettings, token_id: int, index: int,
         chosen: str) -> generation.StepRecord:
    top = min(generation.TOP_ALTERNATIVES, known.k)
    result = filter_logits(known.ranked, settings)
    if int(token_id) not in known.ids:
        raise PlaygroundError(f"Token {token_id} is not among the engine's top {known.k}: its probability is unknown.")
    return generation.step_record(owner(state, known), known.ranked, result, token_id, index, chosen, top)


def generated_text(records) -> str:
    return "".join(r.text for r in records if not r.is_eos)


# ---------------------------------------------------------------------------------------------
# A view of a session on an engine model (what `lab.view` returns for one)


@dataclass(frozen=True)
class EngineView:
    """Like `lab.LabView`, plus what is exact: `exact`, `label`, `number_rows`, `max_bars` (K)."""

    session: object  # a lab.LabSession
    known: KnownDistribution
    result: FilterResult
    tokenizer: KnownTokens
    eos_token_ids: tuple[int, ...]
    exact: bool

    @property
    def ranked(self) -> RankedLogits:
        return self.known.ranked

    @property
    def max_bars(self) -> int:
        return self.known.k

    @property
    def label(self) -> str:
        return (EXACT if self.exact else APPROXIMATE).format(k=self.known.k)

    @property
    def eos_probs(self) -> tuple[float, float]:
        eos = [e for e in self.eos_token_ids if e in self.known.ids]
        return (float(self.ranked.raw_probs[eos].sum()) if eos else 0.0, sum(self.result.prob_of(e) for e in eos))

    def why_prompts(self) -> tuple[str | None, ...]:
        """No "why?" links: attribution needs the model's gradients, which an engine does not give."""
        return ()

    @property
    def start_labels(self) -> tuple[str, ...]:
        """The start tokens read before a plain prompt, as chips' text (known through the entry's
        tokenizer; none without one)."""
        tokenizer = self.tokenizer.tokenizer
        if self.session.chat_template or tokenizer is None:
            return ()
        from playground.token_text import token_bytes

        special = set(getattr(tokenizer, "all_special_ids", ()))
        labels = []
        for token_id in self.session.prompt_ids:
            if token_id not in special:
                break
            labels.append(display_text(token_bytes(tokenizer, token_id)))
        return tuple(labels)

    @property
    def shown_prompt(self) -> str:
        """The prompt as the engine sees it (with a chat template, through the entry's tokenizer)."""
        if not self.session.chat_template or self.tokenizer.tokenizer is None:
            return self.session.prompt
        from playground.token_text import token_bytes

        return display_text(b"".join(token_bytes(self.tokenizer.tokenizer, i) for i in self.session.prompt_ids))

    def details(self) -> dict:
        """The details JSON's engine part; the in-process entropies replaced by what is known."""
        return {"engine": True, "exact": self.exact, "label": self.label, "known_tokens": self.known.k,
                "rest_mass": self.known.rest_mass, "numbers": dict(self.number_rows()),
                "raw_entropy_bits": None, "entropy_bits": self.result.entropy_bits if self.exact else None,
                "kept_count": self.result.kept_count if self.exact else None}

    def top_tokens(self, n: int) -> list[dict]:
        return generation.token_rows(self.ranked, self.result, self.tokenizer, min(int(n), self.known.k))

    def known_only(self, table):
        """An `exports.Table` of this view cut to the known tokens (the rest's are not known), with
        what is exact in its meta."""
        known = set(self.known.ids)
        return replace(table, rows=[row for row in table.rows if row["id"] in known],
                       meta={**table.meta, **self.details()})

    def number_rows(self) -> list[tuple[str, str]]:
        """The numbers panel: exact values, bounds, or "unknown", each said as such."""
        known, result = self.known, self.result
        low, high = entropy_bounds(known.probs, known.rest_mass, known.ranked.vocab_size
                                   if known.vocab_size_known else None)
        entropy = (f"{low:.2f} bits" if high is not None and abs(high - low) < 5e-3 else
                   f"between {low:.2f} and {high:.2f} bits" if high is not None else f"at least {low:.2f} bits")
        known_kept = sum(1 for i in known.ids if result.prob_of(i) > 0)
        eos_raw, eos_processed = self.eos_probs
        if not self.eos_token_ids:
            eos = "unknown (the entry names no tokenizer)"
        elif any(e in known.ids for e in self.eos_token_ids):
            eos = f"{eos_raw:.3g}" + (f" (after rules {eos_processed:.3g})" if self.exact else " (after rules: approximate)")
        else:
            eos = f"below {known.probs[-1]:.3g} (not in the top {known.k})"
        rows = [
            ("distribution", f"the engine's top {known.k} + the rest ({known.rest_mass:.3g})"),
            ("rules", self.label),
            ("entropy of the model’s distribution", entropy),
            ("entropy after the rules", f"{result.entropy_bits:.2f} bits" if self.exact
             else "unknown (only the top K are known)"),
            ("tokens kept", f"{result.kept_count:,} of {result.vocab_size:,}" if self.exact
             else f"{known_kept} of the top {known.k}, and perhaps some of the rest (unknown)"),
            ("P(end of sequence) next", eos),
        ]
        return rows


def engine_view(state: EngineState, session, settings: SamplingSettings, known: KnownDistribution) -> EngineView:
    result = filter_logits(known.ranked, settings)
    return EngineView(session, known, result, KnownTokens(known.topk, state.tokenizer), state.eos_token_ids,
                      inside_top_k(settings, known.probs, known.rest_mass))


# ---------------------------------------------------------------------------------------------
# The lab's operations on a session (`backends.EngineBackend`)


def open_ids(state: EngineState, text: str, chat_template: bool, max_prompt_tokens: int):
    """(text, ids, note): the prompt's ids (cut from the left to `max_prompt_tokens`), the engine's
    top-K after them asked once (a down engine says so now)."""
    ids, note = fit_ids(prompt_ids(state, text, chat_template), max_prompt_tokens)
    topk_after(state, ids)
    return text, tuple(ids), note


def _after(state: EngineState, session) -> KnownDistribution:
    text = session.prompt + generated_text(session.records)  # only for engines without id prompts
    return distribution_after(state, session.ids, text)


def session_view(state: EngineState, session, settings: SamplingSettings, known=None) -> EngineView:
    """The session's view; `known`: the distribution after its text when the caller has it."""
    return engine_view(state, session, settings, known if isinstance(known, KnownDistribution) else _after(state, session))


def session_steps(state: EngineState, session, settings: SamplingSettings, n: int, seed: int, stop_strings=(),
                  forced: int | None = None):
    """Up to `n` steps: the distribution from the engine, our rules and draw, the record kept, then
    the distribution after it (if that request fails, the step is undone); yields (record, after)."""
    stops = [s for s in stop_strings if s]
    for number in range(n):
        known = _after(state, session)
        index = len(session.records)
        if forced is None:
            _result, token = draw(known, settings, seed, index)
            chosen = "greedy" if settings.greedy else "sampled"
        else:
            token, chosen = forced, "forced"
        record = step(state, known, settings, token, index, chosen)
        text = generated_text([*session.records, record]) if stops else ""
        stop = generation.stop_reason(record, text, stops, number, n, False)
        if forced is not None:
            stop = "eos" if record.is_eos else None
        elif stop == "max_tokens" and n == 1:
            stop = None  # one step always "reaches" its budget: not news here
        record = replace(record, stop=stop) if stop else record
        session.records.append(record)
        try:
            after = _after(state, session)
        except BaseException:
            session.records.pop()
            raise
        session.stop_note = generation.stop_note(stop, record) if stop else None
        yield record, after
        if stop is not None:
            return
