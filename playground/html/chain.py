"""HTML for the sampler chain: one table row per stage (kept tokens, kept mass, entropy, top tokens).

`funnel_table(rows)` takes the stage rows the funnel chart draws (`plots.chain.funnel_spec`) and
lists them as a table, top tokens as chips with their probabilities; every token text goes through
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
