"""Plotly figures for the sampling lab: the next-token distribution cut by the rules, K-sample histograms.

`distribution_spec` draws the N most probable tokens (under the raw distribution) as horizontal
bars, most probable on top: a pale bar for the raw probability and a solid bar for the processed
one, tokens the rules removed greyed out (and struck from the processed series), plus one bar for
the rest of the vocabulary's mass. It is built in small steps: the token bars (`_top_bars`), the
rest-of-vocabulary bar (`_add_rest_bar`), the two series, the layout. Labels show
whitespace visibly (␣ → ↵); each bar carries its token id in `customdata` so a click can append
that token. `first_token_spec` puts the histogram of the first sampled token over K runs next to
the processed distribution.

Each chart is a plain plotly.js spec (a dict of `data` and `layout`); `distribution_figure` wraps
one in a `go.Figure` for callers that want one. The UI sends the spec as JSON as it is
(`spec_json`): building and serialising a validated `go.Figure` (deep copies, a template) costs
more than filtering the whole vocabulary. What it leaves out: running the model or the rules
(`playground.sampling`), HTML (`playground.html`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import plotly.graph_objects as go

from playground.sampling import FilterResult, RankedLogits
from playground.token_text import display_text, token_bytes, visible_whitespace

RAW_COLOR = "rgba(99, 110, 250, 0.35)"
KEPT_COLOR = "#1f4fd8"
REMOVED_COLOR = "rgba(150, 150, 150, 0.45)"
REST_COLOR = "rgba(90, 90, 90, 0.35)"
SAMPLE_COLOR = "#e4572e"
FONT = dict(size=18)
MAX_LABEL = 18


def short_label(text: str) -> str:
    """A token's display text with visible whitespace, shortened for an axis."""
    label = visible_whitespace(text) or "∅"
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def spec_json(spec: dict) -> str:
    """The spec as the JSON plotly.js (and Gradio's plot component) reads."""
    return json.dumps(spec, ensure_ascii=False, allow_nan=False)


def distribution_figure(*args, **kwargs) -> go.Figure:
    """`distribution_spec` as a plotly Figure."""
    spec = distribution_spec(*args, **kwargs)
    return go.Figure(data=spec["data"], layout=spec["layout"])


def distribution_spec(ranked: RankedLogits, result: FilterResult, tokenizer, top_n: int = 20,
                      log_scale: bool = False, title: str | None = None, highlight: int | None = None) -> dict:
    """Top-N bars (raw and processed), removed tokens greyed, and a rest-of-vocabulary bar."""
    top_n = max(1, min(int(top_n), ranked.vocab_size))
    bars = _top_bars(ranked, result, tokenizer, top_n, highlight)
    rest_count = ranked.vocab_size - top_n
    if rest_count > 0:
        _add_rest_bar(bars, result, rest_count)
    return {"data": _distribution_traces(bars), "layout": _distribution_layout(bars, log_scale, title)}


@dataclass
class _Bars:
    """One chart row per entry: the top tokens, then (if any) the rest of the vocabulary."""

    positions: list[int]
    tick_text: list[str]
    raw_x: list[float]
    proc_x: list[float | None]  # None: removed by the rules (no processed bar)
    raw_colors: list[str]
    proc_colors: list[str]
    hover: list[str]
    custom: list[int]  # the token id a click appends; -1 for the rest bar


def _top_bars(ranked: RankedLogits, result: FilterResult, tokenizer, top_n: int, highlight: int | None) -> _Bars:
    """The N most probable raw tokens, removed ones greyed and struck from the processed series."""
    ids = ranked.top(top_n)[1][:top_n]
    raw, processed, kept = ranked.raw_probs[ids].tolist(), result.probs[ids].tolist(), result.kept[ids].tolist()
    id_list = ids.tolist()
    texts = [display_text(token_bytes(tokenizer, i)) for i in id_list]
    proc_colors = [KEPT_COLOR for _ in kept]
    if highlight is not None and highlight in id_list:
        proc_colors[id_list.index(highlight)] = SAMPLE_COLOR
    return _Bars(
        positions=list(range(len(id_list))),
        tick_text=[short_label(t) for t in texts],
        raw_x=list(raw),
        proc_x=[q if k else None for q, k in zip(processed, kept)],
        raw_colors=[RAW_COLOR if k else REMOVED_COLOR for k in kept],
        proc_colors=proc_colors,
        hover=[_token_hover(i, r, t, p, q, k) for r, (i, t, p, q, k) in enumerate(zip(id_list, texts, raw, processed, kept))],
        custom=list(id_list),
    )


def _token_hover(token_id: int, rank: int, text: str, raw: float, processed: float, kept: bool) -> str:
    return (f"<b>{_hover_escape(visible_whitespace(text))}</b><br>id {token_id} · rank {rank + 1}<br>raw {raw:.4g}<br>"
            f"processed {processed:.4g}{'' if kept else '<br><i>removed by the rules</i>'}")


def _add_rest_bar(bars: _Bars, result: FilterResult, rest_count: int) -> None:
    """One bar for the mass of every token below the top N (raw, processed, how many kept)."""
    shown = len(bars.custom)
    rest_raw = max(0.0, 1.0 - sum(bars.raw_x))
    rest_kept = result.kept_count - sum(v is not None for v in bars.proc_x)
    # none of them kept: exactly 0 (1 - the shown bars' sum would be rounding error, e.g. 1.5e-08)
    rest_processed = max(0.0, 1.0 - sum(v or 0.0 for v in bars.proc_x)) if rest_kept > 0 else 0.0
    bars.positions.append(shown)
    bars.tick_text.append(f"rest ({rest_count:,})")
    bars.hover.append(f"<b>the other {rest_count:,} tokens</b><br>raw {rest_raw:.4g}<br>processed {rest_processed:.4g}"
                      f"<br>{rest_kept:,} of them kept")
    bars.raw_x.append(rest_raw)
    bars.proc_x.append(rest_processed if rest_processed > 0 else None)
    bars.raw_colors.append(REST_COLOR)
    bars.proc_colors.append(REST_COLOR)
    bars.custom.append(-1)


def _distribution_traces(bars: _Bars) -> list[dict]:
    """The raw series (pale, greyed where removed) and the processed one (labelled with percentages)."""
    return [
        dict(type="bar", orientation="h", name="raw (model)", y=bars.positions, x=bars.raw_x,
             customdata=bars.custom, marker=dict(color=bars.raw_colors, line=dict(color="rgba(60,60,60,0.5)", width=1)),
             hovertext=bars.hover, hoverinfo="text", offsetgroup="raw"),
        dict(type="bar", orientation="h", name="after the rules", y=bars.positions, x=bars.proc_x,
             customdata=bars.custom, marker=dict(color=bars.proc_colors), hovertext=bars.hover, hoverinfo="text",
             offsetgroup="processed", text=[percent(v) for v in bars.proc_x], textposition="outside",
             cliponaxis=False, textfont=dict(size=14)),
    ]


def _distribution_layout(bars: _Bars, log_scale: bool, title: str | None) -> dict:
    """Most probable on top, monospace token labels, the x range fitted to the longest bar (linear)."""
    longest = max(bars.raw_x + [v or 0 for v in bars.proc_x])
    # A probability axis ends at 1: a bar that reaches it has its label in the right margin, which
    # must hold "100.0%" at the presenter's 20 px.
    capped = not log_scale and longest * 1.18 > 1.0
    return dict(
        title=dict(text=title or "", font=dict(size=20)),
        barmode="group", bargap=0.18, bargroupgap=0.0,
        font=FONT, height=max(420, 34 * len(bars.positions) + 120), margin=dict(l=10, r=100 if capped else 60, t=60 if title else 30, b=50),
        yaxis=dict(automargin=True, tickmode="array", tickvals=bars.positions, ticktext=bars.tick_text,
                   autorange="reversed", tickfont=dict(size=18, family="ui-monospace, Menlo, Consolas, monospace")),
        xaxis=dict(automargin=True, gridcolor="#e5e5e5", title=dict(text="probability" + (" (log scale)" if log_scale else "")),
                   type="log" if log_scale else "linear", rangemode="tozero",
                   **({} if log_scale else {"range": [0, min(1.0, longest * 1.18)]})),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hoverlabel=dict(font=dict(size=16)), clickmode="event", plot_bgcolor="white",
    )


def first_token_spec(ranked: RankedLogits, result: FilterResult, tokenizer, counts: Mapping[int, int],
                     top_n: int = 20, title: str | None = None) -> dict:
    """Share of K runs whose first token was each token, beside the processed probability."""
    total = sum(counts.values())
    _, ids = ranked.top(top_n)
    order = [int(i) for i in ids[:top_n]]
    kept = result.kept
    order = [i for i in order if kept[i]] or order[:1]
    for token in sorted(counts, key=lambda t: -counts[t]):  # sampled tokens outside the top N too
        if token not in order:
            order.append(token)
    probs = result.probs
    labels = [short_label(display_text(token_bytes(tokenizer, i))) for i in order]
    positions = list(range(len(order)))
    share = [counts.get(i, 0) / total if total else 0.0 for i in order]
    expected = [float(probs[i]) for i in order]
    data = [
        dict(type="bar", orientation="h", name="processed probability", y=positions, x=expected,
             marker=dict(color=KEPT_COLOR), offsetgroup="p", customdata=order,
             hovertemplate="%{x:.3f}<extra>processed probability</extra>"),
        dict(type="bar", orientation="h", name=f"share of {total} samples", y=positions, x=share,
             marker=dict(color=SAMPLE_COLOR), offsetgroup="s", customdata=order,
             text=[str(counts.get(i, 0)) if counts.get(i, 0) else "" for i in order], textposition="outside",
             hovertemplate="%{x:.3f}<extra>share of samples</extra>"),
    ]
    layout = dict(
        title=dict(text=title or f"First sampled token over {total} runs", font=dict(size=20)),
        barmode="group", font=FONT, height=max(380, 34 * len(order) + 120),
        margin=dict(l=10, r=40, t=60, b=50), plot_bgcolor="white",
        yaxis=dict(automargin=True, tickmode="array", tickvals=positions, ticktext=labels, autorange="reversed",
                   tickfont=dict(size=18, family="ui-monospace, Menlo, Consolas, monospace")),
        xaxis=dict(automargin=True, gridcolor="#e5e5e5", title=dict(text="probability / share"), rangemode="tozero"),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    return {"data": data, "layout": layout}


def percent(value: float | None) -> str:
    """A probability as the chart labels it: "31.7%", "4.2e-05" below 0.1%, "" for none."""
    if value is None:
        return ""
    if value >= 0.001:
        return f"{value * 100:.1f}%"
    return f"{value:.1e}"


def _hover_escape(text: str) -> str:
    """Plotly hover text is HTML-like: escape what it would interpret."""
    import html

    return html.escape(text)
