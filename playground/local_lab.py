"""The sampling lab's operations on a model loaded in this process (`backends.InProcessBackend`).

The distribution after a session's ids comes from `decoding.ranked_after` (a byte-bounded LRU shared by
all sessions); a KV-cached `generation.Decoder` is lent to the session for one request from a
bounded pool per model (`LAB_DECODERS`, an LRU on the model's runtime, keyed by the session's key).
Between requests it waits in the pool; when the pool reclaims it, the session's next request
rebuilds it from the ids (one forward over the sequence) with the same results: the draws depend
only on (seed, position) and the distribution there. A failed step (time limit, out of memory, an
injected fault) leaves the session as its user last saw it.
`LabView` is an in-process session's view. What it leaves out: the session and the operations' entry points (`playground.lab`), engine
models (`playground.engines.lab`), the rules (`playground.sampling`), the loops (`playground.generation`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from playground import decoding, generation, memory_budget, prompts, settings, start_tokens
from playground.generation import stop_note
from playground.limits import ATTRIBUTION_TOKENS
from playground.lru import BoundedLRU
from playground.models import LoadedModel, load_model
from playground.sampling import FilterResult, RankedLogits, SamplingSettings, filter_logits
from playground.token_text import display_text, token_bytes

LAB_DECODERS = settings.current().lab_decoders  # per model


@dataclass(frozen=True)
class LabView:
    """What a view of the session needs: the distribution after its text, cut by the rules."""

    session: object  # a lab.LabSession
    ranked: RankedLogits
    result: FilterResult
    tokenizer: object
    eos_token_ids: tuple[int, ...]

    @property
    def eos_probs(self) -> tuple[float, float]:
        """P(an end-of-sequence token next): (the model's, after the rules)."""
        eos = [e for e in self.eos_token_ids if e < self.result.vocab_size]
        raw = float(self.ranked.raw_probs[eos].sum()) if eos else 0.0
        return raw, sum(self.result.prob_of(e) for e in eos)

    @property
    def start_labels(self) -> tuple[str, ...]:
        """The start tokens read before a plain prompt (`playground.start_tokens`), as chips' text."""
        if self.session.chat_template or self.tokenizer is None:
            return ()
        special = set(getattr(self.tokenizer, "all_special_ids", ()))
        labels = []
        for token_id in self.session.prompt_ids:
            if token_id not in special:
                break
            labels.append(display_text(token_bytes(self.tokenizer, token_id)))
        return tuple(labels)

    @property
    def shown_prompt(self) -> str:
        """The prompt as the model sees it (with a chat template, more than the user typed)."""
        if not self.session.chat_template:
            return self.session.prompt
        return display_text(b"".join(token_bytes(self.tokenizer, i) for i in self.session.prompt_ids))

    @property
    def max_bars(self) -> int | None:
        """The most bars the view has numbers for (None: the whole vocabulary)."""
        return None

    def why_prompts(self) -> tuple[str | None, ...]:
        """For each generated token, the text "Why this token?" attributes it after: the prompt and
        the tokens before it, decoded. None where that text would be read as other tokens than the
        ones generated (attribution reads a text), or is longer than attribution reads."""
        tokenizer, ids = self.tokenizer, self.session.ids
        if tokenizer is None or not self.session.records:
            return ()
        start = start_tokens.start_ids(tokenizer)
        skip = len(start) if list(self.session.prompt_ids[: len(start)]) == start else 0
        first = len(self.session.prompt_ids)
        prompts_ = []
        for end in range(first, first + len(self.session.records)):
            text = tokenizer.decode(ids[skip:end], skip_special_tokens=False) if end <= ATTRIBUTION_TOKENS else ""
            prompts_.append(text if start_tokens.reads_as(tokenizer, text, ids[:end]) else None)
        return tuple(prompts_)

    def top_tokens(self, n: int) -> list[dict]:
        return generation.token_rows(self.ranked, self.result, self.tokenizer, n)

    def number_rows(self) -> list[tuple[str, str]]:
        """The numbers panel, every value exact."""
        result = self.result
        eos_raw, eos_processed = self.eos_probs
        return [
            ("entropy of the model’s distribution", f"{result.raw_entropy_bits:.2f} bits"),
            ("entropy after the rules", f"{result.entropy_bits:.2f} bits"),
            ("tokens kept", f"{result.kept_count:,} of {result.vocab_size:,}"),
            ("P(end of sequence) next", f"{eos_raw:.3g} (after rules {eos_processed:.3g})"),
        ]

    def details(self) -> dict:
        """What the details JSON adds to the common part (nothing: every number is exact)."""
        return {}

    def known_only(self, table):
        """The export table as it is (every token's numbers are known)."""
        return table




def open_ids(model_id: str, prompt, chat_template: bool, max_prompt_tokens: int):
    """(text, ids, note) of `prompt` cut from the left to `max_prompt_tokens`, its distribution computed."""
    loaded = load_model(model_id)
    fitted = prompts.fit_prompt(loaded, prompt, chat_template, max_prompt_tokens)
    decoding.next_token_distribution(model_id, fitted.text, chat_template)
    return fitted.text, tuple(fitted.ids), fitted.note


def view(session, settings: SamplingSettings, ranked: RankedLogits | None = None) -> LabView:
    loaded = load_model(session.model_id)
    ranked = decoding.ranked_after(loaded, session.ids) if ranked is None else ranked
    return LabView(session, ranked, filter_logits(ranked, settings), loaded.tokenizer, loaded.eos_token_ids)


# ---------------------------------------------------------------------------------------------
# Decoders lent from a bounded pool


def _pool(loaded: LoadedModel) -> BoundedLRU:
    return loaded.runtime.part("lab-decoders", lambda: BoundedLRU(
        LAB_DECODERS, on_evict=lambda _key, decoder: decoder.close()))


def pooled_decoders(loaded: LoadedModel) -> int:
    """How many decoders wait in the model's pool (tests, benchmarks)."""
    pool = loaded.runtime.peek("lab-decoders")
    return 0 if pool is None else len(pool)


def _fitted(decoder: generation.Decoder | None, loaded: LoadedModel, session) -> generation.Decoder:
    """`decoder` brought to the session's ids (pushed forward, or rewound for an undo), or a new one."""
    ids, prompt_length = session.ids, len(session.prompt_ids)
    if decoder is not None and decoder.prompt_length == prompt_length and len(decoder.ids) >= prompt_length:
        have = decoder.ids
        if have == ids[: len(have)]:
            for token in ids[len(have):]:
                decoder.push(token)
            return decoder
        if ids == have[: len(ids)]:
            decoder.rewind(len(ids))
            return decoder
    if decoder is not None:
        decoder.close()
    return generation.Decoder(loaded, ids, prompt_length=prompt_length)


@contextmanager
def _lent_decoder(session) -> Iterator[generation.Decoder]:
    """The session's decoder for one request; back in the pool afterwards (even after a failure:
    the next request fits it to the ids again)."""
    loaded = load_model(session.model_id)
    pool = _pool(loaded)
    decoder = _fitted(pool.pop(session.key), loaded, session)
    try:
        yield decoder
    finally:
        pool.put(session.key, decoder)


def _record(session, record: generation.StepRecord, decoder: generation.Decoder) -> RankedLogits:
    """Keep a step and compute the distribution after it (shared with the cache: one forward); if
    that fails the step is undone."""
    ranked_ids = decoder.ids
    try:
        ranked = decoding.remember(decoder.loaded, decoder.ids, decoder.ranked)
    except BaseException:
        decoder.rewind(len(ranked_ids) - 1)  # the token is still pending: dropping it is free
        raise
    session.records.append(record)
    session.stop_note = stop_note(record.stop, record) if record.stop else None
    return ranked


# ---------------------------------------------------------------------------------------------
# Operations (the caller holds the session's lock)


def next_token(session, settings: SamplingSettings, seed: int) -> generation.StepRecord | None:
    with _lent_decoder(session) as decoder:
        for record in generation.iter_generation(decoder, settings, 1, seed):
            if record.stop == "max_tokens":  # one step always "reaches" its budget: not news here
                record = replace(record, stop=None)
            _record(session, record, decoder)
            return record
        session.stop_note = stop_note("context")
        return None


def append_token(session, settings: SamplingSettings, token_id: int) -> generation.StepRecord:
    with _lent_decoder(session) as decoder:
        record = generation.forced_step(decoder, settings, token_id)
        _record(session, record, decoder)
        return record


def generate(session, settings: SamplingSettings, n: int, seed: int,
             stop_strings: Sequence[str] = ()) -> Iterator[tuple[generation.StepRecord, RankedLogits]]:
    with _lent_decoder(session) as decoder:
        got_any = False
        for record in generation.iter_generation(decoder, settings, n, seed, stop_strings):
            got_any = True
            yield record, _record(session, record, decoder)
        if not got_any:
            session.stop_note = stop_note("context")


def samples(session, settings: SamplingSettings, k: int, length: int, seed: int,
            stop_strings: Sequence[str] = ()) -> Iterator[generation.SamplesResult]:
    """K samples, K sized by what the memory budget has left (`SamplesResult.requested` says so)."""
    loaded = load_model(session.model_id)
    with memory_budget.reserved_samples(k, generation.sample_bytes(loaded, len(session.ids) + length)) as fits:
        for result in generation.iter_samples(loaded, session.ids, settings, fits, length, seed, stop_strings):
            yield replace(result, requested=k) if fits < k else result
