"""A bound on the time a request waits in Gradio's queue: a busy server says so instead of
answering minutes late.

A lecture hall sends its requests within seconds of each other. Gradio queues each one in its
concurrency group (`playground.ui.shell.EVENT_GROUPS`) and, left alone, would run the last of them
many minutes later, long after its student gave up. Two checks bound the wait at
`max_wait_seconds` (`PLAYGROUND_QUEUE_WAIT`, default 45 s):

- when a request joins the queue, its wait is predicted from the requests running and ahead of it
  in its group, the group's concurrency and each handler's recent whole run time (measured here:
  Gradio itself times only a stream's first chunk). If the
  prediction passes the bound, the request is answered at once with "The server is busy: N
  requests are ahead of you ..." and never runs;
- a request is refused at once only when a full round of requests is ahead of it (at least the
  group's concurrency): one with fewer ahead (one ahead of a two-slot group) is never refused on a
  prediction, since it starts as soon as the requests running now end;
- a sweep (every `SWEEP_SECONDS`) answers each request that has waited past the bound with "your
  request waited N s ... was not started" the moment it passes it, so no request waits past the
  bound (plus the sweep's period) before being refused; `check_start` catches one that starts in
  between.

The run-time estimate follows the server: a run faster than the estimate replaces it at once (after
a flood, the first normal run brings it back), a slower one moves it by 30 % (moving average).

Per-client fairness, checked first when a request joins the queue: a session may hold at most
`PLAYGROUND_CLIENT_HEAVY` heavy requests (the `heavy` concurrency group) queued or running, a
network address at most `PLAYGROUND_ADDRESS_HEAVY` (0: no limit, the default, since a hall behind
one proxy or NAT shares an address); one more is refused at once in words (`held_message`), so
one client cannot fill every heavy slot and the queue behind it.

While a request waits, the page shows its queue position (Gradio's own progress display). The
refusal is an ordinary `gr.Error`-shaped message: it appears in words where the request's outputs
are. What it leaves out: the run time of a request once started (`playground.limits`), the queue's
size cap (`Blocks.queue(max_size=...)`). This module reaches into Gradio's queue (`Queue.push`,
`Event.enqueue_time`): it is written against the pinned gradio==6.31.0 and tested against it.
"""

from __future__ import annotations

import asyncio
import math
import time

import gradio as gr
from gradio.server_messages import ProcessCompletedMessage

from playground import settings

MAX_WAIT_SECONDS = settings.current().queue_wait
SWEEP_SECONDS = 0.5
BUSY_TITLE = "Server busy"


def busy_message(ahead: int, seconds: float) -> str:
    requests = "request is" if ahead == 1 else "requests are"
    return (f"The server is busy: {ahead} {requests} ahead of you (about {seconds:.0f} s of waiting). "
            "Nothing was run; try again in a minute.")


def waited_message(seconds: float) -> str:
    return (f"The server is busy: your request waited {seconds:.0f} s in the queue and was not started. "
            "Try again in a minute.")


def held_message(held: int, by_address: bool) -> str:
    who = "Requests from your network address" if by_address else "Your session"
    have = "have" if by_address else "has"
    return (f"{who} already {have} {held} long request{'s' if held != 1 else ''} (generations, samples, beams, "
            "BPE training) queued or running: wait for one to finish, or stop it, then try again.")


def client_address(event) -> str | None:
    client = getattr(getattr(event, "request", None), "client", None)
    return getattr(client, "host", None)


def held_by(queue, event, same) -> int:
    """Requests other than `event` in its concurrency group, waiting or running, for which `same(e)`."""
    group = queue.event_queue_per_concurrency_id.get(event.concurrency_id)
    waiting = list(group.queue) if group is not None else []
    running = [e for job in list(queue.active_jobs) if job for e in job]
    return sum(1 for e in waiting + running
               if e is not event and e.concurrency_id == event.concurrency_id and same(e))


def fairness_refusal(queue, event, heavy_groups=("heavy",)) -> str | None:
    """The message refusing `event` because its client already holds its share of heavy requests."""
    if event.concurrency_id not in heavy_groups:
        return None
    current = settings.current()
    if current.client_heavy > 0:
        held = held_by(queue, event, lambda e: e.session_hash == event.session_hash)
        if held >= current.client_heavy:
            return held_message(held, by_address=False)
    address = client_address(event)
    if current.address_heavy > 0 and address is not None:
        held = held_by(queue, event, lambda e: client_address(e) == address)
        if held >= current.address_heavy:
            return held_message(held, by_address=True)
    return None


def predicted_wait(queue, event, run_seconds: dict) -> tuple[int, float | None]:
    """(requests ahead of `event` in its group, predicted seconds until it starts, or None when some
    handler involved has no measured run time yet). `run_seconds` maps a handler to its average
    whole run time (a stream's, not its first chunk's, which is all Gradio measures)."""
    group = queue.event_queue_per_concurrency_id[event.concurrency_id]
    ahead = group.queue[: group.queue.index(event)] if event in group.queue else []
    if not ahead:
        return 0, 0.0
    if any(e.fn not in run_seconds for e in ahead):
        return len(ahead), None
    now = time.time()
    running = [max(0.0, run_seconds.get(fn, 0.0) - (now - start))
               for fn, starts in group.start_times_per_fn.items() for start in starts]
    slots = max(1, group.concurrency_limit or 1)
    # the first `slots - len(running)` requests ahead start at once; each later one when a slot frees
    return len(ahead), (sum(running) + sum(run_seconds[e.fn] for e in ahead)) / slots


async def withdraw(queue, chosen) -> list:
    """Take the waiting events for which `chosen(event)` is true out of Gradio's queue (they will
    never run) and return them; the caller answers each with `queue.send_message`."""
    taken = []
    async with queue.delete_lock:
        for group in queue.event_queue_per_concurrency_id.values():
            for event in [e for e in group.queue if chosen(e)]:
                group.queue.remove(event)
                queue.event_ids_to_events.pop(event._id, None)
                taken.append(event)
    return taken


class QueueGuard:
    """Installed on one app's queue (`install`), consulted again when an event starts (`check_start`)."""

    def __init__(self, max_wait_seconds: float = MAX_WAIT_SECONDS):
        self.max_wait_seconds = max_wait_seconds
        self.refused = 0  # observed, for tests and benchmarks (busy and fairness refusals)
        self.run_seconds: dict = {}  # handler -> its recent whole run time (moving average)
        self._sweeper: asyncio.Task | None = None

    def install(self, app: gr.Blocks) -> None:
        queue = app._queue
        push, process_events = queue.push, queue.process_events

        async def guarded_push(body, request, username):
            success, event_id, state = await push(body=body, request=request, username=username)
            event = queue.event_ids_to_events.get(event_id) if success else None
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = asyncio.create_task(self._sweep(queue))
            if event is not None:
                unfair = fairness_refusal(queue, event)
                if unfair is not None:
                    await self._refuse(queue, event, unfair)
                    return success, event_id, state
                ahead, seconds = predicted_wait(queue, event, self.run_seconds)
                slots = max(1, queue.event_queue_per_concurrency_id[event.concurrency_id].concurrency_limit or 1)
                if seconds is not None and ahead >= slots and seconds > self.max_wait_seconds:
                    await self._refuse(queue, event, busy_message(ahead, seconds))
            return success, event_id, state

        async def timed_process_events(events, batch, begin_time, fn):
            started = time.monotonic()
            try:
                return await process_events(events, batch, begin_time, fn)
            finally:
                seconds = time.monotonic() - started
                previous = self.run_seconds.get(fn)
                # down at once (the server is fast again), up by a moving average (one slow run is noise)
                self.run_seconds[fn] = seconds if previous is None or seconds < previous else \
                    0.7 * previous + 0.3 * seconds

        queue.push = guarded_push
        queue.process_events = timed_process_events
        app.queue_guard = self

    async def _sweep(self, queue) -> None:
        """Answer every request that has waited past the bound, as it passes it (runs while the queue does)."""
        while not queue.stopped:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            late = await withdraw(queue, lambda event: now - event.enqueue_time > self.max_wait_seconds)
            for event in late:
                self.refused += 1
                queue.send_message(event, ProcessCompletedMessage(
                    output={"error": waited_message(now - event.enqueue_time), "title": BUSY_TITLE,
                            "visible": True, "duration": 15},
                    title=BUSY_TITLE, success=False))

    async def _refuse(self, queue, event, message: str) -> None:
        if not await withdraw(queue, lambda waiting: waiting is event):
            return  # already started or cancelled
        self.refused += 1
        queue.send_message(event, ProcessCompletedMessage(
            output={"error": message, "title": BUSY_TITLE, "visible": True, "duration": 15},
            title=BUSY_TITLE, success=False))

    def check_start(self, app: gr.Blocks, event_id: str | None) -> None:
        """Raise the busy message for an event that waited past the bound before it started (call it
        on an event's first `process_api` only: a stream's later chunks come through there too)."""
        queue = getattr(app, "_queue", None)
        event = queue.event_ids_to_events.get(event_id) if queue is not None and event_id else None
        if event is None:
            return
        waited = time.monotonic() - event.enqueue_time
        if waited > self.max_wait_seconds and math.isfinite(waited):
            self.refused += 1
            raise gr.Error(waited_message(waited), title=BUSY_TITLE, duration=15, print_exception=False)
