"""Grouping concurrent next-token requests from different sessions into one padded forward pass.

A lecture hall sends many small requests at once. One worker thread per model takes every request
waiting in its queue (after a short window of a few milliseconds in which more may arrive), pads
the prompts on the left to one length, and runs one forward pass with an attention mask and
explicit positions, so each row's logits equal an unbatched call's within padding numerics. A lone
request is not delayed beyond the window (none by default). On CUDA a batch that fits the static
buckets (up to 64 prompts of up to 512 tokens) is a replayed CUDA graph
(`playground.fastpath.BatchedNextToken`).

`PLAYGROUND_BATCHING=0` turns batching off (every request runs on its own). What it leaves out:
batching of KV-cached decode steps across sessions (each generation keeps its own cache; on a GPU
they run on pooled static decoders).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from playground import limits
from playground.models import LoadedModel

# No waiting by default: a lone request runs at once, and requests that arrive while a batch is
# computing are grouped into the next one (under load, batches form by themselves).
WINDOW_SECONDS = float(os.environ.get("PLAYGROUND_BATCH_WINDOW_MS", "0")) / 1000
MAX_BATCH = int(os.environ.get("PLAYGROUND_MAX_BATCH", "64"))
MAX_BATCH_TOKENS = 16384  # padded tokens in one forward pass


@dataclass
class _Request:
    ids: list[int]
    future: Future = field(default_factory=Future)


def batched_last_logits(loaded: LoadedModel, sequences: list[list[int]]) -> torch.Tensor:
    """Last-position logits [len(sequences), vocab] (float32, CPU) from one left-padded forward."""
    from playground.core import forward

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


class NextTokenBatcher:
    """One model's request queue and the worker thread that serves it in batches."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.requests: queue.Queue[_Request] = queue.Queue()
        self.batch_sizes: list[int] = []  # observed, for tests and benchmarks
        threading.Thread(target=self._serve, name=f"batcher-{loaded.id}", daemon=True).start()

    def submit(self, ids: list[int]) -> Future:
        request = _Request(list(ids))
        self.requests.put(request)
        return request.future

    def _collect(self) -> list[_Request]:
        batch = [self.requests.get()]
        deadline = time.monotonic() + WINDOW_SECONDS
        while len(batch) < MAX_BATCH:
            timeout = deadline - time.monotonic()
            try:
                request = self.requests.get(timeout=timeout) if timeout > 0 else self.requests.get_nowait()
            except queue.Empty:
                break
            if (len(batch) + 1) * max(len(request.ids), *(len(r.ids) for r in batch)) > MAX_BATCH_TOKENS:
                self.requests.put(request)  # next batch
                break
            batch.append(request)
        return batch

    def _serve(self) -> None:
        while True:
            batch = [r for r in self._collect() if r.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                logits = self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - each waiting request gets the failure
                for request in batch:
                    request.future.set_exception(exc)
                continue
            for request, row in zip(batch, logits):
                request.future.set_result(row)

    def _run(self, batch: list[_Request]) -> torch.Tensor:
        from playground.fastpath import batched_for

        sequences = [request.ids for request in batch]
        static = batched_for(self.loaded)
        if static is not None and static.buckets(len(sequences), max(map(len, sequences))) is not None:
            return static.logits(sequences)  # graph-replayed on CUDA
        return batched_last_logits(self.loaded, sequences)


_BATCHERS: dict[str, NextTokenBatcher] = {}
_LOCK = threading.Lock()


def enabled() -> bool:
    return os.environ.get("PLAYGROUND_BATCHING", "1") != "0"


def batcher_for(loaded: LoadedModel) -> NextTokenBatcher:
    with _LOCK:
        if loaded.id not in _BATCHERS or _BATCHERS[loaded.id].loaded is not loaded:
            _BATCHERS[loaded.id] = NextTokenBatcher(loaded)
        return _BATCHERS[loaded.id]


def next_token_logits(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    """Logits after `ids` [vocab], through the model's batcher (or directly when batching is off).

    Waits no longer than the calling request's deadline (`playground.limits`).
    """
    from concurrent.futures import TimeoutError as FutureTimeout

    limits.check_deadline()
    if not enabled():
        return batched_last_logits(loaded, [ids])[0]
    future = batcher_for(loaded).submit(ids)
    try:
        return future.result(timeout=limits.remaining())
    except FutureTimeout:
        future.cancel()
        limits.check_deadline()
        raise
