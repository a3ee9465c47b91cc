"""The sampling lab's session: a prompt, the tokens generated after it, and what can be done next.

A `LabSession` holds only what defines it: the model, the prompt and its ids, the generated
tokens' records (their ids, probabilities and alternatives), the last stop note and a random key.
It never holds a KV cache, a decoder or a distribution between requests, so an idle session costs a
few kilobytes (the UI keeps it in `gr.State`):

- the distribution after the session's ids comes from `core.ranked_after`, a byte-bounded LRU shared
  by all sessions; re-filtering it never runs the model while it is cached, and a miss is one
  batched model call;
- a KV-cached `generation.Decoder` is lent to the session for one request from a bounded pool per
  model (`LAB_DECODERS`, an LRU on the model's runtime, keyed by the session's key). Between
  requests it waits in the pool; when the pool reclaims it, the session's next request rebuilds it
  from the ids (one forward over the sequence) with the same results: the draws depend only on
  (seed, position) and the distribution there.

Operations: `open_session`, `distribution`, `next_token`, `append_token`, `undo`, `clear`,
`generate` (streams each record with the distribution after it, so nothing is ranked or run
twice), `samples`. A session on an engine model (`engine`) runs the same operations through
`playground.engines.lab` (one request per token, our rules and draws; no K samples yet). A failed step (time limit, out of memory, an injected fault) leaves the session
as its user last saw it. What it leaves out: the rules (`playground.sampling`), the loops
(`playground.generation`), views (`playground.plots`, `playground.html`, `playground.ui`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from playground import core, generation, prompts, settings
from playground.engines import lab as engine_lab
from playground.errors import PlaygroundError
from playground.lru import BoundedLRU
from playground.models import LoadedModel, get_spec, load_model
from playground.sampling import FilterResult, RankedLogits, SamplingSettings, filter_logits
from playground.token_text import display_text, token_bytes

LAB_DECODERS = settings.current().lab_decoders  # per model
STOPPED_BY_USER = "Stopped: you pressed Stop."
ENGINE_NO_SAMPLES = ("K samples do not run on engine models yet: use Next token or Generate N "
                     "(one engine request per token).")


def stop_note(reason: str) -> str:
    return f"Stopped: {generation.STOP_REASONS[reason]}."


@dataclass
class LabSession:
    """One student's lab, as small as it can be (see the module docstring)."""

    model_id: str
    chat_template: bool
    prompt: str
    prompt_ids: tuple[int, ...]
    prompt_note: str | None = None  # e.g. the prompt was cut to fit the token budget
    records: list[generation.StepRecord] = field(default_factory=list)
    stop_note: str | None = None
    samples: object | None = None  # the UI's last samples run, kept only while it was stopped
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    engine: bool = False  # served by an inference engine (`playground.engines.lab`)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def ids(self) -> list[int]:
        return [*self.prompt_ids, *(r.id for r in self.records)]

    @property
    def loaded(self) -> LoadedModel:
        return load_model(self.model_id)


def open_session(model_id, prompt, chat_template: bool, max_prompt_tokens: int) -> LabSession:
    """A new session on `prompt` (cut from the left to `max_prompt_tokens`), its distribution computed."""
    if not model_id or not isinstance(model_id, str):
        raise PlaygroundError("Pick a model.")
    spec = get_spec(model_id)
    chat_template = bool(chat_template) and spec.role == "chat"
    if spec.source == "engine":
        state = engine_lab.engine_for(spec)
        text = prompts.surrogate_free("" if prompt is None else str(prompt))
        ids, note = engine_lab.fit_ids(engine_lab.prompt_ids(state, text, chat_template), max_prompt_tokens)
        engine_lab.topk_after(state, ids)
        return LabSession(model_id, chat_template, text, tuple(ids), prompt_note=note, engine=True)
    loaded = load_model(model_id)
    fitted = prompts.fit_prompt(loaded, prompt, chat_template, max_prompt_tokens)
    core.next_token_distribution(model_id, fitted.text, chat_template)
    return LabSession(model_id, chat_template, fitted.text, tuple(fitted.ids), prompt_note=fitted.note)


def distribution(session: LabSession) -> RankedLogits:
    """The distribution after the session's last token (cached; a miss is one model call)."""
    return core.ranked_after(session.loaded, session.ids)


@dataclass(frozen=True)
class LabView:
    """What a view of the session needs: the distribution after its text, cut by the rules."""

    session: LabSession
    ranked: RankedLogits
    result: FilterResult
    tokenizer: object
    eos_token_ids: tuple[int, ...]

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
    def eos_probs(self) -> tuple[float, float]:
        """P(an end-of-sequence token next): (the model's, after the rules)."""
        eos = [e for e in self.eos_token_ids if e < self.result.vocab_size]
        raw = float(self.ranked.raw_probs[eos].sum()) if eos else 0.0
        return raw, sum(self.result.prob_of(e) for e in eos)

    @property
    def shown_prompt(self) -> str:
        """The prompt as the model sees it (with a chat template, more than the user typed)."""
        if not self.session.chat_template:
            return self.session.prompt
        return display_text(b"".join(token_bytes(self.tokenizer, i) for i in self.session.prompt_ids))

    def top_tokens(self, n: int) -> list[dict]:
        return generation.token_rows(self.ranked, self.result, self.tokenizer, n)


def view(session: LabSession, settings: SamplingSettings, ranked: RankedLogits | None = None) -> LabView:
    """The session's distribution filtered by `settings` (a model call only on a cache miss);
    `ranked`: the distribution after the session's text when the caller has it (`generate` yields it).
    An engine session's view is an `engines.lab.EngineView` (what is exact is said on it)."""
    if session.engine:
        state = engine_lab.engine_for(get_spec(session.model_id))
        known = ranked if isinstance(ranked, engine_lab.KnownDistribution) else _engine_after(session)
        return engine_lab.engine_view(state, session, settings, known)
    loaded = session.loaded
    ranked = distribution(session) if ranked is None else ranked
    return LabView(session, ranked, filter_logits(ranked, settings), loaded.tokenizer, loaded.eos_token_ids)


def _engine_after(session: LabSession) -> "engine_lab.KnownDistribution":
    state = engine_lab.engine_for(get_spec(session.model_id))
    text = session.prompt + engine_lab.generated_text(session.records)  # only for engines without id prompts
    return engine_lab.distribution_after(state, session.ids, text)


def _engine_steps(session: LabSession, settings: SamplingSettings, n: int, seed: int, stop_strings=(),
                  forced: int | None = None) -> Iterator[tuple[generation.StepRecord, object]]:
    """Engine steps: the distribution from the engine, our rules and draw, the record kept, then the
    distribution after it (if that request fails, the step is undone)."""
    state = engine_lab.engine_for(get_spec(session.model_id))
    stops = [s for s in stop_strings if s]
    for number in range(n):
        known = _engine_after(session)
        index = len(session.records)
        if forced is None:
            _result, token = engine_lab.draw(known, settings, seed, index)
            chosen = "greedy" if settings.greedy else "sampled"
        else:
            token, chosen = forced, "forced"
        record = engine_lab.step(state, known, settings, token, index, chosen)
        text = engine_lab.generated_text([*session.records, record]) if stops else ""
        stop = generation.stop_reason(record, text, stops, number, n, False)
        if forced is not None:
            stop = "eos" if record.is_eos else None
        elif stop == "max_tokens" and n == 1:
            stop = None  # one step always "reaches" its budget: not news here
        record = replace(record, stop=stop) if stop else record
        session.records.append(record)
        try:
            after = _engine_after(session)
        except BaseException:
            session.records.pop()
            raise
        session.stop_note = stop_note(stop) if stop else None
        yield record, after
        if stop is not None:
            return


# ---------------------------------------------------------------------------------------------
# Decoders lent from a bounded pool


def _pool(loaded: LoadedModel) -> BoundedLRU:
    return loaded.runtime.part("lab-decoders", lambda: BoundedLRU(
        LAB_DECODERS, on_evict=lambda _key, decoder: decoder.close()))


def pooled_decoders(loaded: LoadedModel) -> int:
    """How many decoders wait in the model's pool (tests, benchmarks)."""
    pool = loaded.runtime.peek("lab-decoders")
    return 0 if pool is None else len(pool)


def _fitted(decoder: generation.Decoder | None, loaded: LoadedModel, session: LabSession) -> generation.Decoder:
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
def _lent_decoder(session: LabSession) -> Iterator[generation.Decoder]:
    """The session's decoder for one request; back in the pool afterwards (even after a failure:
    the next request fits it to the ids again)."""
    loaded = session.loaded
    pool = _pool(loaded)
    decoder = _fitted(pool.pop(session.key), loaded, session)
    try:
        yield decoder
    finally:
        pool.put(session.key, decoder)


def _after(session: LabSession, decoder: generation.Decoder) -> RankedLogits:
    """The distribution after the decoder's last token, shared with the cache (one forward)."""
    return core.remember(decoder.loaded, decoder.ids, decoder.ranked)


def _record(session: LabSession, record: generation.StepRecord, decoder: generation.Decoder) -> RankedLogits:
    """Keep a step and compute the distribution after it; if that fails the step is undone."""
    ranked_ids = decoder.ids
    try:
        ranked = _after(session, decoder)
    except BaseException:
        decoder.rewind(len(ranked_ids) - 1)  # the token is still pending: dropping it is free
        raise
    session.records.append(record)
    session.stop_note = stop_note(record.stop) if record.stop else None
    return ranked


# ---------------------------------------------------------------------------------------------
# Operations


def next_token(session: LabSession, settings: SamplingSettings, seed: int) -> generation.StepRecord | None:
    """Sample one token with the rules and seed; None when the context is full (the note says so)."""
    if session.engine:
        with session.lock:
            return next(_engine_steps(session, settings, 1, seed))[0]
    with session.lock, _lent_decoder(session) as decoder:
        for record in generation.iter_generation(decoder, settings, 1, seed):
            if record.stop == "max_tokens":  # one step always "reaches" its budget: not news here
                record = replace(record, stop=None)
            _record(session, record, decoder)
            return record
        session.stop_note = stop_note("context")
        return None


def append_token(session: LabSession, settings: SamplingSettings, token_id: int) -> generation.StepRecord:
    """Append a token the user picked, recording how likely the rules made it."""
    if session.engine:
        with session.lock:
            return next(_engine_steps(session, settings, 1, 0, forced=int(token_id)))[0]
    with session.lock, _lent_decoder(session) as decoder:
        record = generation.forced_step(decoder, settings, token_id)
        _record(session, record, decoder)
        return record


def undo(session: LabSession) -> None:
    """Drop the last generated token (never a model call: the decoder is rewound when next lent)."""
    with session.lock:
        if not session.records:
            raise PlaygroundError("Nothing to undo: only the prompt is left.")
        session.records.pop()
        session.stop_note = None


def clear(session: LabSession) -> None:
    """Back to the prompt alone."""
    with session.lock:
        session.records.clear()
        session.stop_note = None


def generate(session: LabSession, settings: SamplingSettings, n: int, seed: int,
             stop_strings: Sequence[str] = ()) -> Iterator[tuple[generation.StepRecord, RankedLogits]]:
    """Sample up to `n` tokens, yielding each record with the distribution after it.

    Closing the iterator (the user pressed Stop) keeps what was generated and says so.
    """
    if session.engine:
        with session.lock:
            session.stop_note = None
            try:
                yield from _engine_steps(session, settings, n, seed, stop_strings)
            except GeneratorExit:
                session.stop_note = STOPPED_BY_USER
                raise
        return
    with session.lock, _lent_decoder(session) as decoder:
        session.stop_note = None
        got_any = False
        try:
            for record in generation.iter_generation(decoder, settings, n, seed, stop_strings):
                got_any = True
                yield record, _record(session, record, decoder)
        except GeneratorExit:
            session.stop_note = STOPPED_BY_USER
            raise
        if not got_any:
            session.stop_note = stop_note("context")


def samples(session: LabSession, settings: SamplingSettings, k: int, length: int, seed: int,
            stop_strings: Sequence[str] = ()) -> Iterator[generation.SamplesResult]:
    """K continuations of the session's text (`generation.iter_samples`); the session is unchanged."""
    if session.engine:
        raise PlaygroundError(ENGINE_NO_SAMPLES)
    with session.lock:
        session.samples = None
        yield from generation.iter_samples(session.loaded, session.ids, settings, k, length, seed, stop_strings)
