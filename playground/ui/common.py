"""Shared pieces of the UI: error handling for event handlers, model choices, the status line.

`user_errors` wraps a handler so a `PlaygroundError` becomes a `gr.Error` with its message, an
out-of-memory error (CUDA's, or the host's) becomes `OUT_OF_MEMORY`, and any other exception
becomes a short generic message (logged with its traceback on the server, never
shown to the user). It works for plain and generator (streaming) handlers. What it leaves out:
layout; each tab lays itself out.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import time

import gradio as gr

from playground import limits, models
from playground.errors import PlaygroundError

log = logging.getLogger("playground.ui")

INTERNAL_ERROR = "Something went wrong while computing this; the server is still running. Please try again."


OUT_OF_MEMORY = ("The server ran out of memory for this request and stopped it; it is still running. "
                 "Try a shorter prompt, or fewer tokens, beams or samples.")


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def _as_gr_error(exc: Exception) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, PlaygroundError):
        return gr.Error(str(exc))
    if _is_out_of_memory(exc):
        log.warning("request ran out of memory: %s", exc)
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # hand the failed request's blocks back for the next ones
        return gr.Error(OUT_OF_MEMORY)
    log.exception("handler failed")
    return gr.Error(INTERNAL_ERROR)


def user_errors(fn):
    """Decorator: user-facing messages instead of tracebacks (plain and generator handlers).

    The handler also runs under the request time limit (`playground.limits.deadline`): model calls
    past it raise a `RequestTimeout`, shown as a message. A streaming handler's limit covers the
    whole stream; each step runs under what is left of it (Gradio may resume a generator on another
    worker thread, so the limit is set again around every step).
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            end = time.monotonic() + limits.DEFAULT_REQUEST_SECONDS
            iterator = None
            try:
                iterator = fn(*args, **kwargs)
                while True:
                    with limits.deadline(max(0.0, end - time.monotonic()), limit=limits.DEFAULT_REQUEST_SECONDS):
                        try:
                            item = next(iterator)
                        except StopIteration:
                            return
                    yield item
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                raise _as_gr_error(exc) from None
            finally:  # a Stop (cancel) closes this wrapper: close the handler too, at once
                if iterator is not None:
                    iterator.close()
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with limits.deadline():
                return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise _as_gr_error(exc) from None
    return wrapper


def model_choices(role: str | None = None) -> list[tuple[str, str]]:
    """(label, id) pairs for a model dropdown: available, non-hidden models, optionally of one role."""
    return [
        (f"{info.id} ({info.role})", info.id)
        for info in models.list_models(include_hidden=False)
        if info.available and (role is None or info.role == role)
    ]


def status_markdown() -> str:
    """One line per model: availability, whether loaded, on which device."""
    from playground.device import resolve_device

    device = resolve_device()
    loaded = {m.id: m for m in models.loaded_models()}
    parts = []
    for info in models.list_models(include_hidden=False):
        if not info.available:
            state = f"unavailable: {html.escape(info.reason)}"
        elif info.id in loaded:
            state = f"loaded ({loaded[info.id].dtype}".replace("torch.", "") + f", {loaded[info.id].load_seconds:.1f} s)"
        else:
            state = "loads on first use"
        parts.append(f"**{html.escape(info.id)}** ({info.role}): {state}")
    return f"Device: **{device.type}** · " + " · ".join(parts)
