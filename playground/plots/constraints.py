"""Plotly figures for structured outputs: one step's mask, and the mask along the whole run.

`step_spec(step)` takes one step row of `constraints.Comparison.as_dict(tops=True)` and draws the
model's most probable tokens before the mask (a grey bar where the grammar forbids the token) beside
the most probable allowed tokens after the mask, renormalised (p(t) / (1 - removed mass)), with the
share the sampling rules then give them; the title gives the allowed count and the removed mass.
`run_spec(steps)` draws, per step, the removed mass (bars) and the allowed count (log scale line),
the chosen token's text on the x axis. Specs are plain plotly.js dicts (`plots.sampling.spec_json`).
What it leaves out: running the model or the grammar (`playground.constraints`), the text and the
table (`playground.html.constraints`).
"""

from __future__ import annotations

from playground.plots.sampling import FONT, KEPT_COLOR, RAW_COLOR, short_label

FORBIDDEN_COLOR = "#bdbdbd"
REMOVED_COLOR = "#e4572e"
RULES_COLOR = "#2a9d8f"


def _labels(tokens: list[dict]) -> list[str]:
    seen: dict[str, int] = {}
    labels = []
    for t in tokens:  # two tokens with the same text stay two bars
        label = short_label(t["text"])
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} ({t['id']})")
    return labels


def step_spec(step: dict) -> dict:
    before, after = step["model_top"], step["allowed_top"]
    hover = "%{x}: %{y:.4f}<extra>%{fullData.name}</extra>"
    data = [
        dict(type="bar", x=_labels(before), y=[t["raw_prob"] for t in before], name="the model's top tokens (grey: the grammar forbids it)",
             marker=dict(color=[RAW_COLOR if t["allowed"] else FORBIDDEN_COLOR for t in before]),
             text=["" if t["allowed"] else "forbidden" for t in before], textposition="outside", cliponaxis=False,
             hovertemplate=hover, xaxis="x", yaxis="y"),
        dict(type="bar", x=_labels(after), y=[t["masked_prob"] for t in after], name="allowed tokens, renormalised",
             marker=dict(color=KEPT_COLOR), hovertemplate=hover, xaxis="x2", yaxis="y2"),
        dict(type="scatter", mode="markers", x=_labels(after), y=[t["prob"] for t in after],
             name="after the sampling rules", marker=dict(color=RULES_COLOR, size=11, symbol="diamond"),
             hovertemplate=hover, xaxis="x2", yaxis="y2"),
    ]
    allowed = f"{step['allowed_count']:,} token{'' if step['allowed_count'] == 1 else 's'} allowed"
    title = (f"step {step['index'] + 1}: chose {short_label(step['text'])} · {allowed} · "
             f"mask removed {step['removed_mass']:.1%} of the model's probability")
    layout = dict(
        title=dict(text=title), font=FONT, height=430, showlegend=True, bargap=0.25,
        legend=dict(orientation="h", y=-0.25), margin=dict(l=60, r=20, t=60, b=110),
        xaxis=dict(domain=[0.0, 0.47], tickangle=-35, automargin=True),
        xaxis2=dict(domain=[0.53, 1.0], tickangle=-35, automargin=True),
        yaxis=dict(range=[0, 1.08], title=dict(text="probability")),
        yaxis2=dict(range=[0, 1.08], anchor="x2"),
    )
    return {"data": data, "layout": layout}


def run_spec(steps: list[dict]) -> dict:
    x = [f"{s['index'] + 1}. {short_label(s['text'])}" for s in steps]
    data = [
        dict(type="bar", x=x, y=[s["removed_mass"] for s in steps], name="removed mass",
             marker=dict(color=REMOVED_COLOR), hovertemplate="%{x}: removed %{y:.3f}<extra></extra>", yaxis="y"),
        dict(type="scatter", mode="lines+markers", x=x, y=[s["allowed_count"] for s in steps],
             name="allowed tokens", line=dict(color=KEPT_COLOR),
             hovertemplate="%{x}: %{y:,} allowed<extra></extra>", yaxis="y2"),
    ]
    layout = dict(
        title=dict(text="the mask at every step: probability removed (bars), tokens allowed (line, log)"),
        font=FONT, height=330, showlegend=False, margin=dict(l=60, r=70, t=50, b=90),
        xaxis=dict(tickangle=-40, automargin=True),
        yaxis=dict(range=[0, 1.05], title=dict(text="removed mass")),
        yaxis2=dict(type="log", overlaying="y", side="right", title=dict(text="allowed")),
    )
    return {"data": data, "layout": layout}
