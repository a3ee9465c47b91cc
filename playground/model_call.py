"""The one layer that calls a model: every forward pass of the playground goes through here.

- `model_call(loaded)` is the preamble every model call shares, as a context manager: the
  request's time limit is checked, injected faults fire (`playground.limits`), the call is counted
  on `loaded.forward_calls` (tests prove that re-filtering never re-runs the model), and on the CPU
  the call takes the process's compute slot (one model call at a time: see `compute_slot`).
- `forward` runs the model on ids (optionally with a KV cache, a mask and positions) and returns the
  last position's logits; `forward_all` returns every position's logits (teacher forcing).
- `backbone` and `output_layer` are the two halves of a causal LM (hidden states, then the
  vocabulary projection) for the static fast path (`playground.fastpath`), which calls them inside
  its own preamble (a CUDA graph is captured once and replayed, so the preamble cannot live inside
  the computation).
- `reference_logits` is an uncounted plain call without any preamble: the fast path's one-time
  self-check against the model's own output, never a user's request.

What it leaves out: which ids to run (`playground.decoding`), grouping requests of several sessions
(`playground.batching`), static caches and CUDA graphs (`playground.fastpath`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

from playground import limits, memory_budget
from playground.models import LoadedModel

_CPU_COMPUTE = threading.Lock()


def compute_slot(loaded: LoadedModel):
    """On the CPU, one model call at a time in this process.

    Every call already uses all cores (torch's intra-op threads); two concurrent calls from two
    request threads each start their own thread team and oversubscribe the cores, which measured
    up to 8x slower per call on a 2-core machine. Serialising them keeps each call fast and the
    total throughput the same. On a GPU, kernels queue on the device anyway: no lock.
    """
    return _CPU_COMPUTE if loaded.device.type == "cpu" else contextlib.nullcontext()


def request_checks() -> None:
    """What every model call checks first: the request's time limit, the memory budget's stop
    line, then injected faults."""
    limits.check_deadline()
    memory_budget.check_running()
    limits.maybe_inject_fault("forward")


@contextlib.contextmanager
def model_call(loaded: LoadedModel, slot: bool = True) -> Iterator[None]:
    """The shared preamble of one model call (limit, faults, counter), then the compute slot.

    `slot=False` leaves the slot out, for callers on the GPU path that serialize themselves.
    """
    request_checks()
    loaded.forward_calls += 1
    first = loaded.forward_calls == 1
    with compute_slot(loaded) if slot else contextlib.nullcontext():
        yield
    if first:  # a GGUF model's weights are resident only once it ran: the automatic budget counts them
        memory_budget.note_models_loaded()


@torch.inference_mode()
def forward(loaded: LoadedModel, input_ids: torch.Tensor, cache=None, attention_mask=None,
            position_ids=None):
    """One model call: (logits of the last position as float32 [batch, vocab], the KV cache).

    transformers 5 calls the KV cache argument `cache` (not `past_key_values`).
    """
    with model_call(loaded):
        out = loaded.model(
            input_ids=input_ids.to(loaded.device),
            cache=cache,
            attention_mask=None if attention_mask is None else attention_mask.to(loaded.device),
            position_ids=None if position_ids is None else position_ids.to(loaded.device),
            use_cache=True,
            logits_to_keep=1,
        )
    return out.logits[:, -1, :].float(), out.cache


@torch.inference_mode()
def forward_all(loaded: LoadedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """One model call returning the logits of every position ([batch, seq, vocab], on the model's
    device, in its dtype): teacher forcing scores a whole text with it."""
    with model_call(loaded):
        out = loaded.model(input_ids=input_ids.to(loaded.device), use_cache=False)
    return out.logits


SCORE_CHUNK = 128  # positions per call of `forward_chunks`: [128, 262,144] float32 logits are 134 MB


@torch.inference_mode()
def forward_chunks(loaded: LoadedModel, ids: list[int], chunk: int = SCORE_CHUNK):
    """Every position's float32 logits, `chunk` positions per model call over one KV cache: yields
    (first position, logits [n, vocab]). Each call runs the preamble (the request's time limit is
    checked between chunks, so a long text stops near its limit) and never holds [seq, vocab] at once."""
    cache = None
    for first in range(0, len(ids), chunk):
        piece = torch.tensor([ids[first:first + chunk]], device=loaded.device)
        with model_call(loaded):
            out = loaded.model(input_ids=piece, cache=cache, use_cache=True)
        cache = out.cache
        yield first, out.logits[0].float()


def backbone(loaded: LoadedModel, **inputs) -> torch.Tensor:
    """The transformer without its output layer: the last hidden states [batch, seq, hidden]."""
    return loaded.model.model(**inputs).last_hidden_state


def output_layer(loaded: LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
    """Hidden states to float32 logits over the vocabulary."""
    return loaded.model.lm_head(hidden).float()


@torch.inference_mode()
def reference_logits(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    """Every position's float32 logits of one plain call [seq, vocab]; uncounted, no preamble."""
    return loaded.model(input_ids=torch.tensor([ids], device=loaded.device)).logits[0].float()
