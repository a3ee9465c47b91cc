"""HTML for structured outputs: the constrained text beside the free one, and the steps' table.

`comparison_html(result)` takes `Comparison.as_dict()` (an in-process model) or
`EngineConstrained.as_dict()` (an engine model: no steps, its note instead) and shows the two texts
side by side with whether the constrained one is complete and why each run stopped.
`steps_table(steps, selected)` lists each step: the chosen token, the allowed count, the removed mass,
the token's probability under the model, after the mask and after the rules. Every token string
goes through `html.escape`. What it leaves out: the charts (`playground.plots.constraints`).
"""

from __future__ import annotations

import html

from playground.token_text import visible_whitespace

CSS = """
.constraint-pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.constraint-pair > div { border: 1px solid #ccc; border-radius: 6px; padding: 6px 10px; }
.constraint-pair h4 { margin: 0 0 4px 0; }
.constraint-text { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 1.05rem;
                   overflow-wrap: anywhere; }
.constraint-note { color: #555; font-size: 0.95rem; }
.constraint-table { border-collapse: collapse; font-size: 1rem; }
.constraint-table td, .constraint-table th { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
.constraint-table .constraint-num { text-align: right; font-variant-numeric: tabular-nums; }
.constraint-table tr.constraint-selected { background: rgba(31, 79, 216, 0.12); }
.constraint-table .constraint-token { white-space: pre; font-family: ui-monospace, monospace; }
"""


def _text(value: str) -> str:
    return f"<div class='constraint-text'>{html.escape(value) if value else '<i>(nothing)</i>'}</div>"


def comparison_html(result: dict) -> str:
    steps = result.get("steps")
    if "complete" in result:
        state = "complete: the constraint accepts it" if result["complete"] else "not complete"
        left_note = f"{len(steps or [])} tokens; {state}; stopped: {result['stop_explanation']}"
    else:
        left_note = f"by the engine ({result.get('sampling', '')}); finish reason {result.get('stop_reason')}"
    free = result.get("free")
    right = (f"<h4>free (no constraint)</h4>{_text(free['text'])}<p class='constraint-note'>{free['tokens']} tokens; "
             f"stopped: {html.escape(str(free['stop_reason']))}</p>") if free else (
        f"<h4>free (no constraint)</h4><p class='constraint-note'>{html.escape(result.get('steps_note', ''))}</p>")
    return (f"<div class='constraint-pair' id='constraint-pair'><div id='constraint-constrained'>"
            f"<h4>with the constraint</h4>{_text(result['text'])}<p class='constraint-note'>{html.escape(left_note)}"
            f"</p></div><div id='constraint-free'>{right}</div></div>")


def steps_table(steps: list[dict] | None, selected: int | None = None, note: str = "") -> str:
    if not steps:
        return f"<p class='constraint-note'>{html.escape(note)}</p>" if note else ""
    rows = ["<table class='constraint-table' id='constraint-steps'><tr><th>step</th><th>token</th>"
            "<th>allowed</th><th>removed mass</th><th>p model</th><th>p masked</th><th>p rules</th></tr>"]
    for s in steps:
        mark = " class='constraint-selected'" if s["index"] == selected else ""
        rows.append(f"<tr{mark} data-step='{int(s['index'])}'><td class='constraint-num'>{int(s['index']) + 1}</td>"
                    f"<td class='constraint-token'>{html.escape(visible_whitespace(s['text']))}</td>"
                    f"<td class='constraint-num'>{int(s['allowed_count']):,}</td>"
                    f"<td class='constraint-num'>{s['removed_mass']:.3f}</td>"
                    f"<td class='constraint-num'>{s['raw_prob']:.3f}</td>"
                    f"<td class='constraint-num'>{s['masked_prob']:.3f}</td>"
                    f"<td class='constraint-num'>{s['prob']:.3f}</td></tr>")
    rows.append("</table>")
    return "".join(rows)
