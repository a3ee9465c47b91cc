"""Token-by-token generation on `decoding.Stepper`, recording the distribution at every step.

- `step_record(loaded, ranked, settings, token_id, ...)` describes one step: the chosen token, its
  processed and raw probability, its rank under the raw distribution, the top alternatives, the
  end-of-sequence probability, the kept count and both entropies.
- `iter_generation(decoder, ...)` is the streaming API: it yields one `StepRecord` per new token,
  sampling with a `torch.Generator` seeded from (seed, position): the same seed and settings give
  the same tokens. The record that ends the run carries its `stop` reason: `eos` (the model chose an end-of-sequence token, sampled or greedy),
  `max_tokens`, `stop_string` (the generated text now contains one), or `context` (the model's
  context length is reached). `generate(...)` collects it into a `GenerationResult`.
- `iter_samples(...)` draws K continuations of one prompt in one batched forward per step (the
  prompt is encoded once and its KV cache shared), each with its records.
- `stop_reason(...)` is the one stop rule of every loop here (and of the side-by-side columns).
- `sequence_logprob` / `perplexity` score records under the model (raw) or sampling distribution.
- `Decoder` is one growing sequence (a `Stepper` that feeds chosen tokens lazily) with `rewind`
  for the UI's undo; `forced_step` appends a token the user picked. `Decoder.ranked` is the
  distribution after its last token, ranked once and shared by the step that samples from it and
  the view that shows it.

What it leaves out: the rules themselves (`playground.sampling`), beam search, batching different
prompts, sessions and their decoders (`playground.lab`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from playground import batching
from playground.decoding import Stepper
from playground.model_call import forward
from playground.errors import PlaygroundError
from playground.models import LoadedModel
from playground.sampling import FilterResult, RankedLogits, SamplingSettings, filter_logits, sample_token
from playground.token_text import display_text, token_bytes, visible_whitespace

StopReason = Literal["eos", "max_tokens", "stop_string", "context"]
STOP_REASONS: dict[str, str] = {
    "eos": "the model chose its end-of-sequence token",
    "max_tokens": "the maximum number of new tokens was reached",
    "stop_string": "the text reached a stop string",
    "context": "the model's context length was reached",
}
TOP_ALTERNATIVES = 5
MAX_NEW_TOKENS_LIMIT = 2048


def stop_note(reason: str, record: "StepRecord | None" = None) -> str:
    """The sampling lab's note for a stop reason: "Stopped: <the reason in words>.". An end of
    sequence also says how probable it was (`record`, the step that chose it): the lecture's point
    is that the model itself chooses to stop."""
    note = STOP_REASONS[reason]
    if reason == "eos" and record is not None:
        note += f" (probability {_percent(record.raw_prob)} under the model, {_percent(record.prob)} after the rules)"
    return f"Stopped: {note}."


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%" if value >= 0.001 else f"{value:.1e}"


MAX_SAMPLES = 64


@dataclass(frozen=True)
class Alternative:
    id: int
    text: str  # display text (partial UTF-8 as <0xNN>)
    raw_prob: float
    prob: float  # processed

    @property
    def label(self) -> str:
        return visible_whitespace(self.text)


@dataclass(frozen=True)
class StepRecord:
    index: int  # 0 for the first generated token
    id: int
    text: str
    raw_prob: float  # under the model's distribution
    prob: float  # under the processed (sampling) distribution
    rank: int  # 1 = the model's most probable token
    eos_raw_prob: float
    eos_prob: float
    kept_count: int
    raw_entropy_bits: float
    entropy_bits: float
    alternatives: tuple[Alternative, ...]
    chosen: Literal["sampled", "greedy", "forced"] = "sampled"
    stop: StopReason | None = None  # set on the record that ends a run
    is_eos: bool = False

    @property
    def label(self) -> str:
        return visible_whitespace(self.text)

    def as_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "prob": self.prob, "raw_prob": self.raw_prob,
                "rank": self.rank, "eos_prob": self.eos_prob, "eos_raw_prob": self.eos_raw_prob,
                "kept": self.kept_count, "chosen": self.chosen,
                "alternatives": [{"id": a.id, "text": a.text, "raw_prob": a.raw_prob, "prob": a.prob}
                                 for a in self.alternatives]}


@dataclass
class GenerationResult:
    prompt_ids: list[int]
    records: list[StepRecord]
    stop_reason: StopReason | None  # None: still running (a partial result of `iter_samples`)
    settings: SamplingSettings
    seed: int | None
    text: str = ""
    token_ids: list[int] = field(default_factory=list)

    @property
    def logprob(self) -> float:
        return sequence_logprob(self.records)

    @property
    def perplexity(self) -> float:
        return perplexity(self.records)


def sequence_logprob(records: Sequence[StepRecord], processed: bool = False) -> float:
    """Sum of natural-log probabilities of the generated tokens (model's, or the sampling one's)."""
    total = 0.0
    for record in records:
        p = record.prob if processed else record.raw_prob
        total += math.log(p) if p > 0 else -math.inf
    return total


def perplexity(records: Sequence[StepRecord], processed: bool = False) -> float:
    """exp(-mean log-prob) of the generated tokens; nan for none."""
    if not records:
        return math.nan
    return math.exp(-sequence_logprob(records, processed) / len(records))


def generated_text(tokenizer, token_ids: Sequence[int], eos_ids: Sequence[int] = ()) -> str:
    """The text of the generated tokens (end-of-sequence tokens left out); bytes joined, then decoded."""
    data = b"".join(token_bytes(tokenizer, t) for t in token_ids if t not in eos_ids)
    return display_text(data)


def token_rows(ranked: RankedLogits, result: FilterResult, tokenizer, n: int) -> list[dict]:
    """The `n` most probable tokens as JSON rows (`id`, `text`, `raw_prob`, `prob`, `kept`): the one
    shape the lab's details, its API and the `next-token` command share."""
    _, ids = ranked.top(n)
    probs, kept = result.probs, result.kept
    return [{"id": int(i), "text": display_text(token_bytes(tokenizer, int(i))),
             "raw_prob": float(ranked.raw_probs[i]), "prob": float(probs[i]), "kept": bool(kept[i])}
            for i in ids[:n]]


def step_record(loaded: LoadedModel, ranked: RankedLogits, result: FilterResult, token_id: int, index: int,
                chosen: str = "sampled", top_alternatives: int = TOP_ALTERNATIVES) -> StepRecord:
    """Describe one generation step: the chosen token against the whole distribution."""
    tokenizer = loaded.tokenizer
    raw = ranked.raw_probs
    token_id = int(token_id)
    rank = int((ranked.logits > ranked.logits[token_id]).sum()) + 1
    eos = [e for e in loaded.eos_token_ids if e < ranked.vocab_size]
    _, top_ids = ranked.top(top_alternatives)
    alternatives = tuple(
        Alternative(int(i), display_text(token_bytes(tokenizer, int(i))), float(raw[i]), result.prob_of(int(i)))
        for i in top_ids[:top_alternatives]
    )
    return StepRecord(
        index=index, id=token_id, text=display_text(token_bytes(tokenizer, token_id)),
        raw_prob=float(raw[token_id]), prob=result.prob_of(token_id), rank=rank,
        eos_raw_prob=float(raw[eos].sum()) if eos else 0.0,
        eos_prob=sum(result.prob_of(e) for e in eos),
        kept_count=result.kept_count, raw_entropy_bits=result.raw_entropy_bits,
        entropy_bits=result.entropy_bits, alternatives=alternatives, chosen=chosen,
        is_eos=token_id in loaded.eos_token_ids,
    )


def _check_run(max_new_tokens: int, settings: SamplingSettings) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise PlaygroundError("max new tokens must be a whole number.")
    if not isinstance(settings, SamplingSettings):
        raise PlaygroundError("settings must be a SamplingSettings.")
    if int(max_new_tokens) != max_new_tokens or not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise PlaygroundError(f"max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}.")


def step_generator(seed: int, position: int) -> torch.Generator:
    """The random stream for one step: a function of (seed, position in the generated text) only.

    So the token at a position depends on the seed, the rules and the distribution there, not on
    how the text got there: undo then "next token" draws the same token again, token-by-token
    clicks equal one "generate N" run, and the CLI matches the UI.
    """
    if int(seed) < 0:
        raise PlaygroundError("The seed must be >= 0.")
    mixed = (int(seed) * 0x9E3779B97F4A7C15 + int(position) * 0xBF58476D1CE4E5B9 + 1) % (1 << 63)
    return torch.Generator().manual_seed(mixed)


def choose_token(ranked: RankedLogits, settings: SamplingSettings, seed: int, position: int
                 ) -> tuple[FilterResult, int]:
    """The rules applied to `ranked`, and the token drawn at `position` with `seed`."""
    result = filter_logits(ranked, settings)
    return result, sample_token(result, step_generator(seed, position))


def stop_reason(record: StepRecord, text: str, stops: Sequence[str], step: int, max_new_tokens: int,
                at_context_limit: bool) -> StopReason | None:
    """Why a run ends after `record` (None: it goes on), in this order of precedence: the
    end-of-sequence token, a stop string in the `text` generated so far, the token budget, the
    model's context length."""
    if record.is_eos:
        return "eos"
    if any(s in text for s in stops if s):
        return "stop_string"
    if step == max_new_tokens - 1:
        return "max_tokens"
    if at_context_limit:
        return "context"
    return None


class Decoder:
    """One growing sequence: a KV-cached `Stepper` plus tokens not yet fed to the model.

    A chosen token is only fed when the logits after it are needed, so a run of N tokens costs
    N forward passes (prompt included), like `model.generate`.
    """

    def __init__(self, loaded: LoadedModel, input_ids: Sequence[int], prompt_length: int | None = None):
        """`prompt_length`: how many of `input_ids` are the prompt (default all); the rest count as
        generated (a sequence rebuilt from its ids: positions, and so the seeded draws, stay)."""
        ids = list(input_ids)
        self.prompt_length = len(ids) if prompt_length is None else min(int(prompt_length), len(ids))
        if self.prompt_length >= loaded.context_length or len(ids) > loaded.context_length:
            raise PlaygroundError(f"The prompt fills the model's context length ({loaded.context_length} tokens).")
        self.loaded = loaded
        self.stepper = Stepper(loaded, ids)
        self.pending: list[int] = []
        self._ranked: RankedLogits | None = None  # of the logits after the last fed token

    @property
    def ids(self) -> list[int]:
        return self.stepper.ids + self.pending

    @property
    def generated_ids(self) -> list[int]:
        return self.ids[self.prompt_length:]

    @property
    def at_context_limit(self) -> bool:
        return len(self.ids) >= self.loaded.context_length

    @property
    def logits(self) -> torch.Tensor:
        """Logits after the last token (feeds pending tokens first)."""
        while self.pending:
            self.stepper.append(self.pending[0])  # dropped from `pending` only once it is fed
            self.pending.pop(0)
            self._ranked = None
        return self.stepper.logits

    @property
    def ranked(self) -> RankedLogits:
        """The distribution after the last token, ranked once (feeds pending tokens first)."""
        logits = self.logits
        if self._ranked is None or self._ranked.logits is not logits:
            self._ranked = RankedLogits(logits)
        return self._ranked

    def close(self) -> None:
        """Hand a borrowed static decoder back (`decoding.Stepper.close`)."""
        self.stepper.close()

    def push(self, token_id: int) -> None:
        if self.at_context_limit:
            raise PlaygroundError(f"The sequence reached the model's context length ({self.loaded.context_length}).")
        self.pending.append(int(token_id))

    def rewind(self, length: int) -> None:
        """Cut the sequence back to its first `length` ids (never into the prompt): the UI's undo.

        Pending tokens are dropped for free; otherwise the KV cache is cropped and the last kept
        token fed again (one single-token forward). Where a cache cannot be cropped (a full sliding
        window) the sequence is encoded again.
        """
        length = int(length)
        if not self.prompt_length <= length <= len(self.ids):
            raise PlaygroundError("Nothing to undo: only the prompt is left.")
        fed = len(self.stepper.ids)
        if length >= fed:
            self.pending = self.pending[: length - fed]
            return
        self.pending = []
        keep = self.stepper.ids[:length]
        cache = self.stepper.cache
        try:
            if length < 2:
                raise ValueError("re-encode")
            cache.crop(-(cache.get_seq_length() - (length - 1)))
            if cache.get_seq_length() != length - 1:
                raise ValueError("crop did not reach the length")
            self.stepper.ids = keep[:-1]
            self.stepper.append(keep[-1])
        except (ValueError, RuntimeError, AttributeError):
            self.stepper = Stepper(self.loaded, keep)


def iter_generation(decoder: Decoder, settings: SamplingSettings, max_new_tokens: int,
                    seed: int, stop_strings: Sequence[str] = (),
                    top_alternatives: int = TOP_ALTERNATIVES) -> Iterator[StepRecord]:
    """Sample up to `max_new_tokens` tokens onto `decoder`, yielding one record per token.

    The record that ends the run carries the stop reason; when the context is already full no
    record is yielded (`generate` reports "context"). Stop strings are matched against all the
    text generated on this decoder so far, so a stop string may span runs.
    """
    _check_run(max_new_tokens, settings)
    loaded = decoder.loaded
    stops = [s for s in stop_strings if s]
    start_index = len(decoder.generated_ids)
    for step in range(max_new_tokens):
        if decoder.at_context_limit:
            return
        ranked = decoder.ranked
        result, token_id = choose_token(ranked, settings, seed, start_index + step)
        record = step_record(loaded, ranked, result, token_id, start_index + step,
                             "greedy" if settings.greedy else "sampled", top_alternatives)
        decoder.push(token_id)
        text = generated_text(loaded.tokenizer, decoder.generated_ids, loaded.eos_token_ids) if stops else ""
        stop = stop_reason(record, text, stops, step, max_new_tokens, decoder.at_context_limit)
        yield replace(record, stop=stop) if stop else record
        if stop is not None:
            return


def forced_step(decoder: Decoder, settings: SamplingSettings, token_id: int,
                top_alternatives: int = TOP_ALTERNATIVES) -> StepRecord:
    """Append a token the user picked (a clicked bar), recording how likely the rules made it."""
    if not 0 <= int(token_id) < decoder.loaded.vocab_size:
        raise PlaygroundError(f"Token id {token_id} is outside the vocabulary (0..{decoder.loaded.vocab_size - 1}).")
    if decoder.at_context_limit:
        raise PlaygroundError(f"The sequence reached the model's context length ({decoder.loaded.context_length}).")
    ranked = decoder.ranked
    result = filter_logits(ranked, settings)
    record = step_record(decoder.loaded, ranked, result, int(token_id), len(decoder.generated_ids), "forced",
                         top_alternatives)
    decoder.push(int(token_id))
    return replace(record, stop="eos") if record.is_eos else record


def generate(loaded: LoadedModel, prompt_ids: Sequence[int], settings: SamplingSettings, max_new_tokens: int,
             seed: int = 0, stop_strings: Sequence[str] = (),
             on_step: Callable[[StepRecord], None] | None = None) -> GenerationResult:
    """Generate one continuation of `prompt_ids` and return all its step records."""
    _check_run(max_new_tokens, settings)
    decoder = Decoder(loaded, prompt_ids)
    records: list[StepRecord] = []
    for record in iter_generation(decoder, settings, max_new_tokens, seed, stop_strings):
        records.append(record)
        if on_step is not None:
            on_step(record)
    stop = records[-1].stop if records and records[-1].stop else "context"
    return result_from_records(loaded, prompt_ids, records, stop, settings, seed)


def result_from_records(loaded: LoadedModel, prompt_ids: Sequence[int], records: list[StepRecord],
                        stop: StopReason | None, settings: SamplingSettings, seed: int | None) -> GenerationResult:
    ids = [r.id for r in records]
    return GenerationResult(list(prompt_ids), list(records), stop, settings, seed,
                            generated_text(loaded.tokenizer, ids, loaded.eos_token_ids), ids)


# ---------------------------------------------------------------------------------------------
# K samples, batched


@dataclass
class SamplesResult:
    prompt_ids: list[int]
    samples: list[GenerationResult]
    first_ranked: RankedLogits  # the distribution every first token was drawn from
    first_distribution: FilterResult
    steps_done: int
    finished: bool
    requested: int | None = None  # K asked for, where the memory budget had room for fewer

    @property
    def budget_note(self) -> str:
        if self.requested is None or self.requested <= len(self.samples):
            return ""
        return (f"{len(self.samples)} samples, not the {self.requested} asked for: the server's memory budget "
                f"has room for {len(self.samples)} now.")

    @property
    def first_token_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for sample in self.samples:
            if sample.token_ids:
                counts[sample.token_ids[0]] = counts.get(sample.token_ids[0], 0) + 1
        return counts


CACHE_GROWTH = 2.5  # measured: RSS per sample / its KV cache bytes, SmolLM2 and Gemma 3 (1,000-token prompts)


def sample_bytes(loaded: LoadedModel, positions: int) -> int:
    """About what one more sample of `positions` tokens adds to RSS while K samples run: its rows of
    the KV cache (a sliding-window layer keeps at most its window) times `CACHE_GROWTH` (the cache
    grows by a copy every step, and the allocator keeps the freed blocks), its logits and
    probabilities over the vocabulary, and its records."""
    config = getattr(loaded.model.config, "text_config", None) or loaded.model.config
    layers = int(getattr(config, "num_hidden_layers", 1) or 1)
    heads = int(getattr(config, "num_key_value_heads", None) or getattr(config, "num_attention_heads", 1) or 1)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // max(1, config.num_attention_heads))
    itemsize = torch.finfo(loaded.dtype).bits // 8 if loaded.dtype.is_floating_point else 4
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    window = int(getattr(config, "sliding_window", None) or positions)
    kinds = list(getattr(config, "layer_types", None) or ["full_attention"] * layers)
    cached = sum(min(positions, window) if kind == "sliding_attention" else positions for kind in kinds)
    kv = 2 * heads * head_dim * itemsize * cached
    return int(CACHE_GROWTH * kv) + 3 * 4 * vocab + 2048 * positions


def iter_samples(loaded: LoadedModel, prompt_ids: Sequence[int], settings: SamplingSettings, k: int,
                 max_new_tokens: int, seed: int = 0, stop_strings: Sequence[str] = (),
                 top_alternatives: int = TOP_ALTERNATIVES) -> Iterator[SamplesResult]:
    """Draw `k` continuations step by step; yields the partial `SamplesResult` after every step.

    All samples share one prompt encoding (its KV cache repeated k times); each step is one
    forward over the unfinished rows; finished rows leave the batch. Sample i draws with seed
    `seed + i`, so it is the continuation `generate(..., seed=seed + i)` gives (up to the float
    rounding of a batched forward).
    """
    _check_run(max_new_tokens, settings)
    if int(k) != k or not 1 <= k <= MAX_SAMPLES:
        raise PlaygroundError(f"The number of samples must be between 1 and {MAX_SAMPLES}.")
    prompt = list(prompt_ids)
    if len(prompt) >= loaded.context_length:
        raise PlaygroundError(f"The prompt fills the model's context length ({loaded.context_length} tokens).")
    logits, cache = forward(loaded, torch.tensor([prompt]))
    logits = logits.cpu()
    first_ranked = RankedLogits(logits[0])
    first_distribution = filter_logits(first_ranked, settings)
    if k > 1:
        cache.batch_repeat_interleave(k)
    records: list[list[StepRecord]] = [[] for _ in range(k)]
    active = list(range(k))  # the sample in each batch row
    stops = [s for s in stop_strings if s]

    def snapshot(step: int, finished: bool) -> SamplesResult:
        # every sample has stopped once the run is finished; before that, one without a stop runs on
        samples = [result_from_records(loaded, prompt, rows, rows[-1].stop if rows and rows[-1].stop else None,
                                       settings, seed) for rows in records]
        return SamplesResult(prompt, samples, first_ranked, first_distribution, step + 1, finished)

    for step in range(max_new_tokens):
        next_ids, still = [], []
        for row, sample in enumerate(active):
            ranked = first_ranked if step == 0 else RankedLogits(logits[row])
            result = first_distribution if step == 0 else filter_logits(ranked, settings)
            token_id = sample_token(result, step_generator(seed + sample, step))
            record = step_record(loaded, ranked, result, token_id, step,
                                 "greedy" if settings.greedy else "sampled", top_alternatives)
            text = (generated_text(loaded.tokenizer, [r.id for r in records[sample]] + [token_id],
                                   loaded.eos_token_ids) if stops else "")
            stop = stop_reason(record, text, stops, step, max_new_tokens,
                               len(prompt) + step + 1 >= loaded.context_length)
            records[sample].append(replace(record, stop=stop) if stop else record)
            if stop is None:
                next_ids.append(token_id)
                still.append(row)
        if not still:
            yield snapshot(step, True)
            return
        yield snapshot(step, False)
        if len(still) < len(active):
            cache.batch_select_indices(torch.tensor(still))
            active = [active[row] for row in still]
        logits = batching.decode_step(loaded, cache, next_ids).cpu()  # with other sessions' steps
