"""Per-request limits and fault injection: time limits for runaway requests, injected failures.

- `deadline(seconds)` is a context manager that sets a time limit for the work done in the current
  thread; `check_deadline()` (called by `decoding.forward` before every model call) raises
  `RequestTimeout` once it has passed, so a runaway generation or search stops with a message.
  `remaining()` tells code that waits on another thread (the batcher) how long it may wait.
- `PLAYGROUND_FAULT_INJECTION` (tests and drills only, set by the operator) makes model calls fail
  on purpose: `forward:every=N` raises a simulated CUDA out-of-memory error (`InjectedFault`) on
  every Nth model call of the process (all sessions together: a batched forward of several
  sessions is one call, and fails for all of them); `forward:every=N,kind=memory` raises Python's
  own `MemoryError` instead (what the host's allocator gives), so a drill shows that a real one
  becomes the out-of-memory message too. The failing request gets a message; the server keeps
  serving.

- `check_chat_message(text, stored)`: a chat message is refused before it joins a conversation
  when it is longer than the chat models read (`CHAT_MESSAGE_CHARS`, about 8,000 tokens of
  English: SmolLM2's whole window) or would make the conversation kept in the session longer than
  `CHAT_CONVERSATION_CHARS` (`text_chars` counts what a conversation holds), so what a client sends
  is capped before it is stored and echoed back.

What it leaves out: input validation of individual controls (each tab clamps its own values with
`clamp_int` / `clamp_float`, which turn NaN, strings and out-of-range numbers into a clear message
or the nearest allowed value).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time

from playground import settings
from playground.errors import PlaygroundError

DEFAULT_REQUEST_SECONDS = settings.current().request_timeout
_local = threading.local()
_fault_counter = itertools.count(1)


class RequestTimeout(PlaygroundError):
    """The request ran past its time limit and was stopped."""


class InjectedFault(RuntimeError):
    """A failure injected on purpose (PLAYGROUND_FAULT_INJECTION)."""


@contextlib.contextmanager
def deadline(seconds: float | None = None, limit: float | None = None):
    """Limit the work done in this thread inside the block to `seconds` (default: the app's limit).

    `limit` is the request's whole limit, for the message, when `seconds` is only what is left of it.
    """
    seconds = DEFAULT_REQUEST_SECONDS if seconds is None else seconds
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    _local.limit = seconds if limit is None else limit
    try:
        yield
    finally:
        _local.deadline = previous


def remaining() -> float | None:
    """Seconds left before this thread's deadline (None: no deadline)."""
    end = getattr(_local, "deadline", None)
    return None if end is None else max(0.0, end - time.monotonic())


def check_deadline() -> None:
    end = getattr(_local, "deadline", None)
    if end is not None and time.monotonic() > end:
        raise RequestTimeout(
            f"This request ran past its time limit ({getattr(_local, 'limit', 0):.0f} s) and was stopped. "
            "Try fewer tokens, beams or samples."
        )


FAULT_KINDS = ("cuda", "memory")


def maybe_inject_fault(site: str) -> None:
    """Raise an injected failure at `site` when PLAYGROUND_FAULT_INJECTION asks for it
    (`site:every=N[,kind=cuda|memory]`, see the module docstring)."""
    spec = settings.current().fault_injection
    if not spec.startswith(site + ":"):
        return
    options = dict(part.split("=", 1) for part in spec[len(site) + 1:].split(",") if "=" in part)
    every = int(options.get("every", "0") or 0)
    kind = options.get("kind", "cuda").strip()
    if kind not in FAULT_KINDS:  # an operator's typo: loud in the log, not a silent drill
        raise ValueError(f"PLAYGROUND_FAULT_INJECTION: unknown kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")
    if every and next(_fault_counter) % every == 0:
        if kind == "memory":  # the built-in error, its text without "out of memory": only its type tells
            raise MemoryError("injected fault for testing: no memory for this model call")
        raise InjectedFault("CUDA out of memory (injected fault for testing)")


_MISSING = object()


def clamp_int(value, name: str, low: int, high: int, default=_MISSING) -> int:
    """An integer control's value within [low, high]; a clear message for values that aren't numbers.

    +-infinity clamps to the nearest end; None or "" gives `default` when one is given.
    """
    if default is not _MISSING and value in (None, ""):
        return default
    number = _as_number(value, name)
    return int(round(min(max(number, low), high)))


def clamp_float(value, name: str, low: float, high: float, default=_MISSING) -> float:
    if default is not _MISSING and value in (None, ""):
        return default
    number = _as_number(value, name)
    return float(min(max(number, low), high))


def _as_number(value, name: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = value.strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"{name} must be a number, got {str(value)[:40]!r}.") from None
    if math.isnan(number):
        raise PlaygroundError(f"{name} must be a number, got NaN.")
    return number


CHAT_MESSAGE_CHARS = 32_000
CHAT_CONVERSATION_CHARS = 128_000
ATTRIBUTION_TOKENS = 128  # what "Why this token?" reads at most, start tokens included


def text_chars(value, depth: int = 0) -> int:
    """Characters of every string in `value` (lists, tuples and dict values walked)."""
    if isinstance(value, str):
        return len(value)
    if depth > 20:
        return 0
    if isinstance(value, dict):
        return sum(text_chars(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(text_chars(v, depth + 1) for v in value)
    return 0


def check_chat_message(text: str, stored: int = 0) -> str:
    """`text`, or a PlaygroundError when it is too long to keep (see the module docstring)."""
    if len(text) > CHAT_MESSAGE_CHARS:
        raise PlaygroundError(f"This message has {len(text):,} characters: more than the chat models read "
                              f"(at most {CHAT_MESSAGE_CHARS:,}). Shorten it.")
    if stored + len(text) > CHAT_CONVERSATION_CHARS:
        raise PlaygroundError(f"This conversation already holds {stored:,} characters, more than the model "
                              f"reads (at most {CHAT_CONVERSATION_CHARS:,} are kept): press Clear to start a new one.")
    return text
