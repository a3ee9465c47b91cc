"""Attention weights of one layer and head, and all heads of a layer grouped by their key/value head.

Read from a cached `passes.InsidePass`; nothing here runs the model. Row i of a head's map is
query token i, column j key token j: a row sums to 1 (a softmax) and is zero right of the diagonal
(the causal mask: a token never sees the tokens after it). Grouped-query attention lets
`heads / kv_heads` query heads share one key/value head; transformers repeats each key/value head
for consecutive query heads (`repeat_kv`), so head h reads key/value head `h // group_size`.
Gemma 3's sliding-window layers attend to at most `sliding_window` keys (itself included).

What it leaves out: computing the weights (`passes`), drawing them (`playground.plots.inside`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground.errors import PlaygroundError
from playground.inside.arch import layer_types
from playground.inside.passes import InsidePass
from playground.models import load_model


def kv_groups(heads: int, kv_heads: int) -> tuple[tuple[int, ...], ...]:
    """The query heads that share each key/value head, in key/value head order."""
    if kv_heads < 1 or heads % kv_heads:
        raise PlaygroundError(f"{heads} query heads cannot share {kv_heads} key/value heads evenly.")
    size = heads // kv_heads
    return tuple(tuple(range(kv * size, (kv + 1) * size)) for kv in range(kv_heads))


def kv_head_of(head: int, heads: int, kv_heads: int) -> int:
    return head // (heads // kv_heads)


@dataclass(frozen=True)
class LayerInfo:
    """What a layer's attention is: full or sliding window (and the window's size)."""

    layer: int
    kind: str  # "full_attention" or "sliding_attention"
    window: int | None

    @property
    def sliding(self) -> bool:
        return self.kind == "sliding_attention"


def layer_info(model_id: str, layer: int) -> LayerInfo:
    config = load_model(model_id).model.config
    kind = layer_types(config)[layer]
    return LayerInfo(layer, kind, int(config.sliding_window) if kind == "sliding_attention" else None)


@dataclass(frozen=True)
class AttentionMap:
    model_id: str
    layer: LayerInfo
    head: int
    kv_head: int
    shares_with: tuple[int, ...]  # the query heads reading the same key/value head (this one included)
    labels: tuple[str, ...]
    weights: torch.Tensor  # [T, T] float32; row = query, column = key

    def visible(self, query: int, key: int) -> bool:
        """Whether the mask lets `query` see `key` (left of the diagonal and inside the window)."""
        window = self.layer.window
        return key <= query and (window is None or query - key < window)


@dataclass(frozen=True)
class LayerHeads:
    model_id: str
    layer: LayerInfo
    groups: tuple[tuple[int, ...], ...]  # query heads per key/value head
    labels: tuple[str, ...]
    weights: torch.Tensor  # [heads, T, T]


def _check(result: InsidePass, layer: int, head: int | None = None) -> None:
    if not 0 <= layer < result.layers:
        raise PlaygroundError(f"Layer {layer} does not exist: {result.model_id} has layers 0 to {result.layers - 1}.")
    if head is not None and not 0 <= head < result.heads:
        raise PlaygroundError(f"Head {head} does not exist: {result.model_id} has heads 0 to {result.heads - 1}.")


def _kv_heads(model_id: str) -> int:
    config = load_model(model_id).model.config
    return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)


def attention_map(result: InsidePass, layer: int, head: int) -> AttentionMap:
    """One head's attention weights in one layer."""
    _check(result, layer, head)
    kv = _kv_heads(result.model_id)
    groups = kv_groups(result.heads, kv)
    kv_head = kv_head_of(head, result.heads, kv)
    return AttentionMap(result.model_id, layer_info(result.model_id, layer), head, kv_head, groups[kv_head],
                        result.labels, result.attentions[layer, head])


def layer_heads(result: InsidePass, layer: int) -> LayerHeads:
    """Every head of one layer, grouped by the key/value head they share."""
    _check(result, layer)
    groups = kv_groups(result.heads, _kv_heads(result.model_id))
    return LayerHeads(result.model_id, layer_info(result.model_id, layer), groups, result.labels,
                      result.attentions[layer])
