"""Plotly figures for the sampler chain: the funnel, one column per stage; the session's branching tree.

`funnel_spec(rows)` takes the chain's stage rows (`ChainRun.as_dict()["stages"]`, each with its
top tokens' display text added) and draws three small multiples that share the stages as x axis:
kept tokens (log scale: 262,144 down to a handful), the raw model's probability mass on them, and
the entropy (bits) of the stage's distribution. Hovering a column lists the stage's parameters and
its five most probable tokens. `tree_spec(tree)` draws the lab's branching tree
(`samplers.tree.tree_dict`): one column per position, the model's probability on each node, the
current path in colour, each node's path log-probability on hover. `ab_samples_spec(samples)` draws
K samples A/B (`samplers.ab.ABSamples.as_dict`): the next token's counts per side, side by side,
over the same K uniform numbers. The specs are plain plotly.js dicts (see `plots.sampling.spec_json`).
What it leaves out: running the chain (`playground.samplers`), the table beside it
(`playground.html.chain`).
"""

from __future__ import annotations

import html

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


PATH_COLOR = "#e4572e"


def _tree_layout(nodes: list[dict]) -> dict[int, tuple[int, float]]:
    """node id (-1: the prompt) -> (depth, y): leaves one apart in depth-first order, parents centred."""
    children: dict[int, list[int]] = {}
    for node in nodes:
        children.setdefault(node["parent"], []).append(node["id"])
    place: dict[int, tuple[int, float]] = {}
    next_leaf = [0.0]

    def visit(index: int, depth: int) -> float:
        kids = children.get(index, [])
        if not kids:
            y = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            ys = [visit(kid, depth + 1) for kid in kids]
            y = sum(ys) / len(ys)
        place[index] = (depth, y)
        return y

    visit(-1, 0)
    return place


def tree_spec(tree: dict, title: str = "") -> dict:
    """The session's branching tree (`samplers.tree.tree_dict`): the prompt on the left, one column per
    position, each edge labelled with the model's probability; the current path in colour."""
    nodes = tree["nodes"]
    place = _tree_layout(nodes)
    on_path = set()
    at = tree["current"]
    by_id = {n["id"]: n for n in nodes}
    while at >= 0:
        on_path.add(at)
        at = by_id[at]["parent"]
    edges = {"x": [], "y": []}
    path_edges = {"x": [], "y": []}
    for node in nodes:
        (x0, y0), (x1, y1) = place[node["parent"]], place[node["id"]]
        target = path_edges if node["id"] in on_path else edges
        target["x"] += [x0, x1, None]
        target["y"] += [y0, y1, None]
    labels = [f"{short_label(n['text'])} {n['prob']:.2f}" for n in nodes]
    data = [
        dict(type="scatter", mode="lines", x=edges["x"], y=edges["y"], line=dict(color=RAW_COLOR, width=2),
             hoverinfo="skip"),
        dict(type="scatter", mode="lines", x=path_edges["x"], y=path_edges["y"], line=dict(color=PATH_COLOR, width=4),
             hoverinfo="skip"),
        dict(type="scatter", mode="markers+text", x=[place[-1][0]], y=[place[-1][1]], text=["prompt"],
             textposition="middle left", marker=dict(size=12, color="#555"), hoverinfo="skip"),
        dict(type="scatter", mode="markers+text", x=[place[n["id"]][0] for n in nodes],
             y=[place[n["id"]][1] for n in nodes], text=labels, textposition="top center",
             marker=dict(size=11, color=[PATH_COLOR if n["id"] in on_path else KEPT_COLOR for n in nodes]),
             customdata=[[n["id"], n["logprob"], n["chosen"]] for n in nodes],
             hovertemplate="node %{customdata[0]}: %{text}<br>path log p %{customdata[1]:.2f}<br>%{customdata[2]}"
                           "<extra></extra>"),
    ]
    depth = max([p[0] for p in place.values()] + [1])
    layout = dict(title=dict(text=title), font=FONT, showlegend=False, height=420, margin=dict(l=90, r=30, t=50, b=30),
                  xaxis=dict(visible=False, range=[-0.6, depth + 0.6]), yaxis=dict(visible=False, autorange="reversed"))
    return {"data": data, "layout": layout}


AB_COLORS = ("#4c78a8", "#f58518")
AB_TOKENS = 20  # bars at most: the tokens drawn most on either side
AB_LEGEND = 60  # characters of a chain in the legend


def ab_samples_spec(samples: dict, label_a: str = "A", label_b: str = "B") -> dict:
    """The next token over K draws per side, A and B side by side: both sides used the same K
    uniform numbers, so a difference in the bars is the chains' doing."""
    counts = {side: {row["id"]: row["count"] for row in samples[side]} for side in ("a", "b")}
    texts = {row["id"]: row["text"] for side in ("a", "b") for row in samples[side]}
    order = sorted(texts, key=lambda t: (-max(counts["a"].get(t, 0), counts["b"].get(t, 0)), t))[:AB_TOKENS]
    names = [short_label(texts[t]) for t in order]
    def legend(name: str) -> str:  # a long chain would run off the chart: its start, the rest on hover
        return name if len(name) <= AB_LEGEND else name[: AB_LEGEND - 1] + "…"

    data = [dict(type="bar", name=legend(name), x=names, y=[counts[side].get(t, 0) for t in order],
                 marker=dict(color=color), hovertemplate=f"{html.escape(name)}: %{{x}} drawn %{{y}} times<extra></extra>")
            for side, name, color in (("a", f"A: {label_a}", AB_COLORS[0]), ("b", f"B: {label_b}", AB_COLORS[1]))]
    k, same = samples["k"], samples["same_token"]
    title = (f"K = {k} next-token draws per side on the same {k} uniform numbers: "
             f"{same} of {k} ({same / max(1, k):.0%}) picked the same token on both sides")
    left = [k - sum(counts[side].get(t, 0) for t in order) for side in ("a", "b")]
    if any(left):  # more tokens than bars: say what is not drawn
        title += (f"<br><sup>the {len(order)} tokens drawn most; A's other {left[0]} and B's other {left[1]} "
                  "draws are not shown</sup>")
    # the title in its own band below the plot's label, the legend between it and the bars (they overlapped)
    layout = dict(title=dict(text=title, font=dict(size=16), y=0.87, yanchor="top", yref="container"), font=FONT,
                  barmode="group", height=480, margin=dict(l=60, r=20, t=150, b=110),
                  xaxis=dict(type="category", tickangle=-45), yaxis=dict(title=dict(text="times drawn")),
                  legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))
    return {"data": data, "layout": layout}
