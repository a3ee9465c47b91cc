"""The "Beam search" tab: run transformers' beam search, see its whole tree, replay it step by step.

Layout, top to bottom: lecture presets (one click sets the controls and runs), prompt and model,
beam settings, comparison paths, the tree (plotly, zoom and pan), the replay slider and the
collapse toggle, the returned sequences with their scores. Each click is one backend call, the
model's `backends.backend_for(model_id).beam_search` (in-process: `beam.run_beam_search`), which
returns the tree with the greedy and sampled paths (`beam_search` API); its per-step callback
drives the progress bar. Replaying or collapsing only redraws from the result kept in `gr.State`
(`beam_redraw` API). Engine models are offered too (their backend has `beam`): the same search on the engine's top-K (`playground.engines.beam`), with a
line above the summary saying it ran on the engine, what is exact, and that the comparison paths
are left out. What it leaves out: loading models and running anything on them
(`playground.beam`), and the drawing (`playground.plots.beam`).
"""

from __future__ import annotations

import functools
import html

import gradio as gr

from playground import beam, exports, link_query
from playground.backends import backend_for
from playground.errors import PlaygroundError
from playground.limits import clamp_float, clamp_int
from playground.plots.beam import SUMMARY_HEADERS, beam_figure, summary_markdown, summary_rows
from playground.ui import link_wiring
from playground.ui.common import model_choices, user_errors
from playground.ui.exports import data_downloads

EARLY_STOPPING_LABELS = [("false: stop when no live beam can win", "false"),
                         ("true: stop once num_beams are finished", "true"),
                         ("never: canonical beam search", "never")]
DEFAULT_SEED = 42
CSS = """
#beam-summary { font-size: 1.15rem; }
#beam-tree { min-height: 420px; }
"""


def _search_settings(num_beams, max_new_tokens, length_penalty, early_stopping, num_return) -> beam.BeamSettings:
    """Settings from widget values: numbers clamped to the sliders' ranges, anything else a clear message
    (`BeamSettings` checks the rest when built)."""
    beams = clamp_int(num_beams, "Beams", 1, beam.MAX_BEAMS)
    return beam.BeamSettings(
        beams,
        clamp_int(max_new_tokens, "Max new tokens", 1, beam.MAX_NEW_TOKENS),
        clamp_float(length_penalty, "Length penalty", -10.0, 10.0),
        early_stopping,
        min(clamp_int(num_return, "Returned sequences", 1, beam.MAX_BEAMS), beams),  # at most the beams
    )


def _returns_note(num_return, settings: beam.BeamSettings) -> str:
    """What the summary says when more sequences were asked for than there are beams."""
    try:
        asked = int(float(num_return))
    except (TypeError, ValueError):
        return ""
    if asked <= settings.num_return_sequences:
        return ""
    return (f"Returned sequences: {asked} asked for, {settings.num_return_sequences} returned "
            f"(a search with {settings.num_beams} beam{'s' if settings.num_beams != 1 else ''} "
            f"returns at most {settings.num_beams}).")


def returns_within_beams(num_beams, num_return):
    """Keep the returned-sequences slider at most the beams when the beams slider moves."""
    beams = clamp_int(num_beams, "Beams", 1, beam.MAX_BEAMS)
    returns = clamp_int(num_return, "Returned sequences", 1, beam.MAX_BEAMS)
    return gr.update(value=min(returns, beams)) if returns > beams else gr.skip()


@user_errors
def run_search(prompt, model_id, chat_template, num_beams, max_new_tokens, length_penalty, early_stopping,
               num_return, compare_greedy, compare_sampled, seed, collapse, progress=gr.Progress(), link_step=None):
    """Run the search and its comparison paths in one backend call (with progress); draw the tree,
    up to the replay step a link asked for (`link_step`, taken once) or whole."""
    settings = _search_settings(num_beams, max_new_tokens, length_penalty, early_stopping, num_return)
    if not model_id:
        raise gr.Error("Pick a model.")
    progress(0, desc="Loading the model")

    def on_step(step, partial):
        progress((step, partial.settings.max_new_tokens),
                 desc=f"Beam search: step {step} of at most {partial.settings.max_new_tokens}")

    sample_seed = clamp_int(seed, "Sampling seed", 0, 2**31 - 1, default=DEFAULT_SEED) if compare_sampled else None
    result = backend_for(str(model_id)).beam_search(prompt or "", settings, chat_template=bool(chat_template),
                                                    compare_greedy=bool(compare_greedy), sample_seed=sample_seed,
                                                    on_step=on_step)
    wanted = link_step.take() if isinstance(link_step, link_wiring.LateValue) else None
    upto = result.steps if wanted is None else min(max(int(wanted), 0), result.steps)
    figure = beam_figure(result, upto_step=upto, collapse_pruned=bool(collapse),
                         show_greedy=bool(compare_greedy), show_sampled=bool(compare_sampled))
    step_slider = gr.Slider(minimum=0, maximum=result.steps, value=upto, step=1, interactive=True)
    return result, figure, step_slider, summary_rows(result), summary(result, _returns_note(num_return, settings))


def summary(result: beam.BeamResult, note: str = "") -> str:
    """The summary paragraph, after a line saying the search ran on an engine where it did (and `note`)."""
    text = summary_markdown(result)
    lines = [html.escape(line) for line in (result.engine_note, note) if line]
    return "\n\n".join([*lines, text])


@user_errors
def redraw(result, step, collapse, compare_greedy, compare_sampled):
    """Redraw the stored search up to `step` (no model call)."""
    if result is None:  # a toggle before the first search: nothing to draw yet
        return gr.skip()
    step = clamp_int(step, "Replay step", 0, result.steps, default=result.steps)
    return beam_figure(result, upto_step=step, collapse_pruned=bool(collapse),
                       show_greedy=bool(compare_greedy), show_sampled=bool(compare_sampled))


@user_errors
def step_by(delta, result, step, collapse, compare_greedy, compare_sampled):
    """The replay one step forward or back (the ◀ / ▶ buttons and the presenter's arrow keys)."""
    if result is None:
        return gr.skip(), gr.skip()
    step = clamp_int(step, "Replay step", 0, result.steps, default=result.steps)
    step = min(max(step + delta, 0), result.steps)
    return step, redraw(result, step, collapse, compare_greedy, compare_sampled)


def tree_data(result, fmt):
    """Every node of the last search's tree (and its sequences) as CSV or JSON text."""
    if not isinstance(result, beam.BeamResult):
        raise gr.Error("Run the beam search first (press “Run beam search”).")
    try:
        return exports.export(exports.beam_table(result), fmt)
    except PlaygroundError as exc:  # an engine model whose entry names no tokenizer
        raise gr.Error(str(exc)) from None


def _preset_values(preset: beam.BeamPreset) -> list:
    s = preset.settings
    early = s.early_stopping if isinstance(s.early_stopping, str) else str(s.early_stopping).lower()
    return [preset.prompt, preset.model_id, preset.chat_template, s.num_beams, s.max_new_tokens, s.length_penalty,
            early, s.num_return_sequences, preset.compare_greedy, preset.sample_seed is not None,
            preset.sample_seed if preset.sample_seed is not None else DEFAULT_SEED, preset.collapse_pruned,
            f"**{preset.name}.** {preset.note}"]


def build() -> link_wiring.TabLink:
    """The tab's content; call inside `with gr.Tab("Beam search"):`."""
    choices = model_choices(tab="beam")
    available = {value for _, value in choices}
    presets = [p for p in beam.PRESETS if p.model_id in available] or list(beam.PRESETS)
    first = presets[0]
    gr.Markdown("**Beam search** keeps the *k* best partial sequences: each step it expands every beam, "
                "scores all continuations by total log-probability, and keeps the best *k* "
                "(transformers' `generate(num_beams=k)`, exactly). Greedy search keeps only one.")
    with gr.Row():
        preset_buttons = [gr.Button(p.name, size="sm") for p in presets]
    preset_note = gr.Markdown(f"**{first.name}.** {first.note}", elem_id="beam-preset-note")
    with gr.Row():
        prompt = gr.Textbox(first.prompt, lines=2, label="Prompt", scale=4, elem_id="beam-prompt")
        with gr.Column(scale=2):
            model = gr.Dropdown(choices, value=first.model_id if first.model_id in available else
                                (choices[0][1] if choices else None), label="Model")
            chat_template = gr.Checkbox(first.chat_template, label="Wrap the prompt in the chat template")
    s = first.settings
    with gr.Row():
        num_beams = gr.Slider(1, beam.MAX_BEAMS, value=s.num_beams, step=1, label="Beams", elem_id="beam-beams")
        max_new_tokens = gr.Slider(1, beam.MAX_NEW_TOKENS, value=s.max_new_tokens, step=1, label="Max new tokens")
        length_penalty = gr.Slider(-2.0, 3.0, value=s.length_penalty, step=0.1,
                                   label="Length penalty (score = log p / length ^ L)")
        num_return = gr.Slider(1, beam.MAX_BEAMS, value=s.num_return_sequences, step=1,
                               label="Returned sequences (at most the beams)", elem_id="beam-returns")
    with gr.Row():
        early_stopping = gr.Radio(EARLY_STOPPING_LABELS, value="false", label="Early stopping", scale=3)
        compare_greedy = gr.Checkbox(first.compare_greedy, label="Compare: greedy path", scale=1)
        compare_sampled = gr.Checkbox(first.sample_seed is not None, label="Compare: one sampled path (T = 1)",
                                      scale=1)
        seed = gr.Number(DEFAULT_SEED, precision=0, label="Sampling seed", scale=1)
    run_button = gr.Button("Run beam search", variant="primary", elem_id="beam-run")
    summary = gr.Markdown(elem_id="beam-summary")
    tree = gr.Plot(label="Search tree (drag to pan, scroll or box-zoom, double-click to reset)", elem_id="beam-tree")
    with gr.Row():
        step = gr.Slider(0, 1, value=0, step=1, label="Replay: show the search up to step", interactive=False,
                         scale=4, elem_id="beam-step")
        step_back = gr.Button("◀ step", size="sm", scale=0, min_width=90, elem_id="beam-step-back")
        step_forward = gr.Button("step ▶", size="sm", scale=0, min_width=90, elem_id="beam-step-forward")
        collapse = gr.Checkbox(first.collapse_pruned, label="Collapse pruned candidates", scale=1,
                               elem_id="beam-collapse")
    table = gr.Dataframe(headers=SUMMARY_HEADERS, label="Returned sequences (best first) and comparisons",
                         interactive=False, wrap=True, elem_id="beam-sequences")
    result_state = gr.State(None)
    data_downloads("Download the tree's nodes", tree_data, [result_state], "beam-tree", "beam-data")

    search_inputs = [prompt, model, chat_template, num_beams, max_new_tokens, length_penalty, early_stopping,
                     num_return, compare_greedy, compare_sampled, seed, collapse]
    search_outputs = [result_state, tree, step, table, summary]
    link_step = gr.State(link_wiring.LateValue())  # a link's replay step, applied once its search has run
    # the last search asked for is the one shown: one listener for every search (the button, a first
    # visit, a link, a preset all press it), a press while one runs runs after it ("always_last"); two
    # listeners ran side by side and the tab's first-visit search, slower, overwrote a preset's tree
    run_button.click(run_search, [*search_inputs, link_step], search_outputs, api_name="beam_search",
                     trigger_mode="always_last")
    num_beams.change(returns_within_beams, [num_beams, num_return], num_return, api_name=False, queue=False,
                     show_progress="hidden")
    gr.on([step.input, collapse.change, compare_greedy.change, compare_sampled.change], redraw,
          [result_state, step, collapse, compare_greedy, compare_sampled], tree, api_name="beam_redraw",
          trigger_mode="always_last", show_progress="hidden")
    replay_inputs = [result_state, step, collapse, compare_greedy, compare_sampled]
    for button, delta in ((step_back, -1), (step_forward, 1)):
        button.click(functools.partial(step_by, delta), replay_inputs, [step, tree], api_name=False,
                     show_progress="hidden", trigger_mode="always_last")
    for button, preset in zip(preset_buttons, presets):
        button.click(lambda p=preset: _preset_values(p), None, [*search_inputs, preset_note], api_name=False,
                     queue=False).then(None, js="() => document.getElementById('beam-run').click()")
    fields = dict(zip(("prompt", "model", "chat_template", "beams", "tokens", "length_penalty", "early_stopping",
                       "returns", "greedy", "sampled", "seed", "collapse"), search_inputs))
    late = {"step": (link_query.Param("step", "int", None, 0, beam.MAX_NEW_TOKENS), link_step, step)}
    return link_wiring.TabLink("beam", fields, late=late, actions={"search": [("beam-run", "#beam-tree .js-plotly-plot")]}, default_run="search",
                         views={"tree": "beam-tree", "table": "beam-sequences", "summary": "beam-summary"},
                         default_view="tree", aliases={"preset": functools.partial(preset_query, fields, presets)})


def preset_query(fields: dict, presets, name: str) -> dict | None:
    """A beam preset's values by link parameter, for a link's `preset=` (its slug)."""
    for preset in presets:
        if link_query.slug(preset.name) == name:
            return dict(zip(fields, _preset_values(preset)[:len(fields)]))
    return None
