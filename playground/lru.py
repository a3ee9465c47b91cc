"""A thread-safe least-recently-used map bounded by entry count and, optionally, by bytes.

Two caches of the playground hold memory that grows with a lecture hall, and both are one of
these: the distributions after a sequence (`playground.decoding`, bounded by bytes: a Gemma 3
distribution is 1 MB) and the lab's KV-cached decoders (`playground.lab`, bounded by count: each
holds a KV cache). An entry pushed out calls `on_evict(key, value)`, e.g. to hand a decoder's
static cache back. `clear_all()` empties every one of them (the memory budget's first relief). What
it leaves out: time-based expiry (sessions expire in the UI layer).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

_every_cache: "weakref.WeakSet[BoundedLRU]" = weakref.WeakSet()


def clear_all() -> int:
    """Empty every bounded cache of the process (`playground.memory_budget` under memory pressure);
    returns how many entries went. Each refills on demand with the same results."""
    dropped = 0
    for cache in list(_every_cache):
        dropped += len(cache)
        cache.clear()
    return dropped


class BoundedLRU:
    def __init__(self, max_entries: int, max_bytes: int | None = None,
                 on_evict: Callable[[Hashable, object], None] | None = None):
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.on_evict = on_evict
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0  # observed, for tests and benchmarks
        _every_cache.add(self)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable):
        """The value (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def pop(self, key: Hashable):
        """Take the value out (None if absent): a decoder lent to one request at a time."""
        with self._lock:
            item = self._items.pop(key, None)
            if item is None:
                return None
            self._bytes -= item[1]
            return item[0]

    def put(self, key: Hashable, value, nbytes: int = 0) -> None:
        evicted = []
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
                if old[0] is not value:
                    evicted.append((key, old[0]))
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while len(self._items) > self.max_entries or (
                    self.max_bytes is not None and self._bytes > self.max_bytes and len(self._items) > 1):
                old_key, (old_value, old_bytes) = self._items.popitem(last=False)
                self._bytes -= old_bytes
                self.evictions += 1
                evicted.append((old_key, old_value))
        for old_key, old_value in evicted:  # outside the lock: a callback may take other locks
            if self.on_evict is not None:
                self.on_evict(old_key, old_value)

    def clear(self) -> None:
        with self._lock:
            items, self._items, self._bytes = list(self._items.items()), OrderedDict(), 0
        for key, (value, _) in items:
            if self.on_evict is not None:
                self.on_evict(key, value)

    close = clear  # a part of a model's runtime: unloading the model empties it
