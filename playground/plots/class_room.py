"""Plotly figure of a revealed class poll: the class's answers beside the model.

Guess the next token: one row per token (the model's order, most probable at the top), two bars
each: the share of the class that picked it and the model's probability, on one axis (0 to 1).
How many tokens: the number of students per guessed count, the real counts marked as lines.
Which is the chat model: the votes per column, each labelled with the model it was.
Token labels are HTML-escaped (Plotly renders a subset of HTML in labels).

What it leaves out: scoring (`playground.rooms.polls`), the result's table (`playground.html.class_room`).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

CLASS_COLOR, MODEL_COLOR = "#f59e0b", "#2563eb"


def result_figure(result: dict) -> go.Figure:
    kind = result["kind"]
    figure = go.Figure()
    if kind == "next_token":
        labels = [html.escape(r["label"]) for r in result["rows"]]
        figure.add_bar(y=labels, x=[r["share"] for r in result["rows"]], orientation="h", name="class",
                       marker_color=CLASS_COLOR)
        figure.add_bar(y=labels, x=[r["p"] for r in result["rows"]], orientation="h", name="model",
                       marker_color=MODEL_COLOR)
        figure.update_yaxes(autorange="reversed", type="category")
        figure.update_xaxes(range=[0, 1], title="share of the class / model probability")
        figure.update_layout(barmode="group", height=max(320, 44 * len(labels) + 120),
                             title=f'The class ({result["answers"]} answers) and the model')
    elif kind == "count":
        figure.add_bar(x=[g["label"] for g in result["guesses"]], y=[g["count"] for g in result["guesses"]],
                       name="class", marker_color=CLASS_COLOR)
        figure.update_xaxes(type="category", title="guessed number of tokens")
        figure.update_yaxes(title="students")
        real = ", ".join(f"{html.escape(t)}: {n}" for t, n in result["real"].items())
        figure.update_layout(height=360, title=f"The real count: {real}")
    else:
        figure.add_bar(x=[f'{v["label"]}: {html.escape(v["model"])}' for v in result["votes"]],
                       y=[v["count"] for v in result["votes"]], marker_color=[MODEL_COLOR, CLASS_COLOR])
        figure.update_yaxes(title="votes")
        figure.update_layout(height=360, title="Which one was the chat model?")
    figure.update_layout(margin=dict(l=10, r=10, t=60, b=10), legend=dict(orientation="h", y=1.02, x=1,
                                                                          xanchor="right", yanchor="bottom"))
    return figure
