"""Prompts that fit a budget: a long prompt is cut from the left, with a note saying so.

A lecture hall pastes anything into a prompt box, up to a megabyte. The model reads a bounded
number of tokens per request (`max_tokens`, far below a 32k context on a CPU), so
`fit_prompt(loaded, prompt, chat_template, max_tokens)` keeps the *end* of the prompt (the text
next to the continuation, which is what a next-token demo is about) and returns a `FittedPrompt`
with the text actually used, its ids and a one-line note for the page. The cut is made in the
prompt text at a token boundary of the tokenizer's own offsets, so the text shown and the ids used
agree; with a chat template the user message is cut, the template's tokens are kept.

Odd text is handled here too: lone surrogates (not valid Unicode, JSON allows them) are replaced
with U+FFFD and noted; NUL and other control characters are kept (they are text to a tokenizer).

What it leaves out: tokenization itself (`playground.decoding.prompt_ids`), each tab's choice of
budget (tabs document theirs), refusing instead of cutting (a tab that prefers to refuse compares
`FittedPrompt.original_tokens` with its budget).
"""

from __future__ import annotations

from dataclasses import dataclass

from playground import decoding
from playground.models import LoadedModel

CHARS_PER_TOKEN_BOUND = 16  # no tokenizer here spends more than 16 characters per token


@dataclass(frozen=True)
class FittedPrompt:
    text: str  # the prompt actually used (its end)
    ids: list[int]
    original_chars: int
    cut_chars: int  # characters dropped from the left
    note: str | None  # for the page; None when nothing was changed

    @property
    def was_cut(self) -> bool:
        return self.cut_chars > 0


def surrogate_free(text: str) -> str:
    """`text` with lone surrogates (not valid Unicode; JSON and Python allow them) replaced by U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _content_offsets(loaded: LoadedModel, text: str) -> list[int] | None:
    """Start character of every token of `text` on its own (no special tokens), or None."""
    try:
        encoded = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except Exception:  # noqa: BLE001 - slow tokenizers have no offsets: fall back to halving
        return None
    return [start for start, _ in encoded["offset_mapping"]]


def fit_prompt(loaded: LoadedModel, prompt, chat_template: bool = False, max_tokens: int = 2048) -> FittedPrompt:
    """The end of `prompt` that tokenizes to at most `max_tokens` ids (template included)."""
    raw = "" if prompt is None else str(prompt)
    original_chars = len(raw)
    text = surrogate_free(raw)
    notes = ["invalid characters (lone surrogates) were replaced with \ufffd"] if text != raw else []
    max_tokens = max(1, min(int(max_tokens), loaded.context_length - 1))
    char_budget = max_tokens * CHARS_PER_TOKEN_BOUND
    if len(text) > char_budget:
        text = text[-char_budget:]
    ids = decoding.prompt_ids(loaded, text, chat_template)
    for _ in range(8):
        if len(ids) <= max_tokens:
            break
        excess = len(ids) - max_tokens
        offsets = _content_offsets(loaded, text)
        if offsets and excess < len(offsets):
            cut = max(offsets[excess], 1)
        else:
            cut = max(len(text) // 2, 1)
        text = text[cut:]
        ids = decoding.prompt_ids(loaded, text, chat_template)
    else:
        while len(ids) > max_tokens and text:
            text = text[len(text) // 2 + 1:]
            ids = decoding.prompt_ids(loaded, text, chat_template)
    cut_chars = original_chars - len(text)
    if cut_chars:
        notes.insert(0, f"the prompt was cut from the left to its last {len(text):,} of {original_chars:,} "
                        f"characters ({len(ids):,} tokens; this view reads at most {max_tokens:,})")
    note = ("Note: " + "; ".join(notes) + ".") if notes else None
    return FittedPrompt(text, list(ids), original_chars, cut_chars, note)
