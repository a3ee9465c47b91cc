"""Shared by the hall benches (`bench_sessions.py`, `bench_hall.py`, `bench_load.py`): the app on
loopback, gradio sessions over raw HTTP, the server's resident memory, percentiles.

A `Session` is one gradio session (its own `session_hash`) speaking the queue protocol a browser
speaks: POST `/gradio_api/queue/join`, then read `/gradio_api/queue/data` (server-sent events) until
the event's `process_completed`. It costs a few kilobytes on the client side, so hundreds of them
fit beside the server on two cores (a `gradio_client.Client` each would start a heartbeat thread
and three thread pools). The server keeps each session's `gr.State` exactly as for a browser tab
left open (no heartbeat is held, so Gradio never marks it closed: the worst case for memory).

`Api` reads each endpoint's parameters from `Client.view_api()` and the state inputs from the
app's config, so callers name values (`prompt=...`) and everything else takes its default: a
renamed parameter fails loudly instead of shifting positions. Every call has a client-side
timeout. What it leaves out: browser rendering, the page's static assets beyond `GET /`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from timing import write_report  # noqa: E402,F401 - the benches' one JSON writer, re-exported

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOOPBACK = ("127.0.0.1", "localhost", "::1")
BUSY_PREFIX = "The server is busy"
TIME_LIMIT_TEXT = "time limit"
CLIENT_TIMEOUT = "client timeout"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 1)


def command_line() -> str:
    return " ".join([".venv/bin/python", *[a if " " not in a else repr(a) for a in sys.argv]])


@contextmanager
def served_app(url: str | None = None, extra_env: dict | None = None, log_name: str = "bench.log"):
    """Yield (url, server pid or None): `url` if given (loopback only), else the real app started
    on a free 127.0.0.1 port (`tests.conftest.start_app`, its log in artifacts/`log_name`)."""
    if url:
        if urlparse(url).hostname not in LOOPBACK:
            sys.exit("the hall benches only target this machine (127.0.0.1)")
        yield url, None
        return
    from tests.conftest import start_app, stop_app

    url, process = start_app(extra_env, log_name=log_name)
    try:
        yield url, process.pid
    finally:
        stop_app(process)


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of process `pid` (this one if None) and its children, in bytes."""
    import psutil

    process = psutil.Process(pid or os.getpid())
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def mb(num_bytes: float) -> float:
    return round(num_bytes / 2**20, 1)


class RssSampler:
    """Samples a process's RSS every `interval` seconds in a thread; `peak` since start or `reset`."""

    def __init__(self, pid: int | None, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.peak = self.last = rss_bytes(pid) if pid else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if pid:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.last = rss_bytes(self.pid)
            except Exception:  # noqa: BLE001 - the server exited: keep the last figure
                return
            self.peak = max(self.peak, self.last)

    def reset(self) -> int:
        """Start a new peak from the current RSS; returns it."""
        self.peak = self.last = rss_bytes(self.pid) if self.pid else 0
        return self.last

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Endpoint:
    fn_index: int
    params: list[dict]  # view_api's parameters (no state inputs), in order
    is_state: list[bool]  # per input component of the event


class Api:
    """The app's named endpoints, read once from `view_api` and the config."""

    def __init__(self, url: str):
        from gradio_client import Client

        client = Client(url, verbose=False)
        try:
            info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
            self.endpoints = {
                endpoint.api_name: Endpoint(endpoint.fn_index, info[endpoint.api_name]["parameters"],
                                            [t.is_state for t in endpoint.input_component_types])
                for endpoint in client.endpoints.values() if endpoint.api_name in info
            }
        finally:
            client.close()

    def require(self, *names: str) -> None:
        missing = [name for name in names if name not in self.endpoints]
        if missing:
            sys.exit(f"the app has no endpoint {missing}; it has {sorted(self.endpoints)}")

    def data(self, api_name: str, values: dict) -> list:
        """The event's input list: `values` by parameter name, defaults for the rest, None for states."""
        endpoint = self.endpoints[api_name]
        names = [p["parameter_name"] for p in endpoint.params]
        unknown = set(values) - set(names)
        if unknown:
            raise KeyError(f"{api_name} has no parameter {sorted(unknown)}; it takes {names}")
        given = []
        for param in endpoint.params:
            name = param["parameter_name"]
            if name in values:
                given.append(values[name])
            elif param.get("parameter_has_default"):
                given.append(param.get("parameter_default"))
            else:
                raise KeyError(f"{api_name} needs a value for {name!r}")
        given.reverse()
        return [None if state else given.pop() for state in endpoint.is_state]


@dataclass
class Outcome:
    ok: bool
    seconds: float
    error: str | None = None
    data: list | None = field(default=None, compare=False, repr=False)  # the event's outputs, when it ended well

    @property
    def kind(self) -> str:
        """ok, busy (refused by the queue bound), time_limit (cut by the server), client_timeout, error."""
        if self.ok:
            return "ok"
        if self.error.startswith(BUSY_PREFIX):
            return "busy"
        if TIME_LIMIT_TEXT in self.error:
            return "time_limit"
        if self.error.startswith(CLIENT_TIMEOUT):
            return "client_timeout"
        return "error"


class Session:
    """One gradio session over raw HTTP (see the module docstring); `http` is a shared httpx.Client."""

    def __init__(self, url: str, api: Api, http):
        self.url, self.api, self.http = url.rstrip("/") + "/", api, http
        self.session_hash = uuid.uuid4().hex[:12]

    def get(self, path: str = "", timeout: float = 60.0) -> Outcome:
        start = time.perf_counter()
        try:
            response = self.http.get(self.url + path, timeout=timeout)
            ok = response.status_code == 200
            return Outcome(ok, time.perf_counter() - start, None if ok else f"HTTP {response.status_code}")
        except Exception as exc:  # noqa: BLE001 - reported as an outcome
            return Outcome(False, time.perf_counter() - start, _client_error(exc, timeout))

    def call(self, api_name: str, timeout: float, **values) -> Outcome:
        """Run one event to its end (a stream is read to its last message) within `timeout` seconds."""
        import httpx

        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        body = {"data": self.api.data(api_name, values), "fn_index": self.api.endpoints[api_name].fn_index,
                "session_hash": self.session_hash, "event_data": None, "trigger_id": None}
        try:
            joined = self.http.post(self.url + "gradio_api/queue/join", json=body, timeout=min(timeout, 30.0))
            if joined.status_code != 200:
                return Outcome(False, time.perf_counter() - start,
                               f"HTTP {joined.status_code} on join: {joined.text[:160]}")
            event_id = joined.json()["event_id"]
            read = httpx.Timeout(connect=10.0, read=min(timeout, 30.0), write=10.0, pool=10.0)
            with self.http.stream("GET", self.url + "gradio_api/queue/data",
                                  params={"session_hash": self.session_hash}, timeout=read) as stream:
                for line in stream.iter_lines():
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    # only the last message of an event is parsed: streamed charts are large
                    if not line.startswith(("data: {\"msg\":\"process_completed\"",
                                            "data: {\"msg\":\"unexpected_error\"")):
                        continue
                    message = json.loads(line[6:])
                    if message.get("event_id") not in (event_id, None):
                        continue
                    seconds = time.perf_counter() - start
                    if message["msg"] == "unexpected_error":
                        return Outcome(False, seconds, f"unexpected_error: {message.get('message')}")
                    if message.get("success"):
                        return Outcome(True, seconds, data=(message.get("output") or {}).get("data"))
                    error = (message.get("output") or {}).get("error")
                    return Outcome(False, seconds, str(error) if error else "error without a message")
            return Outcome(False, time.perf_counter() - start, "the stream ended without a result")
        except Exception as exc:  # noqa: BLE001 - reported as an outcome
            return Outcome(False, time.perf_counter() - start, _client_error(exc, timeout))


def _client_error(exc: Exception, timeout: float) -> str:
    import httpx

    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return f"{CLIENT_TIMEOUT} after {timeout:.1f} s"
    return f"{type(exc).__name__}: {str(exc)[:160]}"


def http_client(connections: int):
    import httpx

    limits = httpx.Limits(max_connections=2 * connections + 4, max_keepalive_connections=connections + 4)
    return httpx.Client(limits=limits, trust_env=False)


def outcome_summary(outcomes: list[Outcome]) -> dict:
    """Counts by kind, latency percentiles of the successful ones (ms), distinct error messages."""
    kinds = Counter(o.kind for o in outcomes)
    ok = [o.seconds * 1000 for o in outcomes if o.ok]
    messages = Counter(o.error[:200] for o in outcomes if not o.ok)
    return {"requests": len(outcomes), "ok": kinds["ok"], "errors": kinds["error"], "busy": kinds["busy"],
            "time_limit": kinds["time_limit"], "client_timeouts": kinds["client_timeout"],
            "p50_ms": percentile(ok, 0.50), "p95_ms": percentile(ok, 0.95), "p99_ms": percentile(ok, 0.99),
            "max_ms": round(max(ok), 1) if ok else 0.0,
            "messages": dict(messages.most_common(8))}


def log_report(log_name: str) -> dict:
    """Tracebacks and error lines in the server's log (artifacts/`log_name`), for the JSON."""
    path = ROOT / "artifacts" / log_name
    if not path.exists():
        return {"log": str(path.relative_to(ROOT)), "missing": True}
    lines = path.read_text(errors="replace").splitlines()
    errors = Counter(line.strip()[:200] for line in lines
                     if line.startswith(("Traceback", "ERROR", "Error", "RuntimeError")) or "Exception" in line[:40])
    return {"log": str(path.relative_to(ROOT)), "lines": len(lines),
            "tracebacks": sum(line.startswith("Traceback") for line in lines),
            "error_lines": dict(errors.most_common(8))}


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None with fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return (sum((x - mean_x) * (y - mean_y) for x, y in points)
            / sum((x - mean_x) ** 2 for x, _ in points))


