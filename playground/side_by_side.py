"""Several generations streamed together: the base-vs-chat comparison.

A `Contender` is one column: a model and the exact ids it is given, built by `contender(...)` from
a prompt or a conversation in one of the ways the lecture contrasts:

- `raw`: the prompt as plain text (a base model "just goes on"),
- `template`: the prompt as one user message through the model's own chat template, generation
  prompt included (what a chatbot program does),
- `conversation_text`: a conversation written out as "User: ... / Assistant: ..." text,
- `conversation_template`: a conversation through a chat template; a model without one (a base
  model) gets the chat model's template rendered as text and tokenized by its own tokenizer.

`iter_side_by_side` runs every contender with the same sampling settings and the same seed (the
random stream of each step depends only on the seed and the position, see `generation`), one token
per column per round, and yields the columns after every round, so both fill at the same time.
Each column ends with its own stop reason (`playground.generation`): the chat model at its
end-of-turn token, a base model at EOS or the token limit; a column whose stream ended first (Stop,
the time limit, an error) is `halt`ed with a note saying why, in words.

A column's model may be an engine model (`playground.engines.stream`), next to an in-process one:
its prompt is the same ids, made by the entry's `tokenizer` (a template rendered by it, so the
template stays visible) and sent as a raw completion, or, without a tokenizer, the text (the engine
tokenizes) or the messages (its chat API applies its own template, not shown). The engine samples
with its own sampler and seed, which the column's header says (`Column.header`); building a
contender never asks the engine, and an engine's failure (down, an error mid-stream) ends only its
own column, in words, while the other goes on.

Long input is refused, not cut (cutting a conversation would silently drop turns): a prompt or
conversation over `MAX_PROMPT_TOKENS` tokens gets a message, and a paste whose character count
alone rules it out is refused before it is tokenized. Lone surrogates become U+FFFD.

What it leaves out: the rules (`playground.sampling`), the per-step records
(`playground.generation`), rendering, and threads (columns alternate in one thread: on a CPU two
threads would only share the same cores).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from playground import chat, decoding, generation, start_tokens
from playground.backends import backend_for
from playground.engines import stream as engine_stream
from playground.engines.client import EngineError
from playground.errors import PlaygroundError
from playground.models import get_spec, load_model, load_tokenizer
from playground.prompts import CHARS_PER_TOKEN_BOUND, surrogate_free
from playground.sampling import SamplingSettings

MAX_PROMPT_TOKENS = 2048  # a CPU reads this many tokens in a few seconds; longer is refused

Mode = Literal["raw", "template", "conversation_text", "conversation_template"]
MODES: dict[str, str] = {
    "raw": "the prompt as raw text",
    "template": "the prompt through its chat template",
    "conversation_text": "the conversation as plain text",
    "conversation_template": "the conversation in the chat template",
}


@dataclass(frozen=True)
class Contender:
    model_id: str
    mode: str
    prompt_ids: tuple[int, ...]  # () for an engine model that tokenizes the text itself
    prompt_text: str  # the string the ids were made from (a rendered template, or the raw prompt)
    note: str  # one line for the column's header
    chat_messages: tuple[dict, ...] = ()  # an engine model without a tokenizer: its chat API's messages

    @property
    def label(self) -> str:
        return f"{self.model_id} ({get_spec(self.model_id).role})"


@dataclass
class Column:
    contender: Contender
    records: list = field(default_factory=list)  # generation.StepRecord, in order
    stop: str | None = None
    halted: str = ""  # with stop == "halted": why the stream ended before this column did, in words
    engine_note: str = ""  # an engine column: who sampled ("sampled by the engine (llama.cpp), seed 0")
    error: EngineError | None = None  # an engine column ended by its engine's failure (said in `halted`)

    @property
    def done(self) -> bool:
        return self.stop is not None

    @property
    def header(self) -> str:
        """The column's header line: the contender's note, and for an engine column who sampled."""
        return self.contender.note + (f" · {self.engine_note}" if self.engine_note else "")

    @property
    def text(self) -> str:
        return backend_for(self.contender.model_id).generated_text(self.records)

    def halt(self, note: str) -> None:
        """End a column still running because its stream ended (Stop, the time limit, an error);
        `note` says why, in words. A column that had finished keeps its own reason."""
        if self.stop is None:
            self.stop, self.halted = "halted", note

    def stop_note(self) -> str:
        """Why the column stopped, in words (or that it is still running)."""
        count = f"{len(self.records)} token" + ("" if len(self.records) == 1 else "s")
        if self.stop is None:
            return f"Generating… {len(self.records)} tokens so far"
        if self.stop == "halted":
            return self.halted
        if self.stop == "eos":
            last = self.records[-1].text if self.records and self.records[-1].text else "end of sequence"
            kind = "end-of-turn" if last in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>") else "end-of-sequence"
            return f"Stopped after {count}: it generated {last}, its {kind} token."
        if self.stop == "max_tokens":
            return f"Stopped after {count}: the maximum number of new tokens (it would have gone on)."
        if self.stop == engine_stream.END_OF_TURN:
            return (f"Stopped after {count}: the engine ended the turn (its chat API does not stream the "
                    "end-of-turn token).")
        return f"Stopped after {count}: {generation.STOP_REASONS.get(self.stop, self.stop)}."


def _base_template_text(messages: list[dict], chat_model_id: str | None, model_id: str, tokenizer) -> str:
    if getattr(tokenizer, "chat_template", None):
        return chat.render_with_template(tokenizer, messages, add_generation_prompt=True)
    if not chat_model_id:
        raise PlaygroundError(f"Model {model_id} has no chat template; pick a chat model whose template to borrow.")
    return chat.render_with_template(load_tokenizer(chat_model_id), messages, add_generation_prompt=True)


def contender(model_id: str, mode: str, prompt: str = "", messages: Sequence[dict] | None = None,
              chat_model_id: str | None = None) -> Contender:
    """One column: `model_id` given `prompt` (modes raw/template) or `messages` (conversation modes).
    An engine model is never asked here (its failures belong to its column, in `iter_side_by_side`)."""
    if mode not in MODES:
        raise PlaygroundError(f"Unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    prompt = surrogate_free(str(prompt or ""))
    messages = [{**m, "content": surrogate_free(str(m.get("content", "")))} for m in messages or []]
    text_chars = len(prompt) + sum(len(m["content"]) for m in messages)
    if text_chars > MAX_PROMPT_TOKENS * CHARS_PER_TOKEN_BOUND:  # refuse before tokenizing a huge paste
        raise PlaygroundError(f"The prompt is {text_chars:,} characters long; this tab reads at most "
                              f"{MAX_PROMPT_TOKENS:,} tokens. Shorten it.")
    spec = get_spec(model_id)
    backend = backend_for(spec)
    tokenizer, encode, context_length = backend.encoder()  # no tokenizer: the engine tokenizes
    own_template = getattr(tokenizer, "chat_template", None)
    chat_api: list[dict] = []  # an engine model with no tokenizer named: the engine applies its template
    if mode in ("raw", "template") and not prompt.strip():
        raise PlaygroundError("Type a prompt first.")
    if mode == "raw":
        ids, text = encode(prompt), prompt
    elif mode == "template" and tokenizer is None:
        chat_api, ids, text = [{"role": "user", "content": prompt}], [], prompt
    elif mode == "template":
        view = chat.template_view(model_id, [{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids, text = list(view.ids), view.rendered
    elif mode == "conversation_text":
        text = chat.conversation_as_text(messages or [])
        ids = encode(text)
    elif own_template:
        view = chat.template_view(model_id, messages or [], add_generation_prompt=True)
        ids, text = list(view.ids), view.rendered
    elif tokenizer is None and spec.role == "chat":
        chat_api, ids, text = chat.validate_messages(messages or []), [], ""
    else:
        text = _base_template_text(chat.validate_messages(messages or []), chat_model_id, model_id, tokenizer)
        ids = encode(text)
    if len(ids) > min(MAX_PROMPT_TOKENS, (context_length or MAX_PROMPT_TOKENS + 1) - 1):
        raise PlaygroundError(f"The prompt is {len(ids):,} tokens long; this tab reads at most "
                              f"{MAX_PROMPT_TOKENS:,} tokens. Shorten it.")
    read = (f"{len(ids)} prompt tokens" if ids else
            "the engine's own chat template (not shown: the entry names no tokenizer)" if chat_api else
            "tokenized by the engine")
    note = f"{model_id} ({spec.role}{backend.kind_label}) · {MODES[mode]} · {read}"
    if mode == "conversation_template" and not own_template and not chat_api:
        note += " (it has no template of its own: the chat model's template, as plain text)"
    return Contender(model_id, mode, tuple(ids), text, note, tuple(chat_api))


def _run(contender_: Contender, settings: SamplingSettings, max_new_tokens: int, seed: int):
    """A column's token stream: in-process decoding, or an engine's streamed request (nothing is
    sent before the first token is asked for)."""
    return backend_for(contender_.model_id).stream(contender_, settings, max_new_tokens, seed)


def _failed(column: Column, exc: EngineError) -> None:
    """An engine column whose request failed says so, in words; the other columns go on."""
    count = len(column.records)
    done = "Not run" if not count else f"Stopped after {count} token" + ("" if count == 1 else "s")
    column.halt(f"{done}: {exc}")
    column.error = exc


def iter_side_by_side(contenders: Sequence[Contender], settings: SamplingSettings, max_new_tokens: int,
                      seed: int) -> Iterator[list[Column]]:
    """Generate every column one token per round; yield all columns after each round. An engine
    column's failure (down, an error mid-stream) ends that column with its message; leaving the
    iteration (Stop, the time limit, an error) closes every column's stream."""
    columns = [Column(c) for c in contenders]
    runs = []
    try:
        for column in columns:
            runs.append(_run(column.contender, settings, max_new_tokens, seed))
            column.engine_note = getattr(runs[-1], "note", "")
        yield columns
        while not all(c.done for c in columns):
            for column, run in zip(columns, runs):
                if column.done:
                    continue
                try:
                    record = next(run, None)
                except EngineError as exc:
                    _failed(column, exc)
                    continue
                column.engine_note = getattr(run, "note", "")
                if record is None:  # the run ended without a token: the context is full (or the engine said why)
                    column.stop = getattr(run, "stop", None) or "context"
                    continue
                column.records.append(record)
                column.stop = record.stop
            yield columns
    finally:
        for run in runs:
            run.close()
