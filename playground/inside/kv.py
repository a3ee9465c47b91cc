"""KV cache sizes: bytes per token from the configuration, against the real cache of a pass.

Each layer keeps a key and a value vector per key/value head for every token it has seen:
`layers × 2 × kv_heads × head_dim × bytes per number` per token. A sliding-window layer (Gemma 3)
keeps only its last `window - 1` tokens, so past the window the cache grows with the full-attention
layers alone. Multi-head attention (a key/value head per query head) would keep `heads / kv_heads`
times as much: the saving grouped-query attention buys. `KVShape` computes all three curves; a
`KVReport` puts them next to the bytes of a real transformers cache (the tab's pass, or a filler
prompt of N tokens run by `kv_report`). `lecture_shapes` gives the lecture's models per token.

What it leaves out: the tab's forward pass (`passes`), drawing (`playground.plots.inside`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground import start_tokens
from playground.errors import PlaygroundError
from playground.inside.arch import LECTURE_MODELS, layer_types
from playground.inside.passes import InsidePass, cache_size
from playground.model_call import forward
from playground.models import LoadedModel, load_model

MEASURE_MAX_TOKENS = 2048  # a real cache is built up to this many tokens; beyond, the formula only
FILLER = "The quick brown fox jumps over the lazy dog. "


@dataclass(frozen=True)
class KVShape:
    name: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int
    layer_types: tuple[str, ...] = ()  # empty: every layer full attention
    window: int | None = None

    @property
    def per_token_bytes(self) -> int:
        """layers × 2 (key and value) × key/value heads × head size × bytes per number."""
        return self.layers * 2 * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def mha_per_token_bytes(self) -> int:
        """The same model with multi-head attention: one key/value head per query head."""
        return self.layers * 2 * self.heads * self.head_dim * self.dtype_bytes

    @property
    def saving(self) -> float:
        return self.heads / self.kv_heads

    @property
    def sliding_layers(self) -> int:
        return sum(kind == "sliding_attention" for kind in self.layer_types)

    def layer_tokens(self, tokens: int) -> tuple[int, ...]:
        """Tokens each layer's cache holds after `tokens` tokens (a window keeps its last window - 1)."""
        kinds = self.layer_types or ("full_attention",) * self.layers
        return tuple(min(tokens, self.window - 1) if kind == "sliding_attention" and self.window else tokens
                     for kind in kinds)

    def bytes_at(self, tokens: int) -> int:
        """The cache's bytes after `tokens` tokens, sliding windows included."""
        return sum(self.layer_tokens(tokens)) * 2 * self.kv_heads * self.head_dim * self.dtype_bytes


def kv_shape(loaded: LoadedModel) -> KVShape:
    config = loaded.model.config
    heads = int(config.num_attention_heads)
    kinds = layer_types(config)
    return KVShape(
        name=loaded.id, layers=int(config.num_hidden_layers), heads=heads,
        kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
        dtype_bytes=torch.tensor([], dtype=loaded.dtype).element_size(), layer_types=kinds,
        window=int(config.sliding_window) if "sliding_attention" in kinds else None,
    )


def lecture_shapes(dtype_bytes: int = 2) -> list[KVShape]:
    """The lecture's models (16-bit numbers, as they are served), every layer counted in full."""
    return [KVShape(m.name, m.shape.layers, m.shape.heads, m.shape.kv_heads, m.shape.head_dim, dtype_bytes)
            for m in LECTURE_MODELS]


@dataclass(frozen=True)
class GrowthPoint:
    tokens: int
    bytes: int  # this model's cache (sliding windows included)
    full_bytes: int  # every layer full attention
    mha_bytes: int  # multi-head attention


@dataclass(frozen=True)
class KVReport:
    model_id: str
    shape: KVShape
    tokens: int
    formula_bytes: int
    measured_bytes: int | None  # None: not measured (longer than MEASURE_MAX_TOKENS)
    measured_layer_tokens: tuple[int, ...]
    context_length: int
    growth: tuple[GrowthPoint, ...]

    @property
    def matches(self) -> bool | None:
        return None if self.measured_bytes is None else self.measured_bytes == self.formula_bytes


def growth(shape: KVShape, context_length: int, also: int | None = None) -> tuple[GrowthPoint, ...]:
    """The three curves at powers of two up to the context length (and at `also`)."""
    points = {1 << k for k in range(0, 64) if 1 << k <= context_length} | {context_length}
    if also:
        points.add(int(also))
    return tuple(GrowthPoint(n, shape.bytes_at(n), n * shape.per_token_bytes, n * shape.mha_per_token_bytes)
                 for n in sorted(points))


def _report(loaded: LoadedModel, tokens: int, measured: int | None, layer_tokens: tuple[int, ...]) -> KVReport:
    shape = kv_shape(loaded)
    return KVReport(loaded.id, shape, tokens, shape.bytes_at(tokens), measured, layer_tokens,
                    loaded.context_length, growth(shape, loaded.context_length, tokens))


def kv_from_pass(result: InsidePass) -> KVReport:
    """The report for the tab's pass: its real cache measured, no model call."""
    return _report(load_model(result.model_id), result.tokens, result.cache_bytes, result.cache_tokens)


def filler_ids(loaded: LoadedModel, tokens: int) -> list[int]:
    """`tokens` ids of a plain English prompt (the start tokens, then a sentence repeated)."""
    if loaded.tokenizer is None:
        return [10 + i % 1000 for i in range(tokens)]
    sentence = [int(i) for i in loaded.tokenizer(FILLER, add_special_tokens=False)["input_ids"]]
    ids = start_tokens.document_start_ids(loaded.tokenizer)
    while len(ids) < tokens:
        ids += sentence
    return ids[:tokens]


def kv_report(model_id: str, tokens: int, measure: bool = True) -> KVReport:
    """The cache after `tokens` tokens: the formula, and (up to MEASURE_MAX_TOKENS) a real cache built
    by one forward pass of a filler prompt that long."""
    loaded = load_model(model_id)
    tokens = int(tokens)
    if not 1 <= tokens <= loaded.context_length:
        raise PlaygroundError(f"--tokens must be between 1 and the context length ({loaded.context_length:,}).")
    if not measure or tokens > MEASURE_MAX_TOKENS:
        return _report(loaded, tokens, None, ())
    _, cache = forward(loaded, torch.tensor([filler_ids(loaded, tokens)]))
    measured, layer_tokens = cache_size(cache)
    return _report(loaded, tokens, measured, layer_tokens)
