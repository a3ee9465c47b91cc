"""Plotly figure for the sampler chain: the funnel, one column per stage.

`funnel_spec(rows)` takes the chain's stage rows (`ChainRun.as_dict()["stages"]`, each with its
top tokens' display text added) and draws three small multiples that share the stages as x axis:
kept tokens (log scale: 262,144 down to a handful), the raw model's probability mass on them, and
the entropy (bits) of the stage's distribution. Hovering a column lists the stage's parameters and
its five most probable tokens. The spec is a plain plotly.js dict (see `plots.sampling.spec_json`).
What it leaves out: running the chain (`playground.samplers`), the table beside it
(`playground.html.chain`).
"""

from __future__ import annotations

from playground.plots.sampling import FONT, KEPT_COLOR, RAW_COLOR, short_label

ENTROPY_COLOR = "#e4572e"


def stage_label(index: int, row: dict) -> str:
    return "model" if index == 0 else f"{index}. {row['name']}"


def _hover(row: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k != "dry_sequence_breakers")
    tops = "<br>".join(f"{short_label(t['text'])}  {t['prob']:.3f}" for t in row["top"])
    return f"{params}<br>{tops}" if params else tops


def funnel_spec(rows: list[dict], title: str = "") -> dict:
    labels = [stage_label(i, row) for i, row in enumerate(rows)]
    hover = [_hover(row) for row in rows]
    common = dict(x=labels, customdata=hover, hovertemplate="%{x}: %{y}<br>%{customdata}<extra></extra>")
    data = [
        dict(type="bar", y=[r["kept_count"] for r in rows], name="kept tokens", marker=dict(color=KEPT_COLOR),
             text=[f"{r['kept_count']:,}" for r in rows], textposition="outside", cliponaxis=False, yaxis="y", **common),
        dict(type="bar", y=[r["kept_mass"] for r in rows], name="kept mass (model's)", marker=dict(color=RAW_COLOR),
             text=[f"{r['kept_mass']:.2f}" for r in rows], textposition="outside", cliponaxis=False, yaxis="y2",
             **common),
        dict(type="scatter", mode="lines+markers+text", y=[r["entropy_bits"] for r in rows], name="entropy (bits)",
             line=dict(color=ENTROPY_COLOR), text=[f"{r['entropy_bits']:.2f}" for r in rows],
             textposition="top center", yaxis="y3", **common),
    ]
    layout = dict(
        title=dict(text=title), font=FONT, showlegend=False, height=560, margin=dict(l=70, r=20, t=50, b=90),
        xaxis=dict(tickangle=-30, automargin=True, anchor="y3"),  # the stage names under the bottom plot
        yaxis=dict(domain=[0.7, 1.0], type="log", title=dict(text="kept")),
        yaxis2=dict(domain=[0.37, 0.63], range=[0, 1.15], title=dict(text="mass")),
        yaxis3=dict(domain=[0.0, 0.3], rangemode="tozero", title=dict(text="bits")),
    )
    return {"data": data, "layout": layout}
