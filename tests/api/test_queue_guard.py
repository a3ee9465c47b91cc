"""A busy server says so instead of answering minutes late (`playground.ui.queue_guard`).

An app with one generation slot and a queue wait bound of 2 s: while a long generation runs, a
request queued behind it is refused when its turn comes (it waited past the bound), and one that
would have to wait behind another is refused at once with the number of requests ahead of it.
Cheap requests (their own concurrency group) are served all along, and so is the next generation.
"""

from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.conftest import start_app, stop_app, wait_in_queue

MODEL = "smollm2-135m-instruct"
RULES = (1.0, 0, 1.0, 0.0, "transformers")


@pytest.fixture(scope="module")
def busy_app():
    url, process = start_app({"PLAYGROUND_HEAVY_CONCURRENCY": "1", "PLAYGROUND_QUEUE_WAIT": "2"},
                             log_name="queue-guard-app.log")
    yield url
    stop_app(process)


def _session(url: str, i: int) -> Client:
    client = Client(url, verbose=False)
    client.predict(MODEL, False, f"Student {i} asks: what is a token?", 10, False, *RULES,
                   api_name="/sampling_distribution")
    return client


def _generate(client: Client, n: int):
    return client.submit(n, "", 10, False, *RULES, 1, api_name="/sampling_generate")


def _error(job) -> str:
    with pytest.raises(AppError) as raised:
        job.result(timeout=300)
    return str(raised.value)


def test_requests_that_would_wait_too_long_are_refused_in_words(busy_app):
    students = [_session(busy_app, i) for i in range(4)]
    _generate(students[0], 60).result(timeout=300)  # the guard now knows how long a generation takes
    long_job = _generate(students[0], 200)
    deadline = time.monotonic() + 120
    while not long_job.outputs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert long_job.outputs(), "the long generation did not start"
    second = _generate(students[1], 5)  # first in line: nothing ahead, so it waits ...
    wait_in_queue(second, "the second request")
    third = _generate(students[2], 5)  # ... and this one would wait behind it
    message = _error(third)
    assert message.startswith("The server is busy: 1 request is ahead of you") and "try again" in message
    tokens = students[3].predict("cl100k_base", "hello world", api_name="/tokenize")  # cheap calls still run
    assert tokens is not None and not second.done()
    message = _error(second)  # its turn came after the bound
    assert message.startswith("The server is busy: your request waited") and "was not started" in message
    long_job.cancel()
    done = students[1].predict(3, "", 10, False, *RULES, 1, api_name="/sampling_generate")
    details = done[-1] if isinstance(done[-1], dict) else json.loads(done[-1])
    assert len(details["generated"]) == 3  # the server serves again
