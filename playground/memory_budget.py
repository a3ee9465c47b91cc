"""The server's memory budget: what its caches and new heavy requests share, and what happens near it.

The budget is `PLAYGROUND_MEMORY_BUDGET_MB` when set (> 0), else 2.5 times the server's resident
memory (RSS) with its models loaded (`note_models_loaded`, called by `playground.models` after a
load and by `playground.model_call` after a model's first call, when its weights are resident),
with 4 GiB as the floor; before a model is loaded there is no budget to enforce. Near it:

1. `relieve()`: the caches shrink first. Every bounded cache (`playground.lru.BoundedLRU`: the
   distributions, the lab's decoders, the inside passes, the lens) is emptied; each refills on
   demand with the same results. Then the garbage collector runs and glibc hands freed pages back
   to the system (`malloc_trim`).
2. `admit(what)` before a new heavy request: if RSS plus what running requests have reserved is
   still over the budget after relieving, the request is refused with a `PlaygroundError` that
   says so in words.
3. `reserved_samples(k, bytes_each)`: K samples sized by what the budget has left (at least 1),
   and that memory reserved until the samples end, so two requests never count the same headroom.
4. `check_running()` before every model call of a heavy request (one that grows: the caller marks
   it with `growing()`): at RSS within `STOP_MARGIN` of the budget (after relieving) it is stopped
   in words, so the memory a request grows into (its KV cache, one step at a time) never carries
   the server past its budget. Light requests (one model call) are served whatever the budget.

RSS is read from /proc/self/statm (Linux; elsewhere the budget is not enforced and says so in
`status()`). What it leaves out: the per-request caps on what a client sends (each tab checks its
own input before storing it), the queue's time bounds (`playground.ui.queue_guard`), and GPU memory.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import gc
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from playground import lru, settings
from playground.errors import PlaygroundError

AUTO_FACTOR = 2.5
FLOOR_BYTES = 4 * 2**30  # never below 4 GiB (a free Space has 16 GB): one small model loaded must not starve the next
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_lock = threading.Lock()
STOP_MARGIN = 0.05  # a running request stops when RSS is within 5% of the budget: one more step must fit
_loaded_rss: int | None = None  # RSS just after the last model load
_reserved = 0  # bytes promised to running requests (K samples) that RSS may not show yet
_log = logging.getLogger("playground.memory")
_growing: contextvars.ContextVar[bool] = contextvars.ContextVar("playground_memory_growing", default=False)


def _glibc():
    """glibc, whose malloc_trim hands freed pages back to the system; None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def rss_bytes() -> int | None:
    """The process's resident memory now, or None where /proc is not there."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def note_models_loaded() -> None:
    """Called once a model has loaded: the automatic budget grows with the models the server holds."""
    global _loaded_rss
    rss = rss_bytes()
    if rss is None:
        return
    with _lock:
        grew = rss > (_loaded_rss or 0)
        _loaded_rss = max(rss, _loaded_rss or 0)
    limit = limit_bytes()
    if grew and limit is not None:  # one line per growth, so the operator (and bench_hostile) can read it
        _log.info("memory budget %.0f MB (resident with the models loaded: %.0f MB)", limit / 2**20, rss / 2**20)


def limit_bytes() -> int | None:
    """The budget in bytes: the setting, else 2.5x RSS with the models loaded (None before any loads)."""
    configured = settings.current().memory_budget_mb
    if configured and configured > 0:
        return int(configured * 2**20)
    with _lock:
        return None if _loaded_rss is None else max(FLOOR_BYTES, int(AUTO_FACTOR * _loaded_rss))


@dataclass(frozen=True)
class Status:
    rss_bytes: int | None
    limit_bytes: int | None
    reserved_bytes: int = 0

    @property
    def enforced(self) -> bool:
        return self.rss_bytes is not None and self.limit_bytes is not None

    @property
    def over(self) -> bool:
        """RSS plus the running requests' reservations is past the budget: no new heavy request."""
        return self.enforced and self.rss_bytes + self.reserved_bytes > self.limit_bytes

    @property
    def at_stop_line(self) -> bool:
        """RSS alone is within `STOP_MARGIN` of the budget: running requests stop."""
        return self.enforced and self.rss_bytes > (1 - STOP_MARGIN) * self.limit_bytes

    @property
    def headroom_bytes(self) -> int | None:
        """What a new request may grow into: up to the stop line, less what is reserved."""
        if not self.enforced:
            return None
        return int((1 - STOP_MARGIN) * self.limit_bytes) - self.rss_bytes - self.reserved_bytes

    def as_dict(self) -> dict:
        mb = lambda value: None if value is None else round(value / 2**20, 1)  # noqa: E731
        return {"rss_mb": mb(self.rss_bytes), "budget_mb": mb(self.limit_bytes),
                "reserved_mb": mb(self.reserved_bytes), "over": self.over, "enforced": self.enforced}

    def in_words(self) -> str:
        return f"{self.rss_bytes / 2**20:,.0f} MB in use, budget {self.limit_bytes / 2**20:,.0f} MB"


def status() -> Status:
    return Status(rss_bytes(), limit_bytes(), _reserved)


def relieve() -> Status:
    """Shrink what can be rebuilt: empty every bounded cache, collect garbage, return freed pages."""
    lru.clear_all()
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    return status()


def admit(what: str = "this request") -> None:
    """Let a new heavy request start, or refuse it in words when the server is over its budget
    even after its caches were emptied."""
    now = status()
    if not now.over:
        return
    now = relieve()
    if now.over:
        raise PlaygroundError(
            f"The server is short of memory ({now.in_words()}), so it cannot start {what} now. Requests "
            "that are running go on and free their memory as they end: try again in a minute.")


@contextlib.contextmanager
def growing() -> Iterator[None]:
    """Mark the request run inside as heavy: its model calls check the stop line (`check_running`).
    A context variable, so the worker threads a request's steps run on see it."""
    token = _growing.set(True)
    try:
        yield
    finally:
        _growing.reset(token)


def check_running() -> None:
    """Before a model call of a heavy request (`growing`): stop it in words when RSS is at the stop
    line (within `STOP_MARGIN` of the budget) even after the caches were emptied."""
    if not _growing.get() or not status().at_stop_line:
        return
    now = relieve()
    if now.at_stop_line:
        raise PlaygroundError(
            f"The server ran short of memory ({now.in_words()}), so this request was stopped before it "
            "could grow past it. Try fewer tokens or samples, a shorter prompt, or again in a minute.")


@contextlib.contextmanager
def reserved_samples(k: int, bytes_each: int) -> Iterator[int]:
    """How many of `k` samples (each needing about `bytes_each`) the budget has room for now (>= 1),
    with their memory reserved until the block ends."""
    global _reserved
    rss, limit = rss_bytes(), limit_bytes()
    with _lock:  # headroom read and reserved at once: two requests never count the same headroom
        now = Status(rss, limit, _reserved)
        fits = k if now.headroom_bytes is None or bytes_each <= 0 else max(1, min(k, now.headroom_bytes // bytes_each))
        held = fits * max(0, bytes_each) if now.enforced else 0
        _reserved += held
    try:
        yield fits
    finally:
        with _lock:
            _reserved -= held
