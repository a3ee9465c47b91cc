"""The logit lens: the model's final norm and output layer applied to every layer's hidden state.

Row 0 reads the embeddings, row l the residual stream after layer l; the last row is the model's
own output (its hidden state already went through the final norm), so its cell at the last
position is the real next-token distribution after the text. Each cell keeps its top tokens and
their probabilities. The hidden states come from the cached pass (`passes.inside_pass`: the pass
runs once per text); the output layer is a full vocabulary projection per cell, so the lens reads
the last `positions` tokens only (a layer of Gemma 3 at one position is a 262,144-wide matrix
product), inside `model_call` (it runs the model's weights: time limit, faults, counted once per
lens), checking the time limit between layers. Lenses are cached per (text, positions).

What it leaves out: the forward pass (`passes`), drawing (`playground.plots.inside`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground import limits
from playground.inside.passes import InsidePass, eager_twin, inside_pass, output_logits
from playground.lru import BoundedLRU
from playground.model_call import model_call
from playground.models import load_model
from playground.token_text import token_label

DEFAULT_POSITIONS = 8
MAX_POSITIONS = 32
TOP_K = 3
LENS_CACHE_ENTRIES = 16


@dataclass(frozen=True)
class LensGrid:
    model_id: str
    text: str
    rows: tuple[str, ...]  # "embeddings", "layer 1", ..., "layer L (output)"
    positions: tuple[int, ...]  # token indices read (the last ones)
    inputs: tuple[str, ...]  # the token at each position (the lens predicts what follows it)
    actual_next: tuple[str | None, ...]  # the token that does follow (None after the last one)
    top_ids: torch.Tensor  # int64 [rows, positions, TOP_K]
    top_probs: torch.Tensor  # float32 [rows, positions, TOP_K]
    top_labels: tuple[tuple[tuple[str, ...], ...], ...]  # [rows][positions][TOP_K]


def _compute(loaded, result: InsidePass, positions: int) -> LensGrid:
    twin = eager_twin(loaded).model
    count = max(1, min(int(positions), MAX_POSITIONS, result.tokens))
    picked = list(range(result.tokens - count, result.tokens))
    layers = result.hidden.shape[0]
    ids, probs = [], []
    with torch.inference_mode(), model_call(loaded):
        norm = twin.model.norm
        dtype = next(twin.parameters()).dtype
        for row in range(layers):
            limits.check_deadline()
            hidden = result.hidden[row, picked].to(loaded.device, dtype)
            if row < layers - 1:  # the last hidden state already went through the final norm
                hidden = norm(hidden)
            logits = output_logits(twin, hidden)
            best = logits.topk(TOP_K, dim=-1)  # probabilities of the top few only: no full softmax
            ids.append(best.indices.cpu())
            probs.append((best.values - torch.logsumexp(logits, dim=-1, keepdim=True)).exp().cpu())
    top_ids, top_probs = torch.stack(ids), torch.stack(probs)
    tokenizer = loaded.tokenizer
    labels = tuple(tuple(tuple(token_label(tokenizer, int(i)) for i in cell) for cell in row)
                   for row in top_ids.tolist())
    rows = ("embeddings", *(f"layer {i}" for i in range(1, layers - 1)), f"layer {layers - 1} (output)")
    return LensGrid(
        model_id=result.model_id, text=result.text, rows=rows, positions=tuple(picked),
        inputs=tuple(result.labels[i] for i in picked),
        actual_next=tuple(result.labels[i + 1] if i + 1 < result.tokens else None for i in picked),
        top_ids=top_ids, top_probs=top_probs, top_labels=labels)


def logit_lens(model_id: str, text: str, positions: int = DEFAULT_POSITIONS) -> LensGrid:
    """The lens over the last `positions` tokens of `text` (the pass and the lens are cached)."""
    loaded = load_model(model_id)
    result = inside_pass(model_id, text)
    cache = loaded.runtime.part("inside-lens", lambda: BoundedLRU(LENS_CACHE_ENTRIES))
    count = max(1, min(int(positions), MAX_POSITIONS, result.tokens))
    key = (result.ids, count)  # by the ids read (the start-token setting changes them)
    hit = cache.get(key)
    if hit is None:
        hit = _compute(loaded, result, count)
        cache.put(key, hit)
    return hit
