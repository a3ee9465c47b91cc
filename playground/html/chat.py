"""HTML for the base-vs-chat tab: the chat template as tokens and the SFT loss mask.

- `template_html(view)`: every token of a `ChatTemplateView` as a span (built with
  `playground.html.tokens.Span`), special tokens dark, role headers outlined, the generation prompt
  dashed, ids and labels on hover, and a band under each token in its role's colour.
- `loss_mask_html(view)`: the same tokens, trained ones green and the rest greyed out, with the
  count of trained tokens against the total.

Both draw at most `MAX_SHOWN_TOKENS` tokens, with a note saying so; their counts stay exact.

Every string goes through `html.escape` (in `render_span` or here). What it leaves out: computing
anything (`playground.chat`, `playground.generation`), the generated columns (one renderer for both
tabs: `playground.html.generated`) and gradio.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from playground.html.tokens import SPECIAL_BG, Span, render_span
from playground.token_text import visible_whitespace

ROLE_COLORS = {"system": "#7c3aed", "user": "#2563eb", "assistant": "#16a34a", "none": "#9ca3af"}
PART_NAMES = {"header": "role header", "content": "message content", "end_of_turn": "end of turn",
              "separator": "separator", "generation_prompt": "generation prompt", "other": "template text"}
TRAINED_BG = "#86efac"
UNTRAINED_BG = "#e5e7eb"
HEADER_BG = "#fde68a"
CONTENT_BG = "#f8fafc"
# Tokens drawn per view: 2,000 (about 1 MB of HTML for both views) render in about 0.1 s in
# Chromium; the counts above the tokens stay exact.
MAX_SHOWN_TOKENS = 2000


def _shown(text: str) -> str:
    """Whitespace made visible; a line break stays a break after its mark."""
    return visible_whitespace(text).replace("↵", "↵\n")


def _template_title(token, trained_label: bool) -> str:
    lines = [f"#{token.index}  id {token.id}" + ("  (special)" if token.special else ""),
             f"text: {visible_whitespace(token.text)}",
             f"role: {token.role} · {PART_NAMES.get(token.part, token.part)}"]
    if trained_label:
        lines.append("trained on (in the SFT loss)" if token.trained else "not trained on (masked out)")
    return "\n".join(lines)


def _token_span(token, color: str, classes: tuple[str, ...], trained_label: bool) -> str:
    span = Span(_shown(token.text), _template_title(token, trained_label), classes, color,
                {"i": token.index, "id": token.id, "role": token.role, "part": token.part,
                 "trained": int(token.trained)})
    band = ROLE_COLORS.get(token.role, ROLE_COLORS["none"])
    return f'<span class="ct-cell" style="border-bottom-color:{band}">{render_span(span)}</span>'


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="ct-legend">' + "".join(
        f'<span class="ct-key" style="background:{html.escape(color)}"></span>{html.escape(label)}'
        for color, label in items) + "</div>"


def _cap_notes(view, limit: int) -> list[str]:
    if view.num_tokens <= limit:
        return []
    return [f"Showing the first {limit:,} of {view.num_tokens:,} tokens (more would slow the page down); "
            "the counts are of all of them."]


def template_html(view, limit: int = MAX_SHOWN_TOKENS) -> str:
    """The conversation as the chat model receives it: one span per token, roles as a band beneath."""
    cells = []
    for token in view.tokens[:limit]:
        classes = ["tok", "ct-tok", f"ct-{token.part}"]
        if token.special:
            classes.append("tok-special")
            color = SPECIAL_BG
        elif token.header:
            color = HEADER_BG
        else:
            color = CONTENT_BG
        if token.part == "generation_prompt" and (token.index == 0 or view.tokens[token.index - 1].part != "generation_prompt"):
            cells.append('<span class="ct-genmark" title="the generation prompt: the chatbot program writes this '
                         'header, then the model generates">generation prompt ▸</span>')
        cells.append(_token_span(token, color, tuple(classes), trained_label=False))
    notes = _cap_notes(view, limit)
    if view.default_system_prompt is not None:
        notes.append("No system message was given, so this template inserted its default system prompt: "
                      f"“{view.default_system_prompt}”.")
    legend = _legend([(ROLE_COLORS[r], f"{r} (band)") for r in ("system", "user", "assistant")]
                     + [(SPECIAL_BG, "special token"), (HEADER_BG, "role header")])
    summary = (f"{view.num_tokens} tokens · {sum(t.special for t in view.tokens)} special · "
               f"{len([s for s in view.spans if not s.implicit])} messages")
    return _wrap(legend, summary, notes, cells)


def loss_mask_html(view, limit: int = MAX_SHOWN_TOKENS) -> str:
    """Which tokens a supervised fine-tuning loss trains on, with the count against the total."""
    cells = []
    for token in view.tokens[:limit]:
        classes = ("tok", "ct-tok", "ct-trained" if token.trained else "ct-masked") + (
            ("tok-special",) if token.special else ())
        color = TRAINED_BG if token.trained else (SPECIAL_BG if token.special else UNTRAINED_BG)
        cells.append(_token_span(token, color, classes, trained_label=True))
    share = view.num_trained / max(1, view.num_tokens)
    summary = (f'<b class="ct-count">Trained on {view.num_trained} of {view.num_tokens} tokens</b> '
               f"({share:.0%}): the assistant's replies and each assistant end-of-turn token; nothing of "
               "the system or user messages, nor of the role headers.")
    legend = _legend([(TRAINED_BG, "trained (in the loss)"), (UNTRAINED_BG, "masked out")])
    return _wrap(legend, summary, _cap_notes(view, limit), cells, summary_is_html=True)


def _wrap(legend: str, summary: str, notes: list[str], cells: list[str], summary_is_html: bool = False) -> str:
    parts = ['<div class="tok-root ct-root">', legend,
             f'<div class="ct-summary">{summary if summary_is_html else html.escape(summary)}</div>']
    parts += [f'<div class="tok-note">{html.escape(n)}</div>' for n in notes]
    parts.append('<div class="tok-spans ct-spans">' + "".join(cells) + "</div></div>")
    return "".join(parts)


CSS = """
.ct-spans { line-height: 2.6; }
.ct-cell { border-bottom: 6px solid #9ca3af; padding-bottom: 2px; margin-right: 1px; }
.ct-header:not(.tok-special) { outline: 2px solid #b45309; }
.ct-generation_prompt { outline: 2px dashed #b91c1c !important; }
.ct-genmark { font-size: 0.8em; font-weight: 700; color: #b91c1c; margin: 0 4px; }
.ct-masked:not(.tok-special) { color: #6b7280 !important; }
.ct-masked.tok-special { opacity: 0.55; }
.ct-trained { font-weight: 600; }
.ct-trained.tok-special { color: #111 !important; }
.ct-legend { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; font-size: 1rem; margin-bottom: 6px; }
.ct-key { display: inline-block; width: 1.1em; height: 1.1em; border-radius: 3px; margin-right: 4px;
  vertical-align: middle; border: 1px solid #555; }
.ct-summary { font-size: 1.05rem; margin-bottom: 6px; }
"""
