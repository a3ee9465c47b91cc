"""HTML for generated text, the one renderer of both tabs: every token coloured by its probability.

`generated_html(prompt, records)` draws the prompt in grey and each generated token (a
`playground.generation.StepRecord`) as a span whose background goes from red (improbable under
the model) to green (probable) on one log scale (`probability_color`, p = 0.0001 or less is red);
the hover title lists its rank, raw and processed probability, the end-of-sequence probability and
the top alternatives at that step. A header line, the stop note, a "running" state and the token
count (`data-tokens`) serve the base-vs-chat columns; the sampling lab leaves them out. Spans come
from `playground.html.tokens.render_spans`, so all token text is `html.escape`d. `samples_html`
draws K samples, one row each. A generated token can carry a "why?" link (`WhyLinks`: the "Why this
token?" tab on the text before it, the token as the target), opened by a click. What it leaves out: computing the records (`playground.generation`),
any gradio import.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from playground.html.tokens import Span, render_spans
from playground.link_query import WHY_HINT, why_query
from playground.token_text import visible_whitespace

CHOSEN_MARK = {"sampled": "sampled", "greedy": "greedy (most probable)", "forced": "picked by hand"}


def probability_color(p: float) -> str:
    """Light background from red (p near 0) through yellow to green (p near 1), on a log-ish scale."""
    p = min(max(p, 0.0), 1.0)
    # 1e-4 or less -> 0, 1 -> 1: improbable tokens are what a lecture wants to spot
    t = 0.0 if p <= 1e-4 else min(1.0, 1.0 + math.log10(p) / 4.0)
    hue = int(round(120 * t))
    return f"hsl({hue}, 75%, 80%)"


def token_title(record) -> str:
    lines = [
        f"#{record.index + 1}  id {record.id}  “{visible_whitespace(record.text)}”",
        f"rank {record.rank} · model p = {record.raw_prob:.4g} · after rules p = {record.prob:.4g}",
        f"{CHOSEN_MARK.get(record.chosen, record.chosen)} · {record.kept_count:,} tokens kept",
        f"end-of-sequence p = {record.eos_raw_prob:.3g} (after rules {record.eos_prob:.3g})",
        "top alternatives:",
    ]
    for alt in record.alternatives:
        mark = "→" if alt.id == record.id else " "
        lines.append(f" {mark} {visible_whitespace(alt.text)!s:<14} model {alt.raw_prob:.3f} · rules {alt.prob:.3f}")
    if record.stop:
        lines.append(f"stopped here: {record.stop}")
    return "\n".join(lines)


@dataclass(frozen=True)
class WhyLinks:
    """"Why this token?" for generated tokens: `prompts[i]` is the text before record i (None: no
    link), attributed on `model_id` with the token as the target (`playground.ui.attribution_tab`)."""

    model_id: str
    prompts: tuple[str | None, ...]

    def query(self, index: int, token_id: int) -> str | None:
        prompt = self.prompts[index] if index < len(self.prompts) else None
        if prompt is None:
            return None
        return why_query(self.model_id, prompt, token_id)


def record_spans(records: Sequence, hover: bool = True, why: WhyLinks | None = None) -> list[Span]:
    """One coloured span per record; `hover=False` leaves out the hover cards (most of the bytes);
    `why`: the tokens' "why?" links (a click opens them)."""
    spans = []
    for number, record in enumerate(records):
        classes = ["gen-tok", f"gen-{record.chosen}"]
        if record.is_eos:
            classes.append("gen-eos")
        data = {"i": record.index, "id": record.id}
        link = why.query(number, record.id) if why is not None else None
        title = token_title(record) if hover else ""
        if link:
            classes.append("gen-why")
            data["why"] = link
            title = f"{title}\n{WHY_HINT}" if title else WHY_HINT
        spans.append(Span(record.text if record.text else "∅", title, tuple(classes),
                          probability_color(record.raw_prob), data))
    return spans


def generated_html(prompt: str, records: Sequence, stop_note: str | None = None, empty_note: str = "",
                   header: str = "", running: bool | None = None, start: Sequence[str] = (),
                   why: WhyLinks | None = None) -> str:
    """The prompt followed by the coloured generated tokens (and why generation stopped).

    `start`: the start tokens the model read before the prompt (`playground.start_tokens`), shown
    as chips in front of it. `why`: each token's "why?" link (`WhyLinks`).
    `header` is a line above the text (a column's model and mode); `running` marks the view as
    streaming (`gen-running`) or finished (`gen-done`), left out when None.
    """
    state = "" if running is None else (" gen-running" if running else " gen-done")
    parts = [f'<div class="gen-root{state}" data-tokens="{len(records)}">']
    if header:
        parts.append(f'<div class="gen-header">{html.escape(header)}</div>')
    chips = "".join(f'<span class="gen-start" title="start token: the model reads it before the text">'
                    f'{html.escape(label)}</span>' for label in start)
    parts += ['<div class="gen-text">', chips, f'<span class="gen-prompt">{html.escape(prompt)}</span>',
              render_spans(record_spans(records, why=why), css_class="gen-spans"), "</div>"]
    if not records and empty_note:
        parts.append(f'<div class="gen-note">{html.escape(empty_note)}</div>')
    if stop_note:
        parts.append(f'<div class="gen-status">{html.escape(stop_note)}</div>')
    parts.append(legend())
    parts.append("</div>")
    return "".join(parts)


def samples_html(samples: Sequence, stop_explanations: dict[str, str], stopped: bool = False,
                 hover: bool = True) -> str:
    """One row per sample: its coloured tokens, stop reason (or "running…", or "stopped" when the
    user stopped the run), log-probability. `hover=False` (a running view) leaves out the tokens'
    hover cards: K x length cards are megabytes, sent again with every step."""
    rows = []
    for number, sample in enumerate(samples, start=1):
        logprob = sample.logprob
        rows.append(
            '<div class="gen-sample">'
            f'<span class="gen-sample-n">{number}</span>'
            + render_spans(record_spans(sample.records, hover), css_class="gen-spans")
            + f'<span class="gen-sample-meta">{_stop_words(sample.stop_reason, stop_explanations, stopped)}'
              f' · log p {logprob:.2f} · ppl {sample.perplexity:.2f}</span></div>'
        )
    return '<div class="gen-root">' + "".join(rows) + legend(hover) + "</div>"


def _stop_words(reason: str | None, explanations: dict[str, str], stopped: bool) -> str:
    """A sample's stop reason (its explanation on hover), or that it is still running."""
    if reason is None:
        return "stopped (you pressed Stop)" if stopped else "running…"
    return f'<span title="{html.escape(explanations.get(reason, reason))}">{html.escape(reason)}</span>'


_LEGEND_COLOURS = ('<div class="gen-legend">colour = the model’s probability of the token: '
                   f'<span style="background:{probability_color(1e-4)}">≤ 0.0001</span> '
                   f'<span style="background:{probability_color(0.01)}">0.01</span> '
                   f'<span style="background:{probability_color(0.1)}">0.1</span> '
                   f'<span style="background:{probability_color(1.0)}">1</span>')


def legend(hover: bool = True) -> str:
    """The colour key, and what hovering a token shows (a running samples view has no hover cards)."""
    hint = "hover a token for its rank and alternatives" if hover else "hover cards appear when the run ends"
    return f'{_LEGEND_COLOURS} · {hint}</div>'


GENERATED_CSS = """
.gen-root { font-size: 1.25rem; color: #111; }
.gen-text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; line-height: 2.1;
  white-space: pre-wrap; word-break: break-word; }
.gen-text .gen-spans, .gen-sample .gen-spans { display: inline; }
.gen-prompt { color: #666; }
.gen-start { font-family: monospace; font-size: 0.85em; border: 1px solid #999; border-radius: 4px;
  padding: 0 4px; margin-right: 4px; color: #444; background: #eef; }
.gen-tok { border-radius: 4px; padding: 2px 1px; margin: 0 1px; color: #111; cursor: help; }
.gen-tok.gen-why { cursor: pointer; }
.gen-tok.gen-why:hover { outline: 2px solid #1f4fd8; }
.gen-forced { outline: 2px dashed #1f4fd8; }
.gen-eos { outline: 2px solid #111; font-weight: 700; }
.gen-header { font-size: 0.95rem; color: #555; margin-bottom: 4px; }
.gen-status { margin-top: 0.6em; padding: 4px 10px; background: #eef2ff; border-left: 4px solid #1f4fd8;
  font-size: 1.05rem; }
.gen-running .gen-status { color: #b45309; border-left-color: #b45309; }
.gen-done, .gen-running { min-height: 6em; }
.gen-note { color: #666; font-size: 1rem; }
.gen-legend { margin-top: 0.6em; font-size: 0.95rem; color: #444; }
.gen-legend span { padding: 1px 6px; border-radius: 4px; color: #111; }
.gen-sample { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; line-height: 2;
  white-space: pre-wrap; word-break: break-word; border-bottom: 1px solid #ddd; padding: 4px 0; }
.gen-sample-n { display: inline-block; min-width: 2em; color: #666; font-weight: 700; }
.gen-sample-meta { margin-left: 1em; font-size: 0.9rem; color: #555; font-family: sans-serif; }
"""
