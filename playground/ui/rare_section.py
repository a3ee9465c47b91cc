"""The Inside tab's rare-tokens section: the model's under-trained tokens, and a check of one.

"Find rare tokens" lists the tokens whose output-matrix row is closest to the rows' mean
(`playground.inside.rare_tokens`): the lowest norms with their z-scores and whether the tokenizer
ever produces them, beside a few tokens of median norm, and says in words how far out the lowest
are (a model whose lowest are ordinary words, at z about -2, has no clear outliers). "Ask the model to
repeat it" runs `rare_tokens.repeat_check` (the picked token and three tokens of median norm as
controls, greedy) and shows each request, reply and whether it was repeated, with the verdict. The lecture's tokenization-issues slide ("potential exploits
around tokens with few training examples") is the demo `rare-tokens`.

What it leaves out: the statistics (`playground.inside.rare_tokens`), the model's weights on engines
(the Inside tab runs in-process models only).
"""

from __future__ import annotations

from collections import Counter
from html import escape

import gradio as gr

from playground.errors import PlaygroundError
from playground.inside import rare_tokens as rare
from playground.limits import clamp_int
from playground.ui.common import user_errors

OUTLIER_Z = -3.0
HINT = "Press **Find rare tokens**: the model's vocabulary entries with the least trained output rows."
CSS = """
.rare-table { border-collapse: collapse; font-size: 1.05rem; }
.rare-table td, .rare-table th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
.rare-table code { font-size: 1.05rem; background: #f3f4f6; padding: 0 4px; }
.rare-note { font-size: 1.05rem; }
/* the finding and its table on one projector screen */
html.playground-present .rare-table, html.playground-present .rare-table code { font-size: 17px; }
html.playground-present .rare-table td, html.playground-present .rare-table th { padding: 1px 8px; }
html.playground-present .rare-note { font-size: 18px; margin: 0 0 4px; }
"""


def _rows(tokens) -> str:
    return "".join(f"<tr><td>{t.id}</td><td><code>{escape(t.text)}</code></td><td>{escape(rare.script_of(t.text))}</td>"
                   f"<td>{t.norm:.3f}</td><td>{t.z:+.2f}</td><td>{'yes' if t.reachable else 'no'}</td></tr>"
                   for t in tokens)


def summary_html(found: rare.RareTokens) -> str:
    """The finding in words, derived from the numbers, then the table (every token text escaped)."""
    outliers = sum(1 for t in found.lowest if t.z <= OUTLIER_Z)
    lowest = found.lowest[0].z if found.lowest else 0.0
    if outliers:
        verdict = (f"{outliers} of these {len(found.lowest)} lie more than {-OUTLIER_Z:.0f} standard deviations below "
                   "the mean: candidates for tokens the model barely saw in training.")
    else:
        verdict = (f"None lies {-OUTLIER_Z:.0f} standard deviations below the mean (the lowest is at z = {lowest:+.2f}): "
                   "this model shows no clear under-trained tokens by this measure.")
    scripts = Counter(rare.script_of(t.text) or "no letter" for t in found.lowest).most_common()
    verdict += " Their scripts: " + ", ".join(f"{name} {count}" for name, count in scripts) + "."
    matrix = "its tied input and output embedding" if found.tied else "its output matrix"
    head = ("<tr><th>id</th><th>token</th><th>script</th><th>norm</th><th>z</th><th>the tokenizer produces it</th></tr>")
    return (f'<p class="rare-note">{escape(found.model_id)}: the {len(found.lowest)} lowest of {found.vocab_size:,} '
            f"ordinary tokens by the norm of their row of {matrix}, the mean row removed (mean {found.mean_norm:.3f}, "
            f"standard deviation {found.std_norm:.3f}). {escape(verdict)}</p>"
            f'<table class="rare-table">{head}{_rows(found.lowest)}'
            f'<tr><th colspan="6">for contrast: tokens at the median norm</th></tr>{_rows(found.typical)}</table>')


@user_errors
def find(model_id):
    model_id = str(model_id or "")
    if not model_id:
        raise PlaygroundError("Pick a model.")
    found = rare.for_model(model_id)
    choices = [(f"{t.id}: {t.text}", t.id) for t in found.lowest]
    return summary_html(found), gr.update(choices=choices, value=choices[0][1] if choices else None)


@user_errors
def ask_to_repeat(model_id, token_id):
    """The repeat check of the picked token beside its control, and what the two show together."""
    check = rare.repeat_check(str(model_id or ""), clamp_int(token_id, "token", 0, 2**31 - 1))
    rows = "".join(f"<tr><td>{escape(a.label)}</td><td><code>{escape(a.prompt)}</code></td>"
                   f"<td><code>{escape(a.reply)}</code></td><td>{'yes' if a.repeated else 'no'}</td></tr>"
                   for a in (check.candidate, *check.controls))
    how = "in its chat template" if check.chat else "as a text to continue (a base model)"
    return (f'<p class="rare-note">Asked {escape(check.model_id)} {escape(how)}, greedy, at most '
            f"{rare.REPEAT_TOKENS} tokens:</p>"
            '<table class="rare-table"><tr><th></th><th>asked</th><th>reply</th><th>repeated</th></tr>'
            f'{rows}</table><p class="rare-note"><b>{escape(check.verdict)}</b></p>')


def build(model) -> dict:
    """The section (an accordion), wired to the tab's model dropdown; returns its parts for links."""
    with gr.Accordion("Rare tokens: the vocabulary's under-trained entries", open=False,
                      elem_id="rare-section") as accordion:
        gr.Markdown("*The lecture:* potential exploits around tokens with few training examples. A token the "
                    "training text (almost) never had gets (almost) no gradient: its output row stays near the "
                    "rows' mean (Land and Bartolo 2024, *Fishing for Magikarp*).")
        find_button = gr.Button("Find rare tokens", variant="primary", elem_id="rare-find")
        table = gr.HTML(f'<p class="rare-note">{HINT}</p>', elem_id="rare-table")
        with gr.Row():
            pick = gr.Dropdown([], label="a candidate (or any token id)", scale=3, elem_id="rare-pick",
                               allow_custom_value=True)
            repeat_button = gr.Button("Ask the model to repeat it", scale=1, elem_id="rare-repeat")
        answer = gr.HTML(elem_id="rare-answer")
    find_button.click(find, model, [table, pick], api_name="inside_rare_tokens")
    repeat_button.click(ask_to_repeat, [model, pick], answer, api_name="inside_rare_repeat")
    return {"accordion": accordion}
