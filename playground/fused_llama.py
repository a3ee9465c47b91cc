"""A Llama-architecture forward pass over a static KV cache, written with few kernels.

On a GPU a small model's decode step is bound by kernel launches, not arithmetic: transformers'
Llama layer issues about 43 kernels for one token (SmolLM2-135M: about 1,300 per step, each a few
microseconds even when replayed from a CUDA graph). This module computes the same function with
about a third as many operators (430 against 1,187 per SmolLM2 step, counted by `playground.opcount`):

- the Q, K and V projections are one matmul over their concatenated weights, and so are the MLP's
  gate and up projections;
- RMSNorm, scale included, is one `torch.nn.functional.rms_norm` call;
- each residual add is the accumulate of the matmul before it (`addmm_`);
- rotary embedding is three kernels for queries and keys together: `x*cos + roll(x)*sin'`, where
  the cos/sin table is computed once by the model's own rotary module for every cache position,
  and `sin'` carries rotate-half's sign;
- grouped-query attention needs no copies of K and V: the queries that share a KV head are laid out
  as extra query rows of that head, so one plain SDPA call over the cache serves them;
- K and V are written into the cache at explicit positions (`index_copy_`), so prefill and decode
  are the same code and the cache length is a device tensor the caller keeps.

The weights are read from the loaded transformers model (Q/K/V and gate/up are concatenated copies,
made once per model and shared by all its decoders; the rest are the model's own tensors). With
low-bit layers (`playground.lowbit`) the projections are its modules, Q/K/V and gate/up joined into
one low-bit module each, and each residual add follows its matmul. Tests compare it with
transformers' own forward pass. What it leaves out:
projection biases, rope types that depend on the sequence length ("dynamic"), sliding windows and
anything not shaped like Llama: `supports(model)` says which models qualify; the others use
transformers' static cache (`playground.fastpath`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from playground import lowbit


def supports(model) -> bool:
    """Whether `model` is a Llama-architecture model this module computes exactly."""
    config = model.config
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return (
        getattr(config, "model_type", None) == "llama"
        and not getattr(config, "attention_bias", False)
        and not getattr(config, "mlp_bias", False)
        and getattr(config, "hidden_act", None) == "silu"
        and getattr(config, "pretraining_tp", 1) == 1
        and rope.get("rope_type", "default") != "dynamic"
        and config.num_attention_heads % config.num_key_value_heads == 0
    )


def _joined(modules: list):
    """One weight for projections computed side by side: concatenated float tensors, or one
    low-bit module over the joined blocks (`playground.lowbit`)."""
    if all(type(m) is torch.nn.Linear for m in modules):
        return torch.cat([m.weight for m in modules])
    return lowbit.joined(modules)


def _single(module):
    """A projection's weight: the float tensor, or the low-bit module itself."""
    return module.weight if type(module) is torch.nn.Linear else module


def layer_weights(model) -> list[tuple]:
    """Per layer (norm, QKV, O, norm, gate-up, down) weights. Q/K/V and gate/up are concatenated
    copies: build them once per model (`playground.fastpath` keeps them on the model's runtime) and
    share them between its decoders. With low-bit layers the projections are low-bit modules."""
    with torch.no_grad():
        return [
            (
                layer.input_layernorm.weight,
                _joined([layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj]),
                _single(layer.self_attn.o_proj),
                layer.post_attention_layernorm.weight,
                _joined([layer.mlp.gate_proj, layer.mlp.up_proj]),
                _single(layer.mlp.down_proj),
            )
            for layer in model.model.layers
        ]


def _accumulate(hidden: torch.Tensor, x: torch.Tensor, weight) -> None:
    """hidden += x W^T: the matmul's accumulate for a float weight, an add after a low-bit one."""
    if isinstance(weight, torch.Tensor):
        hidden.addmm_(x, weight.t())
    else:
        hidden.add_(weight(x))


class FusedLlama:
    """One sequence's KV cache and the weights laid out for few-kernel steps."""

    def __init__(self, model, max_len: int, weights: list[tuple[torch.Tensor, ...]] | None = None):
        config = model.config
        inner = model.model
        first = inner.layers[0].self_attn.q_proj.weight
        self.device, self.dtype = first.device, first.dtype
        self.model = model
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.group = self.heads // self.kv_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.hidden = config.hidden_size
        self.intermediate = config.intermediate_size
        self.eps = config.rms_norm_eps
        self.max_len = max_len
        self.layers = layer_weights(model) if weights is None else weights
        with torch.no_grad():
            positions = torch.arange(max_len, device=self.device)
            cos, sin = inner.rotary_emb(torch.zeros((), dtype=self.dtype, device=self.device), positions[None])
            half = self.head_dim // 2
            self.cos = cos[0]  # [max_len, head_dim], in the model's dtype (as transformers applies it)
            self.sin = torch.cat([-sin[0, :, :half], sin[0, :, half:]], dim=-1)  # rotate-half's sign folded in
        shape = (len(self.layers), 1, self.kv_heads, max_len, self.head_dim)
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # transformers' LlamaRMSNorm (normalise in float32, cast back, scale) is what aten's rms_norm
        # computes for a half-precision input: one operator (a fused kernel where the backend has one)
        return F.rms_norm(x, (self.hidden,), weight, self.eps)

    def _attention(self, qkv: torch.Tensor, index: int, positions: torch.Tensor, mask: torch.Tensor,
                   cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        length = qkv.shape[1]
        heads = qkv.view(1, length, self.heads + 2 * self.kv_heads, self.head_dim).transpose(1, 2)
        rotated = heads[:, : self.heads + self.kv_heads]  # queries and keys: rotary embedding
        rotated = torch.addcmul(rotated * cos, rotated.roll(self.head_dim // 2, -1), sin)
        queries, keys = rotated[:, : self.heads], rotated[:, self.heads :]
        self.keys[index].index_copy_(2, positions, keys)
        self.values[index].index_copy_(2, positions, heads[:, self.heads + self.kv_heads :])
        # query head h reads KV head h // group: group the queries of one KV head as its rows
        queries = queries.reshape(1, self.kv_heads, self.group * length, self.head_dim)
        if length > 1:
            mask = mask.expand(1, 1, self.group, length, self.max_len).reshape(1, 1, self.group * length, self.max_len)
        out = F.scaled_dot_product_attention(queries, self.keys[index], self.values[index], attn_mask=mask)
        out = out.view(1, self.heads, length, self.head_dim).transpose(1, 2)
        return out.reshape(length, self.heads * self.head_dim)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                keep: torch.Tensor) -> torch.Tensor:
        """Float32 logits [1, vocab] after the position `keep` (a one-element index into `ids`).

        `ids` [1, length] go to cache slots `positions` [length]; `mask` [1, 1, length, max_len]
        (boolean, True = may attend) says which cache slots each of them sees.
        """
        length = ids.shape[1]
        cos, sin = self.cos[positions], self.sin[positions]  # [length, head_dim], shared by all layers
        hidden = self.model.model.embed_tokens(ids).view(length, self.hidden)  # a fresh tensor: updated in place
        for index, (norm_in, qkv, out, norm_post, gate_up, down) in enumerate(self.layers):
            attended = self._attention(lowbit.linear(self._norm(hidden, norm_in), qkv)[None], index, positions, mask, cos, sin)
            _accumulate(hidden, attended, out)  # the residual add is the matmul's accumulate
            gated = lowbit.linear(self._norm(hidden, norm_post), gate_up)
            _accumulate(hidden, F.silu(gated[:, : self.intermediate]) * gated[:, self.intermediate :], down)
        last = self._norm(hidden.index_select(0, keep), self.model.model.norm.weight)
        return self.model.lm_head(last).float()
