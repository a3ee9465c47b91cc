"""The "Why this token?" tab: which words of the prompt made the model predict a token.

A prompt, a model, a target (empty: the most probable next token; or one token's text, or `#id`),
the methods and integrated gradients' steps; "Why this token?" (`why_view` API, heavy group: the
forward and backward passes of several methods) runs `playground.attribution.attribute` and draws
the target with its probability above the methods side by side, each with its formula
(`playground.html.attribution`). The session keeps the result (a few numbers per token) for the
CSV/JSON download, which never re-runs the model. Deep links: prompt, model, target, methods, steps.
What it leaves out: any model code (`playground.attribution`), drawing (`playground.html.attribution`).
"""

from __future__ import annotations

import gradio as gr

from playground import attribution, exports
from playground.errors import PlaygroundError
from playground.html import attribution as why_html
from playground.limits import clamp_int
from playground.ui import link_wiring
from playground.ui.common import model_choices, user_errors
from playground.ui.exports import data_downloads

DEFAULT_PROMPT = "The capital of France is"
DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_STEPS = 16
DEFAULT_METHODS = list(attribution.METHODS)
METHOD_LABELS = {"occlusion": "Occlusion (removed, replaced)", "gradient": "Gradient × input",
                 "integrated-gradients": "Integrated gradients", "attention": "Attention rollout (not an attribution)"}

LECTURE = """**Why this token?** The model predicts the next token from the whole prompt; an
*attribution* says how much each prompt token moved the prediction. Occlusion re-runs the model
without a token (exact, one pass per token); gradient × input and integrated gradients read the
gradient of log p(target) with respect to each token's embedding (Captum); integrated gradients'
scores must add up to the change from a neutral baseline, and the page shows how far they are from
it. Attention weights say where information *could* flow: they are not an attribution, and the
last panel shows how different they look."""

CSS = why_html.CSS + """
.why-lecture { background: #f6f7fb; border-left: 4px solid #1f4fd8; padding: 0.4rem 0.9rem; font-size: 1.0rem; }
/* presenter mode: the panels stay on the screen (long content scrolls inside the view) */
html.playground-present #why-view { max-height: calc(100vh - 40px); overflow-y: auto !important; }
html.playground-present .why-chip-score { font-size: 14px; }
html.playground-present .why-formula { font-size: 15px; line-height: 1.25; margin-bottom: 0.2rem; }
html.playground-present .why-panel { padding: 0.2rem 0.5rem; }
html.playground-present .why-target { font-size: 22px; margin: 0 0 0.3rem; }
"""


def _model(model_id) -> str:
    if not model_id:
        raise PlaygroundError("Pick a model.")
    return str(model_id)


@user_errors
def why(prompt, model_id, target, methods, steps):
    """Attribute the target to the prompt's tokens by each method chosen; (result, HTML)."""
    steps = clamp_int(steps, "Integrated gradients steps", 1, attribution.MAX_STEPS, default=DEFAULT_STEPS)
    if not methods:
        raise PlaygroundError("Choose at least one method.")
    target = str(target or "")
    result = attribution.attribute(_model(model_id), str(prompt or ""), list(methods),
                                   target if target.strip() else None, steps)
    return result, why_html.attribution_html(result)


def why_data(result, fmt):
    """The shown scores as CSV or JSON text (from the session: no model call)."""
    if result is None:
        raise PlaygroundError("Press “Why this token?” first.")
    return exports.export(exports.attribution_table(result), fmt)


def build() -> link_wiring.TabLink:
    """The tab's content; call inside `with gr.Tab("Why this token?"):`."""
    choices = model_choices(tab="attribution")
    available = [value for _, value in choices]
    with gr.Row():
        with gr.Column(scale=4):
            prompt = gr.Textbox(DEFAULT_PROMPT, lines=2, label=f"Prompt (at most {attribution.MAX_TOKENS} tokens)",
                                elem_id="why-prompt")
            with gr.Row():
                target = gr.Textbox("", label="Target token (empty: the most probable; one token's text, or #id)",
                                    elem_id="why-target", scale=2)
                methods = gr.Dropdown([(METHOD_LABELS[m], m) for m in attribution.METHODS], value=DEFAULT_METHODS,
                                      multiselect=True, label="Methods", elem_id="why-methods", scale=3)
        with gr.Column(scale=2):
            model = gr.Dropdown(choices, value=DEFAULT_MODEL if DEFAULT_MODEL in available else
                                (available[0] if available else None), label="Model", elem_id="why-model")
            steps = gr.Slider(1, attribution.MAX_STEPS, value=DEFAULT_STEPS, step=1,
                              label="Integrated gradients: steps", elem_id="why-steps")
            run = gr.Button("Why this token?", variant="primary", elem_id="why-run")
    result = gr.State(None)
    view = gr.HTML("<p>Press <b>Why this token?</b> to score the prompt's tokens.</p>",
                   elem_id="why-view")
    data_downloads("Download the scores", why_data, [result], "attribution", "why-data")
    gr.Markdown(LECTURE, elem_classes=["why-lecture"])
    run.click(why, [prompt, model, target, methods, steps], [result, view], api_name="why_view")
    return link_wiring.TabLink(
        "why", {"prompt": prompt, "model": model, "target": target, "methods": methods, "steps": steps},
        actions={"why": [("why-run", "#why-view .why-panels")]}, default_run="why",
        views={"scores": "why-view"}, default_view="scores")
