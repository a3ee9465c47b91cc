"""Assembles the Gradio app: a status line and the five tabs, in lecture order, and its queue.

The page is served at once; models load lazily on the first request that needs them (the status
line says which are loaded). What it leaves out: each tab's layout (its own module) and
command-line flags (`app.py`).

Queue settings (a lecture hall opens the page at once; chosen for the 2-core CPU this runs on in
class, raised with environment variables on a GPU host):

- `QUEUE_MAX_SIZE` (256, `PLAYGROUND_QUEUE_MAX_SIZE`): waiting requests beyond this are refused at
  once with "Queue is full" instead of piling up behind a 20-minute wait.
- Every queued event belongs to one of three concurrency groups (`EVENT_GROUPS`, keyed by handler):
  - `heavy` (`HEAVY_CONCURRENCY` = 2, `PLAYGROUND_HEAVY_CONCURRENCY`): many model calls per
    request - Generate N, K samples, beam search, the base-vs-chat generations and conversation,
    teacher forcing, BPE training. Two at a time keep a 2-core CPU busy without thrashing; a
    request waits in the queue (its position is shown) rather than slowing everyone down. Any
    queued handler not listed below is treated as heavy, the safe default.
  - `model-step` (`MODEL_STEP_CONCURRENCY` = 16): one forward pass per request - show the
    distribution, next token, append, undo, clear, look inside, the logit lens. They must run
    concurrently for the cross-session micro-batcher (`playground.batching`) to group them into one
    forward.
  - `instant` (`INSTANT_CONCURRENCY` = 8): no model call - tokenize, compare, decode, re-filter,
    BPE step/encode, beam redraw, template view, attention layer/head redraw.
- On a CPU, `model_call.compute_slot` runs one model call at a time in the process anyway; the
  groups decide which requests wait in the queue (with their position shown) and which share model
  calls: concurrent generations' decode steps and next-token requests are batched into one forward
  (`playground.batching`), a next-token click slips in between.
- No request waits in the queue longer than `PLAYGROUND_QUEUE_WAIT`: one that would is told at once
  that the server is busy and how many requests are ahead (`playground.ui.queue_guard`).
- Gradio keeps at most `MAX_SESSIONS` sessions (`PLAYGROUND_MAX_SESSIONS`), least recently used
  dropped first; what a session keeps is small (the sampling lab's: ids and records).
- Long generations can be stopped by their user (each tab's Stop buttons press its per-session
  `StopSignal`, `common.connect_stop`), which frees their `heavy` slot after the current token.

Input validation: Gradio checks slider ranges and dropdown choices before a handler runs; values
it cannot even convert (a string for a number, None for a slider) would otherwise fail with an
anonymous error, so `PlaygroundBlocks` turns them into a message naming the control. It also
replaces lone surrogates (JSON can carry "\ud800", which is not Unicode and which tokenizers
reject) with U+FFFD in every text that arrives, so no handler ever sees one. Each handler still
validates its own values (NaN, infinities, sizes): the server never trusts the page.
"""

from __future__ import annotations

import contextlib
import logging
import re

import gradio as gr
from gradio.exceptions import ComponentProcessingError

from playground import memory_budget, settings
from playground.errors import PlaygroundError
from playground.ui import attribution_tab
from playground.ui import (beam_tab, chat_tab, class_room, common, exports, guard_routes, inside_tab, lecture_tab,
                           link_wiring, presenter, queue_guard, sampling_tab, tokenizer_tab)

refused_log = logging.getLogger("playground.refused")


QUEUE_MAX_SIZE = settings.current().queue_max_size
HEAVY_CONCURRENCY = settings.current().heavy_concurrency
MODEL_STEP_CONCURRENCY = 16
# Sessions whose state the server keeps (Gradio drops the least recently used beyond this); each
# tab's gr.State also expires `settings.session_ttl` seconds after its last update.
MAX_SESSIONS = settings.current().max_sessions
INSTANT_CONCURRENCY = 8
GROUP_LIMITS = {"heavy": HEAVY_CONCURRENCY, "model-step": MODEL_STEP_CONCURRENCY, "instant": INSTANT_CONCURRENCY}

# handler (module.function) -> concurrency group; anything queued and not listed is "heavy"
EVENT_GROUPS: dict[str, str] = {
    **{f"playground.ui.sampling_tab.{name}": "model-step"
       for name in ("show_distribution", "next_token", "append_token", "undo", "clear")},
    "playground.ui.sampling_tab.refilter": "instant",
    "playground.ui.sampling_tab.shown_after_stop": "instant",
    "playground.ui.sampling_tab.samples_after_stop": "instant",
    "playground.ui.sampling_tab.generate_n": "heavy",
    "playground.ui.sampling_tab.draw_samples": "heavy",
    "playground.ui.sampling_tab.return_to_node": "heavy",  # up to a tree path's 200 tokens, one step each
    "playground.ui.constraint_section.run_constraint": "heavy",  # a constrained and a free generation
    "playground.ui.constraint_section.show_step": "instant",  # redraws the kept run
    "playground.ui.chain_section.show_chain": "model-step",  # re-filters; a cache miss is one forward
    "playground.ui.chain_section.run_ab": "heavy",  # 2 x N decode steps
    "playground.ui.chain_section.run_ab_samples": "model-step",  # one distribution (cached), 2 x K chain runs
    "playground.ui.chain_section.grow_tree": "instant",  # the lab's path folded into the tree
    **{f"playground.ui.tokenizer_tab.{name}": "instant"
       for name in ("explore", "compare", "decode", "ids_to_decode", "apply_preset", "bpe_step",
                    "bpe_encode")},
    "playground.ui.tokenizer_tab.bpe_train": "heavy",
    "playground.ui.beam_tab.run_search": "heavy",
    "playground.ui.beam_tab.redraw": "instant",
    "playground.ui.beam_tab.step_by": "instant",
    **{f"playground.ui.chat_tab.{name}": "heavy"
       for name in ("side_by_side", "with_without_template", "answer", "converse", "converse_oranges",
                    "teacher_forcing")},
    "playground.ui.chat_tab.template_views": "instant",
    "playground.ui.fim_section.show": "instant",
    "playground.ui.encoder_section.show_pair": "instant",  # a tokenizer trained once (0.1 s), no model
    "playground.ui.fim_section.complete": "heavy",
    "playground.ui.inside_tab.look_inside": "model-step",
    "playground.ui.inside_tab.show_lens": "model-step",
    "playground.ui.rare_section.find": "model-step",  # no forward; the model's rows, read once per model
    "playground.ui.rare_section.ask_to_repeat": "heavy",  # up to 16 decode steps
    "playground.ui.inside_tab.show_attention": "instant",
    "playground.ui.inside_tab.slid_attention": "instant",
    "playground.ui.attribution_tab.why": "heavy",  # forward and backward passes of several methods
    "playground.ui.class_room.poll_next_token": "model-step",  # the poll's one model call
    **{f"playground.ui.class_room.{name}": "instant" for name in ("poll_count", "poll_chat", "reveal", "hide")},
}


class PlaygroundBlocks(gr.Blocks):
    """gr.Blocks whose input conversion errors become messages that name the control.

    Gradio raises its own `gr.Error` for out-of-range sliders and unknown dropdown choices (clear
    already); a value it cannot convert at all (an API caller's "abc" for a number, None for a
    slider, too few values) raises a plain exception, shown as an anonymous failure. Here it
    becomes `gr.Error("<control>: <value> is not a valid value.")`.
    """

    queue_guard: "queue_guard.QueueGuard | None" = None

    async def process_api(self, block_fn, inputs, state=None, request=None, iterator=None, session_hash=None,
                          event_id=None, *args, **kwargs):
        if iterator is None and self.queue_guard is not None:  # an event's first call: it just left the queue
            self.queue_guard.check_start(self, event_id)
        heavy = getattr(block_fn, "concurrency_id", None) == "heavy"
        if iterator is None and heavy:
            try:  # near the memory budget the caches are emptied, then a new heavy request is refused
                memory_budget.admit("a long request (generation, samples, beams, training)")
            except PlaygroundError as exc:
                refused_log.info("refused %s: %s", handler_key(block_fn) or "?", str(exc)[:200])
                raise gr.Error(str(exc), title="Short of memory", duration=15, print_exception=False) from None
        try:
            # a heavy request's model calls check the budget's stop line (each streamed step too)
            with memory_budget.growing() if heavy else contextlib.nullcontext():
                return await super().process_api(block_fn, inputs, state, request, iterator, session_hash,
                                                 event_id, *args, **kwargs)
        except gr.Error as exc:
            # a message for the user (bad input, busy, time limit): one log line, not a traceback
            if exc.print_exception:
                exc.print_exception = False
                refused_log.info("refused %s: %s", handler_key(block_fn) or getattr(block_fn, "name", "?"),
                                 str(exc.message)[:200].replace("\n", " "))
            raise

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        inputs = [_without_surrogates(value) for value in inputs]
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except ComponentProcessingError as exc:
            raise gr.Error(_conversion_message(block_fn, inputs, str(exc))) from None
        except ValueError as exc:
            if len(inputs) < len(block_fn.inputs):
                raise gr.Error(f"This endpoint takes {len(block_fn.inputs)} values; it got {len(inputs)}.") from None
            raise gr.Error(f"Invalid input: {str(exc)[:200]}") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value, depth: int = 0):
    """`value` with every lone surrogate in its strings replaced by U+FFFD (lists/dicts walked)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if depth > 20:
        return value
    if isinstance(value, list):
        return [_without_surrogates(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k, depth + 1): _without_surrogates(v, depth + 1) for k, v in value.items()}
    return value


def _conversion_message(block_fn, inputs, text: str) -> str:
    found = re.search(r"at index (\d+)", text)
    if not found:
        return "One of the inputs is not a valid value for its control."
    index = int(found.group(1))
    block = block_fn.inputs[index]
    name = getattr(block, "label", None) or getattr(block, "elem_id", None) or type(block).__name__
    value = inputs[index] if index < len(inputs) else None
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"“{name}”: {shown} is not a valid value for this control."


def handler_key(block_fn) -> str | None:
    fn = getattr(block_fn, "fn", None)
    if fn is None:
        return None
    fn = getattr(fn, "func", fn)  # functools.partial
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', getattr(fn, '__name__', ''))}"


def configure_queue(app: gr.Blocks) -> dict[str, str]:
    """Put every queued event into its concurrency group; returns {handler: group} for what it set."""
    assigned = {}
    for block_fn in app.fns.values():
        key = handler_key(block_fn)
        if key is None or not block_fn.queue:
            continue
        group = EVENT_GROUPS.get(key, "heavy")
        block_fn.concurrency_id = group
        block_fn.concurrency_limit = GROUP_LIMITS[group]
        assigned[key] = group
    return assigned


def build_app() -> gr.Blocks:
    with PlaygroundBlocks(title="LLM playground") as app:
        with gr.Row(elem_id="app-header", equal_height=True):
            gr.Markdown("# LLM playground", elem_id="app-title", scale=0, min_width=220)
            status = gr.Markdown(elem_id="status-line", scale=4)
            present = gr.Checkbox(False, label="Presenter mode", elem_id="presenter-toggle", scale=0, min_width=170,
                                  container=False)
            copy_link = gr.Button("Copy link", size="sm", scale=0, min_width=110, elem_id="copy-link")
        with gr.Row(elem_id="app-subheader"):
            link_output = gr.Textbox(show_label=False, container=False, interactive=False, buttons=["copy"],
                                     placeholder="“Copy link” puts the link of this tab's state here (and on the clipboard)",
                                     elem_id="link-output", scale=4)
            with gr.Column(scale=1, min_width=200):
                with gr.Accordion("Models", open=False, elem_id="status-details-box"):
                    status_details = gr.Markdown(elem_id="status-details")
        notice = gr.Markdown(visible=False, elem_id="link-notice")
        class_panel = class_room.Panel()
        gr.Markdown("How large language models turn text into tokens, tokens into probabilities, and "
                    "probabilities into text.", elem_classes=["app-intro"])
        tab_links = []
        with gr.Tabs() as tabs:
            with gr.Tab("Lecture", id="lecture"):
                lecture_tab.build()
            for label, tab_id, module in LINKED_TABS:  # each returns its part in deep links
                with gr.Tab(label, id=tab_id):
                    tab_links.append(module.build())
        link_values = link_wiring.install(tabs, tab_links, notice, copy_link, link_output)
        present.change(None, present, None, js=presenter.TOGGLE_JS)
        timer = gr.Timer(5.0)
        for trigger in (app.load, timer.tick):
            trigger(common.status_markdown, outputs=status, api_name=False, queue=False, show_progress="hidden")
            trigger(common.status_details, outputs=status_details, api_name=False, queue=False, show_progress="hidden")
        # a student page stops the status timer (a hall of them would ask every 5 s)
        class_room.wire(class_panel, tabs, tab_links, link_values, timer)
    # api_open=False: Gradio's direct /run and /api routes refuse queued functions (guard_routes too)
    app.queue(default_concurrency_limit=HEAVY_CONCURRENCY, max_size=QUEUE_MAX_SIZE, api_open=False)
    configure_queue(app)
    queue_guard.QueueGuard().install(app)
    return app


# The tabs after the Lecture index, in lecture order: (label, id, module with `build() -> TabLink`).
LINKED_TABS = (("Tokenizer", "tokenizer", tokenizer_tab), ("Base vs chat", "chat", chat_tab),
               ("Sampling lab", "sampling", sampling_tab), ("Beam search", "beam", beam_tab),
               ("Inside the model", "inside", inside_tab), ("Why this token?", "why", attribution_tab))

TAB_MODULES = (*(module for _, _, module in LINKED_TABS), exports, class_room)  # their CSS and HEAD


def launch_kwargs() -> dict:
    """Arguments for `Blocks.launch` (Gradio 6 takes theme, css and head there, not in Blocks).

    Each tab module may define `CSS` and `HEAD` strings; they are joined in tab order.
    """
    css = [presenter.CSS, *(getattr(module, "CSS", "") for module in TAB_MODULES)]
    head = "\n".join([presenter.head(), link_wiring.HEAD, *(getattr(module, "HEAD", "") for module in TAB_MODULES)])
    return {"css": "\n".join(c for c in css if c), "head": head or None,
            "theme": gr.themes.Soft(text_size="lg"), "state_session_capacity": MAX_SESSIONS,
            **refuse_uploads()}


UPLOADS_REFUSED = "This playground takes no file uploads."


def refuse_uploads() -> dict:
    """Launch arguments that refuse every file upload (no component takes files).

    Gradio's `/gradio_api/upload` (and `/process_recording`, and multipart calls to the component
    server) stores whatever anyone posts, up to `max_file_size` (unlimited by default). A small ASGI
    middleware answers such requests with 403 before a byte of the body is read; `max_file_size`
    is set too, in case a route slips past it.
    """
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse

    class RefuseUploads:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and scope.get("method") == "POST" and _is_upload(scope):
                await PlainTextResponse(UPLOADS_REFUSED, status_code=403)(scope, receive, send)
                return
            await self.app(scope, receive, send)

    guard_routes.raise_header_limit()
    # GuardRoutes outermost of Gradio's: its headers go on every answer of Gradio's routes, the upload
    # refusal's too; the class room's JSON routes before it (a hall asks them every second; own limits)
    return {"app_kwargs": {"middleware": [Middleware(class_room.ClassRoutes), Middleware(guard_routes.GuardRoutes),
                                          Middleware(RefuseUploads)]},
            "max_file_size": "1kb"}


def _is_upload(scope) -> bool:
    path = scope.get("path", "").rstrip("/")
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    return path.endswith(("/upload", "/process_recording")) or content_type.lower().startswith(b"multipart/")
