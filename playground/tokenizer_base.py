"""The interface every tokenizer of the explorer has (`Tokenizer`): encode, each id's exact bytes,
decoding, special ids, the single-byte ids.

Its own module so that tokenizers living elsewhere (an engine's, `playground.engines.tokenizer`)
implement it without importing the registry (`playground.tokenizer_registry`), which lists them.
What it leaves out: every concrete tokenizer and the registry (`playground.tokenizer_registry`).
"""

from __future__ import annotations

from playground import token_text
from playground.errors import PlaygroundError


class Tokenizer:
    """A uniform view of one tokenizer. Subclasses fill in encoding and token bytes."""

    id: str
    description: str
    kind: str  # "tiktoken", "huggingface", "bytes", "engine"
    vocab_size: int
    bos_id: int | None = None
    eos_id: int | None = None
    special_ids: frozenset[int] = frozenset()

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        raise NotImplementedError

    def _bytes_of(self, token_id: int) -> bytes:
        raise NotImplementedError

    def token_bytes(self, token_id: int) -> bytes:
        """The exact bytes of one id; PlaygroundError for an id outside the vocabulary."""
        self.check_id(token_id)
        return self._bytes_of(token_id)

    def tokens_bytes(self, ids: list[int]) -> list[bytes]:
        return [self._bytes_of(i) for i in ids]

    def check_id(self, token_id: int) -> None:
        if not 0 <= token_id < self.vocab_size:
            raise PlaygroundError(
                f"Token id {token_id} is outside the vocabulary of {self.id} (0 to {self.vocab_size - 1})."
            )

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_ids

    def decode_bytes(self, ids: list[int]) -> bytes:
        for token_id in ids:
            self.check_id(token_id)
        return b"".join(self.tokens_bytes(ids))

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`: their bytes joined; bytes that are not valid UTF-8 shown as <0xNN>."""
        return token_text.display_text(self.decode_bytes(ids))

    def single_byte_id(self, value: int) -> int | None:
        """An id whose token is exactly the one byte `value` (None if the vocabulary has none)."""
        return self._single_byte_ids().get(value)

    def _single_byte_ids(self) -> dict[int, int]:
        found: dict[int, int] = {}
        for token_id in range(self.vocab_size):
            if token_id in self.special_ids:
                continue
            data = self._bytes_of(token_id)
            if len(data) == 1 and data[0] not in found:
                found[data[0]] = token_id
        return found
