"""A hostile client against the running app's routes (issue 27, items 1, 3 and 6).

Over raw HTTP (httpx, and a socket for links httpx will not send): queued functions are refused on
Gradio's direct `/run` and `/api` routes in every variant; protocol garbage (unknown endpoint
names, function indices 9999 / -1 / 1e10, a browser-only function, an unknown keyword, event
streams of unknown sessions or events, bodies that are not JSON or too large, links of 70 KB and
1 MB) gets a 4xx with a short message, never a 500 or a dropped connection, and each refusal is one
log line, not a traceback. Pages carry headers that allow a Hugging Face Space embed and nothing
else; Gradio's monitoring pages are not served. Per-client fairness: one session holding
`PLAYGROUND_CLIENT_HEAVY` (2) heavy requests has a third refused at once, in words. A session's
event stream opened after its last result was sent closes at once (the page's race on a busy server).
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.api.raw_http import PROTOCOL_GARBAGE
from tests.conftest import ARTIFACTS, wait_in_queue

TOKENIZE = ["bytes", "abc", False, False]


@pytest.fixture(scope="module")
def http(app_url):
    with httpx.Client(base_url=app_url.rstrip("/"), timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def config(http):
    return http.get("/config").json()


def _index(config, **wanted) -> int:
    return next(d["id"] for d in config["dependencies"] if all(d.get(k) == v for k, v in wanted.items()))


def _clean_refusal(response, statuses=range(400, 500)) -> str:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert isinstance(detail, str) and 0 < len(detail) < 300 and "Traceback" not in detail
    return detail


@pytest.mark.parametrize("path", ["/gradio_api/run/tokenize", "/gradio_api/run/tokenize/", "/gradio_api/api/tokenize",
                                  "/gradio_api/api/tokenize/"])
def test_direct_routes_refuse_queued_functions(http, path):
    detail = _clean_refusal(http.post(path, json={"data": TOKENIZE}), statuses=[403])
    assert "only through the queue" in detail


def test_direct_route_by_function_index_refuses_a_heavy_function(http, config):
    body = {"data": ["Hi", "smollm2-135m-instruct", False, 2, 2, 1.0, "false", 2, True, False, 1, False],
            "fn_index": _index(config, api_name="beam_search"), "session_hash": "hostile-direct"}
    for path in ("/gradio_api/run/predict", "/gradio_api/api/predict/"):
        assert "only through the queue" in _clean_refusal(http.post(path, json=body), statuses=[403])


def test_the_page_still_calls_its_non_queued_updates_directly(http, config):
    index = _index(config, queue=False, backend_fn=True, inputs=[])
    response = http.post("/gradio_api/run/predict", json={"data": [], "fn_index": index, "session_hash": "page"})
    assert response.status_code == 200 and "data" in response.json()


def test_the_queue_still_serves_the_same_function(app_url):
    counts, *_ = Client(app_url, verbose=False).predict(*TOKENIZE, api_name="/tokenize")
    assert 'data-count="3"' in counts


@pytest.mark.parametrize("method,path,body", PROTOCOL_GARBAGE, ids=[f"{m} {p} {json.dumps(b)}" for m, p, b in PROTOCOL_GARBAGE])
def test_protocol_garbage_gets_a_short_4xx(http, method, path, body):
    response = http.request(method, path, json=body)
    _clean_refusal(response)


def test_a_browser_only_function_index(http, config):
    index = _index(config, backend_fn=False)
    response = http.post("/gradio_api/queue/join", json={"data": [], "fn_index": index, "session_hash": "g2"})
    assert "runs in the browser only" in _clean_refusal(response, statuses=[404])


def test_bodies_not_json_or_too_large(http):
    response = http.post("/gradio_api/call/tokenize", content=b"{not json", headers={"content-type": "application/json"})
    assert _clean_refusal(response, statuses=[400]) == "The request body is not JSON."
    huge = json.dumps({"data": ["bytes", "x" * 4_300_000, False, False]})
    response = http.post("/gradio_api/call/tokenize", content=huge, headers={"content-type": "application/json"})
    assert "too large" in _clean_refusal(response, statuses=[413])


def _raw_get(app_url: str, target: str) -> bytes:
    address = urlparse(app_url)
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("size", [70_000, 1_000_000])
def test_over_long_links_get_414_in_words(app_url, size):
    answer = _raw_get(app_url, "/?prompt=" + "a" * size)
    assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
    assert b"This link is too long" in answer


def test_refusals_are_logged_in_one_line(app_url, http):
    log = ARTIFACTS / "app-server.log"
    start = log.stat().st_size
    for method, path, body in PROTOCOL_GARBAGE[:4]:
        http.request(method, path, json=body)
    with pytest.raises(AppError):  # a handler's refusal of bad input (gr.Error)
        Client(app_url, verbose=False).predict("cl100k_base", "9" * 50, api_name="/decode_ids")
    deadline = time.monotonic() + 60
    written = ""
    while time.monotonic() < deadline:  # the log is written by the app's process: wait for the lines
        written = log.read_text(encoding="utf-8", errors="replace")[start:]
        if written.count("refused") >= 5:
            break
        time.sleep(0.1)
    assert "Traceback" not in written, written[-2000:]
    assert written.count("refused") >= 5, written[-2000:]


def test_pages_allow_a_space_embed_only(http):
    for path in ("/", "/config", "/gradio_api/info"):
        headers = http.get(path).headers
        policy = headers.get("content-security-policy", "")
        assert "frame-ancestors" in policy and "https://huggingface.co" in policy and "https://*.hf.space" in policy
        assert headers.get("x-frame-options", "").upper() != "DENY"
        assert headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("path", ["/monitoring", "/monitoring/summary", "/monitoring/some-key",
                                  "/gradio_api/monitoring/summary"])
def test_monitoring_is_not_public(http, path):
    response = http.get(path, follow_redirects=False)
    assert response.status_code == 404 and "functions" not in response.text


def test_one_session_holds_at_most_two_heavy_requests(app_url):
    client = Client(app_url, verbose=False)
    rules = (1.0, 0, 1.0, 0.0, "transformers")
    client.predict("smollm2-135m-instruct", False, "A student asks", 10, False, *rules, api_name="/sampling_distribution")
    jobs = [client.submit(40, "", 10, False, *rules, 1, api_name="/sampling_generate") for _ in range(2)]
    for i, job in enumerate(jobs):
        wait_in_queue(job, f"long request {i + 1}")
    third = client.submit(3, "", 10, False, *rules, 1, api_name="/sampling_generate")
    with pytest.raises(AppError) as raised:
        third.result(timeout=300)
    # refused at once: while both long requests were still queued or running (not after waiting for them)
    assert not any(job.done() for job in jobs), "the third request was answered only after a long one ended"
    assert str(raised.value).startswith("Your session already has 2 long requests")
    for job in jobs:
        job.cancel()
    other = Client(app_url, verbose=False)  # another session is not limited by this one
    other.predict("smollm2-135m-instruct", False, "Another student", 10, False, *rules, api_name="/sampling_distribution")
    done = other.predict(2, "", 10, False, *rules, 1, api_name="/sampling_generate")
    assert done is not None


def _queue_stream(http, session: str) -> list[dict]:
    """The messages of one `/gradio_api/queue/data` stream, up to its `close_stream` (a read waits at
    most 8 s: under Gradio's 15 s heartbeat, a stream left open fails the read)."""
    messages = []
    with http.stream("GET", f"/gradio_api/queue/data?session_hash={session}", timeout=httpx.Timeout(8.0)) as response:
        assert response.status_code == 200, response.status_code
        for line in response.iter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[len("data:"):]))
                if messages[-1]["msg"] == "close_stream":
                    break
    return messages


def test_a_stream_opened_after_the_sessions_last_result_closes_at_once(http, config):
    """The page's race on a busy server: a fast request's result came on a stream that then closed, ahead
    of the request's join answer, and the page opens another stream. Gradio would hold that one open,
    with heartbeats, until the session's next request (the page looking busy meanwhile)."""
    session = "stream-after-the-last-result"
    joined = http.post("/gradio_api/queue/join", json={"data": TOKENIZE, "fn_index": _index(config, api_name="tokenize"),
                                                       "session_hash": session})
    assert joined.status_code == 200, joined.text[:300]
    first = [m["msg"] for m in _queue_stream(http, session)]
    assert first[-2:] == ["process_completed", "close_stream"], first
    assert [m["msg"] for m in _queue_stream(http, session)] == ["close_stream"]
    # the next request still gets its result on a stream of its own
    http.post("/gradio_api/queue/join", json={"data": TOKENIZE, "fn_index": _index(config, api_name="tokenize"),
                                              "session_hash": session})
    assert [m["msg"] for m in _queue_stream(http, session)][-2:] == ["process_completed", "close_stream"]
