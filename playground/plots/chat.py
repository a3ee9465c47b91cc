"""Plotly figure for teacher forcing: the surprisal of one text under two models, side by side.

Data in (two `ScoredText`s and their `AlignedSpan`s from `playground.chat.align_scores`), Figure
out; no model runs here. When the two models tokenize differently, each bar covers a character
span where both tokenizations have a boundary and shows the summed surprisal of that span's tokens,
and the figure says so on screen. A bar with a "why?" link opens "Why this token?" on a click. What it leaves out: scoring and alignment (`playground.chat`).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.link_query import WHY_HINT, why_query
from playground.token_text import visible_whitespace

FONT = dict(size=18)
COLORS = ("#4c78a8", "#f58518")
MAX_LABEL = 14


def _label(text: str) -> str:
    shown = visible_whitespace(text)
    return shown if len(shown) <= MAX_LABEL else shown[: MAX_LABEL - 1] + "…"


def same_boundaries(first, second) -> bool:
    return [(t.start, t.end) for t in first.tokens] == [(t.start, t.end) for t in second.tokens]


def same_tokenizer(first, second) -> bool:
    """Same token ids at the same places (different vocabularies give different ids)."""
    return same_boundaries(first, second) and [t.id for t in first.tokens] == [t.id for t in second.tokens]


def tokenizer_note(first, second) -> str:
    """The on-screen sentence saying how the bars line up."""
    if same_tokenizer(first, second):
        return "Both models use the same tokenizer: one bar per token."
    if same_boundaries(first, second):
        return ("The tokenizers differ (different vocabularies and ids), but cut this text at the same places: "
                "one bar per token.")
    return (f"The tokenizers differ ({len(first.tokens)} vs {len(second.tokens)} tokens): each bar is a character "
            "span where both have a token boundary, with each model's surprisal summed over it.")


def context_note(first, second, spans) -> str:
    """Where the comparison begins when a model reads no start token (its first token is context)."""
    begun = spans[0].start if spans else 0
    if not begun:
        return ""
    without = [scored.model_id for scored in (first, second) if scored.tokens and scored.tokens[0].start > 0]
    shown = html.escape(visible_whitespace(first.text[:begun]))
    return (f"<br>{' and '.join(without)} reads no start token, so its first token is context, not scored: "
            f"both are compared after “{shown}”.")


def _why_links(scored, spans, which: int, prompts) -> list[str]:
    """Each bar's "why?" link (its span's first token, `link_query.why_query`), or ""."""
    links = []
    for span in spans:
        indices = span.tokens[which]
        prompt = prompts[indices[0]] if indices and indices[0] < len(prompts) else None
        links.append(why_query(scored.model_id, prompt, scored.tokens[indices[0]].id) if prompt is not None else "")
    return links


def surprisal_figure(first, second, spans, why: tuple = ((), ())) -> go.Figure:
    """Bars of -log2 p per aligned span for both models, and below them the difference. `why`: each
    scoring's "why?" prompts per token (`playground.chat.why_prompts`); a bar whose span's first
    token has one carries its link as `customdata`, which a click opens."""
    names = (first.model_id, second.model_id)
    x = list(range(len(spans)))
    ticks = [_label(s.text) for s in spans]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06,
                        subplot_titles=("", f"Difference: {names[0]} − {names[1]} (bits)"))
    for which, (name, color) in enumerate(zip(names, COLORS)):
        scored = (first, second)[which]
        links = _why_links(scored, spans, which, why[which])
        hover = []
        for span, link in zip(spans, links):
            pieces = " | ".join(visible_whitespace(scored.tokens[i].text) for i in span.tokens[which])
            bound = " (at least: a token outside the engine's top K)" if any(
                scored.tokens[i].bounded for i in span.tokens[which]) else ""
            hover.append(f"“{visible_whitespace(span.text)}”<br>{name}: {span.bits[which]:.2f} bits{bound}"
                         f"<br>tokens: {pieces}" + (f"<br>{WHY_HINT}" if link else ""))
        fig.add_trace(go.Bar(x=x, y=[s.bits[which] for s in spans], name=name, marker_color=color,
                             hovertext=hover, hoverinfo="text", customdata=links), row=1, col=1)
    diffs = [s.difference for s in spans]
    fig.add_trace(go.Bar(x=x, y=diffs, name="difference", showlegend=False,
                         marker_color=[COLORS[0] if d > 0 else COLORS[1] for d in diffs],
                         hovertext=[f"“{visible_whitespace(s.text)}”: {d:+.2f} bits" for s, d in zip(spans, diffs)],
                         hoverinfo="text"), row=2, col=1)
    note = tokenizer_note(first, second) + context_note(first, second, spans)
    chars = max(1, sum(len(s.text) for s in spans))
    bits = [sum(s.bits[which] for s in spans) for which in (0, 1)]
    totals = (f"Total: {names[0]} {bits[0]:.0f} bits ({bits[0] / chars:.2f}/char) · "
              f"{names[1]} {bits[1]:.0f} bits ({bits[1] / chars:.2f}/char)")
    # Stacked above the bars, each in its own band (presenter mode raises chart text to 20 px): the
    # legend just above the plot, the note above the legend; the y axis names what the bars are.
    fig.add_annotation(text=note + "<br>" + totals, xref="paper", yref="paper", x=0, y=1, yanchor="bottom",
                       yshift=40, showarrow=False, align="left", xanchor="left", font=dict(size=15, color="#7c2d12"),
                       bgcolor="#fff3cd", bordercolor="#ffe69c")
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=ticks, tickangle=-60, row=2, col=1)
    fig.update_yaxes(title_text="surprisal −log₂ p (bits)", row=1, col=1)
    fig.update_layout(barmode="group", font=FONT, height=620, margin=dict(l=70, r=20, t=130, b=120),
                      legend=dict(orientation="h", x=0, xanchor="left", y=1, yanchor="bottom"))
    fig.update_annotations(font_size=16)
    return fig
