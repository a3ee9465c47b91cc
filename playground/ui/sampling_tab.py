"""The Sampling lab tab: the whole next-token distribution, cut live by each sampling rule.

Layout top to bottom: model, chat-template toggle and prompt; the shared sampling controls with the
lecture presets (`playground.ui.controls`); the distribution chart (top N tokens raw vs after the
rules, removed ones greyed, the rest of the vocabulary as one bar) beside the numbers (entropies,
kept count, end-of-sequence probability, sequence log-probability and perplexity); token by token
(next token, click a bar or pick a token to append it, undo, generate N streaming) with the text
coloured by probability; and K samples with the histogram of their first tokens.

The session (`playground.lab.LabSession`, in `gr.State`) holds the prompt and the generated tokens,
never a KV cache or logits; `playground.lab` runs every operation. Moving a control never runs the
model: the distribution after the session's text is cached (`decoding.ranked_after`) and only
re-filtered.
gr.Plot has no click event in Gradio 6, so `HEAD` installs a `plotly_click` listener that writes
the clicked bar's token id into a hidden textbox and presses a hidden button; the dropdown plus
"Append" does the same without a mouse on a chart (and from the API).

Limits (checked on the server, whatever the page or an API caller sends): a prompt longer than
`MAX_PROMPT_TOKENS` tokens is cut from the left (the end of the prompt is what the next token
depends on) and the numbers panel says so (`playground.prompts.fit_prompt`); N is clamped to
1..`MAX_GENERATE`, K to 1..`generation.MAX_SAMPLES`, tokens per sample to 1..`MAX_SAMPLE_LENGTH`,
bars to 1..`MAX_TOP_N`; the sampling rules are clamped to their ranges
(`controls.settings_from_values`); NaN and non-numbers get a message; stop strings are capped
(`MAX_STOP_STRINGS` of at most `MAX_STOP_CHARS` characters). "Generate N" and "Draw K samples" can
be stopped with the Stop buttons, which press the tab's per-session `StopSignal`
(`playground.ui.common.connect_stop`, never Gradio's cancel, whose empty completion made the page
mark the outputs as failed): the stream ends after its current token with a last view that says
"you pressed Stop", the tokens generated so far stay, and its queue slot is freed.

Streaming keeps the page responsive (issue 23: a page busy drawing took 10-22 s to take a click on
Stop): the chart is drawn at most every `PLOT_INTERVAL_SECONDS` (1 s; env `PLAYGROUND_PLOT_INTERVAL`;
a Plotly chart costs the browser 80-170 ms to draw at presenter scale, several times that on a
loaded 2-core machine), the text and the numbers `TEXT_VIEWS_PER_CHART` times as often (tokens in
between arrive with the next view), and the token list and the details JSON only with a chart (both
grow with every token and were sent and redrawn with each one). The chart's title says which step
it shows, and the stream's last view (or the view after Stop) always has everything
(`bench/bench_page.py`). "Draw K samples" paces its running views the same way and keeps them light:
no hover cards and no JSON (64 samples x 100 tokens of them are megabytes, which were sent again
with every step and froze the page for seconds); the histogram is drawn after the first step, which
fixes it. The finished view, or the one after Stop, has everything.

On an engine model (`playground.engines.lab`) the chart has the engine's top K bars and the rest of
the vocabulary as one, the numbers panel says whether the rules' result is exact or "approximate:
only the top K are known" and gives bounds or "unknown" where only the top K cannot tell; K samples
say they do not run on engines yet.

What it leaves out: the rules (`playground.sampling`), generation (`playground.generation`),
figures (`playground.plots.sampling`) and HTML (`playground.html.generated`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape as html_escape

import gradio as gr
from gradio.components.plot import PlotData

from playground import exports, generation, lab, link_query, sampling, settings
from playground.errors import PlaygroundError
from playground.limits import clamp_int
from playground.html import generated as generated_html
from playground.models import get_spec
from playground.plots import sampling as sampling_plots
from playground.token_text import text_tail
from playground.ui import chain_section, constraint_section, link_wiring
from playground.ui.common import StopPressed, StopSignal, connect_stop, model_choices, user_errors
from playground.ui.exports import data_downloads
from playground.ui.controls import (SamplingControls, preset_values, sampling_controls, seed_from_value,
                                    settings_from_values)

DEFAULT_PROMPT = "The capital of France is"
DEFAULT_TOP_N = 20
MAX_TOP_N = 100
MAX_GENERATE = 200
MAX_SAMPLE_LENGTH = 100
MAX_PROMPT_TOKENS = 1024  # a CPU reads 1k tokens in a second or two; the contexts are 8k-32k
MAX_STOP_STRINGS = 16
MAX_STOP_CHARS = 200
STOPPED_BY_USER = lab.STOPPED_BY_USER
STOP_WAIT_SECONDS = 30.0  # how long the view after Stop waits for the stream to finish its step
PLOT_INTERVAL_SECONDS = settings.current().plot_interval
TITLE_TEXT_CHARS = 40  # the chart's title ends with the last 40 characters of the text
TEXT_VIEWS_PER_CHART = 4  # streaming: the text and the numbers up to 4 times per chart (4 a second)
HINT = "Press “Show distribution” to run the model once on the prompt; every control after that only re-filters."


@dataclass
class SamplesRun:
    """A "Many samples" run as far as it got, with what its view needs."""

    result: generation.SamplesResult
    length: int
    top_n: int
    settings: sampling.SamplingSettings
    seed: int
    tokenizer: object
    stopped: bool = False  # ended by the Stop button


# ---------------------------------------------------------------------------------------------
# Pure view builders: a `lab.LabView` in, HTML / chart data out


def _numbers_html(view: lab.LabView) -> str:
    session = view.session
    rows = [*view.number_rows(), ("generated tokens", f"{len(session.records)}")]
    if session.records:
        rows.append(("sequence log-prob (model)", f"{generation.sequence_logprob(session.records):.2f} nats"))
        rows.append(("perplexity (model)", f"{generation.perplexity(session.records):.2f}"))
    body = "".join(f"<tr><td>{html_escape(k)}</td><td><b>{html_escape(v)}</b></td></tr>" for k, v in rows)
    note = f'<p class="sampling-prompt-note">{html_escape(session.prompt_note)}</p>' if session.prompt_note else ""
    return f'{note}<table class="sampling-numbers-table">{body}</table>'


def _chart_title(view: lab.LabView) -> str:
    """The chart's title names the text the distribution comes after (its last `TITLE_TEXT_CHARS`
    characters, whitespace as single spaces; the user's message while a chat template's reply is
    empty): a presenter's screen shows the prompt with its result."""
    session = view.session
    reply = "".join(r.text for r in session.records)
    if session.chat_template and not reply.strip():  # the template's own end would say nothing
        shown = f"“{html_escape(text_tail(session.prompt, TITLE_TEXT_CHARS))}” in the chat template"
    else:
        shown = f"“{html_escape(text_tail(view.shown_prompt + reply, TITLE_TEXT_CHARS))}”"
    step = len(session.records)
    generated = f" ({step} generated token{'s' if step != 1 else ''})" if step else ""
    return f"Next token after {shown}{generated}"


def _token_choices(tokens: list[dict]) -> list[tuple[str, int]]:
    """The dropdown's entries, each with the two numbers the chart shows: the model's probability
    and the one after the rules (or "removed"), so the list never contradicts the chart."""
    def after_rules(token: dict) -> str:
        return f"after the rules {sampling_plots.percent(token['prob'])}" if token["kept"] else "removed"

    return [(f"{rank}. {sampling_plots.short_label(t['text'])}  model {t['raw_prob'] * 100:.2f}% · {after_rules(t)}",
             t["id"]) for rank, t in enumerate(tokens, start=1)]


def _details(view: lab.LabView, tokens: list[dict]) -> dict:
    result, session = view.result, view.session
    return {
        "model": session.model_id, "sequence_tokens": len(session.ids), "settings": result.settings.as_dict(),
        "kept_count": result.kept_count, "vocab_size": result.vocab_size,
        "raw_entropy_bits": result.raw_entropy_bits, "entropy_bits": result.entropy_bits,
        "tokens": tokens,
        "generated": [r.as_dict() for r in session.records],
        "stop": session.stop_note,
        "prompt_note": session.prompt_note,
        **view.details(),
    }


def _outputs(session: lab.LabSession | None, settings: sampling.SamplingSettings, top_n, log_scale,
             plot: bool = True, ranked: sampling.RankedLogits | None = None, light: bool = False):
    """(session, figure, numbers, token dropdown, generated HTML, details) for the session;
    without `plot` the figure is `gr.skip()` (the page keeps the chart it has); a `light` view
    (a streamed step between charts) also skips the token dropdown and the details JSON, which grow
    with every generated token and would be sent and redrawn again with each step."""
    if session is None:
        return (None, None, HINT, gr.update(choices=[], value=None),
                generated_html.generated_html("", [], empty_note=HINT), {})
    view = lab.view(session, settings, ranked)
    top_n = min(_top_n(top_n), view.max_bars or MAX_TOP_N)  # an engine view: its top K
    figure = (_plot(sampling_plots.distribution_spec(view.ranked, view.result, view.tokenizer, top_n,
                                                     bool(log_scale), _chart_title(view)))
              if plot else gr.skip())
    tokens = view.top_tokens(top_n)
    choices = _token_choices(tokens)
    # a streamed step has no "why?" links yet (they need every prefix decoded)
    why = None if light else generated_html.WhyLinks(session.model_id, view.why_prompts())
    html = generated_html.generated_html(view.shown_prompt, session.records, session.stop_note,
                                         start=view.start_labels, why=why)
    if light:
        return session, figure, _numbers_html(view), gr.skip(), html, gr.skip()
    return (session, figure, _numbers_html(view), gr.update(choices=choices, value=choices[0][1]),
            html, _details(view, tokens))


def _now() -> float:
    return time.monotonic()


class StreamPacer:
    """Says whether a streamed view is due (Generate N: whether it carries the chart; K samples:
    whether a running view is sent): the first call, then at most once per `interval` seconds
    (`PLOT_INTERVAL_SECONDS`)."""

    def __init__(self, interval: float | None = None, clock=None):
        self.interval = PLOT_INTERVAL_SECONDS if interval is None else interval
        self.clock = clock or _now
        self.last: float | None = None

    def __call__(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True


def _plot(spec: dict) -> PlotData:
    """A chart for gr.Plot straight from its plotly.js spec (no go.Figure round trip: see plots.sampling)."""
    return PlotData(type="plotly", plot=sampling_plots.spec_json(spec))


def _settings(temperature, top_k, top_p, min_p, order) -> sampling.SamplingSettings:
    return settings_from_values(temperature, top_k, top_p, min_p, order)


def _top_n(value) -> int:
    return clamp_int(value, "bars (top N)", 1, MAX_TOP_N, default=DEFAULT_TOP_N)


def _stop_strings(text: str | None) -> list[str]:
    if not text:
        return []
    text = str(text)
    parts = [part.replace("\\n", "\n").replace("\\t", "\t") for part in text.split("|") if part]
    if len(parts) > MAX_STOP_STRINGS or any(len(part) > MAX_STOP_CHARS for part in parts):
        raise PlaygroundError(f"Give at most {MAX_STOP_STRINGS} stop strings of at most {MAX_STOP_CHARS} characters.")
    return parts


def _require(session: lab.LabSession | None) -> lab.LabSession:
    if not isinstance(session, lab.LabSession):
        raise PlaygroundError("Show a distribution first (pick a model, type a prompt, press “Show distribution”).")
    return session


def _token_id(value) -> int:
    if value in (None, ""):
        raise PlaygroundError("Pick a token to append.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"Not a token id: {str(value)[:40]!r}.") from None
    if number != number or number in (float("inf"), float("-inf")) or number != int(number):
        raise PlaygroundError(f"Not a token id: {str(value)[:40]!r}.")
    if number < 0:
        raise PlaygroundError("That bar is the rest of the vocabulary, not one token: click a token's bar.")
    return int(number)


# ---------------------------------------------------------------------------------------------
# Handlers (a few lines each: the session's operations are `playground.lab`'s)


@user_errors
def show_distribution(model_id, chat_template, prompt, top_n, log_scale, temperature, top_k, top_p, min_p, order,
                      link_tokens=None):
    """The distribution after the prompt. A link's generated tokens (`link_tokens`, a
    `link_wiring.LateValue`, taken once) are put back after it, each as a chosen token."""
    settings = _settings(temperature, top_k, top_p, min_p, order)
    session = lab.open_session(model_id, prompt, chat_template, MAX_PROMPT_TOKENS)
    taken = link_tokens.take() if isinstance(link_tokens, link_wiring.LateValue) else None
    for token_id in taken or ():
        lab.append_token(session, settings, token_id)
    return _outputs(session, settings, top_n, log_scale)


@user_errors
def refilter(state, top_n, log_scale, temperature, top_k, top_p, min_p, order):
    """Re-filter the cached distribution: no model call while it is cached. Before the first
    distribution (a preset or a link setting the sliders) there is nothing to re-filter."""
    if not isinstance(state, lab.LabSession):
        return tuple(gr.skip() for _ in range(6))
    return _outputs(state, _settings(temperature, top_k, top_p, min_p, order), top_n, log_scale)


@user_errors
def shown_after_stop(state, top_n, log_scale, temperature, top_k, top_p, min_p, order):
    """After Stop: wait until the stream lets go of the session, then show the session as it is.

    A step that was running when Stop was pressed still completes and is kept; the stream's last
    view never reaches the page, so without this one that token would be in the session but not on
    the screen (and appear, unexplained, with the next token).
    """
    if isinstance(state, lab.LabSession) and state.lock.acquire(timeout=STOP_WAIT_SECONDS):
        state.lock.release()  # Gradio closes the stream
    return _outputs(state, _settings(temperature, top_k, top_p, min_p, order), top_n, log_scale)


@user_errors
def next_token(state, top_n, log_scale, temperature, top_k, top_p, min_p, order, seed):
    session, settings = _require(state), _settings(temperature, top_k, top_p, min_p, order)
    lab.next_token(session, settings, seed_from_value(seed))
    return _outputs(session, settings, top_n, log_scale)


@user_errors
def append_token(state, token_id, top_n, log_scale, temperature, top_k, top_p, min_p, order):
    session, settings = _require(state), _settings(temperature, top_k, top_p, min_p, order)
    lab.append_token(session, settings, _token_id(token_id))
    return _outputs(session, settings, top_n, log_scale)


@user_errors
def return_to_node(state, tree, node, top_n, log_scale, temperature, top_k, top_p, min_p, order):
    """A click on a node of the branching tree: the lab's text goes back (or over) to that node."""
    session, settings = _require(state), _settings(temperature, top_k, top_p, min_p, order)
    if tree is None or tuple(tree.prompt_ids) != tuple(session.prompt_ids):
        raise PlaygroundError("That tree belongs to another prompt: choose tokens from this one first.")
    index = clamp_int(node, "tree node", 0, max(0, len(tree.nodes) - 1))
    lab.return_to(session, settings, tree.steps(index))
    return _outputs(session, settings, top_n, log_scale)


@user_errors
def undo(state, top_n, log_scale, temperature, top_k, top_p, min_p, order):
    session = _require(state)
    lab.undo(session)
    return _outputs(session, _settings(temperature, top_k, top_p, min_p, order), top_n, log_scale)


@user_errors
def clear(state, top_n, log_scale, temperature, top_k, top_p, min_p, order):
    session = _require(state)
    lab.clear(session)
    return _outputs(session, _settings(temperature, top_k, top_p, min_p, order), top_n, log_scale)


@user_errors
def generate_n(state, n, stop, top_n, log_scale, temperature, top_k, top_p, min_p, order, seed, stop_signal=None):
    """Stream N tokens within a frame budget: the text and the numbers `TEXT_VIEWS_PER_CHART` times
    per `PLOT_INTERVAL_SECONDS`, the chart, the token list and the details at most once in it; the
    last view has everything. After Stop (`stop_signal`, the tab's
    `StopSignal`) one last view shows the tokens so far and says so."""
    session, settings = _require(state), _settings(temperature, top_k, top_p, min_p, order)
    n = clamp_int(n, "N", 1, MAX_GENERATE, default=1)
    seed, stops = seed_from_value(seed), _stop_strings(stop)
    text_due, chart_due, behind = StreamPacer(PLOT_INTERVAL_SECONDS / TEXT_VIEWS_PER_CHART), StreamPacer(), True
    steps = lab.generate(session, settings, n, seed, stops)
    try:
        for _record, ranked in steps:
            if not text_due():
                behind = True
                continue
            behind = not chart_due()
            yield _outputs(session, settings, top_n, log_scale, plot=not behind, ranked=ranked, light=behind)
    except StopPressed:
        behind = True
    finally:  # closing it keeps the tokens, notes a Stop (STOPPED_BY_USER) and lets go of the session
        steps.close()
    if behind:  # the last view always has everything (and says why the run ended)
        yield _outputs(session, settings, top_n, log_scale)


@user_errors
def draw_samples(state, k, length, stop, top_n, temperature, top_k, top_p, min_p, order, seed, stop_signal=None):
    """K continuations of the current text, streamed step by step, and the first-token histogram;
    Stop (`stop_signal`) ends it after the current step (`samples_after_stop` draws it then)."""
    session, settings = _require(state), _settings(temperature, top_k, top_p, min_p, order)
    seed = seed_from_value(seed)
    k = clamp_int(k, "K samples", 1, generation.MAX_SAMPLES, default=1)
    length = clamp_int(length, "tokens each", 1, MAX_SAMPLE_LENGTH, default=1)
    stops, top_n = _stop_strings(stop), _top_n(top_n)
    steps = lab.samples(session, settings, k, length, seed, stops)  # refused here where the model has none
    tokenizer = lab.tokenizer(session)
    run = None
    try:
        view_due = StreamPacer()
        for step, result in enumerate(steps):
            run = SamplesRun(result, length, top_n, settings, seed, tokenizer)
            if result.finished:  # the whole view: hover cards, histogram, JSON (all an API caller gets)
                yield _samples_outputs(run)
            elif view_due():  # a running view, paced and light; the histogram is fixed by step 1
                yield _samples_outputs(run, plot=step == 0, running=True)
    except (GeneratorExit, StopPressed):  # the user pressed Stop: the view after Stop says where
        if run is not None:
            run.stopped = True
            session.samples = run  # kept for that one view, then dropped
        raise
    finally:  # lets go of the session (after keeping a stopped run) for the view after Stop
        steps.close()


def _samples_outputs(run: SamplesRun, plot: bool = True, running: bool = False):
    """(samples HTML, first-token histogram, JSON summary) of a samples run, finished or not;
    without `plot` the histogram is `gr.skip()`; a `running` view has no hover cards and skips the
    JSON (both grow with K x length and would be sent again with every step)."""
    result = run.result
    figure = (_plot(sampling_plots.first_token_spec(result.first_ranked, result.first_distribution, run.tokenizer,
                                                    result.first_token_counts, run.top_n))
              if plot else gr.skip())
    if run.stopped:
        progress = f"<div class='gen-note'>Stopped: you pressed Stop after step {result.steps_done} of {run.length}.</div>"
    else:
        progress = "" if result.finished else f"<div class='gen-note'>step {result.steps_done} of {run.length}…</div>"
    if result.budget_note:
        progress = f"<div class='gen-note'>{html_escape(result.budget_note)}</div>" + progress
    html = generated_html.samples_html(result.samples, generation.STOP_REASONS, stopped=run.stopped,
                                       hover=not running)
    if running:
        return progress + html, figure, gr.skip()
    summary = {"samples": [{"text": s.text, "stop_reason": s.stop_reason, "logprob": s.logprob,
                            "perplexity": s.perplexity, "tokens": [r.as_dict() for r in s.records]}
                           for s in result.samples],
               "first_token_counts": {str(t): c for t, c in result.first_token_counts.items()},
               "finished": result.finished, "stopped_by_user": run.stopped, "seed": run.seed,
               "requested_samples": result.requested or len(result.samples),
               "settings": run.settings.as_dict()}
    return progress + html, figure, summary


@user_errors
def samples_after_stop(state):
    """After Stop (and `shown_after_stop`, which waited for the streams): a stopped samples run,
    drawn as it ended, then dropped from the session; anything else stays as it is."""
    if not isinstance(state, lab.LabSession) or state.samples is None:
        return gr.skip(), gr.skip(), gr.skip()
    run, state.samples = state.samples, None
    return _samples_outputs(run)


def distribution_data(state, top_n, temperature, top_k, top_p, min_p, order, fmt):
    """The distribution the chart shows, with every token the rules keep, as CSV or JSON text."""
    view = lab.view(_require(state), _settings(temperature, top_k, top_p, min_p, order))
    top_n = min(_top_n(top_n), view.max_bars or MAX_TOP_N)
    table = exports.session_distribution(view, top_n)
    return exports.export(view.known_only(table), fmt)


def records_data(state, fmt):
    """The generated tokens' records (`StepRecord.as_dict()`) as CSV or JSON text."""
    return exports.export(exports.session_records(_require(state)), fmt)


def model_changed(model_id):
    """Offer the chat-template toggle only for chat models."""
    try:
        is_chat = get_spec(model_id).role == "chat"
    except PlaygroundError:
        is_chat = False
    # a chat model keeps the box as it is: no `value` at all (gr.skip() inside an update is a dict, which ticks it)
    keep = {} if is_chat else {"value": False}
    return gr.update(interactive=is_chat, **keep,
                     info="wrap the prompt as a user message" if is_chat else "base models have no chat template")


# ---------------------------------------------------------------------------------------------
# Layout


def build() -> link_wiring.TabLink:
    choices = model_choices(tab="sampling")
    default_model = choices[0][1] if choices else None
    gr.Markdown("### Sampling lab\nThe model gives a probability to every token in its vocabulary. "
                "The rules below cut that distribution; the chart shows what each rule keeps.",
                elem_classes=["sampling-intro"])
    state = gr.State(None, time_to_live=settings.current().session_ttl)
    with gr.Row():
        model = gr.Dropdown(choices, value=default_model, label="model", scale=2, elem_id="sampling-model")
        chat_template = gr.Checkbox(False, label="chat template", scale=1, elem_id="sampling-chat-template",
                                    interactive=bool(default_model) and get_spec(default_model).role == "chat")
        top_n = gr.Slider(5, MAX_TOP_N, value=DEFAULT_TOP_N, step=1, label="bars (top N)", scale=1,
                          elem_id="sampling-top-n")
        log_scale = gr.Checkbox(False, label="log scale", scale=1, elem_id="sampling-log")
    with gr.Row():
        prompt = gr.Textbox(DEFAULT_PROMPT, label="prompt", lines=2, scale=4, elem_id="sampling-prompt")
        show = gr.Button("Show distribution", variant="primary", scale=1, elem_id="sampling-show")
    controls: SamplingControls = sampling_controls(elem_prefix="sampling")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            plot = gr.Plot(label="next-token distribution (click a bar to append that token)",
                           elem_id="sampling-dist-plot")
            data_downloads("Download the distribution", distribution_data, [state, top_n, *controls.settings_inputs],
                           "sampling-distribution", "sampling-dist-data")
        with gr.Column(scale=2):
            numbers = gr.HTML(HINT, elem_id="sampling-numbers", elem_classes=["sampling-numbers"])
            with gr.Row():
                token_pick = gr.Dropdown([], label="token to append", scale=3, elem_id="sampling-token-pick",
                                         allow_custom_value=True)
                append = gr.Button("Append", scale=1, elem_id="sampling-append")
            with gr.Row():
                next_button = gr.Button("Next token", variant="primary", elem_id="sampling-next")
                undo_button = gr.Button("Undo", elem_id="sampling-undo")
                clear_button = gr.Button("Clear", elem_id="sampling-clear")
    # Generation's controls sit right above its text: a presenter sees Stop and the tokens on one screen
    with gr.Row(elem_id="sampling-generate-row", equal_height=True):
        n_tokens = gr.Slider(1, MAX_GENERATE, value=20, step=1, label="N", scale=2, elem_id="sampling-n")
        generate_button = gr.Button("Generate N", variant="primary", scale=1, elem_id="sampling-generate")
        stop_generate = gr.Button("Stop", variant="stop", scale=1, elem_id="sampling-stop-generate")
        stop = gr.Textbox("", label="stop strings (| between them, \\n a new line)", scale=3,
                          elem_id="sampling-stop")
    generated = gr.HTML(generated_html.generated_html("", [], empty_note=HINT), elem_id="sampling-generated")
    data_downloads("Download the generated tokens", records_data, [state], "sampling-tokens", "sampling-tokens-data")
    with gr.Accordion("Many samples: K continuations with these rules and seed", open=False):
        with gr.Row():
            k = gr.Slider(1, generation.MAX_SAMPLES, value=10, step=1, label="K samples", elem_id="sampling-k")
            length = gr.Slider(1, MAX_SAMPLE_LENGTH, value=20, step=1, label="tokens each", elem_id="sampling-length")
            samples_button = gr.Button("Draw K samples", variant="primary", elem_id="sampling-samples")
            stop_samples = gr.Button("Stop", variant="stop", elem_id="sampling-stop-samples")
        with gr.Row(equal_height=False):
            samples_view = gr.HTML(elem_id="sampling-samples-view")
            histogram = gr.Plot(label="first token over K runs vs processed distribution",
                                elem_id="sampling-histogram")
        samples_json = gr.JSON(label="samples (JSON)", visible="hidden")
    with gr.Accordion("Details (JSON)", open=False):
        details = gr.JSON(label="top tokens and generated records", elem_id="sampling-details")
    chain = chain_section.build(state)  # the sampler chain: its editor, funnel and A/B (issue 25)
    constraint = constraint_section.build(model, chat_template, prompt, controls)  # structured outputs (issue 26)
    clicked = gr.Textbox(visible="hidden", elem_id="sampling-click-id")
    clicked_button = gr.Button("append clicked", visible="hidden", elem_id="sampling-click-button")
    tree_node = gr.Textbox(visible="hidden", elem_id="sampling-tree-node")
    tree_button = gr.Button("return to the clicked node", visible="hidden", elem_id="sampling-tree-button")

    rules = controls.settings_inputs
    view_outputs = [state, plot, numbers, token_pick, generated, details]
    view = dict(outputs=view_outputs)

    link_tokens = gr.State(link_wiring.LateValue())  # a link's generated tokens, put back by its Show
    show_inputs = [model, chat_template, prompt, top_n, log_scale, *rules, link_tokens]
    moves = [  # the events that change the lab's text: the chain section follows each (`chain_section.follow`)
        show.click(show_distribution, show_inputs, api_name="sampling_distribution", **view),
        prompt.submit(show_distribution, show_inputs, api_name=False, **view),
        # a user's choice shows the new distribution; a link or a class room setting the model, the template
        # and the prompt at once does not (`.input`, not `.change`): its own Show would race three shows,
        # and the one that ended last (an old prompt's) was the session that Generate continued
        # (a base model's show ignores the template box: `lab.open_session`, so it need not wait for the toggle)
        chat_template.input(show_distribution, show_inputs, api_name=False, **view),
        model.input(show_distribution, show_inputs, api_name=False, **view)]
    model.change(model_changed, model, chat_template, api_name=False, queue=False)  # the toggle, whoever set the model

    refilter_inputs = [state, top_n, log_scale, *rules]
    # One listener for every rule control: a preset changes four sliders at once, and "always_last"
    # across all of them collapses that into one re-filter (in order) instead of four racing ones.
    gr.on([c.change for c in [*controls.changes, top_n, log_scale]], refilter, refilter_inputs,
          api_name="sampling_refilter", trigger_mode="always_last", show_progress="hidden", **view)

    rule_inputs = [top_n, log_scale, *rules]
    moves += [
        next_button.click(next_token, [state, *rule_inputs, controls.seed], api_name="sampling_next_token", **view),
        append.click(append_token, [state, token_pick, *rule_inputs], api_name="sampling_append_token", **view),
        clicked_button.click(append_token, [state, clicked, *rule_inputs], api_name=False, **view),
        tree_button.click(return_to_node, [state, chain["tree"], tree_node, *rule_inputs],
                          api_name="sampling_tree_return", **view),
        undo_button.click(undo, [state, *rule_inputs], api_name="sampling_undo", **view),
        clear_button.click(clear, [state, *rule_inputs], api_name="sampling_clear", **view)]
    # Both long streams take the tab's StopSignal as their last input (a State: not an API parameter).
    stop_signal = gr.State(StopSignal())
    generating = generate_button.click(generate_n, [state, n_tokens, stop, *rule_inputs, controls.seed, stop_signal],
                                       api_name="sampling_generate", **view)
    chain_section.follow(chain, [*moves, generating])  # a generation: once, when it has ended
    sampling_many = samples_button.click(draw_samples,
                                         [state, k, length, stop, top_n, *rules, controls.seed, stop_signal],
                                         [samples_view, histogram, samples_json], api_name="sampling_samples")
    # Stop presses the StopSignal (`connect_stop`, never a Gradio cancel): a stream ends after its current
    # token with a last view saying so and frees its queue slot (the tokens so far stay), one still
    # waiting never runs; then the page shows the session as the stream left it.
    for stop_button in (stop_generate, stop_samples):
        connect_stop(stop_button, stop_signal, [generating, sampling_many]).then(
            shown_after_stop, refilter_inputs, api_name=False, show_progress="hidden", **view).then(
            samples_after_stop, state, [samples_view, histogram, samples_json], api_name=False, show_progress="hidden")
    link = tab_link(model, chat_template, prompt, top_n, log_scale, controls, n_tokens, stop)
    # the generated tokens: Copy link reads their ids from the details JSON, a link puts them back
    link.late["tokens"] = (link_query.Param("tokens", "ids", (), max_items=MAX_GENERATE), link_tokens, details)
    constraint_section.extend_link(link, constraint, SHOWN)
    chain_section.extend_link(link, chain, SHOWN)
    link.states["lab"] = state  # a class room publishes the lab's step (playground.ui.class_room)
    return link


def preset_query(name: str) -> dict | None:
    """A lecture preset's slider values, for a link's `preset=`."""
    if name not in sampling.PRESETS:
        return None
    return dict(zip(("temperature", "top_k", "top_p", "min_p"), preset_values(name)))


SHOWN = "#sampling-numbers table"  # the numbers panel once a distribution is shown


def tab_link(model, chat_template, prompt, top_n, log_scale, controls: SamplingControls, n_tokens, stop) -> link_wiring.TabLink:
    return link_wiring.TabLink(
        "sampling",
        fields={"model": model, "chat_template": chat_template, "prompt": prompt, "top_n": top_n,
                "log_scale": log_scale, "temperature": controls.temperature, "top_k": controls.top_k,
                "top_p": controls.top_p, "min_p": controls.min_p, "order": controls.order, "seed": controls.seed,
                "n": n_tokens, "stop": stop},
        actions={"show": [("sampling-show", SHOWN)],
                 "generate": [("sampling-show", SHOWN), ("sampling-generate", "#sampling-generated .gen-status")]},
        default_run="show",
        views={"chart": "sampling-dist-plot", "text": "sampling-generate-row", "numbers": "sampling-numbers"},
        default_view="chart",
        aliases={"preset": preset_query},
    )


CSS = generated_html.GENERATED_CSS + chain_section.CSS + constraint_section.CSS + """
.sampling-numbers-table { font-size: 1.15rem; border-collapse: collapse; width: 100%; }
.sampling-prompt-note { font-size: 1.05rem; color: #8a4b00; margin: 0 0 6px; }
.sampling-numbers-table td { padding: 5px 10px; border-bottom: 1px solid #ddd; }
.sampling-presets button { font-size: 1.05rem; }
#sampling-dist-plot .js-plotly-plot .bars path, #chain-tree .js-plotly-plot .points path { cursor: pointer; }
"""

# gr.Plot has no click event: forward plotly clicks on a bar (its token id) or on a node of the branching
# tree (its index, the first of its customdata) to a hidden textbox + button.
HEAD = """
<script>
(() => {
  const bind = (chart, box, button, value) => {
    const root = document.getElementById(chart);
    if (!root) return;
    root.querySelectorAll('.js-plotly-plot').forEach((plot) => {
      if (plot.dataset.samplingClick || typeof plot.on !== 'function') return;
      plot.dataset.samplingClick = '1';
      plot.on('plotly_click', (event) => {
        const point = event && event.points && event.points[0];
        const picked = point && value(point.customdata);
        const field = document.querySelector(`#${box} textarea, #${box} input`);
        const press = document.getElementById(button);
        if (picked === null || picked === undefined || !field || !press) return;
        field.value = String(picked);
        field.dispatchEvent(new Event('input', { bubbles: true }));
        setTimeout(() => press.click(), 50);
      });
    });
  };
  const tokenId = (data) => (typeof data === 'number' && data >= 0 ? data : null);
  const nodeIndex = (data) => (Array.isArray(data) && typeof data[0] === 'number' ? data[0] : null);
  setInterval(() => {
    bind('sampling-dist-plot', 'sampling-click-id', 'sampling-click-button', tokenId);
    bind('chain-tree', 'sampling-tree-node', 'sampling-tree-button', nodeIndex);
  }, 200);
})();
</script>
"""
