"""The door in front of Gradio's routes: one way in for functions, clean refusals, safe headers.

An ASGI middleware (`GuardRoutes`, installed by `playground.ui.shell.launch_kwargs`) that sees every
HTTP request before Gradio does:

- **One way in.** A function that runs in the queue (every handler with a model call or real work)
  is reachable only through it (`/gradio_api/queue/join`, `/gradio_api/call/<name>`,
  `/gradio_api/call/v2/<name>`), so it gets its concurrency group, the queue-wait bound
  (`ui.queue_guard`) and the per-client limits. Gradio's direct routes (`/gradio_api/run/<name>`,
  `/gradio_api/api/<name>`, with or without a trailing slash, by name or by `fn_index`) answer
  403 for it; they still serve the functions Gradio itself marks `queue=False` (the page's small
  non-model updates: status line, showing and hiding controls), which is how the page calls them.
- **Clean answers to protocol garbage.** An unknown endpoint name, a function index that is not
  one (9999, -1, 1e10, "x"), a function that runs only in the browser, a body that is not a JSON
  object or is larger than `PLAYGROUND_MAX_REQUEST_KB`, an event stream for an unknown session or
  event, and a link longer than `MAX_URL_BYTES` get a 4xx with a one-line message (JSON
  `{"detail": ...}`, or plain text for a page link), and one log line, never a traceback. Anything
  Gradio still raises before it has started its answer becomes a 400 the same way. A link up to
  `MAX_HEADER_BYTES` reaches this check (uvicorn's h11 would otherwise drop the connection of a
  request line over 16 KB: `raise_header_limit`).
- **No stream left waiting on nothing.** A session's event stream (`/gradio_api/queue/data`) opened
  while none of its requests is pending is answered at once with Gradio's `close_stream` message.
  Gradio's page opens a stream whenever a request's join answer arrives while it has none open; when
  that request already ended (its result came on the previous stream, which then closed, ahead of
  the join answer: a fast `.then` step on a busy server), Gradio would keep the new stream open,
  with heartbeats, until the session's next request, and the page would look busy meanwhile.
- **Headers for a Space embed.** Every answer carries `Content-Security-Policy: frame-ancestors
  <PLAYGROUND_FRAME_ANCESTORS>` (by default the app itself, huggingface.co and *.hf.space, where a
  Space is embedded), `X-Frame-Options: SAMEORIGIN` for browsers without CSP (browsers with it let
  frame-ancestors win), `X-Content-Type-Options: nosniff` and a referrer policy. Gradio's monitoring
  pages (`/monitoring`, `/monitoring/summary`, `/monitoring/<key>`) answer 404.

What it leaves out: what a function may do once admitted (the queue guard, `playground.limits`),
uploads (`ui.app.refuse_uploads`), a full script-src CSP (Gradio's page needs inline scripts).
It reads Gradio's queue and function table as the pinned gradio==6.31.0 lays them out.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import parse_qs

from playground import settings

log = logging.getLogger("playground.refused")

MAX_URL_BYTES = 48 * 1024  # path and query of a link; the longest deep link (4,000 characters) fits
MAX_HEADER_BYTES = 2 * 1024 * 1024  # what uvicorn reads of a request head before dropping it

# POST routes that run a function: (kind, name) out of the path
_FUNCTION_ROUTE = re.compile(r"^/gradio_api/(?:(?P<direct>run|api)/(?P<dname>[^/]+)|(?P<join>queue/join)"
                             r"|call/(?P<v2>v2/)?(?P<cname>[^/]+))/?$")
_EVENT_STREAM = re.compile(r"^/gradio_api/call/(?:v2/)?[^/]+/(?P<event>[^/]+)/?$")
_MONITORING = re.compile(r"^(?:/gradio_api)?/monitoring(?:/|$)")


def security_headers() -> list[tuple[bytes, bytes]]:
    ancestors = settings.current().frame_ancestors.strip() or "'self'"
    return [(b"content-security-policy", f"frame-ancestors {ancestors}".encode("latin-1")),
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin")]


class Refusal(Exception):
    """A request answered with `status` and a short `message` instead of reaching Gradio."""

    def __init__(self, status: int, message: str, plain: bool = False):
        super().__init__(message)
        self.status, self.message, self.plain = status, message, plain


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def function_for(fns: dict, body: dict, name: str | None, by_index: bool):
    """The BlockFunction a function route names, or a Refusal: by `fn_index` when the body has one
    (and `by_index`), else by api name."""
    if by_index and body.get("fn_index") is not None:
        index = body["fn_index"]
        if isinstance(index, bool) or not isinstance(index, int) or index not in fns:
            raise Refusal(404, f"Unknown function index {_short(index)}: this app's functions are "
                               f"numbered 0 to {max(fns, default=0)}.")
        fn = fns[index]
    else:
        fn = next((f for f in fns.values() if name is not None and f.api_name == name), None)
        if fn is None:
            raise Refusal(404, f"Unknown endpoint {_short('/' + str(name))}: the app's endpoints are listed "
                               "at /gradio_api/info.")
    if getattr(fn, "fn", None) is None:
        raise Refusal(404, f"Function {fn._id} runs in the browser only: there is nothing to call on the server.")
    return fn


def check_function_call(blocks, path: str, body) -> None:
    """Raise a Refusal for a call Gradio would answer with a 500 (or run outside the queue)."""
    route = _FUNCTION_ROUTE.match(path)
    if route is None:
        return
    if not isinstance(body, dict):
        raise Refusal(400, "The request body must be a JSON object.")
    fns = blocks.fns
    if route.group("direct"):
        fn = function_for(fns, body, route.group("dname"), by_index=True)
        if fn.queue:
            shown = f"/gradio_api/call/{fn.api_name}" if isinstance(fn.api_name, str) else "/gradio_api/queue/join"
            raise Refusal(403, f"This function runs only through the queue: POST {shown} (the direct "
                               "/run and /api routes serve the page's small non-queued updates only).")
    elif route.group("join"):
        if body.get("fn_index") is not None:
            function_for(fns, body, None, by_index=True)
    else:
        function_for(fns, body, route.group("cname"), by_index=False)


def _session_of_stream(path: str, query: bytes) -> str | None:
    if path.rstrip("/") != "/gradio_api/queue/data":
        return None
    values = parse_qs(query.decode("latin-1")).get("session_hash")
    return values[0] if values else None


def nothing_pending(blocks, path: str, query: bytes) -> bool:
    """True for a session's event stream opened while the session has no request pending (every
    result it asked for has been sent): nothing would ever come on it."""
    queue = getattr(blocks, "_queue", None)
    session = _session_of_stream(path, query)
    if queue is None or session is None or session not in queue.pending_messages_per_session:
        return False
    return not queue.pending_event_ids_session.get(session)


def check_event_stream(blocks, path: str, query: bytes) -> None:
    """Raise a Refusal for an event stream of a session or event the queue does not know (Gradio
    would start the stream and then drop the connection)."""
    queue = getattr(blocks, "_queue", None)
    if queue is None:
        return
    session = _session_of_stream(path, query)
    if path.rstrip("/") == "/gradio_api/queue/data":
        if session is not None and session not in queue.pending_messages_per_session:
            raise Refusal(404, "Unknown session: nothing of it is queued or running.")
        return
    stream = _EVENT_STREAM.match(path)
    if stream is None:
        return
    event_id = stream.group("event")
    event = queue.event_ids_to_events.get(event_id)
    if event is not None:
        session = event.session_hash
    else:
        session = next((s for s, ids in list(queue.pending_event_ids_session.items()) if event_id in ids), event_id)
    if session not in queue.pending_messages_per_session:
        raise Refusal(404, "Unknown event id: no such request is queued, running or waiting to be read.")


class GuardRoutes:
    """The ASGI middleware: refusals first, then Gradio with the headers added to its answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers()
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in extra if h[0] not in names)]}
            await send(message)

        try:
            receive = await self._admit(scope, receive)
        except Refusal as refusal:
            await self._refuse(scope, send_with_headers, refusal)
            return
        if scope.get("method") == "GET" and nothing_pending(_blocks(scope), _path(scope),
                                                            scope.get("query_string", b"")):
            await self._close_stream(send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 - Gradio's own failure on a request it could not read
            if started:
                log.warning("%s %s: %s after the answer started: %s", scope.get("method"), _path(scope),
                            type(exc).__name__, str(exc)[:200])
                return
            await self._refuse(scope, send_with_headers,
                               Refusal(400, f"Bad request: {type(exc).__name__}: {str(exc)[:200]}"))

    async def _admit(self, scope, receive):
        """Check the request; returns the `receive` to hand on (the body replayed when it was read)."""
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        query = scope.get("query_string", b"")
        size = len(scope.get("raw_path", path.encode("utf-8", "replace"))) + len(query)
        if size > MAX_URL_BYTES:
            raise Refusal(414, f"This link is too long ({size // 1024:,} KB; a link holds at most "
                               f"{MAX_URL_BYTES // 1024} KB).", plain=True)
        if _MONITORING.match(path):
            raise Refusal(404, "Not found.", plain=True)
        blocks = _blocks(scope)
        if blocks is None:
            return receive
        if method == "GET":
            check_event_stream(blocks, path, query)
            return receive
        if method != "POST" or _FUNCTION_ROUTE.match(path) is None:
            return receive
        body = await _read_body(scope, receive, settings.current().max_request_kb * 1024)
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            raise Refusal(400, "The request body is not JSON.") from None
        check_function_call(blocks, path, parsed)
        return _replay(body, receive)

    async def _close_stream(self, send) -> None:
        from gradio.server_messages import CloseStreamMessage

        body = f"data: {json.dumps(CloseStreamMessage().model_dump())}\n\n".encode("utf-8")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8"),
                                (b"cache-control", b"no-cache"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, scope, send, refusal: Refusal) -> None:
        log.info("refused %s %s: %d %s", scope.get("method"), _path(scope)[:120], refusal.status, refusal.message)
        if refusal.plain:
            body, kind = refusal.message.encode("utf-8"), b"text/plain; charset=utf-8"
        else:
            body, kind = json.dumps({"detail": refusal.message}).encode("utf-8"), b"application/json"
        await send({"type": "http.response.start", "status": refusal.status,
                    "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _path(scope) -> str:
    return scope.get("path", "")


def _blocks(scope):
    app = scope.get("app")
    get_blocks = getattr(app, "get_blocks", None)
    try:
        return get_blocks() if get_blocks is not None else None
    except Exception:  # noqa: BLE001 - no Blocks mounted yet
        return None


async def _read_body(scope, receive, limit: int) -> bytes:
    declared = dict(scope.get("headers") or []).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refusal(413, f"The request is too large ({int(declared) // 1024:,} KB; at most {limit // 1024:,} KB).")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"The request is too large (over {limit // 1024:,} KB).")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def raise_header_limit() -> None:
    """Let uvicorn read a request head of up to `MAX_HEADER_BYTES`, so an over-long link reaches
    `GuardRoutes` and gets its 414 (h11's default, 16 KB, ends such a connection with a reset)."""
    from uvicorn.protocols.http import h11_impl

    h11_impl.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = max(h11_impl.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, MAX_HEADER_BYTES)
