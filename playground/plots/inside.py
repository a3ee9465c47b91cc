"""Plotly charts for the "Inside the model" tab, as plain plotly.js specs (dicts of data and layout).

- `attention_spec`: one head's weights as a heatmap, query tokens down, key tokens across; cells the
  mask hides (right of the diagonal, outside a sliding window) are left empty, so the causal
  triangle shows; hover shows both tokens and the weight.
- `heads_spec`: small multiples of every head of a layer, one row per key/value head (the query
  heads in a row share it), one colour scale.
- `lens_spec`: the logit lens grid, layers up, positions across, each cell its top token coloured
  by its probability; a ✓ where the lens already names the token that really follows.
- `forcing_spec`: each text token's probability under teacher forcing.
- `kv_spec`: KV cache bytes against context length (this model, all-full-attention, multi-head
  attention) with the real cache measured.
- `ssm_matrix_spec`, `ssm_memory_spec`: a state-space layer unrolled as its lower-triangular
  matrix over the text's tokens, and its fixed state against the KV cache as the context grows.
- `encoder_masks_spec`: an encoder's bidirectional attention mask beside a decoder's causal one on
  the same sentence pair.

Specs, not `go.Figure`s: a head switch redraws a 128 x 128 heatmap and a grid of them, and
building a validated figure costs more than the rest of the switch (see `plots.sampling`). Every
token string is HTML-escaped (plotly renders labels as HTML-like text). What it leaves out: the
numbers (`playground.inside`), widgets (`playground.ui.inside_tab`).
"""

from __future__ import annotations

import base64
import html
import math
import textwrap

import numpy as np

from playground.inside.attention import AttentionMap, LayerHeads, LayerInfo
from playground.inside.forcing import TeacherForcing
from playground.inside.kv import KVReport
from playground.inside.lens import LensGrid
from playground.inside.encoder_only import EncodedPair, Masks
from playground.inside.ssm import StateSpaceDemo

FONT = dict(size=16)
MAX_LABEL = 12
MAX_TICKS = 48  # token labels on an axis; hover names every cell
# ColorBrewer's blues from a visible light blue: a weight of 0 the mask allows stays distinguishable
# from the white cells the mask hides.
COLORSCALE = [[0.0, "#deebf7"], [0.25, "#9ecae1"], [0.5, "#4292c6"], [0.75, "#2171b5"], [1.0, "#08306b"]]
LENS_COLORSCALE = "YlGnBu"  # plotly.js runs its named scales dark to light: drawn reversed (light = 0)
EMPTY = "#ffffff"


def label(text: str | None, limit: int = MAX_LABEL) -> str:
    """A token's label for an axis or a cell: shortened, HTML-escaped."""
    shown = "∅" if text is None else (text or "∅")
    return html.escape(shown if len(shown) <= limit else shown[: limit - 1] + "…")


def position_labels(labels) -> list[str]:
    """Unique category labels: the position, then the token."""
    return [f"{i} {label(text)}" for i, text in enumerate(labels)]


def _masked(weights, layer: LayerInfo) -> np.ndarray:
    """Weights as float32, cells the mask hides as NaN (drawn empty)."""
    values = weights.numpy().astype(np.float32, copy=True)
    size = values.shape[-1]
    query, key = np.indices((size, size))
    hidden = key > query
    if layer.window:
        hidden |= query - key >= layer.window
    values[..., hidden] = np.nan
    return values


def typed_array(values: np.ndarray) -> dict:
    """A float32 array as plotly.js reads it without parsing numbers (`bdata`, base64): a 9-head grid of
    128 x 128 cells encodes in a millisecond, where nested JSON lists take tens."""
    data = np.ascontiguousarray(values, dtype=np.float32)
    return {"dtype": "f4", "bdata": base64.b64encode(data.tobytes()).decode("ascii"),
            "shape": ",".join(str(n) for n in data.shape)}


def layer_note(layer: LayerInfo, tokens: int) -> str:
    if not layer.sliding:
        return "full attention: each token sees every token before it"
    if tokens <= layer.window:
        return (f"sliding window of {layer.window}: each token sees at most its last {layer.window} tokens "
                f"(this text has {tokens}: the window holds all of it)")
    return f"sliding window of {layer.window}: each token sees at most its last {layer.window} tokens"


NOTE_CHARS = 72  # a chart's subtitle line, in characters
HOVER = "query <b>%{y}</b><br>key <b>%{x}</b><br>weight %{z:.4f}<extra></extra>"


def attention_spec(amap: AttentionMap) -> dict:
    names = position_labels(amap.labels)
    group = amap.shares_with
    shared = (f"shares key/value head {amap.kv_head} with heads {', '.join(str(h) for h in group if h != amap.head)}"
              if len(group) > 1 else f"its own key/value head {amap.kv_head}")
    # the note in lines of at most NOTE_CHARS: a sliding-window layer's note, on one line, was cut on both sides
    note = textwrap.wrap(f"{layer_note(amap.layer, len(names))} · rows sum to 1", NOTE_CHARS)
    title = (f"Layer {amap.layer.layer}, head {amap.head} ({shared})<br>"
             + "<br>".join(f"<sup>{html.escape(line)}</sup>" for line in note))
    trace = dict(type="heatmap", z=typed_array(_masked(amap.weights, amap.layer)), x=names, y=names,
                 coloraxis="coloraxis",
                 hovertemplate=HOVER, xgap=1, ygap=1)
    size = max(420, min(900, 18 * len(names) + 260))
    layout = dict(
        title=dict(text=title), font=FONT, height=size, margin=dict(l=140, r=30, t=80 + 30 * len(note), b=140),
        xaxis=dict(title=dict(text="key (the token attended to)"), type="category", tickangle=-60,
                   showgrid=False, nticks=MAX_TICKS),
        yaxis=dict(title=dict(text="query (the token attending)"), type="category", autorange="reversed",
                   showgrid=False, nticks=MAX_TICKS),
        coloraxis=dict(colorscale=COLORSCALE, cmin=0, cmax=1, colorbar=dict(title=dict(text="weight", side="right"))),
        plot_bgcolor=EMPTY,
    )
    return {"data": [trace], "layout": layout}


def heads_spec(heads: LayerHeads) -> dict:
    names = position_labels(heads.labels)
    rows, cols = len(heads.groups), len(heads.groups[0])
    gap_x, gap_y = 0.03, 0.10 / max(1, rows)
    width, height = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    data, layout = [], {}
    masked = _masked(heads.weights, heads.layer)
    annotations = []
    for row, group in enumerate(heads.groups):
        for col, head in enumerate(group):
            index = row * cols + col + 1
            suffix = "" if index == 1 else str(index)
            x0, y1 = col * (width + gap_x), 1 - row * (height + gap_y)
            layout[f"xaxis{suffix}"] = dict(domain=[x0, x0 + width], type="category", showticklabels=False,
                                            showgrid=False, anchor=f"y{suffix}")
            layout[f"yaxis{suffix}"] = dict(domain=[y1 - height, y1], type="category", showticklabels=False,
                                            showgrid=False, autorange="reversed", anchor=f"x{suffix}")
            data.append(dict(type="heatmap", z=typed_array(masked[head]), x=names, y=names, coloraxis="coloraxis",
                             xaxis=f"x{suffix}", yaxis=f"y{suffix}", name=f"head {head}",
                             hovertemplate=f"head {head}<br>" + HOVER))
            annotations.append(dict(text=f"head {head}", x=x0 + width / 2, y=y1, xref="paper", yref="paper",
                                    xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=14)))
        annotations.append(dict(text=f"KV head {row}", x=-0.01, y=y1 - height / 2, xref="paper", yref="paper",
                                xanchor="right", yanchor="middle", showarrow=False, textangle=-90,
                                font=dict(size=14)))
    group_size = cols
    share = (f"each row: {group_size} query heads sharing one key/value head (grouped-query attention)"
             if group_size > 1 else "each head its own key/value head (multi-head attention)")
    title = (f"Layer {heads.layer.layer}: all {rows * cols} heads · {share}<br>"
             f"<sup>{html.escape(layer_note(heads.layer, len(names)))}</sup>")
    layout.update(title=dict(text=title), font=FONT, height=110 + rows * max(200, int(900 / cols)),
                  margin=dict(l=50, r=30, t=110, b=20), annotations=annotations, plot_bgcolor=EMPTY,
                  coloraxis=dict(colorscale=COLORSCALE, cmin=0, cmax=1, colorbar=dict(title=dict(text="weight", side="right"))))
    return {"data": data, "layout": layout}


def lens_spec(grid: LensGrid) -> dict:
    columns = [f"{p} {label(t)}" for p, t in zip(grid.positions, grid.inputs)]
    top1 = grid.top_probs[:, :, 0].tolist()
    texts, hovers = [], []
    for r, row in enumerate(grid.top_labels):
        text_row, hover_row = [], []
        for c, cell in enumerate(row):
            hit = grid.actual_next[c] is not None and cell[0] == grid.actual_next[c]
            text_row.append(label(cell[0], 8) + (" ✓" if hit else ""))
            candidates = "<br>".join(f"{label(t, 24)}: {p:.3f}" for t, p in zip(cell, grid.top_probs[r, c].tolist()))
            follows = ("the text ends here" if grid.actual_next[c] is None
                       else f"actually follows: <b>{label(grid.actual_next[c], 24)}</b>")
            hover_row.append(f"{html.escape(grid.rows[r])} · after <b>{label(grid.inputs[c], 24)}</b> "
                             f"(position {grid.positions[c]})<br>{candidates}<br>{follows}")
        texts.append(text_row)
        hovers.append(hover_row)
    trace = dict(type="heatmap", z=top1, x=columns, y=list(grid.rows), text=texts, customdata=hovers,
                 texttemplate="%{text}", textfont=dict(size=15), hovertemplate="%{customdata}<extra></extra>",
                 colorscale=LENS_COLORSCALE, reversescale=True, zmin=0, zmax=1, xgap=1, ygap=1,
                 colorbar=dict(title=dict(text="top-1 prob", side="right")))
    layout = dict(
        title=dict(text="Logit lens: the final norm and output layer read at every layer<br>"
                        "<sup>each cell: that layer's most probable next token (✓: the token that really follows)</sup>"),
        font=FONT, height=max(420, 30 * len(grid.rows) + 220), margin=dict(l=180, r=30, t=110, b=120),
        xaxis=dict(type="category", side="bottom", title=dict(text="position (the token read)"), tickangle=-45),
        yaxis=dict(type="category", title=dict(text="")),
    )
    return {"data": [trace], "layout": layout}


def forcing_spec(forced: TeacherForcing) -> dict:
    names = [f"{t.index} {label(t.label)}" for t in forced.tokens]
    hovers = []
    for t in forced.tokens:
        expected = "<br>".join(f"{label(text, 24)}: {p:.3f}" for text, p in t.expected)
        hovers.append(f"<b>{label(t.label, 24)}</b> · P = {t.prob:.4f} · log P = {t.logprob:.3f}<br>"
                      f"the model expected:<br>{expected}")
    trace = dict(type="bar", x=names, y=[t.prob for t in forced.tokens], customdata=hovers,
                 hovertemplate="%{customdata}<extra></extra>", marker=dict(color="#1f4fd8"))
    total = forced.total_logprob
    title = (f"Teacher forcing: one pass, every position's P(actual next token)<br>"
             f"<sup>log P(text) = Σ log P(tᵢ | t&lt;ᵢ) = {total:.3f} · "
             f"P(text) = {_scientific(math.exp(total))} · "
             f"{forced.total_bits:.1f} bits · perplexity {forced.perplexity:.2f}</sup>")
    layout = dict(title=dict(text=title), font=FONT, height=460, margin=dict(l=70, r=30, t=110, b=130),
                  xaxis=dict(type="category", tickangle=-60), yaxis=dict(title=dict(text="P(token | before)"),
                                                                          range=[0, 1]))
    return {"data": [trace], "layout": layout}


def _scientific(value: float) -> str:
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.2e}"


MIB = 2**20


def kv_spec(report: KVReport) -> dict:
    tokens = [p.tokens for p in report.growth]
    data = [dict(type="scatter", mode="lines", x=tokens, y=[p.bytes / MIB for p in report.growth],
                 name=f"{html.escape(report.model_id)} ({report.shape.kv_heads} KV heads)", line=dict(width=4),
                 hovertemplate="%{x:,} tokens: %{y:,.2f} MiB<extra></extra>")]
    if report.shape.sliding_layers:
        data.append(dict(type="scatter", mode="lines", x=tokens, y=[p.full_bytes / MIB for p in report.growth],
                         name="if every layer were full attention", line=dict(dash="dot"),
                         hovertemplate="%{x:,} tokens: %{y:,.2f} MiB<extra></extra>"))
    if report.shape.kv_heads != report.shape.heads:
        data.append(dict(type="scatter", mode="lines", x=tokens, y=[p.mha_bytes / MIB for p in report.growth],
                         name=f"multi-head attention ({report.shape.heads} KV heads)", line=dict(dash="dash"),
                         hovertemplate="%{x:,} tokens: %{y:,.2f} MiB<extra></extra>"))
    if report.measured_bytes is not None:
        data.append(dict(type="scatter", mode="markers", x=[report.tokens], y=[report.measured_bytes / MIB],
                         name="measured: the real cache", marker=dict(size=14, symbol="diamond", color="#e4572e"),
                         hovertemplate="real cache after %{x:,} tokens: %{y:,.3f} MiB<extra></extra>"))
    layout = dict(title=dict(text="KV cache size against context length"), font=FONT, height=460,
                  margin=dict(l=80, r=30, t=70, b=70),
                  xaxis=dict(type="log", title=dict(text="tokens in the context")),
                  yaxis=dict(type="log", title=dict(text="MiB")), legend=dict(x=0.01, y=0.99))
    return {"data": data, "layout": layout}


SSM_COLORSCALE = [[0.0, "#b2182b"], [0.5, "#f7f7f7"], [1.0, "#2166ac"]]


def ssm_matrix_spec(demo: StateSpaceDemo, labels) -> dict:
    """The unrolled state-space layer as a T x T matrix over the text's tokens (lower-triangular,
    constant along each diagonal), to set beside the attention heatmap of section 2."""
    names = position_labels(labels)
    matrix = demo.matrix.numpy().astype(np.float32)
    upper = np.triu(np.ones_like(matrix, dtype=bool), k=1)
    matrix = np.where(upper, np.nan, matrix)  # nothing from the future: left blank, as in the attention map
    limit = float(np.nanmax(np.abs(matrix))) or 1.0
    trace = dict(type="heatmap", z=typed_array(matrix), x=names, y=names, coloraxis="coloraxis", xgap=1, ygap=1,
                 hovertemplate="output at <b>%{y}</b><br>input at <b>%{x}</b><br>weight C·A^(t−s)·B = %{z:.4f}"
                               "<extra></extra>")
    size = max(420, min(900, 18 * len(names) + 260))
    layout = dict(
        title=dict(text=f"A state-space layer unrolled: y = M u, M[t, s] = C·A<sup>t−s</sup>·B<br>"
                        f"<sup>{demo.states} states · lower-triangular · each diagonal one number</sup>"),
        font=FONT, height=size, margin=dict(l=140, r=30, t=110, b=140),
        xaxis=dict(title=dict(text="input position s"), type="category", tickangle=-60, showgrid=False,
                   nticks=MAX_TICKS),
        yaxis=dict(title=dict(text="output position t"), type="category", autorange="reversed", showgrid=False,
                   nticks=MAX_TICKS),
        coloraxis=dict(colorscale=SSM_COLORSCALE, cmin=-limit, cmax=limit,
                       colorbar=dict(title=dict(text="weight", side="right"))),
        plot_bgcolor=EMPTY,
    )
    return {"data": [trace], "layout": layout}


def ssm_memory_spec(report: KVReport, state_bytes: int, states: int) -> dict:
    """Memory a sequence needs as the context grows: the model's KV cache against a state-space
    layer stack of the same width and depth (its state: `states` numbers per channel, fixed)."""
    tokens = [p.tokens for p in report.growth]
    data = [dict(type="scatter", mode="lines", x=tokens, y=[p.bytes / MIB for p in report.growth],
                 name=f"{html.escape(report.model_id)}: KV cache (grows with every token)", line=dict(width=4),
                 hovertemplate="%{x:,} tokens: %{y:,.2f} MiB<extra></extra>"),
            dict(type="scatter", mode="lines", x=tokens, y=[state_bytes / MIB] * len(tokens),
                 name=f"state-space layers: {states} states per channel (fixed)", line=dict(width=4, dash="dash"),
                 hovertemplate="%{x:,} tokens: %{y:,.3f} MiB<extra></extra>")]
    layout = dict(title=dict(text="Memory per sequence: a KV cache grows, a state does not"), font=FONT, height=460,
                  margin=dict(l=80, r=30, t=70, b=70),
                  xaxis=dict(type="log", title=dict(text="tokens in the context")),
                  yaxis=dict(type="log", title=dict(text="MiB")), legend=dict(x=0.01, y=0.99))
    return {"data": data, "layout": layout}


def encoder_masks_spec(pair: EncodedPair, masks: Masks) -> dict:
    """Who may attend to whom on the same tokens: an encoder (bidirectional) beside a decoder (causal),
    two heatmaps of 1 (may attend) and 0."""
    names = position_labels(pair.tokens)
    colors = [[0.0, "#f3f4f6"], [1.0, "#2171b5"]]
    traces = []
    for index, (name, allowed) in enumerate((("encoder", masks.bidirectional), ("decoder", masks.causal))):
        axis = "" if index == 0 else "2"
        traces.append(dict(type="heatmap", z=allowed.tolist(), x=names, y=names, xaxis=f"x{axis}", yaxis=f"y{axis}",
                           zmin=0, zmax=1, colorscale=colors, showscale=False, xgap=1, ygap=1,
                           hovertemplate=f"{name}: <b>%{{y}}</b> attends to <b>%{{x}}</b>: %{{z}}<extra></extra>"))
    axis = dict(type="category", showgrid=False, tickfont=dict(size=13))
    # rows are shorter than columns are wide: every other row named (hover names each cell)
    down = dict(autorange="reversed", tickangle=0, nticks=max(2, (len(names) + 1) // 2), **axis)
    layout = dict(
        font=FONT, height=260, margin=dict(l=90, r=20, t=40, b=85), plot_bgcolor=EMPTY,
        xaxis=dict(domain=[0.0, 0.47], tickangle=-60, nticks=MAX_TICKS, **axis), yaxis=down,
        xaxis2=dict(domain=[0.53, 1.0], tickangle=-60, nticks=MAX_TICKS, **axis), yaxis2=dict(anchor="x2", showticklabels=False, **down),
        annotations=[dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                          yshift=4, showarrow=False)
                     for text, x in (("<b>Encoder (BERT): bidirectional</b>, sees all", 0.0),
                                     ("<b>Decoder (GPT): causal</b>, sees the past", 0.53))],
    )
    return {"data": traces, "layout": layout}
