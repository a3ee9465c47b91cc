"""Class rooms through the real app's API: a student cannot drive a room, and two app processes
that share one Redis serve one class (the presenter on one, the students on the other)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from gradio_client import Client

from playground.ui.class_room import NOT_PRESENTER
from tests.conftest import CLIENT_HTTP, start_app, stop_app

PRESENTER_ACTIONS = [("/class_reveal", ()), ("/class_hide", ("A",)),
                     ("/class_poll_chat", ("gemma-3-270m", "smollm2-135m-instruct")),
                     ("/class_poll_count", ("some text", "r50k_base", [])), ("/class_poll_next_token", ())]


def http(url: str, data: dict | None = None) -> tuple[int, dict]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def start_class(client: Client) -> str:
    """A room for this client's session (its key stays there); the join code the card shows."""
    outputs = client.predict(api_name="/class_start")
    card = next(o for o in outputs if isinstance(o, str) and "class-code" in o)
    return re.search(r'id="class-code">([A-Z0-9]{6})<', card).group(1)


def answer(url: str, code: str, student: str, text: str) -> tuple[int, dict]:
    return http(url + "class-api/answer", {"code": code, "student": student, "answer": text})


@pytest.mark.parametrize("endpoint, args", PRESENTER_ACTIONS)
def test_a_student_session_cannot_drive_a_room(app_url, endpoint, args):
    presenter = Client(app_url, verbose=False, httpx_kwargs=CLIENT_HTTP)
    code = start_class(presenter)
    presenter.predict("gemma-3-270m", "smollm2-135m-instruct", api_name="/class_poll_chat")
    student = Client(app_url, verbose=False, httpx_kwargs=CLIENT_HTTP)  # its own session: no key
    with pytest.raises(Exception, match=re.escape(NOT_PRESENTER)):
        student.predict(*args, api_name=endpoint)
    status, view = http(f"{app_url}class-api/room/{code}?since=-1")
    assert status == 200 and 'data-open="1"' in view["html"]  # the poll is still open, nothing moved


def test_the_student_routes_refuse_garbage_with_a_message(app_url):
    assert http(f"{app_url}class-api/room/ZZZZZZ?since=-1") == (404, {"error": "There is no class ZZZZZZ (it may have ended)."})
    status, body = http(f"{app_url}class-api/room/%3Cb%3E?since=-1")
    assert status == 404 and "is not a class code" in body["error"]
    status, body = answer(app_url, "ZZZZZZ", "student-0001", "x" * 5000)
    assert status == 413 and "at most" in body["error"]
    request = urllib.request.Request(app_url + "class-api/answer", data=b"[1, 2", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 400 and "JSON object" in json.loads(refused.value.read())["error"]


def test_two_app_processes_share_one_redis(redis_url):
    env = {"PLAYGROUND_ROOM_STORE": redis_url}
    first, first_process = start_app(env, log_name="app-server-class-1.log")
    try:
        second, second_process = start_app(env, log_name="app-server-class-2.log")
        try:
            presenter = Client(first, verbose=False, httpx_kwargs=CLIENT_HTTP)
            code = start_class(presenter)
            status, view = http(f"{second}class-api/room/{code}?since=-1")  # a student on the other process
            assert status == 200 and f"Class <b>{code}</b>" in view["html"]
            presenter.predict("Hello world, tokens!", "r50k_base", ["bytes"], api_name="/class_poll_count")
            status, followed = http(f"{second}class-api/room/{code}?since={view['version']}")
            assert followed["version"] > view["version"] and "How many tokens" in followed["html"]
            for n, guess in enumerate(["5", "6", "6"]):
                assert answer(second, code, f"student-{n:04d}", guess)[0] == 200
            outputs = presenter.predict(api_name="/class_reveal")
            table = next(o for o in outputs if isinstance(o, str) and "class-result" in o)
            assert "3 answers" in table and "r50k_base: <b>5</b> tokens" in table and "bytes: <b>20</b> tokens" in table
            status, revealed = http(f"{second}class-api/room/{code}?since={followed['version']}")
            assert "The real count" in revealed["html"] and "revealed the answers" in revealed["html"]
        finally:
            stop_app(second_process)
    finally:
        stop_app(first_process)
