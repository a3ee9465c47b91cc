"""The server's memory budget: what its caches and new heavy requests share, and what happens near it.

The budget is `PLAYGROUND_MEMORY_BUDGET_MB` when set (> 0), else 2.5 times the server's resident
memory (RSS) with its models loaded (`note_models_loaded`, called by `playground.models` after a
load and by `playground.model_call` after a model's first call, when its weights are resident),
with 4 GiB as the floor; before a model is loaded there is no budget to enforce. Near it:

1. `relieve()`: the caches shrink first. Every bounded cache (`playground.lru.BoundedLRU`: the
   distributions, the lab's decoders, the inside passes, the lens) is emptied; each refills on
   demand with the same results. Then the garbage collector runs and glibc hands freed pages back
   to the system (`malloc_trim`).
2. `admit(what)` before a new heavy request: if RSS is still over the budget after relieving, the
   request is refused with a `PlaygroundError` that says so in words; requests already running
   go on (each is bounded in size and time), and light requests (one model call) are served.
3. `samples_that_fit(k, bytes_each)`: K samples sized by what the budget has left (at least 1).

RSS is read from /proc/self/statm (Linux; elsewhere the budget is not enforced and says so in
`status()`). What it leaves out: the per-request caps on what a client sends (each tab checks its
own input before storing it), the queue's time bounds (`playground.ui.queue_guard`), and GPU memory.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
from dataclasses import dataclass

from playground import lru, settings
from playground.errors import PlaygroundError

AUTO_FACTOR = 2.5
FLOOR_BYTES = 4 * 2**30  # never below 4 GiB (a free Space has 16 GB): one small model loaded must not starve the next
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_lock = threading.Lock()
_loaded_rss: int | None = None  # RSS just after the last model load


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
    if rss is not None:
        with _lock:
            _loaded_rss = max(rss, _loaded_rss or 0)


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

    @property
    def over(self) -> bool:
        return self.rss_bytes is not None and self.limit_bytes is not None and self.rss_bytes > self.limit_bytes

    @property
    def headroom_bytes(self) -> int | None:
        if self.rss_bytes is None or self.limit_bytes is None:
            return None
        return self.limit_bytes - self.rss_bytes

    def as_dict(self) -> dict:
        mb = lambda value: None if value is None else round(value / 2**20, 1)  # noqa: E731
        return {"rss_mb": mb(self.rss_bytes), "budget_mb": mb(self.limit_bytes), "over": self.over,
                "enforced": self.rss_bytes is not None and self.limit_bytes is not None}


def status() -> Status:
    return Status(rss_bytes(), limit_bytes())


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
            f"The server is short of memory ({now.rss_bytes / 2**20:,.0f} MB in use, budget "
            f"{now.limit_bytes / 2**20:,.0f} MB), so it cannot start {what} now. Requests that are running "
            "go on and free their memory as they end: try again in a minute.")


def samples_that_fit(k: int, bytes_each: int) -> int:
    """How many of `k` samples (each needing about `bytes_each`) the budget has room for now (>= 1)."""
    headroom = status().headroom_bytes
    if headroom is None or bytes_each <= 0:
        return k
    return max(1, min(k, headroom // bytes_each))
