"""One id sequence per text: what a model reads for a plain text, its start tokens included.

Each function takes a Hugging Face tokenizer or the explorer's `Tokenizer` (an engine model's
/tokenize), so an engine model is sent the very ids an in-process model reads.

Every tab and command that gives a model a plain text (the Sampling lab, Generate, K samples, beam
search, the raw column of Base vs chat, teacher forcing, Inside the model, the CLI, engine models)
takes the ids from `text_ids`, so one text gives one distribution everywhere.

The start tokens come before the text's own tokens, by mode (`PLAYGROUND_START_TOKEN`):
- `model` (the default): what the model's own tokenizer puts in front of a text, which is also what
  llama.cpp does with the model's GGUF (its `add_bos_token`): Gemma 3 reads `<bos>`, SmolLM2 reads
  nothing. Without a start token the text's first token has nothing before it, so it is context,
  not scored, in teacher forcing.
- `always`: those tokens, else the tokenizer's document separator (`<|endoftext|>`), else its BOS
  or EOS: every token of the text has something before it.
- `none`: the text's own tokens only.
An empty text reads the document start (`document_start_ids`) in every mode: a model needs one
token to predict from.

What it leaves out: chat templates (`playground.chat`), cutting long texts (`playground.prompts`),
an engine's own /tokenize (`playground.engines.lab` sends these ids when the entry names a
tokenizer).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from playground import settings
from playground.errors import PlaygroundError
from playground.tokenizer_base import Tokenizer

MODES = ("model", "always", "none")
SEPARATORS = ("<|endoftext|>",)  # a document separator that training put between texts


def mode_or_default(mode: str | None = None) -> str:
    """`mode`, or the setting in force; an unknown mode is a message naming the valid ones."""
    chosen = (mode or settings.current().start_token or "model").strip().lower()
    if chosen not in MODES:
        raise PlaygroundError(f"Start token mode {chosen!r} is not one of {', '.join(MODES)} "
                              "(PLAYGROUND_START_TOKEN).")
    return chosen


def _encode(tokenizer, text: str, add_special: bool) -> list[int]:
    """Ids from a Hugging Face tokenizer, or from the explorer's `Tokenizer` (an engine's /tokenize)."""
    if isinstance(tokenizer, Tokenizer):
        return [int(i) for i in tokenizer.encode(text, add_special)]
    return [int(i) for i in tokenizer(text, add_special_tokens=add_special)["input_ids"]]


def _separator_id(tokenizer, name: str) -> int | None:
    """The id of the one token `name`, or None when the vocabulary has no such token."""
    if isinstance(tokenizer, Tokenizer):
        ids = tokenizer.encode(name, True)
        return ids[0] if len(ids) == 1 and tokenizer.token_bytes(ids[0]) == name.encode() else None
    token_id = tokenizer.convert_tokens_to_ids(name)
    if isinstance(token_id, int) and token_id >= 0 and tokenizer.convert_ids_to_tokens(token_id) == name:
        return token_id
    return None


def _bos_eos(tokenizer) -> tuple[int | None, int | None]:
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.bos_id, tokenizer.eos_id
    return tokenizer.bos_token_id, tokenizer.eos_token_id


def own_ids(tokenizer, text: str) -> list[int]:
    """The text's own tokens, no special tokens added."""
    return _encode(tokenizer, text, False)


_ADDED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # tokenizer -> its added start ids


def added_start_ids(tokenizer) -> list[int]:
    """The tokens the tokenizer itself puts in front of a text (Gemma's <bos>; none for SmolLM2),
    found once per tokenizer (for an engine's tokenizer each probe is two /tokenize requests)."""
    try:
        return list(_ADDED[tokenizer])
    except (KeyError, TypeError):  # not probed yet, or a tokenizer that cannot be a weak key
        pass
    with_special = _encode(tokenizer, "x", True)
    without = own_ids(tokenizer, "x")
    added = with_special[:len(with_special) - len(without)] if without and with_special[-len(without):] == without else []
    try:
        _ADDED[tokenizer] = tuple(added)
    except TypeError:
        pass
    return added


def document_start_ids(tokenizer) -> list[int]:
    """The tokens that start a document: the tokenizer's own start tokens, else its document
    separator (<|endoftext|>), else its BOS, else its EOS."""
    added = added_start_ids(tokenizer)
    if added:
        return added
    for name in SEPARATORS:
        token_id = _separator_id(tokenizer, name)
        if token_id is not None:
            return [int(token_id)]
    for token_id in _bos_eos(tokenizer):
        if token_id is not None:
            return [int(token_id)]
    raise PlaygroundError("This tokenizer has no start or separator token.")


def start_ids(tokenizer, mode: str | None = None) -> list[int]:
    """The start tokens a plain text is read after, in `mode` (default: the setting)."""
    mode = mode_or_default(mode)
    if mode == "none":
        return []
    return added_start_ids(tokenizer) if mode == "model" else document_start_ids(tokenizer)


@dataclass(frozen=True)
class TextIds:
    start: tuple[int, ...]  # the start tokens
    text: tuple[int, ...]  # the text's own tokens

    @property
    def ids(self) -> list[int]:
        return [*self.start, *self.text]


def text_ids(tokenizer, text: str, mode: str | None = None) -> TextIds:
    """What a model reads for `text`: its start tokens, then the text's own tokens. An empty text
    reads the document start, whatever the mode."""
    own = own_ids(tokenizer, text) if text else []
    start = start_ids(tokenizer, mode)
    if not own and not start:
        start = document_start_ids(tokenizer)
    return TextIds(tuple(start), tuple(own))


def reads_as(tokenizer, text: str, ids) -> bool:
    """Whether a plain `text` is read as exactly `ids` (its start tokens included): where a view
    hands a text on to be read again (a "why?" link), the ids it showed are the ones read."""
    return bool(text.strip()) and text_ids(tokenizer, text).ids == list(ids)
