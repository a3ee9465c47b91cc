"""The "Fill-in-the-middle (code completion)" section of the Base vs chat tab (the lecture's slide).

An accordion: a model picker, a code box whose middle is marked `<MID>...</MID>`, the three parts
coloured, the training string in PSM order with the sentinel tokens and its tokens under the
chosen model's tokenizer (`playground.fim`, `playground.html.fim`), and "Complete the middle",
enabled only for a model marked FIM-trained (`fim = true` in the models file). For every other
model the section says plainly that running it live needs a FIM-trained model (none of the
packaged ones is), and which sentinels the string uses (the tokenizer's own, or the lecture's
[pre]/[post]/[mid] as plain text). The view is drawn when the accordion opens (no tokenizer is
loaded while the page is built) and redrawn as the code or the model changes; the live run
checks again on the server. What it leaves out: cutting, tokenizing, running (`playground.fim`).
"""

from __future__ import annotations

import html

import gradio as gr

from playground import fim, models
from playground.errors import PlaygroundError
from playground.html import fim as fim_html
from playground.html.tokens import HOVER_JS, TOKEN_CSS, note_html
from playground.ui.common import model_choices, user_errors

MAX_CODE_CHARS = 20_000
# The lecture's slide: the loop of a bubble sort is the middle.
DEFAULT_CODE = '''def bubble_sort(a: np.array):
    # The most efficient bubble sort
<MID>    for i, _ in enumerate(a):
        for j, _ in enumerate(a[:i]):
            if a[i] < a[j]:
                a[i], a[j] = a[j], a[i]
</MID>if __name__ == "__main__":
    bubble_sort(np.rand(100))'''  # no final newline: gr.Code drops it


def _inputs(model_id, code) -> tuple[str, fim.FIMExample]:
    if not isinstance(model_id, str) or not model_id:
        raise PlaygroundError("Choose a model.")
    code = "" if code is None else str(code)
    if len(code) > MAX_CODE_CHARS:
        raise PlaygroundError(f"The code is {len(code):,} characters; this section takes at most {MAX_CODE_CHARS:,}.")
    models.get_spec(model_id)  # an unknown id: a message listing the valid ones
    return model_id, fim.cut_marked(code)


def notes_html(encoded, model_id: str) -> str:
    """What the string uses for sentinels, and whether the model can fill in the middle live."""
    sentinels = encoded.psm.sentinels
    if sentinels.own:
        words = (f"{model_id}'s tokenizer has FIM tokens ({sentinels.family}): {sentinels.prefix}, {sentinels.suffix} "
                 f"and {sentinels.middle}, one token each.")
    else:
        count = sum(1 for part in encoded.parts[:encoded.prompt_length] if part == "sentinel")
        words = (f"{model_id}'s tokenizer has no FIM tokens, so the string uses the lecture's notation "
                 f"{sentinels.begin} {sentinels.prefix} {sentinels.suffix} {sentinels.middle} {sentinels.end}: plain "
                 f"text to this tokenizer ({count} tokens for the four markers of the prompt).")
    runs, why = fim.can_run_live(model_id)
    return note_html(words) + ("" if runs else f'<div class="tok-note fim-not-live">{html.escape(why)}</div>')


@user_errors
def show(model_id: str, code: str):
    """The parts, the PSM string and its tokens, the notes, and the button enabled for FIM models."""
    model_id, example = _inputs(model_id, code)
    encoded = fim.layout_for(model_id, example)
    runs, _ = fim.can_run_live(model_id)
    return (fim_html.parts_html(example), fim_html.psm_html(encoded), notes_html(encoded, model_id),
            gr.Button(interactive=runs))


@user_errors
def complete(model_id: str, code: str):
    """The middle written by a FIM-trained model (greedy), in place in the document."""
    model_id, example = _inputs(model_id, code)
    return fim_html.completion_html(fim.complete_middle(model_id, example))


def default_model(choices: list[tuple[str, str]]) -> str | None:
    """A FIM-trained model if one is configured, else SmolLM2 (trained on code, no FIM tokens)."""
    ids = [model_id for _, model_id in choices]
    trained = [model_id for model_id in ids if models.get_spec(model_id).fim]
    for candidate in (*trained, "smollm2-135m-instruct"):
        if candidate in ids:
            return candidate
    return ids[0] if ids else None


def _view(**kwargs) -> gr.HTML:
    return gr.HTML(css_template=TOKEN_CSS + fim_html.CSS, js_on_load=HOVER_JS, **kwargs)


def build() -> None:
    """The accordion (`#fim-section`; a link opens it by clicking its header, which draws the
    view); call at the end of the Base vs chat tab's build()."""
    choices = model_choices()
    with gr.Accordion("Fill-in-the-middle (code completion)", open=False, elem_id="fim-section") as section:
        gr.Markdown("Code models are also trained to fill a gap: the document is cut into the code before "
                    "(prefix), the code after (suffix) and the code to be completed (middle), and shown in the order "
                    "prefix, suffix, middle, each after its special token, so the model learns to write the "
                    "middle last, seeing both sides. Mark the middle with `<MID>` and `</MID>`.")
        with gr.Row():
            model = gr.Dropdown(choices, value=default_model(choices), label="Model (its tokenizer and sentinels)",
                                elem_id="fim-model", scale=3)
            run = gr.Button("Complete the middle", variant="primary", interactive=False, elem_id="fim-run", scale=1)
        code = gr.Code(DEFAULT_CODE, language="python", label="Code (middle marked <MID>...</MID>)",
                       elem_id="fim-code", interactive=True)
        notes = _view(elem_id="fim-notes")
        parts = _view(elem_id="fim-parts", label="Prefix, middle, suffix")
        psm = _view(elem_id="fim-psm", label="Training string (PSM order) and its tokens")
        completed = _view(elem_id="fim-completion", label="Completed by the model")
    gr.on([section.expand, code.change, model.change], show, [model, code], [parts, psm, notes, run],
          api_visibility="private", trigger_mode="always_last", show_progress="hidden")
    run.click(complete, [model, code], completed, api_visibility="private")
