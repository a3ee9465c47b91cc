"""The sampling lab's session: a prompt, the tokens generated after it, and what can be done next.

A `LabSession` holds only what defines it: the model, the prompt and its ids, the generated
tokens' records (their ids, probabilities and alternatives), the last stop note and a random key.
It never holds a KV cache, a decoder or a distribution between requests, so an idle session costs a
few kilobytes (the UI keeps it in `gr.State`).

Operations: `open_session`, `view`, `next_token`, `append_token`, `undo`, `return_to` (a node of
the session's branching tree), `clear`, `generate`
(streams each record with the distribution after it, so nothing is ranked or run twice),
`samples`, `tokenizer`. Each runs through the model's backend (`playground.backends.backend_for`):
an in-process model through `playground.local_lab` (decoders lent from a bounded pool), an engine
model through `playground.engines.lab` (one request per token, our rules and draws); a capability
the backend lacks (K samples on an engine) is refused by it, in words. A view has the same shape
for both (`LabView` here, `engines.lab.EngineView`): `number_rows`, `details`, `known_only`.
What it leaves out: the rules (`playground.sampling`), the loops (`playground.generation`), views
(`playground.plots`, `playground.html`, `playground.ui`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from playground import decoding, generation, prompts
from playground.backends import backend_for
from playground.errors import PlaygroundError
from playground.generation import stop_note  # noqa: F401 - the lab's notes
from playground.local_lab import LabView
from playground.models import LoadedModel, get_spec, load_model
from playground.sampling import RankedLogits, SamplingSettings

STOPPED_BY_USER = "Stopped: you pressed Stop."


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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def ids(self) -> list[int]:
        return [*self.prompt_ids, *(r.id for r in self.records)]

    @property
    def loaded(self) -> LoadedModel:
        """The in-process model (tests and benchmarks of in-process sessions)."""
        return load_model(self.model_id)


def open_session(model_id, prompt, chat_template: bool, max_prompt_tokens: int) -> LabSession:
    """A new session on `prompt` (cut from the left to `max_prompt_tokens`), its distribution computed."""
    if not model_id or not isinstance(model_id, str):
        raise PlaygroundError("Pick a model.")
    spec = get_spec(model_id)
    chat_template = bool(chat_template) and spec.role == "chat"
    text = prompts.surrogate_free("" if prompt is None else str(prompt))
    text, ids, note = backend_for(spec).open_lab(text, chat_template, max_prompt_tokens)
    return LabSession(model_id, chat_template, text, tuple(ids), prompt_note=note)


def distribution(session: LabSession) -> RankedLogits:
    """The distribution after an in-process session's last token (cached; a miss is one model call)."""
    return decoding.ranked_after(session.loaded, session.ids)


def tokenizer(session: LabSession):
    """The tokenizer the session's tokens are shown with (an engine entry's, or None)."""
    return backend_for(session.model_id).lab_tokenizer(session)


def view(session: LabSession, settings: SamplingSettings, ranked: RankedLogits | None = None) -> LabView:
    """The session's distribution filtered by `settings` (a model call only on a cache miss);
    `ranked`: the distribution after the session's text when the caller has it (`generate` yields it).
    An engine session's view is an `engines.lab.EngineView` (what is exact is said on it)."""
    return backend_for(session.model_id).lab_view(session, settings, ranked)


# ---------------------------------------------------------------------------------------------
# Operations


def next_token(session: LabSession, settings: SamplingSettings, seed: int) -> generation.StepRecord | None:
    """Sample one token with the rules and seed; None when the context is full (the note says so)."""
    with session.lock:
        return backend_for(session.model_id).lab_next_token(session, settings, seed)


def append_token(session: LabSession, settings: SamplingSettings, token_id: int) -> generation.StepRecord:
    """Append a token the user picked, recording how likely the rules made it."""
    with session.lock:
        return backend_for(session.model_id).lab_append_token(session, settings, token_id)


def undo(session: LabSession) -> None:
    """Drop the last generated token (never a model call: the decoder is rewound when next lent)."""
    with session.lock:
        if not session.records:
            raise PlaygroundError("Nothing to undo: only the prompt is left.")
        session.records.pop()
        session.stop_note = None


def return_to(session: LabSession, settings: SamplingSettings, steps: Sequence[tuple[int, str]]) -> None:
    """Bring the text to a path of the session's tree (`samplers.tree.Tree.steps`: token ids and how
    each was chosen, after the prompt): the tokens it shares with the text stay as they are, the
    rest go, then the path's own are appended (one model call each at most, on a cache miss) and
    keep how they were chosen the first time."""
    want = [(int(token_id), str(chosen)) for token_id, chosen in steps]
    with session.lock:
        have = [r.id for r in session.records]
        keep = 0
        while keep < min(len(have), len(want)) and have[keep] == want[keep][0]:
            keep += 1
        del session.records[keep:]
        session.stop_note = None
    for token_id, chosen in want[keep:]:
        record = append_token(session, settings, token_id)
        with session.lock:
            session.records[-1] = replace(record, chosen=chosen)


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
    with session.lock:
        session.stop_note = None
        try:
            yield from backend_for(session.model_id).lab_generate(session, settings, n, seed, stop_strings)
        except GeneratorExit:
            session.stop_note = STOPPED_BY_USER
            raise


def samples(session: LabSession, settings: SamplingSettings, k: int, length: int, seed: int,
            stop_strings: Sequence[str] = ()) -> Iterator[generation.SamplesResult]:
    """K continuations of the session's text (`generation.iter_samples`); the session is unchanged.
    A backend without K samples refuses here, before the first step."""
    backend = backend_for(session.model_id)
    backend.require("samples")
    return _samples(backend, session, settings, k, length, seed, stop_strings)


def _samples(backend, session, settings, k, length, seed, stop_strings):
    with session.lock:
        session.samples = None
        yield from backend.lab_samples(session, settings, k, length, seed, stop_strings)
