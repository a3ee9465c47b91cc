"""A Hugging Face (transformers) tokenizer behind the explorer's `Tokenizer` interface.

`HuggingFaceTokenizer` gives a model's own tokenizer, or a hub tokenizer, the exact bytes of every
id (`token_text.bytes_table`) and fast encoding. The registry (`playground.tokenizer_registry`) and an
in-process model's backend (`playground.backends`) build it.
What it leaves out: loading the tokenizer (`playground.models`), the registry.
"""

from __future__ import annotations

from playground import token_text
from playground.tokenizer_base import Tokenizer


class HuggingFaceTokenizer(Tokenizer):
    """A transformers tokenizer (fast); token bytes come from `token_text.bytes_table`."""

    kind = "huggingface"

    def __init__(self, tokenizer_id: str, tokenizer, description: str):
        self.id, self.hf, self.description = tokenizer_id, tokenizer, description
        self.table = token_text.bytes_table(tokenizer)
        self.vocab_size = len(self.table)
        self.special_ids = frozenset(self.table.special) | frozenset(tokenizer.all_special_ids)
        self.bos_id, self.eos_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        self._byte_ids: dict[int, int] | None = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if self._backend is not None:  # the batch call skips offset tracking: faster on long texts
            return self._backend.encode_batch_fast([text], add_special_tokens=add_special_tokens)[0].ids
        return self.hf.encode(text, add_special_tokens=add_special_tokens)

    def offsets(self, text: str, add_special_tokens: bool = False) -> list[tuple[int, int]] | None:
        """The library's character offsets (used only when byte matching fails)."""
        if self._backend is None:
            return None
        return self._backend.encode(text, add_special_tokens=add_special_tokens).offsets

    def _bytes_of(self, token_id: int) -> bytes:
        return self.table[token_id]

    def tokens_bytes(self, ids: list[int]) -> list[bytes]:
        table = self.table.table
        return [table[i] for i in ids]

    def _single_byte_ids(self) -> dict[int, int]:
        if self._byte_ids is None:
            self._byte_ids = super()._single_byte_ids()
        return self._byte_ids
