"""Shared pieces of the UI: error handling for event handlers, the Stop buttons, model choices, the
status line.

`user_errors` wraps a handler so a `PlaygroundError` becomes a `gr.Error` with its message, an
out-of-memory error (CUDA's, or the host's) becomes `OUT_OF_MEMORY`, and any other exception
becomes a short generic message (logged with its traceback on the server, never
shown to the user); `user_message` gives those words, for a streamed view that says them in its
panel before the error ends the stream (`halted_note` words it for a panel that ended early). It
works for plain and generator (streaming) handlers.

Stop buttons never cancel a stream through Gradio (`cancels=`): Gradio 6.31 answers a cancelled
stream with a completion message that carries no data, the page's handler throws on it and marks
that event's outputs as failed, a bare red "Error" badge next to the correct "Stopped after ..."
note (unless a later event happened to repaint them first: 4 Stops in 5 showed it). Instead a
Stop button presses its session's `StopSignal` (`connect_stop`), and `user_errors` ends a stream
that takes that signal between two of its steps by throwing `StopPressed` into it, which the
handler may catch to yield a last view that says so; a request of that session still waiting in
the queue is taken out of it and answered with an empty success. What it leaves out: layout;
each tab lays itself out.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import time

import gradio as gr

from playground import backends, limits, models
from playground.backends import backend_for
from playground.errors import PlaygroundError

log = logging.getLogger("playground.ui")

INTERNAL_ERROR = "Something went wrong while computing this; the server is still running. Please try again."


OUT_OF_MEMORY = ("The server ran out of memory for this request and stopped it; it is still running. "
                 "Try a shorter prompt, or fewer tokens, beams or samples.")


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def user_message(exc: BaseException) -> str:
    """The words a user gets for `exc`: its own message (a `PlaygroundError` or `gr.Error`),
    `OUT_OF_MEMORY`, or `INTERNAL_ERROR` (logged with its traceback). Call it once per failure: it
    logs, and after running out of memory it hands the CUDA cache back."""
    if isinstance(exc, gr.Error):
        return str(exc.message)
    if isinstance(exc, PlaygroundError):
        return str(exc)
    if _is_out_of_memory(exc):
        log.warning("request ran out of memory: %s", exc)
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # hand the failed request's blocks back for the next ones
        return OUT_OF_MEMORY
    log.error("handler failed", exc_info=exc)
    return INTERNAL_ERROR


def _as_gr_error(exc: Exception) -> gr.Error:
    return exc if isinstance(exc, gr.Error) else gr.Error(user_message(exc))


def halted_note(count: int | None, exc: BaseException | None = None, message: str | None = None,
                unit: str = "token") -> str:
    """Why a stream's panel ended early, in words: Stop (`exc` None), the time limit, or an error
    (`message`, from `user_message`). `count` is how many `unit`s it had made (None: it had not begun)."""
    if count is None:
        done = f"before the first {unit}"
    else:
        done = f"after {count} {unit}" + ("" if count == 1 else "s")
    if exc is None:
        return f"Stopped {done}: you pressed Stop."
    if isinstance(exc, limits.RequestTimeout):
        advice = "try again, or a shorter prompt" if count is None else f"try fewer {unit}s"
        return f"Stopped at the time limit ({limits.DEFAULT_REQUEST_SECONDS:.0f} s) {done}: {advice}."
    message = message or user_message(exc)
    return f"Not run: {message}" if count is None else f"Stopped {done}: {message}"


class StopPressed(BaseException):
    """Thrown into a streaming handler at its `yield` once its session pressed Stop (`StopSignal`).

    A BaseException, so `except Exception` (the handlers' failure paths) lets it through; not a
    GeneratorExit, which `yield from` would turn into closing the inner generator. A handler may
    catch it and yield a last view that says it stopped; left alone, it ends the stream quietly."""


class StopSignal:
    """The Stop button of one tab in one browser session; kept in a `gr.State(StopSignal())` (copied
    for each session; a callable value would add a queued load event), which hands the same object
    to the Stop button and to the streams it stops (`connect_stop`)."""

    def __init__(self):
        self.presses = 0

    def press(self) -> None:
        self.presses += 1


def _stop_signal(args, kwargs) -> StopSignal | None:
    return next((value for value in (*args, *kwargs.values()) if isinstance(value, StopSignal)), None)


def connect_stop(button, signal, runs):
    """Make `button` stop `runs` (event listeners of streaming handlers that take `signal`, a
    `gr.State(StopSignal())`) in its session: a running one ends after its current step, with its own
    last view; one still waiting in the queue is taken out of it and never runs. Returns the
    button's event, for `.then`."""
    run_ids = {run["id"] for run in runs}  # a listener's config: its fn index

    async def press_stop(stop_signal, request: gr.Request):
        if isinstance(stop_signal, StopSignal):
            stop_signal.press()
        await drop_waiting(getattr(request, "session_hash", None), run_ids)

    return button.click(press_stop, signal, None, queue=False, api_name=False, show_progress="hidden")


async def drop_waiting(session_hash: str | None, fn_ids: set) -> int:
    """Take `session_hash`'s events of the handlers `fn_ids` (fn indices) that have not started yet
    out of the app's queue and answer each with an empty success (its outputs keep what they show);
    returns how many. This reaches into Gradio's queue like `queue_guard` (pinned gradio==6.31.0)."""
    from gradio.context import LocalContext
    from gradio.server_messages import ProcessCompletedMessage

    queue = getattr(LocalContext.blocks.get(None), "_queue", None)
    if queue is None or not session_hash:
        return 0
    from playground.ui.queue_guard import withdraw

    dropped = await withdraw(queue, lambda event: event.session_hash == session_hash
                             and getattr(event.fn, "_id", None) in fn_ids)
    for event in dropped:
        queue.send_message(event, ProcessCompletedMessage(output={"data": []}, success=True))
    return len(dropped)


def user_errors(fn):
    """Decorator: user-facing messages instead of tracebacks (plain and generator handlers).

    The handler also runs under the request time limit (`playground.limits.deadline`): model calls
    past it raise a `RequestTimeout`, shown as a message. A streaming handler's limit covers the
    whole stream; each step runs under what is left of it (Gradio may resume a generator on another
    worker thread, so the limit is set again around every step). A streaming handler given a
    `StopSignal` argument gets `StopPressed` thrown in at its `yield` once that signal is pressed.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            end = time.monotonic() + limits.DEFAULT_REQUEST_SECONDS
            signal = _stop_signal(args, kwargs)
            seen = signal.presses if signal is not None else 0
            iterator = None
            try:
                iterator = fn(*args, **kwargs)
                while True:
                    with limits.deadline(max(0.0, end - time.monotonic()), limit=limits.DEFAULT_REQUEST_SECONDS):
                        try:
                            if signal is not None and signal.presses != seen:  # Stop: between two steps
                                seen = signal.presses
                                item = iterator.throw(StopPressed())
                            else:
                                item = next(iterator)
                        except (StopIteration, StopPressed):
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


def model_choices(role: str | None = None, tab: str | None = None) -> list[tuple[str, str]]:
    """(label, id) pairs for a model dropdown: available, non-hidden models, optionally of one role;
    `tab`: the models whose backend runs what that tab needs too (`backends.runs_in`: an engine
    model even while its server is down)."""
    return [
        (f"{info.id} ({info.role}{backend_for(info.id).kind_label})", info.id)
        for info in models.list_models(include_hidden=False)
        if backends.runs_in(info, tab) and (role is None or info.role == role)
    ]


def status_markdown() -> str:
    """The header's one line: the device and how many models are ready, loaded, or cannot be used
    here (each model in `status_details`)."""
    from playground.device import resolve_device

    infos = backends.model_infos(include_hidden=False)
    loaded = {m.id for m in models.loaded_models()}
    served = [i for i in infos if backend_for(i.id).remote]
    ready = [i for i in infos if i.available and i not in served]
    parts = [f"Device: **{resolve_device().type}**",
             f"{len(ready)} model{'s' if len(ready) != 1 else ''} ready ({len([i for i in ready if i.id in loaded])} loaded)"]
    if served:
        parts.append(f"{len(served)} on engine{'s' if len(served) != 1 else ''}")
    unusable = len(infos) - len(ready) - len(served)
    if unusable:
        parts.append(f"{unusable} not usable here (see Models)")
    problems = len(models.model_list_problems())
    if problems:
        parts.append(f"{problems} models-file entr{'ies' if problems != 1 else 'y'} refused")
    return " · ".join(parts)


def status_details() -> str:
    """One line per model: its label, role, where it comes from, and its state, in plain words."""
    loaded = {m.id: m for m in models.loaded_models()}
    lines = []
    for info in backends.model_infos(include_hidden=False):
        where = f", {html.escape(info.where)}" if info.where and info.origin != "built-in" else ""
        label = html.escape(info.label or info.id)
        state = backend_for(info.id).state(info.available, info.reason, loaded.get(info.id))
        lines.append(f"- **{label}** ({info.role}{where}): {html.escape(state)}")
    for problem in models.model_list_problems():
        lines.append(f"- models file: {html.escape(str(problem))}")
    return "\n".join(lines) or "No models."
