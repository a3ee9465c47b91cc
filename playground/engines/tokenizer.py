"""An engine model's own tokenizer, over the engine's `/tokenize` and `/detokenize` endpoints.

`EngineTokenizer(spec)` is a `playground.tokenizer_registry.Tokenizer` (the interface of every tokenizer
in the explorer): `encode` is one `/tokenize` request. llama.cpp answers `with_pieces: true` with
each token's piece: a string where the token's bytes are valid UTF-8, else the list of its byte
values, so every token's bytes are the engine's own, exactly (a split emoji's `[240, 159]` too).
Pieces are remembered per id (a constant mapping, bounded by the vocabulary). An id never seen in
a piece (the Decode box) is asked of `/detokenize` alone; that answer is JSON text, in which the
engine replaces bytes that are not UTF-8 on their own with U+FFFD, so such an id's bytes are not
known exactly: it is listed in `replaced_ids` and the tab says so. The vocabulary size is
llama.cpp's `meta.n_vocab` (`/v1/models`), else the entry's tokenizer's; BOS/EOS are `/props`'s
`bos_token`/`eos_token` tokenized (llama.cpp), and those are the special ids.

Every request is bounded by the engine timeout and checks the request's time limit
(`limits.check_deadline`); a down engine is an `EngineError` with a clear message. Building one
asks the engine once (the vocabulary), so a down engine is never cached as a tokenizer
(`playground.tokenizer_registry` caches only what loaded).
What it leaves out: listing and choosing tokenizers (`playground.tokenizer_registry`), other id sequences
for the same text (one request per character: not offered for engine tokenizers).
"""

from __future__ import annotations

import threading

from playground import limits
from playground.engines.client import EngineClient, EngineError
from playground.model_spec import ModelSpec
from playground.tokenizer_base import Tokenizer

NO_TOKENIZE = "this engine does not provide /tokenize"
REPLACEMENT = "\ufffd".encode()


def label(spec: ModelSpec) -> str:
    """The explorer's label: "(engine: llama.cpp at http://...)"."""
    return f"engine: {spec.engine.where}"


def _piece_bytes(piece) -> bytes | None:
    """llama.cpp's piece: text (valid UTF-8) or a list of byte values; None when absent."""
    if isinstance(piece, str):
        return piece.encode("utf-8")
    if isinstance(piece, list) and all(isinstance(b, int) and 0 <= b < 256 for b in piece):
        return bytes(piece)
    return None


class EngineTokenizer(Tokenizer):
    kind = "engine"

    def __init__(self, spec: ModelSpec, client: EngineClient | None = None):
        if spec.source != "engine":
            raise EngineError(f"Model {spec.id} is not an engine model.", "unsupported")
        if not spec.engine.tokenize:
            raise EngineError(f"Model {spec.id} is served by {spec.engine.where}: {NO_TOKENIZE} "
                              "(tokenize = false in its entry).", "unsupported")
        self.spec = spec
        self.id = spec.id
        self.description = f"{spec.description or spec.id}: the engine's own tokenizer ({label(spec)})"
        self.client = client or EngineClient(spec.engine, name=spec.id)
        self._pieces: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self.replaced_ids: set[int] = set()  # ids whose /detokenize text had U+FFFD (bytes not exact)
        self.vocab_size = self._vocabulary()
        props = self._props()
        self.bos_id, self.eos_id = self._props_token(props, "bos_token"), self._props_token(props, "eos_token")
        self.special_ids = frozenset(i for i in (self.bos_id, self.eos_id) if i is not None)

    # -- what the engine says about itself -------------------------------------------------------

    def _vocabulary(self) -> int:
        answer = self.client.get("/v1/models")  # a down engine: EngineError here, nothing cached
        try:
            return int(answer["data"][0]["meta"]["n_vocab"])
        except (KeyError, IndexError, TypeError, ValueError):
            pass
        if self.spec.tokenizer_from:
            from playground.models import load_tokenizer

            return len(load_tokenizer(self.spec.tokenizer_from))
        return 0  # unknown: ids are checked by the engine itself

    def _props(self) -> dict:
        """llama.cpp's /props ({} where the engine has none)."""
        try:
            answer = self.client.get("/props")
        except EngineError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def _props_token(self, props: dict, name: str) -> int | None:
        """/props names BOS and EOS as text; their id is that text tokenized (one id)."""
        text = props.get(name)
        if not isinstance(text, str) or not text:
            return None
        ids = self.encode(text)
        return ids[0] if len(ids) == 1 else None

    # -- the Tokenizer interface -----------------------------------------------------------------

    def check_id(self, token_id: int) -> None:
        if self.vocab_size:
            super().check_id(token_id)
        elif token_id < 0:
            raise EngineError(f"Token id {token_id} is negative.", "unsupported")

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        limits.check_deadline()
        body = {"content": text, "prompt": text, "add_special": bool(add_special_tokens),
                "add_special_tokens": bool(add_special_tokens), "with_pieces": True}
        if self.spec.engine.model:
            body["model"] = self.spec.engine.model
        answer = self.client.post("/tokenize", body)
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise EngineError(f"{self.client._who()} answered /tokenize without a token list.", "bad-answer")
        ids = []
        try:
            for token in tokens:
                token_id = int(token["id"] if isinstance(token, dict) else token)
                piece = _piece_bytes(token.get("piece")) if isinstance(token, dict) else None
                if piece is not None:
                    self._pieces[token_id] = piece
                ids.append(token_id)
        except (KeyError, TypeError, ValueError):
            raise EngineError(f"{self.client._who()} answered /tokenize with tokens that are not ids.",
                              "bad-answer") from None
        return ids

    def _bytes_of(self, token_id: int) -> bytes:
        piece = self._pieces.get(token_id)
        if piece is not None:
            return piece
        limits.check_deadline()
        data = self.client.detokenize([token_id]).encode("utf-8")
        with self._lock:
            if REPLACEMENT in data:
                self.replaced_ids.add(token_id)
            else:
                self._pieces[token_id] = data
        return data

    def decode_single_token_bytes(self, token_id: int) -> bytes:
        """`token_text.token_bytes` reads a tokenizer through this (plot labels)."""
        return self.token_bytes(int(token_id))

    def _single_byte_ids(self) -> dict[int, int]:
        return {}  # finding them means asking for every id of the vocabulary: not done
