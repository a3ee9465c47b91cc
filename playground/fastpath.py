"""The fast decoding path: a static KV cache with fixed shapes, replayed as CUDA graphs on a GPU.

Plain transformers spends most of a small model's time on a GPU launching kernels from Python:
one next-token distribution of SmolLM2-135M is about 18 ms, almost all of it overhead. Here the
shapes never change, so each step can be captured once as a CUDA graph and replayed:

- the KV cache is a transformers `StaticCache` of `max_len` positions, allocated once;
- a prompt is right-padded to a bucket length (32, 64, 128, ...); causal attention means padding
  after the prompt cannot change the prompt's logits, and the padded cache slots are overwritten
  by the following decode steps before any query can see them (the attention mask hides every
  slot after the current position);
- the attention mask is a 4D boolean tensor built from a position buffer, so no host sync happens
  inside a step;
- the logits of the last real position are gathered on the device and only they go through the
  output layer.

Llama-architecture models run through `playground.fused_llama` (the same function in about a third
of the operators, its own static cache); other full-attention models through transformers' model with a
`StaticCache`. On a CPU (or MPS) the same static path runs eagerly (no graphs): tests prove it gives
the same logits and greedy tokens as the plain path. `StaticDecoder.supported(loaded)` is False for models
whose attention needs more than one plain causal mask (sliding-window layers, e.g. Gemma 3); they
use the plain path. A `DecoderPool` hands decoders to concurrent generations and falls back to the
plain path when all are busy. `BatchedNextToken` runs several prompts' next-token logits in one
static-shaped pass (no KV cache), which `playground.batching` uses on CUDA. Pools and the batched
path are parts of the model's runtime (`LoadedModel.runtime`); why a part was turned off is in
`loaded.runtime.failures`. Every computation goes through `playground.model_call` (its preamble
runs before a graph replay, never inside the captured graph). What it leaves out: KV-cached decode
steps of several sequences in one graph.
"""

from __future__ import annotations

import logging
import threading

import torch

from playground import fused_llama, settings
from playground.model_call import backbone, model_call, output_layer, reference_logits
from playground.models import LoadedModel

PREFILL_BUCKETS = (32, 64, 128, 256, 512, 1024)
log = logging.getLogger(__name__)


class StaticDecoder:
    """One sequence's static-cache decoder; graph-captured on CUDA."""

    def __init__(self, loaded: LoadedModel, max_len: int = 1024, use_graphs: bool | None = None,
                 fused: bool | None = None):
        from transformers import StaticCache

        self.loaded = loaded
        self.max_len = min(max_len, loaded.context_length)
        self.device = loaded.device
        self.use_graphs = (self.device.type == "cuda") if use_graphs is None else use_graphs
        if fused is None:
            fused = fused_llama.supports(loaded.model)
        # the fused model keeps its own cache, whose length is `cursor`; else transformers' cache
        self.fused = fused_llama.FusedLlama(
            loaded.model, self.max_len, loaded.runtime.part("fused-weights", lambda: fused_llama.layer_weights(loaded.model))
        ) if fused else None
        self.cache = None if fused else StaticCache(config=loaded.model.config, max_cache_len=self.max_len)
        self.cursor = torch.zeros((), dtype=torch.long, device=self.device)
        self.positions = torch.arange(self.max_len, device=self.device)
        # Static input buffers (their addresses never change: graphs read them on replay).
        self.step_ids = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        self.step_pos = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        self.prefill_ids = {b: torch.zeros((1, b), dtype=torch.long, device=self.device) for b in self._buckets()}
        self.prefill_last = torch.zeros((1,), dtype=torch.long, device=self.device)
        self.zero = torch.zeros((), dtype=torch.long, device=self.device)
        self.graphs: dict[object, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.length = 0

    @staticmethod
    def supported(loaded: LoadedModel) -> bool:
        config = loaded.model.config
        layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
        return layer_types == {"full_attention"} and not getattr(config, "sliding_window", None)

    def _buckets(self) -> tuple[int, ...]:
        return tuple(b for b in PREFILL_BUCKETS if b <= self.max_len)

    # -- the two computations, written with static shapes -----------------------------------

    def _lengths(self) -> list[torch.Tensor]:
        return [layer.cumulative_length for layer in self.cache.layers if getattr(layer, "is_initialized", False)]

    def _run_prefill(self, bucket: int) -> torch.Tensor:
        ids = self.prefill_ids[bucket]
        mask = (self.positions[None, :] <= self.positions[:bucket, None])[None, None]  # [1,1,b,max]
        if self.fused is not None:
            logits = self.fused.forward(ids, self.positions[:bucket], mask, self.prefill_last)
            self.cursor.copy_(self.prefill_last[0] + 1)  # padded slots are overwritten by later steps
            return logits
        lengths = self._lengths()
        if lengths:  # inside the graph: the cache restarts at 0 ...
            torch._foreach_copy_(lengths, [self.zero] * len(lengths))
        hidden = backbone(self.loaded, input_ids=ids, attention_mask=mask,
                          position_ids=self.positions[None, :bucket], cache=self.cache, use_cache=True)
        last = hidden.index_select(1, self.prefill_last)  # [1,1,H]: the last real position only
        lengths = self._lengths()
        # ... and ends at the real prompt length: the padded slots are overwritten by later steps
        torch._foreach_copy_(lengths, [self.prefill_last[0] + 1] * len(lengths))
        return output_layer(self.loaded, last)[:, -1, :]

    def _run_step(self) -> torch.Tensor:
        length = self.cursor if self.fused is not None else self._lengths()[0]
        self.step_pos.copy_(length.view(1, 1))  # the new token's position
        mask = (self.positions <= self.step_pos[0, 0])[None, None, None, :]  # [1,1,1,max]
        if self.fused is not None:
            logits = self.fused.forward(self.step_ids, self.step_pos[0], mask, self.zero.view(1))
            self.cursor.add_(1)
            return logits
        hidden = backbone(self.loaded, input_ids=self.step_ids, attention_mask=mask,
                          position_ids=self.step_pos, cache=self.cache, use_cache=True)
        return output_layer(self.loaded, hidden)[:, -1, :]

    def _set_length(self, length: int) -> None:
        self.cursor.fill_(length)
        for layer in self.cache.layers if self.cache is not None else ():
            if getattr(layer, "is_initialized", False):
                layer.cumulative_length.fill_(length)

    def _replay(self, key, run) -> torch.Tensor:
        if not self.use_graphs:
            return run()
        if key not in self.graphs:
            self.graphs[key] = self._capture(run)
        graph, output = self.graphs[key]
        graph.replay()
        return output

    def _capture(self, run):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up outside the graph (also allocates the cache lazily)
                self._set_length(0)
                run()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        self._set_length(0)
        with torch.cuda.graph(graph):
            output = run()
        return graph, output

    # -- public API ----------------------------------------------------------------------------

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Start a sequence; logits after its last token (float32, on the device, [vocab])."""
        if not 0 < len(ids) <= self._buckets()[-1]:
            raise ValueError(f"prompt of {len(ids)} tokens does not fit the static cache")
        with model_call(self.loaded, slot=False):  # refused or failed: the buffers are as they were
            bucket = next(b for b in self._buckets() if b >= len(ids))
            buffer = self.prefill_ids[bucket]
            buffer.zero_()
            buffer[0, : len(ids)] = torch.tensor(ids, device=self.device)
            self.prefill_last.fill_(len(ids) - 1)
            logits = self._replay(("prefill", bucket), lambda: self._run_prefill(bucket))
        self.length = len(ids)
        return logits[0]

    @torch.inference_mode()
    def step(self, token_id: int | torch.Tensor) -> torch.Tensor:
        """Append one token (an int, or a one-element device tensor: no host sync); next logits.

        The returned tensor is the graph's output buffer: use it before the next step.
        """
        if self.length >= self.max_len:
            raise ValueError("the static cache is full")
        with model_call(self.loaded, slot=False):  # checks before any buffer changes: a refused step
            if isinstance(token_id, torch.Tensor):  # leaves the sequence intact
                self.step_ids.copy_(token_id.view(1, 1))
            else:
                self.step_ids.fill_(int(token_id))  # its position is the cache's length, read in the step
            logits = self._replay("step", self._run_step)
        self.length += 1
        return logits[0]

    def check_against_model(self, tolerance: float = 0.5) -> None:
        """Raise unless a prefill and a step give the model's own logits on a fixed sequence.

        A guard run once per pool, before any user sees its output. The largest logit difference
        is measured in standard deviations of the logits: bf16 rounding gives about 0.15 on
        SmolLM2-135M (0.03 on a random model), a wrong computation several units.
        """
        ids = [(7 * i + 3) % min(self.loaded.vocab_size, 1000) + 1 for i in range(17)]
        expected = reference_logits(self.loaded, ids)[-2:]
        got = torch.stack([self.prefill(ids[:-1]).clone(), self.step(ids[-1]).clone()])
        difference = ((got - expected).abs().max() / expected.std(-1).min()).item()
        if not difference <= tolerance:
            raise RuntimeError(f"the static decoder's logits differ from the model's by {difference:.3g} standard deviations")

    def warm_up(self) -> None:
        """Capture the decode graph and every prefill graph now, never while a sequence is live."""
        self.prefill([1] * 8)
        self.step(1)
        for bucket in self._buckets():
            self.prefill([1] * bucket)


@torch.inference_mode()
def generate_on_device(decoder: StaticDecoder, ids: list[int], new_tokens: int,
                       choose=None) -> tuple[list[int], torch.Tensor]:
    """Generate `new_tokens` tokens without a host sync per step; returns (tokens, probs [n, vocab]).

    `choose(logits) -> one-element long tensor` picks each token on the device (default: greedy
    argmax); the full probability vector of every step is recorded in a device buffer and copied
    to the host once at the end. No stop rule is applied (callers cut at EOS afterwards).
    """
    choose = choose or (lambda logits: logits.argmax(-1, keepdim=True))
    new_tokens = min(new_tokens, decoder.max_len - len(ids))
    logits = decoder.prefill(ids)
    probs = torch.empty((new_tokens, logits.shape[-1]), dtype=torch.float32, device=decoder.device)
    tokens = torch.empty((new_tokens,), dtype=torch.long, device=decoder.device)
    for index in range(new_tokens):
        torch.softmax(logits, -1, out=probs[index])
        tokens[index : index + 1] = choose(logits)
        if index + 1 < new_tokens:
            logits = decoder.step(tokens[index : index + 1])
    return tokens.tolist(), probs.cpu()


class BatchedNextToken:
    """Next-token logits for a batch of prompts in one forward pass with static shapes.

    No KV cache is kept (a next-token request needs none). Prompts are right-padded: under causal
    attention a real token never attends to the padding after it, so each row's logits at its last
    real position equal an unbatched call's. Shapes are bucketed (batch 1..64, length 32..512) and on
    CUDA each bucket is captured once as a CUDA graph; all graphs share one memory pool, so replays
    must be serialized (the batcher's single worker thread does that). Up to 512 tokens a
    sliding-window layer (Gemma 3's window is 512) sees exactly the full causal context, so the same
    mask serves every layer type.
    """

    BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
    LENGTH_BUCKETS = (32, 64, 128, 256, 512)
    MAX_TOKENS = 16384

    def __init__(self, loaded: LoadedModel, use_graphs: bool | None = None):
        self.loaded = loaded
        self.device = loaded.device
        self.use_graphs = (self.device.type == "cuda") if use_graphs is None else use_graphs
        window = getattr(loaded.model.config, "sliding_window", None) or 10**9
        self.lengths = tuple(b for b in self.LENGTH_BUCKETS if b <= min(window, loaded.context_length))
        self.ids = {}
        self.last = {}
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self.layer_types = sorted(set(getattr(loaded.model.config, "layer_types", None) or ["full_attention"]))

    def buckets(self, batch: int, length: int) -> tuple[int, int] | None:
        b = next((x for x in self.BATCH_BUCKETS if x >= batch), None)
        l = next((x for x in self.lengths if x >= length), None)
        if b is None or l is None or b * l > self.MAX_TOKENS:
            return None
        return b, l

    def _buffers(self, key):
        if key not in self.ids:
            self.ids[key] = torch.zeros(key, dtype=torch.long, device=self.device)
            self.last[key] = torch.zeros((key[0],), dtype=torch.long, device=self.device)
        return self.ids[key], self.last[key]

    def _run(self, key) -> torch.Tensor:
        ids, last = self._buffers(key)
        length = key[1]
        positions = torch.arange(length, device=self.device)
        causal = (positions[None, :] <= positions[:, None])[None, None]
        mask = {layer_type: causal for layer_type in self.layer_types}
        if len(mask) == 1 and "full_attention" in mask:
            mask = causal  # models that take one mask tensor
        hidden = backbone(self.loaded, input_ids=ids, attention_mask=mask, position_ids=positions[None],
                          use_cache=False)
        rows = hidden[torch.arange(key[0], device=self.device), last]  # [batch, H]
        return output_layer(self.loaded, rows)

    def _capture(self, key):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._run(key)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            output = self._run(key)
        return graph, output

    @torch.inference_mode()
    def logits(self, sequences: list[list[int]]) -> torch.Tensor:
        """[len(sequences), vocab] float32 on the CPU; ValueError when no bucket fits."""
        key = self.buckets(len(sequences), max(len(ids) for ids in sequences))
        if key is None:
            raise ValueError("batch does not fit a static bucket")
        with model_call(self.loaded):
            ids, last = self._buffers(key)
            host = torch.zeros(key, dtype=torch.long)
            for row, seq in enumerate(sequences):
                host[row, : len(seq)] = torch.tensor(seq)
            ids.copy_(host, non_blocking=False)
            last.copy_(torch.tensor([len(seq) - 1 for seq in sequences] + [0] * (key[0] - len(sequences))))
            if not self.use_graphs:
                return self._run(key)[: len(sequences)].cpu()
            if key not in self.graphs:
                self.graphs[key] = self._capture(key)
            graph, output = self.graphs[key]
            graph.replay()
            return output[: len(sequences)].cpu()

    def warm_up(self) -> None:
        for b in self.BATCH_BUCKETS:
            for l in self.lengths:
                if b * l <= self.MAX_TOKENS:
                    self.logits([[1] * l] * b)


def batched_for(loaded: LoadedModel) -> BatchedNextToken | None:
    """The model's static batched next-token path when it applies (CUDA, or forced), else None."""
    if not _enabled(loaded):
        return None

    def build() -> BatchedNextToken:
        batched = BatchedNextToken(loaded)
        if loaded.device.type == "cuda":
            batched.warm_up()
        return batched

    return _optional_part(loaded, "static-batched", build)


def _enabled(loaded: LoadedModel) -> bool:
    """`PLAYGROUND_FASTPATH`: `0` off, `1` forced on any device (tests), else CUDA only."""
    setting = settings.current().fastpath
    return setting != "0" and (setting == "1" or loaded.device.type == "cuda")


def _optional_part(loaded: LoadedModel, name: str, build):
    """`build()` once per model, kept on its runtime; None (and the reason logged) when it fails."""
    part = loaded.runtime.part(name, build, optional=True)
    if part is None and name in loaded.runtime.failures:
        log.warning("fast path %s disabled for %s: %s", name, loaded.id, loaded.runtime.failures[name])
    return part


class DecoderPool:
    """A few decoders per model, lent to concurrent generations; None when all are busy."""

    def __init__(self, loaded: LoadedModel, size: int = 4, max_len: int = 1024, fused: bool | None = None):
        self.loaded = loaded
        self.free = [StaticDecoder(loaded, max_len, fused=fused) for _ in range(size)]
        self.lock = threading.Lock()

    def acquire(self) -> StaticDecoder | None:
        with self.lock:
            return self.free.pop() if self.free else None

    def release(self, decoder: StaticDecoder) -> None:
        with self.lock:
            self.free.append(decoder)


def pool_for(loaded: LoadedModel) -> DecoderPool | None:
    """The model's decoder pool when the fast path applies (CUDA, a supported model), else None.

    `PLAYGROUND_FASTPATH=0` turns it off; `=1` forces the static path on other devices (tests).
    """
    if not (_enabled(loaded) and StaticDecoder.supported(loaded)):
        return None

    def build() -> DecoderPool:
        try:
            return _checked_pool(loaded, fused=None)
        except Exception as exc:  # noqa: BLE001 - the fused pass failed here: transformers' layers serve
            if not fused_llama.supports(loaded.model):
                raise
            log.warning("fused Llama pass disabled for %s: %r", loaded.id, exc)
            loaded.runtime.failures["fused"] = repr(exc)
            return _checked_pool(loaded, fused=False)

    return _optional_part(loaded, "decoder-pool", build)


def _checked_pool(loaded: LoadedModel, fused: bool | None) -> DecoderPool:
    pool = DecoderPool(loaded, fused=fused)
    if loaded.device.type == "cuda":
        for decoder in pool.free:
            decoder.warm_up()
    pool.free[0].check_against_model()
    return pool
