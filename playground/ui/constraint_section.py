"""The Sampling lab's Constraint section: structured outputs (JSON mode, regex, choices) as a mask.

An accordion under the lab: the constraint's kind (a JSON schema, a regular expression, a choice
list, a grammar in Lark or GBNF), its text (an example per kind), the number of tokens, and
"Generate with the constraint". The run uses the lab's model, prompt, chat-template toggle, sampling
rules and seed, through the model's backend (`backends.Backend.constrained`): the constrained text
beside the free one of the same prompt and settings (`playground.html.constraints`), the mask along
the run (removed mass and allowed count per step, `playground.plots.constraints.run_spec`), and for
the chosen step the model's top tokens before the mask beside the allowed ones renormalised and what
the rules then give them (`step_spec`), with a table of every step. The step slider redraws from the
run kept in `gr.State` (the result's numbers, never the model). An engine model runs its own
structured outputs and shows its text only (the engine keeps the mask to itself).
`build(model, chat_template, prompt, controls)` is the hook `sampling_tab.build` calls.

Deep links (`extend_link`): `constraint_kind`, `constraint`, `constraint_tokens`, `run=constrain`,
`view=constraint` (the lecture's "JSON mode is a mask").
What it leaves out: the constrained decoding (`playground.constraints`), the step shown in a link.
"""

from __future__ import annotations

import json

import gradio as gr
from gradio.components.plot import PlotData

from playground import limits
from playground.backends import backend_for
from playground.constraints import parse_constraint
from playground.errors import PlaygroundError
from playground.html import constraints as constraint_html
from playground.plots import constraints as constraint_plots
from playground.plots.sampling import spec_json
from playground.ui.common import user_errors
from playground.ui.controls import SamplingControls, seed_from_value, settings_from_values

MAX_TOKENS = 128
DEFAULT_TOKENS = 40
KINDS = {"JSON schema": "json_schema", "regular expression": "regex", "choices": "choices",
         "grammar (Lark or GBNF)": "grammar"}
EXAMPLES = {
    "json_schema": json.dumps({"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                                                "population": {"type": "integer"}},
                               "required": ["city", "population"], "additionalProperties": False}, indent=1),
    "regex": r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
    "choices": "Paris, London, Berlin, Rome",
    "grammar": 'root ::= "The answer is " ("yes" | "no") "."',
}
HINT = "Write a constraint and press “Generate with the constraint”: the lab's prompt, rules and seed run twice."
CSS = constraint_html.CSS


def _plot(spec: dict) -> PlotData:
    return PlotData(type="plotly", plot=spec_json(spec))


def _kind(label) -> str:
    if label not in KINDS:
        raise PlaygroundError(f"Pick a constraint kind: {', '.join(KINDS)}.")
    return KINDS[label]


def example(label):
    return EXAMPLES[KINDS[label]] if label in KINDS else gr.skip()


def _step_views(result: dict | None, step_value):
    steps = (result or {}).get("steps") or []
    if not steps:
        note = (result or {}).get("steps_note", "")
        return None, constraint_html.steps_table(None, note=note)
    index = limits.clamp_int(step_value, "step", 1, len(steps), default=1) - 1
    return _plot(constraint_plots.step_spec(steps[index])), constraint_html.steps_table(steps, index)


@user_errors
def run_constraint(model_id, chat_template, prompt, kind_label, text, max_tokens, temperature, top_k, top_p, min_p,
                   order, seed):
    if not model_id:
        raise PlaygroundError("Choose a model first.")
    constraint = parse_constraint(_kind(kind_label), text)
    settings = settings_from_values(temperature, top_k, top_p, min_p, order)
    n = limits.clamp_int(max_tokens, "tokens", 1, MAX_TOKENS)
    result = backend_for(model_id).constrained(prompt or "", constraint, settings, n, seed_from_value(seed),
                                               bool(chat_template)).as_dict(tops=True)
    steps = result.get("steps") or []
    run_plot = _plot(constraint_plots.run_spec(steps)) if steps else None
    step_plot, table = _step_views(result, 1)
    slider = gr.update(maximum=max(len(steps), 2), value=1, interactive=len(steps) > 1)  # Gradio needs min < max
    return result, constraint_html.comparison_html(result), run_plot, slider, step_plot, table


@user_errors
def show_step(result, step_value):
    return _step_views(result, step_value)


def build(model, chat_template, prompt, controls: SamplingControls) -> dict:
    """The section, wired to the lab's model, prompt, chat-template toggle and sampling controls; returns
    its parts for the lab's deep link (`extend_link`)."""
    with gr.Accordion("Constraint: structured outputs (JSON mode, regex, choices) are a mask", open=False,
                      elem_id="constraint-section") as accordion:
        result = gr.State(None)
        with gr.Row():
            kind = gr.Radio(list(KINDS), value="JSON schema", label="constraint", scale=3, elem_id="constraint-kind")
            max_tokens = gr.Slider(1, MAX_TOKENS, value=DEFAULT_TOKENS, step=1, label="max tokens", scale=1,
                                   elem_id="constraint-max-tokens")
            run = gr.Button("Generate with the constraint", variant="primary", scale=1, elem_id="constraint-run")
        text = gr.Textbox(EXAMPLES["json_schema"], label="the constraint (a JSON schema, a regex, choices separated "
                          "by commas, or a grammar)", lines=4, max_lines=12, elem_id="constraint-text")
        pair = gr.HTML(f"<p class='constraint-note'>{HINT}</p>", elem_id="constraint-compare")
        overview = gr.Plot(label="the mask along the run", elem_id="constraint-overview")
        step = gr.Slider(1, 2, value=1, step=1, label="step shown", interactive=False, elem_id="constraint-step")
        step_plot = gr.Plot(label="one step: before the mask, and the allowed tokens renormalised",
                            elem_id="constraint-step-plot")
        table = gr.HTML(elem_id="constraint-table")
    kind.change(example, [kind], [text], queue=False, api_name=False)
    run.click(run_constraint, [model, chat_template, prompt, kind, text, max_tokens, *controls.inputs],
              [result, pair, overview, step, step_plot, table], api_name="sampling_constraint")
    step.release(show_step, [result, step], [step_plot, table], api_name=False)
    return {"accordion": accordion, "kind": kind, "text": text, "max_tokens": max_tokens}


def extend_link(link, parts: dict, shown: str) -> None:
    """The lab's deep link gains `constraint_kind`, `constraint`, `constraint_tokens`, `run=constrain`
    (show the distribution, then generate with the constraint) and `view=constraint`."""
    link.fields.update(constraint_kind=parts["kind"], constraint=parts["text"], constraint_tokens=parts["max_tokens"])
    link.actions["constrain"] = [("sampling-show", shown), ("constraint-run", "#constraint-pair")]
    link.views["constraint"] = ("constraint-compare", parts["accordion"])
