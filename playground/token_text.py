"""From token ids to the exact bytes they stand for, and to text that is safe to show.

A BPE token is a byte string. It is often not valid UTF-8 on its own (a piece of a CJK character or
of an emoji), so decoding it alone yields "\ufffd". Here such bytes are shown in the byte notation
`<0xF0><0x9F>` instead, and whitespace can be made visible (`␣`, `→`, `↵`).

Supported: tiktoken encodings (`decode_single_token_bytes`), Hugging Face tokenizers with a
byte-level decoder (GPT-2 style: SmolLM2, Llama 3) and SentencePiece-style vocabularies with byte
fallback pieces (`▁` for space, `<0x0A>` for bytes: Gemma). Special tokens map to their literal
text. What it leaves out: HTML escaping (done by `playground.html`), normalisers that change the
text before tokenization (none of the shipped tokenizers has one that matters here).
"""

from __future__ import annotations

import json
import re
import weakref
from functools import lru_cache

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_WHITESPACE_MARKS = {" ": "␣", "\t": "→", "\n": "↵", "\r": "␍"}
_WHITESPACE_TABLE = str.maketrans(_WHITESPACE_MARKS)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's map from the printable stand-in characters back to byte values."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _hf_decoder_kind(tokenizer) -> str:
    """'bytelevel' for GPT-2 style vocabularies, 'sentencepiece' for ▁/<0xNN> vocabularies."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return "sentencepiece"
    decoder = getattr(backend, "decoder", None)
    try:  # the decoder's own JSON; serialising the whole tokenizer (a 9 MB vocabulary) is slow
        spec = json.loads(decoder.__getstate__()) if decoder is not None else {}
    except Exception:
        spec = json.loads(backend.to_str()).get("decoder") or {}
    kinds = [spec.get("type")] + [d.get("type") for d in spec.get("decoders", []) or []]
    return "bytelevel" if "ByteLevel" in kinds else "sentencepiece"


class TokenBytesTable:
    """Bytes of every id of one Hugging Face tokenizer, computed once.

    `special` holds the ids of special/added control tokens (drawn distinctly by the UI).
    """

    def __init__(self, tokenizer):
        kind = _hf_decoder_kind(tokenizer)
        byte_decoder = _byte_decoder()
        size = len(tokenizer)
        pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
        added = {int(i): t for i, t in tokenizer.added_tokens_decoder.items()}
        self.special: frozenset[int] = frozenset(i for i, t in added.items() if t.special)
        table: list[bytes] = []
        for token_id, piece in enumerate(pieces):
            if piece is None:
                table.append(b"")
            elif token_id in added:
                table.append(added[token_id].content.encode("utf-8"))
            elif kind == "bytelevel":
                try:
                    table.append(bytes(byte_decoder[c] for c in piece))
                except KeyError:
                    table.append(piece.encode("utf-8"))
            else:
                match = _BYTE_PIECE.fullmatch(piece)
                table.append(bytes([int(match.group(1), 16)]) if match else piece.replace("▁", " ").encode("utf-8"))
        self.table = table

    def __getitem__(self, token_id: int) -> bytes:
        return self.table[token_id]

    def __len__(self) -> int:
        return len(self.table)


_TABLES: "weakref.WeakKeyDictionary[object, TokenBytesTable]" = weakref.WeakKeyDictionary()


def bytes_table(tokenizer) -> TokenBytesTable:
    """The (cached) byte table of a Hugging Face tokenizer."""
    table = _TABLES.get(tokenizer)
    if table is None:
        table = TokenBytesTable(tokenizer)
        _TABLES[tokenizer] = table
    return table


def token_bytes(tokenizer, token_id: int) -> bytes:
    """The exact bytes of one token of a tiktoken encoding or a Hugging Face tokenizer."""
    if hasattr(tokenizer, "decode_single_token_bytes"):
        return tokenizer.decode_single_token_bytes(token_id)
    return bytes_table(tokenizer)[token_id]


def display_text(data: bytes) -> str:
    """Text for `data`: valid UTF-8 runs as text, every other byte as `<0xNN>`; never "\ufffd"."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    decoded = data.decode("utf-8", errors="surrogateescape")
    return "".join(f"<0x{ord(ch) - 0xDC00:02X}>" if "\udc80" <= ch <= "\udcff" else ch for ch in decoded)


def visible_whitespace(text: str) -> str:
    """Spaces, tabs and line breaks as visible marks (␣ → ↵ ␍)."""
    return text.translate(_WHITESPACE_TABLE)


def text_tail(text: str, chars: int) -> str:
    """The last `chars` characters of `text` as one line (each run of whitespace one space), with
    "…" in front when it was cut: where a chart names the text it follows."""
    line = " ".join(text.split())
    return line if len(line) <= chars else "…" + line[-(chars - 1):]


def token_label(tokenizer, token_id: int) -> str:
    """A short label for plots: display text with visible whitespace."""
    return visible_whitespace(display_text(token_bytes(tokenizer, token_id)))


def hex_bytes(data: bytes) -> str:
    """Bytes as a lowercase hex string (the CLI's `bytes` field)."""
    return data.hex()
