"""Token spans: a tokenization's ids aligned with the characters of its text (`build_result`).

A token's bytes are matched against the text's UTF-8 bytes in order, and byte offsets are mapped
to character offsets with one rule: **a character belongs to the token that holds its first
byte.** A token made only of the later bytes of a character gets an empty span (start == end);
all tokens sharing one character form a *group*. So `text[t.start:t.end]` over all tokens
concatenates to the text exactly, in order. Special tokens that are not in the text (an added BOS)
get an empty span at their position. Used by the tokenizer registry (`playground.tokenizer_registry`),
the BPE lab and teacher forcing on an engine (`playground.scoring`).
What it leaves out: tokenizing (the tokenizers), rendering (`playground.html.tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from playground import token_text
from playground.errors import PlaygroundError


@dataclass(frozen=True)
class Token:
    index: int  # position in the sequence
    id: int
    text: str  # the token's own text; bytes that are not valid UTF-8 on their own as <0xNN>
    bytes: bytes
    start: int  # character offsets into the input text; text[start:end] concatenates to the input
    end: int
    special: bool
    group: int  # index of the first token of the run of tokens that share characters
    partial: bool  # starts or ends inside a character


@dataclass(frozen=True)
class TokenizationResult:
    tokenizer_id: str
    text: str
    ids: list[int]  # always every id
    tokens: list[Token]  # the first `len(tokens)` tokens (all unless capped by max_tokens)
    num_chars: int
    num_bytes: int

    @property
    def num_tokens(self) -> int:
        return len(self.ids)

    @property
    def truncated(self) -> bool:
        return len(self.tokens) < len(self.ids)

    @property
    def chars_per_token(self) -> float:
        return self.num_chars / self.num_tokens if self.ids else 0.0


def utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise PlaygroundError("The text contains an unpaired surrogate character, which is not valid Unicode.") from None


def _char_starts(text: str) -> np.ndarray:
    """Byte offset at which each character of `text` starts in its UTF-8 encoding."""
    codepoints = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    lengths = 1 + (codepoints >= 0x80).astype(np.int64) + (codepoints >= 0x800) + (codepoints >= 0x10000)
    starts = np.zeros(len(codepoints), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _byte_spans(data: bytes, ids: list[int], pieces: list[bytes], special_ids) -> list[int] | None:
    """Byte start of every token plus the final end (len(ids)+1 numbers); None if bytes don't match."""
    if special_ids.isdisjoint(ids) and b"".join(pieces) == data:
        return [0, *accumulate(len(p) for p in pieces)]
    bounds, pos = [0], 0
    for token_id, piece in zip(ids, pieces):
        if piece and data.startswith(piece, pos):
            pos += len(piece)
        elif token_id not in special_ids:
            return None
        bounds.append(pos)
    return bounds if pos == len(data) else None


def _byte_spans_from_offsets(offsets: list[tuple[int, int]], text: str, starts: np.ndarray, num_bytes: int) -> list[int]:
    """Fallback for tokenizers that rewrite text: the library's char offsets, made to cover the text."""
    char_to_byte = [*starts.tolist(), num_bytes]
    bounds, last = [0], 0
    for _, end in offsets[:-1]:
        last = max(last, char_to_byte[min(end, len(text))])
        bounds.append(last)
    bounds.append(num_bytes)
    return bounds


def build_result(name: str, text: str, ids: list[int], pieces: list[bytes], special_ids: frozenset = frozenset(),
                 max_tokens: int | None = None, offsets=None) -> TokenizationResult:
    """Align token bytes with `text` (see the module docstring for the rule) and build the result.

    Shared by `tokenize` and the BPE lab. `offsets` (a callable giving the library's character
    offsets) is the fallback for tokenizers whose bytes do not spell the text.
    """
    data = utf8(text)
    starts = _char_starts(text)
    bounds = _byte_spans(data, ids, pieces, special_ids)
    if bounds is None:
        found = offsets() if offsets is not None else None
        if found is None or len(found) != len(ids):
            raise PlaygroundError(f"The tokens of {name} do not spell the text; their spans cannot be aligned.")
        bounds = _byte_spans_from_offsets(found, text, starts, len(data))
    shown = len(ids) if max_tokens is None else min(len(ids), max_tokens)
    byte_bounds = np.asarray(bounds[: shown + 1], dtype=np.int64)
    # a character belongs to the token holding its first byte: char index = #chars starting before b
    char_bounds = np.searchsorted(starts, byte_bounds, side="left").tolist()
    on_boundary = (np.isin(byte_bounds, starts) | (byte_bounds == len(data))).tolist()
    tokens, group = [], 0
    for i in range(shown):
        if on_boundary[i]:
            group = i  # otherwise the token continues the previous token's character: same group
        piece = pieces[i]
        tokens.append(Token(
            index=i, id=ids[i], text=token_text.display_text(piece), bytes=piece,
            start=char_bounds[i], end=char_bounds[i + 1], special=ids[i] in special_ids,
            group=group, partial=not (on_boundary[i] and on_boundary[i + 1]),
        ))
    return TokenizationResult(name, text, list(ids), tokens, len(text), len(data))
