"""HTML for the sampler chain: the funnel as a table, A/B as two token strips.

`funnel_table(rows)` takes the stage rows the funnel chart draws (`plots.chain.funnel_spec`) and
lists them as a table, top tokens as chips with their probabilities; `ab_strips` draws an A/B run
as two aligned token strips with the first divergence marked. Every token text goes through
`html.escape`. What it leaves out: the chart (`playground.plots.chain`), running the chain.
"""

from __future__ import annotations

import html

from playground.token_text import visible_whitespace

CSS = """
.chain-table { border-collapse: collapse; font-size: 1rem; }
.chain-table td, .chain-table th { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
.chain-table .chain-num { text-align: right; font-variant-numeric: tabular-nums; }
.chain-chip { display: inline-block; margin: 1px 3px; padding: 0 4px; border-radius: 4px;
              background: rgba(31, 79, 216, 0.12); white-space: pre; }
"""


def _chips(top: list[dict]) -> str:
    return "".join(f"<span class='chain-chip' title='id {int(t['id'])}'>{html.escape(visible_whitespace(t['text']))}"
                   f" {t['prob']:.2f}</span>" for t in top)


def funnel_table(rows: list[dict], note: str = "") -> str:
    lines = ["<table class='chain-table' id='chain-table'><tr><th>stage</th><th>kept</th><th>mass</th>"
             "<th>bits</th><th>top tokens</th></tr>"]
    for index, row in enumerate(rows):
        name = "model" if index == 0 else f"{index}. {row['name']}"
        lines.append(f"<tr data-stage='{index}'><td>{html.escape(name)}</td>"
                     f"<td class='chain-num'>{row['kept_count']:,}</td>"
                     f"<td class='chain-num'>{row['kept_mass']:.3f}</td>"
                     f"<td class='chain-num'>{row['entropy_bits']:.2f}</td><td>{_chips(row['top'][:3])}</td></tr>")
    lines.append("</table>")
    if note:
        lines.append(f"<p class='chain-note'>{html.escape(note)}</p>")
    return "".join(lines)


AB_CSS = """
.ab-strip { margin: 6px 0; line-height: 2.1; font-size: 1.1rem; }
.ab-side { font-weight: 600; margin-right: 8px; }
.ab-tok { padding: 2px 3px; margin: 0 1px; border-radius: 4px; background: rgba(31, 79, 216, 0.10); white-space: pre; }
.ab-tok.ab-diverged { outline: 3px solid #e4572e; }
.ab-tok.ab-after { background: rgba(150, 150, 150, 0.18); }
"""


def _strip(side: str, chain: str, tokens: list[dict], logprob: float, divergence: int | None) -> str:
    spans = []
    for t in tokens:
        where = t["position"]
        kind = "" if divergence is None or where < divergence else (" ab-diverged" if where == divergence else " ab-after")
        title = f"u = {t['u']:.4f} · p = {t['prob']:.4f} under the chain · model {t['raw_prob']:.4f} · kept {t['kept_count']}"
        spans.append(f"<span class='ab-tok{kind}' data-pos='{where}' title='{html.escape(title)}'>"
                     f"{html.escape(visible_whitespace(t['text']))}</span>")
    return (f"<div class='ab-strip' id='ab-{side.lower()}'><span class='ab-side' title='{html.escape(chain)}'>{side}"
            f" (log p {logprob:.2f})</span>{''.join(spans)}</div>")


def ab_strips(result: dict, chain_a: str, chain_b: str) -> str:
    """Two aligned token strips drawn on the same uniforms; the first divergence outlined, tokens after
    it greyed; each token's hover gives its u, its probability under its chain and the model, the kept count."""
    divergence = result["first_divergence"]
    said = ("Identical on every position: the two chains picked the same tokens from the same dice."
            if divergence is None else f"First divergence at position {divergence + 1}: before it, same dice, same tokens.")
    return (_strip("A", chain_a, result["a"]["tokens"], result["a"]["logprob"], divergence)
            + _strip("B", chain_b, result["b"]["tokens"], result["b"]["logprob"], divergence)
            + f"<p class='ab-note' id='ab-note'>{html.escape(said)}</p>")
