"""Plotly figure of a recorded beam search (`playground.beam.BeamResult`), and its summary table.

The tree runs left to right: column n holds the candidates considered at step n, one node per token,
labelled with the token's text (whitespace visible, HTML-escaped), best cumulative log-probability
at the top. Edges join each candidate to the beam it extends; an edge's width grows with the step
probability p(token | beam). Colours give each candidate's fate (kept as a live beam, pruned,
finished, returned). Hovering a node shows its log-probability, cumulative log-probability,
length-normalized score and rank among its siblings; hovering the middle of an edge shows the step
probability. At most the last 20 steps are in view at first (drag to pan, the autoscale button
shows everything), so labels stay readable at 40 steps. `upto_step` replays the search up to a
step; `collapse_pruned` hides the pruned candidates and closes the gaps; the greedy and sampled
paths are drawn on top: where they follow the tree they ring its nodes, where they leave it they
continue in their own row below the tree.

`beam_figure` puts together small builders, bottom layer first: `layout_tree` (where each node
sits), `edge_traces`, `returned_path_traces`, `node_traces`, `comparison_traces` and
`figure_layout` (size, axes, title). The layout is one pass over the nodes and a handful of traces
(one per status and edge width), so 8 beams x 40 steps (640+ nodes) lays out in well under 200 ms.
What it leaves out: running the search (`playground.beam`), any gradio widget.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from playground.beam import BeamNode, BeamResult, PathRecord
from playground.token_text import text_tail

STATUS_COLORS = {
    "root": "#111827",
    "kept": "#2563eb",
    "pruned": "#9ca3af",
    "finished": "#f59e0b",
    "returned": "#16a34a",
}
STATUS_NAMES = {
    "root": "prompt",
    "kept": "kept (a live beam)",
    "pruned": "pruned",
    "finished": "finished (EOS or length), not returned",
    "returned": "returned",
}
PATH_STYLES = {"greedy": ("#9333ea", "dash"), "sampled": ("#db2777", "dot")}
EDGE_BINS = ((0.05, 1.0), (0.2, 2.0), (0.5, 3.5), (1.01, 5.5))  # (p below, line width)
ROW_PIXELS = 34
PROMPT_CHARS = 32  # the title names the prompt by its last 32 characters
VISIBLE_STEPS = 20  # the x range first shows the last 20 steps shown (labels stay readable); pan for more
LABEL_CHARS = 12


@dataclass
class TreeLayout:
    """Where each shown node sits: x = step, y = minus its row among the shown candidates of its step."""

    x: dict[int, float]
    y: dict[int, float]
    status: dict[int, str]  # the status as of `upto_step`
    upto_step: int
    rows: int  # the most rows any step uses
    shown: list[int]


def display_status(node: BeamNode, upto_step: int, last_step: int) -> str:
    """A node's status as of `upto_step`: nothing is "returned" before the search is over."""
    if node.status == "returned" and upto_step < last_step:
        return "finished"
    return node.status


def layout_tree(result: BeamResult, upto_step: int | None = None, collapse_pruned: bool = False) -> TreeLayout:
    last = result.steps
    upto = last if upto_step is None else max(0, min(int(upto_step), last))
    x: dict[int, float] = {}
    y: dict[int, float] = {}
    status: dict[int, str] = {}
    rows_at: dict[int, int] = {}
    shown = []
    for node in result.nodes:  # recorded in step order, best cumulative first within a step
        if node.step > upto:
            break
        state = display_status(node, upto, last)
        if collapse_pruned and state == "pruned":
            continue
        row = rows_at.get(node.step, 0)
        rows_at[node.step] = row + 1
        x[node.id] = float(node.step)
        y[node.id] = -float(row)
        status[node.id] = state
        shown.append(node.id)
    return TreeLayout(x, y, status, upto, max(rows_at.values(), default=1), shown)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def node_hover(node: BeamNode, state: str) -> str:
    if node.parent is None:
        return "<b>prompt</b>"
    return (
        f"<b>{html.escape(node.label)}</b> (id {node.token_id})<br>step {node.step} · {STATUS_NAMES[state]}"
        f"<br>p = {math.exp(node.logprob):.4f} · log p = {node.logprob:.4f}"
        f"<br>cumulative log p = {node.cumulative:.4f}"
        f"<br>normalized score = {node.score:.4f}"
        f"<br>rank among siblings {node.rank} · in vocabulary {node.vocab_rank}"
    )


def _edge_width(p: float) -> float:
    for below, width in EDGE_BINS:
        if p < below:
            return width
    return EDGE_BINS[-1][1]


def _path_points(path: PathRecord, layout: TreeLayout, band_y: float) -> tuple[list, list, list, list]:
    """(xs, ys) of the path from the root, and the off-tree points with their hover texts."""
    xs, ys = [0.0], [0.0]
    off_x, off_y, off_text, off_hover = [], [], [], []
    cumulative = 0.0
    for step, (node_id, label, logprob) in enumerate(zip(path.node_ids, path.labels, path.logprobs), start=1):
        if step > layout.upto_step:
            break
        cumulative += logprob
        if node_id is not None and node_id in layout.x:
            xs.append(layout.x[node_id])
            ys.append(layout.y[node_id])
            continue
        xs.append(float(step))
        ys.append(band_y)
        off_x.append(float(step))
        off_y.append(band_y)
        off_text.append(html.escape(_short(label)))
        off_hover.append(
            f"<b>{html.escape(label)}</b> ({path.kind}, not in the beam tree)<br>step {step}"
            f"<br>p = {math.exp(logprob):.4f} · log p = {logprob:.4f}<br>cumulative log p = {cumulative:.4f}"
        )
    return xs, ys, (off_x, off_y), (off_text, off_hover)


def beam_figure(result: BeamResult, upto_step: int | None = None, collapse_pruned: bool = False,
                show_greedy: bool = True, show_sampled: bool = True) -> go.Figure:
    """The search tree as a plotly figure (see the module docstring): edges, the returned paths, the
    nodes, then the comparison paths on top, in a layout sized to the rows they use."""
    layout = layout_tree(result, upto_step, collapse_pruned)
    font_size = 15 if max(layout.upto_step, 1) <= 12 else 13
    paths = [path for path, wanted in ((result.greedy, show_greedy), (result.sampled, show_sampled))
             if path is not None and wanted]
    path_traces, band = comparison_traces(paths, layout, font_size)
    traces = [*edge_traces(result, layout), *returned_path_traces(result, layout),
              *node_traces(result, layout, font_size), *path_traces]
    # The traces are plain dicts built here, so plotly's per-property validation (most of the time
    # for a few hundred points) is skipped.
    return go.Figure(data=traces, layout=figure_layout(result, layout, band, len(paths)), _validate=False)


def edge_traces(result: BeamResult, layout: TreeLayout) -> list[dict]:
    """Edges, grouped by (child status, width) so a few traces carry them all, pruned ones below;
    then one invisible marker per edge middle that carries its hover text."""
    nodes = result.nodes
    edge_groups: dict[tuple[str, float], tuple[list, list]] = {}
    mid_x, mid_y, mid_hover = [], [], []
    for node_id in layout.shown:
        node = nodes[node_id]
        if node.parent is None or node.parent not in layout.x:
            continue
        p = math.exp(node.logprob)
        xs, ys = edge_groups.setdefault((layout.status[node_id], _edge_width(p)), ([], []))
        x0, y0, x1, y1 = layout.x[node.parent], layout.y[node.parent], layout.x[node_id], layout.y[node_id]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_hover.append(f"{html.escape(nodes[node.parent].label)} → <b>{html.escape(node.label)}</b>"
                         f"<br>step probability p = {p:.4f}")
    traces = [
        _scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                 line=dict(color=STATUS_COLORS[state], width=width), opacity=0.45 if state == "pruned" else 0.8)
        for (state, width), (xs, ys) in sorted(edge_groups.items(),
                                               key=lambda item: (item[0][0] != "pruned", item[0][1]))
    ]
    traces.append(_scatter(
        x=mid_x, y=mid_y, mode="markers", marker=dict(size=8, opacity=0), hovertemplate="%{text}<extra></extra>",
        text=mid_hover, showlegend=False, name="edges",
    ))
    return traces


def returned_path_traces(result: BeamResult, layout: TreeLayout) -> list[dict]:
    """The returned sequences' paths, highlighted once the search is over (none while replaying)."""
    if layout.upto_step < result.steps:
        return []
    nodes = result.nodes
    xs, ys = [], []
    for sequence in result.sequences:
        node_id = sequence.node
        while node_id is not None and node_id >= 0 and nodes[node_id].parent is not None:
            parent = nodes[node_id].parent
            if node_id in layout.x and parent in layout.x:
                xs += [layout.x[parent], layout.x[node_id], None]
                ys += [layout.y[parent], layout.y[node_id], None]
            node_id = parent
    if not xs:
        return []
    return [_scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", name="returned path",
                     line=dict(color=STATUS_COLORS["returned"], width=6), opacity=0.35)]


def node_traces(result: BeamResult, layout: TreeLayout, font_size: int) -> list[dict]:
    """The nodes, one trace per status (the legend doubles as the colour key)."""
    nodes = result.nodes
    by_status: dict[str, list[int]] = {}
    for node_id in layout.shown:
        by_status.setdefault(layout.status[node_id], []).append(node_id)
    traces = []
    for state in ("pruned", "kept", "finished", "returned", "root"):
        ids = by_status.get(state)
        if not ids:
            continue
        traces.append(_scatter(
            x=[layout.x[i] for i in ids], y=[layout.y[i] for i in ids], mode="markers+text",
            name=STATUS_NAMES[state],
            text=["<b>prompt</b>" if nodes[i].parent is None else html.escape(_short(nodes[i].label)) for i in ids],
            textposition="top center",
            textfont=dict(size=font_size, color="#6b7280" if state == "pruned" else "#111827"),
            marker=dict(size=9 if state == "pruned" else 13, color=STATUS_COLORS[state],
                        symbol="diamond" if state in ("finished", "returned") else "circle",
                        line=dict(width=1, color="white")),
            hovertemplate="%{customdata}<extra></extra>",
            customdata=[node_hover(nodes[i], state) for i in ids],
        ))
    return traces


def comparison_traces(paths: list[PathRecord], layout: TreeLayout, font_size: int) -> tuple[list[dict], float]:
    """Greedy and sampled paths: rings on the tree nodes they share, their own row below the tree
    where they leave it (one row each). Returns the traces and the y of the row below the last one."""
    traces = []
    band = -float(layout.rows) - 0.6
    for path in paths:
        color, dash = PATH_STYLES[path.kind]
        xs, ys, (off_x, off_y), (off_text, off_hover) = _path_points(path, layout, band)
        traces.append(_scatter(x=xs, y=ys, mode="lines+markers", name=f"{path.kind} path (log p {path.cumulative:.2f})",
                               line=dict(color=color, width=3, dash=dash),
                               marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(width=2.5, color=color)),
                               hoverinfo="skip"))
        if off_x:
            traces.append(_scatter(
                x=off_x, y=off_y, mode="markers+text", showlegend=False, text=off_text, textposition="bottom center",
                textfont=dict(size=font_size, color=color), marker=dict(size=11, color=color),
                hovertemplate="%{customdata}<extra></extra>", customdata=off_hover,
            ))
        band -= 1.0
    return traces, band


def prompt_label(result: BeamResult) -> str:
    """The prompt's end, quoted and escaped, for the title: the user's message where the chat template
    wrapped it (the template's own end says nothing), else the text the model reads."""
    if result.user_prompt is not None:
        return f"“{html.escape(text_tail(result.user_prompt, PROMPT_CHARS))}” in the chat template"
    return f"“{html.escape(text_tail(result.prompt_text, PROMPT_CHARS))}”"


def figure_layout(result: BeamResult, layout: TreeLayout, band: float, path_rows: int) -> dict:
    """Size, axes (the last VISIBLE_STEPS steps in view), legend and title of the tree figure."""
    steps_shown = max(layout.upto_step, 1)
    return dict(
        height=max(420, ROW_PIXELS * (layout.rows + path_rows + 1) + 170),
        margin=dict(l=20, r=20, t=50, b=40),
        plot_bgcolor="white",
        dragmode="pan",
        hovermode="closest",
        hoverlabel=dict(font_size=16),
        font=dict(size=15),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0, font=dict(size=14)),
        title=dict(text=f"{prompt_label(result)} · step {layout.upto_step} of {result.steps}"
                        " · edge width = step probability"
                        + (" · drag left for earlier steps" if steps_shown > VISIBLE_STEPS else ""),
                   x=0.99, xanchor="right", y=0.99, font=dict(size=14)),
        uirevision="beam-tree",
        xaxis=dict(range=[max(-0.5, steps_shown - VISIBLE_STEPS + 0.5), steps_shown + 0.7], tickmode="linear",
                   dtick=1, zeroline=False,
                   showgrid=True, gridcolor="#f3f4f6", title=dict(text="step (generated tokens)")),
        yaxis=dict(visible=False, range=[band + 0.4, 0.7]),
    )


def _scatter(**properties) -> dict:
    """A scatter trace as a dict; long arrays become numpy arrays (plotly deep-copies lists item by item)."""
    for key in ("x", "y"):
        if key in properties:
            properties[key] = np.array([np.nan if v is None else v for v in properties[key]], dtype=float)
    for key in ("text", "customdata"):
        if key in properties:
            properties[key] = np.array(properties[key], dtype=str)
    return {"type": "scatter", **properties}


def summary_rows(result: BeamResult) -> list[list]:
    """Rows for a table: each returned sequence (best first) and the comparison paths.

    Columns: what, text (visible whitespace), tokens, cumulative log p, normalized score.
    """
    from playground.token_text import visible_whitespace

    rows = []
    for rank, sequence in enumerate(result.sequences, start=1):
        rows.append([f"beam #{rank}", visible_whitespace(sequence.text), sequence.length,
                     round(sequence.cumulative, 4), round(sequence.score, 4)])
    for path in (result.greedy, result.sampled):
        if path is not None:
            what = "greedy" if path.kind == "greedy" else f"sampled (seed {path.seed})"
            rows.append([what, visible_whitespace(path.text), len(path.ids), round(path.cumulative, 4),
                         round(path.score, 4)])
    return rows


SUMMARY_HEADERS = ["sequence", "text", "tokens", "cumulative log p", "normalized score"]


def summary_markdown(result: BeamResult) -> str:
    """One paragraph: how the search stopped, its cost, and beam vs greedy/sampled log-probabilities.

    Deterministic for a given search (no timings), so the same request always shows the same text.
    """
    settings = result.settings
    lines = [
        f"**{result.steps} steps**, stopped: {html.escape(result.stop_reason)} · {result.candidates_per_step} "
        f"candidates per step · {result.forward_calls} forward passes, each over {settings.num_beams} beams at once",
    ]
    if result.prompt_note:
        lines.insert(0, html.escape(result.prompt_note))
    if result.sequences:
        best = result.sequences[0]
        lines.append(f"Best beam: log p = **{best.cumulative:.3f}** over {best.length} tokens, "
                     f"score = {best.cumulative:.3f} / {best.length} ^ {settings.length_penalty:g} = "
                     f"**{best.score:.4f}**")
        for path in (result.greedy, result.sampled):
            if path is None:
                continue
            diff = best.cumulative - path.cumulative
            leaves = next((i + 1 for i, node in enumerate(path.node_ids) if node is None), None)
            where = (f"leaves the beam tree at step {leaves}" if leaves is not None
                     else "stays inside the beam tree")
            same = next((rank for rank, seq in enumerate(result.sequences, start=1) if seq.ids == path.ids), None)
            if same is not None:
                verdict = f"the same sequence as beam #{same}"
            elif abs(diff) < 1e-4:
                verdict = "equally probable"
            else:
                verdict = ("beam search found the more probable sequence" if diff > 0
                           else f"{path.kind} found the more probable sequence")
            if same is None:
                verdict += f" (log p difference {diff:+.3f})"
            lines.append(f"{path.kind.capitalize()}: log p = **{path.cumulative:.3f}** over {len(path.ids)} tokens, "
                         f"{where}; {verdict}.")
    return "  \n".join(lines)
