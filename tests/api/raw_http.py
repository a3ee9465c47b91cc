"""Raw HTTP calls to a running app, for values gradio_client cannot send.

gradio_client encodes JSON strictly: no NaN or Infinity, no lone surrogates. A hostile caller is
not so polite: `call(url, api_name, data)` posts `data` with Python's permissive encoder
(`NaN`, `Infinity`, `"\\ud800"` escapes) to Gradio's `/gradio_api/call/<api_name>` route and reads
the event stream. Returns `("complete", outputs)` or `("error", message-or-None)`. Pass
`session_hash` (a gradio_client's `client.session_hash`) to act inside that client's session.
`PROTOCOL_GARBAGE` is the hostile client's corpus of requests no page sends.
"""

from __future__ import annotations

import json
import urllib.request

# Requests no Gradio page sends: unknown endpoints, function indices and sessions, unknown
# keywords. Each must get a 4xx with a short message (tests/api/test_hostile_routes.py), and
# bench/bench_hostile.py replays the same list as its garbage phase.
PROTOCOL_GARBAGE = [
    ("POST", "/gradio_api/call/nope", {"data": []}),
    ("POST", "/gradio_api/call/v2/nope", {}),
    ("POST", "/gradio_api/run/nope", {"data": []}),
    ("POST", "/gradio_api/queue/join", {"data": [], "fn_index": 9999, "session_hash": "g1"}),
    ("POST", "/gradio_api/queue/join", {"data": [], "fn_index": -1, "session_hash": "g1"}),
    ("POST", "/gradio_api/queue/join", {"data": [], "fn_index": 1e10, "session_hash": "g1"}),
    ("POST", "/gradio_api/run/predict", {"data": [], "fn_index": 9999}),
    ("POST", "/gradio_api/call/v2/tokenize", {"bogus": 1}),
    ("GET", "/gradio_api/queue/data?session_hash=no-such-session", None),
    ("GET", "/gradio_api/call/tokenize/no-such-event", None),
    ("GET", "/gradio_api/call/v2/tokenize/no-such-event", None),
]


def call(url: str, api_name: str, data: list, session_hash: str | None = None, timeout: float = 180.0):
    base = url.rstrip("/") + "/gradio_api/call/" + api_name.lstrip("/")
    body = {"data": data}
    if session_hash:
        body["session_hash"] = session_hash
    payload = json.dumps(body, allow_nan=True, ensure_ascii=True).encode("ascii")
    request = urllib.request.Request(base, data=payload, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event_id = json.loads(response.read())["event_id"]
    event, last = None, None
    with urllib.request.urlopen(f"{base}/{event_id}", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                text = line.split(":", 1)[1].strip()
                last = json.loads(text) if text else None
                if event in ("complete", "error"):
                    return event, last
    return event or "error", last
