"""Grouping concurrent model calls from different sessions into one forward pass.

A lecture hall sends many small requests at once; on a small model one forward pass of 16 rows
costs little more than one of a single row (the weights are read once either way). Two kinds of
call are grouped, each by one worker thread per model that takes every request waiting in its
queue (after a short window in which more may arrive; none by default: requests that arrive while
a batch computes form the next one):

- **next-token requests** (`next_token_logits`): prompts without a KV cache. They are padded on the
  left to one length and run with an attention mask and explicit positions, so each row's logits
  equal an unbatched call's within padding numerics. On CUDA a batch that fits the static buckets
  (up to 64 prompts of up to 512 tokens) is a replayed CUDA graph
  (`playground.fastpath.BatchedNextToken`).
- **decode steps** (`decode_step`): one new token for each row of a KV cache (a generation, K
  samples, a beam search, a side-by-side column). The caches of the requests in a batch are
  left-padded to the longest and stacked, the new tokens run as one forward with a mask that hides
  the padding and each row's own position, and each request's cache gets its rows back (the
  padding cut off). A request's cache is changed only when its batch succeeded: a failure (a fault,
  the time limit) leaves every cache as it was. Caches whose layers are not plain growing ones (a
  sliding window that is already full, a static cache) run on their own.

A lone request runs at once on its own (no copies). The workers are parts of the model's runtime
(`LoadedModel.runtime`): unloading the model stops them. `PLAYGROUND_BATCHING=0` turns batching off.
What it leaves out: the model call itself (`playground.model_call`), the static CUDA-graph path
(`playground.fastpath`), continuous batching inside one request's loop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from playground import fastpath, limits, memory_budget, settings
from playground.errors import PlaygroundError
from playground.model_call import forward
from playground.models import LoadedModel

# No waiting by default: a lone request runs at once, and requests that arrive while a batch is
# computing are grouped into the next one (under load, batches form by themselves).
WINDOW_SECONDS = settings.current().batch_window_ms / 1000
MAX_BATCH = settings.current().max_batch
REGROUP_SECONDS = 0.05  # decode steps: how long a batch waits for the rest of the last batch's group
MAX_BATCH_TOKENS = 16384  # padded tokens in one forward pass (prompts) or in the stacked KV cache (steps)


@dataclass
class _Request:
    payload: object
    rows: int  # batch rows it adds
    length: int  # tokens per row (padded to the batch's longest)
    future: Future = field(default_factory=Future)


class Batcher:
    """One model's queue of one kind of request and the worker thread that serves it in batches.

    `run(payloads) -> results` computes a whole batch (one result per payload).
    """

    def __init__(self, loaded: LoadedModel, name: str, run: Callable[[list], list], regroup_seconds: float = 0.0,
                 stream_of: Callable[[object], object] | None = None):
        self.loaded = loaded
        self.run = run
        self.regroup_seconds = regroup_seconds
        self.stream_of = stream_of  # which loop a request belongs to (a decode step: its cache)
        self.streams: dict[int, float] = {}  # recently served loops -> when
        self.requests: queue.Queue[_Request | None] = queue.Queue()
        self.batch_sizes: deque[int] = deque(maxlen=4096)  # the latest, for tests and benchmarks
        self.closed = False
        threading.Thread(target=self._serve, name=f"{name}-{loaded.id}", daemon=True).start()

    def close(self) -> None:
        """Stop the worker (the model is being unloaded); requests still queued fail at once."""
        self.closed = True
        self.requests.put(None)

    def submit(self, payload, rows: int = 1, length: int = 1) -> Future:
        request = _Request(payload, rows, length)
        self.requests.put(request)
        return request.future

    def _live_streams(self, horizon: float = 0.5) -> int:
        if self.stream_of is None:
            return 1
        now = time.monotonic()
        self.streams = {key: seen for key, seen in self.streams.items() if now - seen < horizon}
        return max(1, len(self.streams))

    def _fits(self, batch: list[_Request], request: _Request) -> bool:
        rows = sum(r.rows for r in batch) + request.rows
        return rows <= MAX_BATCH and rows * max(request.length, *(r.length for r in batch)) <= MAX_BATCH_TOKENS

    def _collect(self) -> list[_Request]:
        first = self.requests.get()
        if first is None:
            return []
        batch = [first]
        # Loops that step together (N generations) come back one by one after each batch, each
        # after its own sampling work: wait up to `regroup_seconds` for the loops served within the
        # last half second, so they form one batch instead of two that alternate for ever.
        expected = self._live_streams()
        deadline = time.monotonic() + (max(WINDOW_SECONDS, self.regroup_seconds) if expected > 1 else WINDOW_SECONDS)
        while True:
            if len(batch) >= expected and WINDOW_SECONDS == 0:
                deadline = min(deadline, time.monotonic())  # the group is back: take what is waiting now
            timeout = deadline - time.monotonic()
            try:
                request = self.requests.get(timeout=timeout) if timeout > 0 else self.requests.get_nowait()
            except queue.Empty:
                break
            if request is None:
                self.requests.put(None)  # seen by the loop after this batch
                break
            if not self._fits(batch, request):
                self.requests.put(request)  # next batch
                break
            batch.append(request)
        return batch

    def _serve(self) -> None:
        while not self.closed:
            batch = [r for r in self._collect() if r.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                results = self.run([request.payload for request in batch])
            except BaseException as exc:  # noqa: BLE001 - each waiting request gets the failure
                for request in batch:
                    request.future.set_exception(exc)
                continue
            now = time.monotonic()
            for request, result in zip(batch, results):
                if self.stream_of is not None:
                    self.streams[id(self.stream_of(request.payload))] = now
                request.future.set_result(result)
        while True:  # closed: whatever still waits fails at once instead of at its deadline
            try:
                request = self.requests.get_nowait()
            except queue.Empty:
                return
            if request is not None and request.future.set_running_or_notify_cancel():
                request.future.set_exception(PlaygroundError(f"Model {self.loaded.id} was unloaded."))


def enabled() -> bool:
    return settings.current().batching


def _wait(future: Future):
    """The result, waited for no longer than the calling request's deadline (`playground.limits`)."""
    try:
        return future.result(timeout=limits.remaining())
    except FutureTimeout:
        if not future.cancel():  # already computing: its result lands in a moment, wait for it
            return future.result()
        limits.check_deadline()
        raise


# ---------------------------------------------------------------------------------------------
# Next-token requests (prompts, no cache)


def batched_last_logits(loaded: LoadedModel, sequences: list[list[int]]) -> torch.Tensor:
    """Last-position logits [len(sequences), vocab] (float32, CPU) from one left-padded forward."""
    width = max(len(ids) for ids in sequences)
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer is not None and loaded.tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(sequences), width), int(pad), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        mask[row, width - len(ids):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits, _ = forward(loaded, input_ids, attention_mask=mask if len(sequences) > 1 else None,
                        position_ids=positions)
    return logits.cpu()


def _next_token_batch(loaded: LoadedModel, sequences: list[list[int]]) -> torch.Tensor:
    static = fastpath.batched_for(loaded)
    if static is not None and static.buckets(len(sequences), max(map(len, sequences))) is not None:
        return static.logits(sequences)  # graph-replayed on CUDA
    return batched_last_logits(loaded, sequences)


def batcher_for(loaded: LoadedModel) -> Batcher:
    """The model's next-token batcher (started on first use, stopped when the model is unloaded)."""
    return loaded.runtime.part("next-token-batcher",
                               lambda: Batcher(loaded, "next-token", lambda seqs: _next_token_batch(loaded, seqs)))


def next_token_logits(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    """Logits after `ids` [vocab], through the model's batcher (or directly when batching is off)."""
    limits.check_deadline()
    memory_budget.check_running()  # here, in the request's own thread, not the batcher's
    if not enabled():
        return batched_last_logits(loaded, [ids])[0]
    return _wait(batcher_for(loaded).submit(list(ids), rows=1, length=len(ids)))


# ---------------------------------------------------------------------------------------------
# Decode steps (one token per row of a KV cache)


@dataclass
class _Step:
    cache: object  # a transformers DynamicCache of `rows` rows, all of one length
    token_ids: torch.Tensor  # [rows, 1]


def _plain_layers(cache) -> list | None:
    """The cache's layers when each holds its whole sequence as `keys`/`values` [rows, heads, len, dim]."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(getattr(layer, "is_initialized", False) for layer in layers):
        return None
    length = cache.get_seq_length()
    for layer in layers:
        if type(layer).__name__ not in ("DynamicLayer", "DynamicSlidingWindowLayer"):
            return None
        if layer.keys.shape[-2] != length:  # a sliding window that dropped its oldest entries
            return None
        if getattr(layer, "is_sliding", False) and length + 1 >= layer.sliding_window:
            return None
    return layers


def batchable(cache) -> bool:
    return _plain_layers(cache) is not None


def _stacked(loaded: LoadedModel, steps: list[_Step]):
    """One cache holding every request's rows, left-padded to the longest; its mask and positions."""
    from transformers import DynamicCache

    lengths = [step.cache.get_seq_length() for step in steps]
    longest = max(lengths)
    stacked = DynamicCache(config=loaded.model.config)
    if len(stacked.layers) != len(steps[0].cache.layers):
        raise ValueError("the model's cache layout differs from the request's")
    for index, layer in enumerate(stacked.layers):
        sources = [step.cache.layers[index] for step in steps]
        keys = torch.cat([F.pad(s.keys, (0, 0, longest - n, 0)) for s, n in zip(sources, lengths)])
        values = torch.cat([F.pad(s.values, (0, 0, longest - n, 0)) for s, n in zip(sources, lengths)])
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length = longest
    rows = [step.token_ids.shape[0] for step in steps]
    mask = torch.cat([torch.cat([torch.zeros(r, longest - n, dtype=torch.long), torch.ones(r, n + 1, dtype=torch.long)], 1)
                      for r, n in zip(rows, lengths)])
    positions = torch.cat([torch.full((r, 1), n, dtype=torch.long) for r, n in zip(rows, lengths)])
    return stacked, mask, positions, lengths, longest


def _decode_batch(loaded: LoadedModel, steps: list[_Step]) -> list[torch.Tensor]:
    """One forward for every request's new tokens; each request's cache gets its rows back."""
    if len(steps) == 1:
        logits, _ = forward(loaded, steps[0].token_ids, steps[0].cache)
        return [logits]
    stacked, mask, positions, lengths, longest = _stacked(loaded, steps)
    token_ids = torch.cat([step.token_ids for step in steps])
    logits, out = forward(loaded, token_ids, stacked, attention_mask=mask, position_ids=positions)
    logits = logits.cpu()
    results, start = [], 0
    for step, length in zip(steps, lengths):  # only now, after the forward succeeded, caches change
        rows = slice(start, start + step.token_ids.shape[0])
        for layer, source in zip(step.cache.layers, out.layers):
            layer.keys = source.keys[rows, :, longest - length:, :].contiguous()
            layer.values = source.values[rows, :, longest - length:, :].contiguous()
            if hasattr(layer, "cumulative_length"):
                layer.cumulative_length = length + 1
        results.append(logits[rows])
        start = rows.stop
    return results


def decode_batcher_for(loaded: LoadedModel) -> Batcher:
    return loaded.runtime.part("decode-batcher", lambda: Batcher(
        loaded, "decode", lambda steps: _decode_batch(loaded, steps), regroup_seconds=REGROUP_SECONDS,
        stream_of=lambda step: step.cache))


def decode_step(loaded: LoadedModel, cache, token_ids) -> torch.Tensor:
    """Append one token per row of `cache` (a DynamicCache, updated in place) and return the logits
    after them, float32 [rows, vocab] on the model's device (as `forward` does); grouped with other
    sessions' steps on the CPU when the cache allows it."""
    token_ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1, 1)
    limits.check_deadline()
    if not enabled() or loaded.device.type != "cpu" or not batchable(cache):
        logits, _ = forward(loaded, token_ids, cache)  # on a GPU the static decoders serve
        return logits
    memory_budget.check_running()  # here, in the request's own thread: the batch's forward runs on the batcher's
    step = _Step(cache, token_ids)
    return _wait(decode_batcher_for(loaded).submit(step, rows=token_ids.shape[0],
                                                   length=cache.get_seq_length() + 1))
