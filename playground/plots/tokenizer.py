"""Plotly figures for the tokenizer tab: tokenizers compared on one text, and BPE training curves.

Data in, `go.Figure` out; no tokenization happens here. Fonts are sized for a projector. What it
leaves out: HTML token views (`playground.html.tokens`).
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

FONT = dict(size=18)


def comparison_figure(results) -> go.Figure:
    """Token counts and characters per token, one bar per tokenizer (TokenizationResults in)."""
    names = [r.tokenizer_id for r in results]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Tokens (fewer is cheaper)", "Characters per token"))
    fig.add_trace(go.Bar(x=names, y=[r.num_tokens for r in results], text=[f"{r.num_tokens:,}" for r in results],
                         textposition="auto", marker_color="#4c78a8", name="tokens"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r.chars_per_token for r in results],
                         text=[f"{r.chars_per_token:.2f}" for r in results], textposition="auto",
                         marker_color="#f58518", name="chars/token"), row=1, col=2)
    fig.update_layout(showlegend=False, font=FONT, height=420, margin=dict(l=40, r=20, t=60, b=40))
    fig.update_annotations(font_size=20)
    return fig


def bpe_curve_figure(lengths: list[int], step: int | None = None, title: str = "") -> go.Figure:
    """Sequence length after 0..N merges, with a marker at the merge the slider shows."""
    fig = go.Figure(go.Scatter(x=list(range(len(lengths))), y=lengths, mode="lines", name="tokens",
                               line=dict(width=3, color="#4c78a8")))
    if step is not None and lengths:
        step = max(0, min(step, len(lengths) - 1))
        fig.add_trace(go.Scatter(x=[step], y=[lengths[step]], mode="markers+text", name="current",
                                 marker=dict(size=14, color="#e45756"), text=[f"{lengths[step]:,}"],
                                 # its number on the side with room (at the last merges it was cut at the edge)
                                 textposition="top left" if step > (len(lengths) - 1) / 2 else "top right"))
    fig.update_layout(title=title or "Sequence length while merging", xaxis_title="merges",
                      yaxis_title="tokens in the training text", showlegend=False, font=FONT, height=420,
                      margin=dict(l=60, r=20, t=60, b=50))
    return fig
