"""Which room store this process uses: `PLAYGROUND_ROOM_STORE` read into a store.

`store_for(url)` picks the implementation: "" or "memory" is the in-process store (the embedded
default), `redis://...` the Redis store that several app processes share; `current()` is the one
store of this process (built again only when the setting changes). What it leaves out: the
stores themselves (`memory_store`, `redis_store`).
"""

from __future__ import annotations

import threading

from playground import settings
from playground.errors import PlaygroundError
from playground.rooms.store import RoomStore


def store_for(url: str) -> RoomStore:
    """The store a `PLAYGROUND_ROOM_STORE` value names."""
    url = (url or "").strip()
    if url in ("", "memory"):
        from playground.rooms.memory_store import MemoryStore
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from playground.rooms.redis_store import RedisStore
        return RedisStore(url)
    raise PlaygroundError(f"PLAYGROUND_ROOM_STORE={url[:80]!r} is neither empty (in-process) nor a redis:// URL.")


_current: tuple[str, RoomStore] | None = None
_lock = threading.Lock()


def current() -> RoomStore:
    """This process's store (built again only when PLAYGROUND_ROOM_STORE changes)."""
    global _current
    url = settings.current().room_store
    with _lock:
        if _current is None or _current[0] != url:
            if _current is not None:
                _current[1].close()
            _current = (url, store_for(url))
        return _current[1]
