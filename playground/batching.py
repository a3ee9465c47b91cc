"""Grouping concurrent next-token requests from different sessions into one padded forward pass.

A lecture hall sends many small requests at once. One worker thread per model takes every request
waiting in its queue (after a short window of a few milliseconds in which more may arrive), pads
the prompts on the left to one length, and runs one forward pass with an attention mask and
explicit positions, so each row's logits equal an unbatched call's within padding numerics. A lone
request is not delayed beyond the window (none by default). On CUDA a batch that fits the static
buckets (up to 64 prompts of up to 512 tokens) is a replayed CUDA graph
(`playground.fastpath.BatchedNextToken`).

The batcher is a part of the model's runtime (`LoadedModel.runtime`): unloading the model stops its
worker. `PLAYGROUND_BATCHING=0` turns batching off (every request runs on its own). What it leaves
out: the model call itself (`playground.model_call`), the static CUDA-graph path
(`playground.fastpath`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import torch

from playground import fastpath, limits
from playground.errors import PlaygroundError
from playground.model_call import forward
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
        self.requests: queue.Queue[_Request | None] = queue.Queue()
        self.batch_sizes: list[int] = []  # observed, for tests and benchmarks
        self.closed = False
        threading.Thread(target=self._serve, name=f"batcher-{loaded.id}", daemon=True).start()

    def close(self) -> None:
        """Stop the worker (the model is being unloaded); requests still queued fail."""
        self.closed = True
        self.requests.put(None)

    def submit(self, ids: list[int]) -> Future:
        request = _Request(list(ids))
        self.requests.put(request)
        return request.future

    def _collect(self) -> list[_Request]:
        first = self.requests.get()
        if first is None:
            return []
        batch = [first]
        deadline = time.monotonic() + WINDOW_SECONDS
        while len(batch) < MAX_BATCH:
            timeout = deadline - time.monotonic()
            try:
                request = self.requests.get(timeout=timeout) if timeout > 0 else self.requests.get_nowait()
            except queue.Empty:
                break
            if request is None:
                self.requests.put(None)  # seen by the loop after this batch
                break
            if (len(batch) + 1) * max(len(request.ids), *(len(r.ids) for r in batch)) > MAX_BATCH_TOKENS:
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
                logits = self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - each waiting request gets the failure
                for request in batch:
                    request.future.set_exception(exc)
                continue
            for request, row in zip(batch, logits):
                request.future.set_result(row)
        while True:  # closed: whatever still waits fails at once instead of at its deadline
            try:
                request = self.requests.get_nowait()
            except queue.Empty:
                return
            if request is not None and request.future.set_running_or_notify_cancel():
                request.future.set_exception(PlaygroundError(f"Model {self.loaded.id} was unloaded."))

    def _run(self, batch: list[_Request]) -> torch.Tensor:
        sequences = [request.ids for request in batch]
        static = fastpath.batched_for(self.loaded)
        if static is not None and static.buckets(len(sequences), max(map(len, sequences))) is not None:
            return static.logits(sequences)  # graph-replayed on CUDA
        return batched_last_logits(self.loaded, sequences)


def enabled() -> bool:
    return os.environ.get("PLAYGROUND_BATCHING", "1") != "0"


def batcher_for(loaded: LoadedModel) -> NextTokenBatcher:
    """The model's batcher (started on first use, stopped when the model is unloaded)."""
    return loaded.runtime.part("next-token-batcher", lambda: NextTokenBatcher(loaded))


def next_token_logits(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    """Logits after `ids` [vocab], through the model's batcher (or directly when batching is off).

    Waits no longer than the calling request's deadline (`playground.limits`).
    """
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
