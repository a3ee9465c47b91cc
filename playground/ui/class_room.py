"""Class rooms in the page: the presenter's panel, the student's light view and its two HTTP routes.

The presenter (presenter mode's "Start a class", or the link `/?class=new&present=1`) gets a room
(`playground.rooms.room`); its key stays in the session's `gr.State`, never in the page. The panel
shows the join card (code, link, QR code: `playground.html.class_room.join_html`), the poll buttons
(guess the next token on the Sampling lab's text, how many tokens on the Tokenizer tab's text,
which is the chat model on Base vs chat's two models), the answer count, "Reveal" with the chart and
table, and "Hide" for any answer. A 1 s `gr.Timer` publishes what the presenter shows: the selected
tab's link query (what "Copy link" writes), and the lab's step, text and last token (read from the
lab's session, no model call).

A student page (`/?join=CODE`) hides the tabs and shows `student_html()`: `assets/class_room.js`
asks `GET /class-api/room/<CODE>?since=<version>` once a second (`ClassRoutes`, an ASGI middleware
in front of Gradio: no queue, no session state; the view's HTML is drawn once per room version and
cached) and posts answers to `POST /class-api/answer`. A student follows without any model call;
"Explore from here" opens the presenter's link in a full page with `follow=CODE`, where a banner
links back. Every presenter action is a Gradio event whose room comes from the session's State:
called from a student's session (or the API), it is refused with a message.

What it leaves out: the rules and the store (`playground.rooms`), the HTML and chart builders.
"""

from __future__ import annotations

import json
import secrets

import gradio as gr
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from playground import settings
from playground.errors import PlaygroundError
from playground.html import class_room as class_html
from playground.lru import BoundedLRU
from playground.plots import class_room as class_plots
from playground.rooms import configured, room
from playground.rooms.memory_store import MemoryStore
from playground.ui import page_scripts
from playground.ui.common import user_errors

ROUTE = "/class-api/"
MAX_BODY_BYTES = 2048
PUBLISH_SECONDS = 1.0
NOT_PRESENTER = "Only the presenter of a class can do that (start a class in presenter mode)."
_views = BoundedLRU(max_entries=256)  # (code, version) -> the follower's HTML


class ClassRoutes:
    """ASGI middleware: the student's two routes, answered before Gradio sees them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(ROUTE):
            await self.app(scope, receive, send)
            return
        rest, method = path[len(ROUTE):], scope.get("method")
        if method == "GET" and rest.startswith("room/"):
            query = dict(pair.split("=", 1) for pair in scope.get("query_string", b"").decode("latin-1").split("&")
                         if "=" in pair)
            args = (rest[len("room/"):], query.get("since", ""))
            # the in-process store answers in microseconds: no thread hop (Redis is a network call)
            in_process = isinstance(configured.current(), MemoryStore)
            answer = follow_payload(*args) if in_process else await run_in_threadpool(follow_payload, *args)
        elif method == "POST" and rest == "answer":
            body = await _body(receive)
            answer = await run_in_threadpool(answer_payload, body)
        else:
            answer = (404, {"error": "No such class route."})
        status, payload = answer
        await JSONResponse(payload, status_code=status, headers={"Cache-Control": "no-store"})(scope, receive, send)


async def _body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def follow_payload(code: str, since: str) -> tuple[int, dict]:
    """(status, JSON) for a follower: the room's version, and its view's HTML when it changed."""
    try:
        view = room.view(code)
    except PlaygroundError as exc:
        return 404, {"error": str(exc)}
    if since == str(view.version):
        return 200, {"version": view.version}
    key = (view.code, view.version)
    drawn = _views.get(key)
    if drawn is None:
        drawn = class_html.follow_html(view)
        _views.put(key, drawn)
    return 200, {"version": view.version, "html": drawn}


def answer_payload(body: bytes | None) -> tuple[int, dict]:
    if body is None:
        return 413, {"error": f"An answer is at most {MAX_BODY_BYTES} bytes."}
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return 400, {"error": "An answer is a JSON object: code, student, answer."}
    try:
        poll = data.get("poll")
        return 200, {"message": room.answer(data.get("code"), data.get("student"), data.get("answer"),
                                            poll_id=poll if isinstance(poll, str) else None)}
    except PlaygroundError as exc:
        return 400, {"error": str(exc)}


# --- the page --------------------------------------------------------------------------------------

class Panel:
    """The class room's components (made before the tabs, at the top of the page)."""

    def __init__(self):
        self.room = gr.State(None, time_to_live=settings.current().room_ttl)
        with gr.Column(elem_id="class-panel"):
            self.start = gr.Button("Start a class", size="sm", elem_id="class-start")
            self.follow_again = gr.HTML(visible=False, elem_id="class-follow-again-box")
            with gr.Column(visible=False, elem_id="class-student-box") as self.student_box:
                gr.HTML(class_html.student_html(), elem_id="class-student-html")
            with gr.Accordion("Class room", open=True, visible=False, elem_id="class-presenter") as self.presenter_box:
                with gr.Row(equal_height=False):
                    self.join = gr.HTML(elem_id="class-join-card")
                    with gr.Column(min_width=320):
                        self.status = gr.HTML(elem_id="class-poll-status-box")
                        with gr.Row():
                            self.poll_next = gr.Button("Poll: guess the next token", size="sm", elem_id="class-poll-next")
                            self.poll_count = gr.Button("Poll: how many tokens?", size="sm", elem_id="class-poll-count")
                            self.poll_chat = gr.Button("Poll: which is the chat model?", size="sm", elem_id="class-poll-chat")
                        with gr.Row():
                            self.reveal = gr.Button("Reveal", variant="primary", size="sm", elem_id="class-reveal")
                            self.hidden_label = gr.Dropdown([], label="Answer to hide", allow_custom_value=True,
                                                            elem_id="class-hide-choice", min_width=160)
                            self.hide = gr.Button("Hide it", size="sm", elem_id="class-hide")
                with gr.Row(equal_height=False):
                    self.plot = gr.Plot(elem_id="class-result-plot", show_label=False, visible=False)
                    self.result = gr.HTML(elem_id="class-result")
        self.timer = gr.Timer(PUBLISH_SECONDS, active=False)
        self.query = gr.Textbox(visible="hidden", elem_id="class-query")


def _origin(request: gr.Request | None) -> str:
    headers = dict(request.headers) if request is not None else {}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    proto = headers.get("x-forwarded-proto") or "http"
    return f"{proto}://{host}"


def _presenter_view(made: room.Room, request) -> list:
    url = _origin(request) + made.join_path
    return [made, gr.Accordion(visible=True, open=True), class_html.join_html(made.code, url), gr.Timer(active=True),
            class_html.presenter_poll_html(None, 0)]


@user_errors
def start_class(request: gr.Request, current):
    """A new room for this page (its key stays in the session)."""
    address = getattr(getattr(request, "client", None), "host", None) or ""
    made = current if isinstance(current, room.Room) else room.create(starter=address)
    return _presenter_view(made, request)


def open_page(request: gr.Request, current):
    """The load event: `class=new` starts a room, `join=CODE` makes this a student page, `follow=CODE`
    shows the banner back to following."""
    query = dict(request.query_params) if request is not None else {}
    skip = [gr.skip()] * 5
    student = [gr.skip(), gr.skip(), gr.skip()]
    status = [gr.skip()]
    if str(query.get("class", "")).lower() == "new":
        try:
            return [*start_class.__wrapped__(request, current), *student, gr.skip(), *status]
        except PlaygroundError as exc:
            gr.Warning(str(exc))
            return [*skip, *student, gr.skip(), *status]
    if query.get("join"):
        return [*skip, gr.Column(visible=True), gr.Tabs(visible=False), gr.Button(visible=False), gr.skip(),
                gr.Timer(active=False)]
    if query.get("follow"):
        try:
            code = room.normalize_code(query["follow"])
        except PlaygroundError:
            return [*skip, *student, gr.skip(), *status]
        return [*skip, *student, gr.HTML(class_html.follow_again_html(code), visible=True), *status]
    return [*skip, *student, gr.skip(), *status]


def _room_of(current) -> room.Room:
    if not isinstance(current, room.Room):
        raise PlaygroundError(NOT_PRESENTER)
    return current


def publish(current, lab, query, *_values):
    """The timer's tick: the presenter's state for the followers; the poll's line for the presenter."""
    if not isinstance(current, room.Room):
        return gr.skip()
    state = {"query": query if isinstance(query, str) else "", "tab": _tab_of(query)}
    records = getattr(lab, "records", None)
    if state["tab"] == "sampling" and lab is not None and records is not None:
        text = lab.prompt + "".join(r.text for r in records[:-1]) if records else lab.prompt
        state.update(step=len(records), text=text[-300:], last=records[-1].text if records else "")
    try:
        room.publish(current.code, current.key, state)
        view = room.view(current.code)
    except PlaygroundError as exc:
        return class_html.presenter_poll_html(None, 0).replace("No poll yet: start one on what is on screen.", str(exc))
    return class_html.presenter_poll_html(view.poll, view.answers)


def _tab_of(query) -> str:
    for part in (query or "").split("&"):
        if part.startswith("tab="):
            return part[4:][:20]
    return ""


def _status(current):
    view = room.view(current.code)
    return class_html.presenter_poll_html(view.poll, view.answers)


def _cleared(current):
    return [_status(current), gr.Plot(visible=False, value=None), "", gr.Dropdown(choices=[], value=None)]


@user_errors
def poll_next_token(current, lab):
    current = _room_of(current)
    if lab is None or not getattr(lab, "model_id", None):
        raise PlaygroundError("Show a distribution in the Sampling lab first: the poll is on its text.")
    text = lab.prompt + "".join(r.text for r in lab.records)
    room.start_poll(current.code, current.key, "next_token", model_id=lab.model_id, prompt=text)
    return _cleared(current)


@user_errors
def poll_count(current, text, tokenizer_id, compare):
    current = _room_of(current)
    ids = [tokenizer_id, *(compare or [])] if tokenizer_id else list(compare or [])
    room.start_poll(current.code, current.key, "count", text=text, tokenizer_ids=ids[:6])
    return _cleared(current)


@user_errors
def poll_chat(current, base_model, chat_model):
    """A blind vote: the columns lose their names on the projector, and a coin decides whether the
    chat model's column is drawn left (A) or right (B), so the layout gives nothing away."""
    current = _room_of(current)
    swap = secrets.randbelow(2) == 1
    left, right = (str(chat_model), str(base_model)) if swap else (str(base_model), str(chat_model))
    room.start_poll(current.code, current.key, "chat", models=(left, right))
    status, *rest = _cleared(current)
    return [status + f'<span hidden class="class-blind-sides" data-swap="{int(swap)}"></span>', *rest]


def _shown(current, result):
    labels = room.answer_labels(current.code, current.key)
    return [_status(current), gr.Plot(class_plots.result_figure(result), visible=True),
            class_html.result_html(result), gr.Dropdown(choices=labels, value=None)]


@user_errors
def reveal(current):
    current = _room_of(current)
    return _shown(current, room.reveal(current.code, current.key))


@user_errors
def hide(current, label):
    current = _room_of(current)
    result = room.hide(current.code, current.key, label)
    if result is None:
        return [_status(current), gr.skip(), gr.skip(), gr.skip()]
    return _shown(current, result)


def wire(panel: Panel, tabs: gr.Tabs, tab_links, link_values, status_timer: gr.Timer) -> None:
    """The class room's events (after the tabs exist: polls read their components); a student page
    stops `status_timer` (the header's model status, asked every few seconds)."""
    fields = {link.tab: link.fields for link in tab_links}
    lab = next(link.states["lab"] for link in tab_links if "lab" in link.states)
    presenter_outputs = [panel.room, panel.presenter_box, panel.join, panel.timer, panel.status]
    gr.on(None, open_page, [panel.room],
          [*presenter_outputs, panel.student_box, tabs, panel.start, panel.follow_again, status_timer],
          api_name=False, queue=False, show_progress="hidden")
    panel.start.click(start_class, [panel.room], presenter_outputs, api_name="class_start", queue=False)
    js = (f"(room, lab, query, ...values) => [room, lab, window.playgroundClassQuery(values, "
          f"{json.dumps(link_values.spec)}, {json.dumps(link_values.labels)}), ...values]")
    panel.timer.tick(publish, [panel.room, lab, panel.query, *link_values.components], panel.status, js=js,
                     api_name=False, queue=False, show_progress="hidden")
    poll_outputs = [panel.status, panel.plot, panel.result, panel.hidden_label]
    panel.poll_next.click(poll_next_token, [panel.room, lab], poll_outputs, api_name="class_poll_next_token")
    tok = fields["tokenizer"]
    panel.poll_count.click(poll_count, [panel.room, tok["text"], tok["tokenizer"], tok["compare"]], poll_outputs,
                           api_name="class_poll_count")
    chat = fields["chat"]
    panel.poll_chat.click(poll_chat, [panel.room, chat["base_model"], chat["chat_model"]], poll_outputs,
                          api_name="class_poll_chat").then(None, panel.status, None, js=BLIND_JS)
    for other in (panel.poll_next, panel.poll_count):
        other.click(None, None, None, js=SEEING_JS)
    panel.reveal.click(reveal, [panel.room], poll_outputs, api_name="class_reveal").then(
        None, None, None, js=REVEALED_JS)
    panel.hide.click(hide, [panel.room, panel.hidden_label], poll_outputs, api_name="class_hide")


# "Which is the chat model?" on the projector: while the poll is open, the Base vs chat columns show
# no model names (their titles, headers and model boxes hidden, the columns marked A and B) - only
# once it started (its status says open); any other poll or the reveal names them again
BLIND_JS = ("(status) => { const s = String(status || ''); if (!/data-status=.?open/.test(s)) return;"
            " document.documentElement.classList.add('class-blind');"
            " document.documentElement.classList.toggle('class-blind-swap', /data-swap=.?1/.test(s)); }")
SEEING_JS = "() => document.documentElement.classList.remove('class-blind', 'class-blind-swap')"
# the reveal's chart and table in sight on the projector (the join card above them is tall)
INTO_VIEW_JS = ("() => { window.playgroundFollow = 'class-result-plot';"
                " window.playgroundBringIntoView && window.playgroundBringIntoView('class-result-plot'); }")
REVEALED_JS = f"() => {{ ({SEEING_JS})(); ({INTO_VIEW_JS})(); }}"  # the models named again, the result in view


CSS = """
html.class-blind .chat-col-title, html.class-blind #chat-base-column .gen-header,
html.class-blind #chat-chat-column .gen-header, html.class-blind #chat-base-model,
html.class-blind #chat-chat-model { visibility: hidden; }
html.class-blind #chat-base-column::before, html.class-blind #chat-chat-column::before {
  display: block; font-size: 1.6rem; font-weight: 700; }
html.class-blind #chat-base-column::before { content: "A"; }
html.class-blind #chat-chat-column::before { content: "B"; }
html.class-blind-swap #chat-chat-side { order: -1; }
html.class-blind-swap #chat-chat-column::before { content: "A"; }
html.class-blind-swap #chat-base-column::before { content: "B"; }
#class-start { display: none; max-width: 12rem; }
html.playground-present #class-start { display: inline-flex; }
.class-join { display: flex; gap: 1.5rem; align-items: center; }
.class-join-text { min-width: 0; }
.class-join-label { font-size: 1.2rem; }
.class-code { font-size: 4rem; font-weight: 800; letter-spacing: 0.3rem; line-height: 1.1; font-family: monospace; }
.class-link { font-size: 1.6rem; font-family: monospace; word-break: break-all; }
.class-qr svg { width: 240px; height: 240px; }
.class-poll-status { font-size: 1.1rem; }
.class-table { border-collapse: collapse; margin: 0.5rem 0; }
.class-table th, .class-table td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e5e7eb; text-align: left; }
.class-token { font-family: monospace; white-space: pre; }
.class-verdict { font-weight: 700; }
#class-student { max-width: 40rem; margin: 0 auto; font-size: 1.05rem; }
#class-student .class-params { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.8rem; }
#class-student .class-params dd { margin: 0; overflow-wrap: anywhere; }
#class-student .class-last { background: #fde68a; }
#class-answer-form { display: flex; gap: 0.5rem; margin: 0.6rem 0; }
#class-answer-form[hidden] { display: none; }
#class-answer { flex: 1; min-width: 0; font-size: 1.1rem; padding: 0.4rem; border: 1px solid #9ca3af; border-radius: 6px; }
#class-send, .class-chip { font-size: 1.1rem; padding: 0.4rem 1rem; border-radius: 6px; background: #2563eb; color: white; }
.class-chips { display: flex; gap: 0.5rem; }
.class-follow-again { border-left: 4px solid #2563eb; padding-left: 0.6rem; }
"""

HEAD = page_scripts.script_tag("class_room.js")
