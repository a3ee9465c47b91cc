"""HTML for "Why this token?": the prompt's tokens as chips coloured by each method's scores.

`attribution_html(result)` draws the target (its text, probability and rank; the most probable token
too when the target is another) above one panel per method, side by side: the method's name, its
formula in the lecture's words, the prompt's chips on a diverging scale (red: the token made the
target more likely, blue: less likely; the sign kept, each panel scaled by its own largest |score|
so that the methods' units do not matter), each chip's score on hover and below its text, and for
integrated gradients the completeness check (sum of the scores, f(input) - f(baseline), the error).
The attention panel is drawn in grey-green and says it is not an attribution. Start tokens are
drawn as grey context chips. Every token string goes through `html.escape`.

What it leaves out: computing the scores (`playground.attribution`), gradio (`playground.ui`).
"""

from __future__ import annotations

import html

CSS = """
.why-target { font-size: 1.25rem; margin: 0.2rem 0 0.6rem; }
.why-target code, .why-chip-text { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; }
.why-panels { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.why-panel { flex: 1 1 30%; min-width: 17rem; border: 1px solid #d0d4de; border-radius: 6px; padding: 0.4rem 0.6rem; }
.why-panel.not-attribution { background: #f3f7f2; border-style: dashed; }
.why-panel h4 { margin: 0 0 0.2rem; font-size: 1.05rem; }
.why-formula { font-size: 0.9rem; color: #374151; margin: 0 0 0.4rem; }
.why-chips { display: flex; flex-wrap: wrap; gap: 0.2rem; }
.why-chip { display: inline-flex; flex-direction: column; align-items: center; padding: 0.1rem 0.3rem;
            border-radius: 4px; border: 1px solid #9ca3af; color: #111827; }
.why-chip.start { background: #e5e7eb; color: #6b7280; border-style: dotted; }
.why-chip-text { font-size: 1.05rem; white-space: pre; }
.why-chip-score { font-size: 0.75rem; }
.why-check { font-size: 0.9rem; margin-top: 0.3rem; }
.why-seconds { font-size: 0.75rem; font-weight: normal; color: #6b7280; }
.why-check.bad { color: #b91c1c; font-weight: 600; }
"""

CHECK_TOLERANCE = 0.1  # a completeness error above 10% of f(input) - f(baseline) is flagged


def score_color(score: float, scale: float) -> str:
    """A diverging colour: white at 0, red for positive, blue for negative, full at |score| = scale."""
    strength = 0.0 if scale <= 0 else min(1.0, abs(score) / scale)
    fade = round(255 - strength * 200)
    return f"rgb(255,{fade},{fade})" if score >= 0 else f"rgb({fade},{fade},255)"


def _chip(text: str, score: float | None, scale: float, start: bool) -> str:
    shown = html.escape(text)
    if start or score is None:
        return (f'<span class="why-chip start" title="start token (context, not scored)">'
                f'<span class="why-chip-text">{shown}</span><span class="why-chip-score">·</span></span>')
    return (f'<span class="why-chip" style="background:{score_color(score, scale)}" '
            f'title="{html.escape(text)}: {score:+.4f}"><span class="why-chip-text">{shown}</span>'
            f'<span class="why-chip-score">{_short(score)}</span></span>')


def _short(score: float) -> str:
    """Two decimals, or two significant digits for a small nonzero score (attention rollout's)."""
    return f"{score:+.1e}" if score and abs(score) < 0.005 else f"{score:+.2f}"


def completeness_html(row) -> str:
    difference = row.f_input - row.f_baseline
    bad = abs(row.completeness_error) > CHECK_TOLERANCE * max(abs(difference), 1e-6)
    advice = " Large: the path is rough here; try more steps." if bad else ""
    return (f'<div class="why-check{" bad" if bad else ""}">Completeness ({row.steps} steps): Σ scores = '
            f'{row.total:+.3f}; f(prompt) − f(baseline) = {row.f_input:.3f} − ({row.f_baseline:.3f}) = '
            f'{difference:+.3f}; error {row.completeness_error:+.3f}.{advice}</div>')


def panel_html(tokens, row) -> str:
    scored = [abs(s) for s in row.scores if s is not None]
    scale = max(scored) if scored else 0.0
    chips = "".join(_chip(t.text, s, scale, t.start) for t, s in zip(tokens, row.scores))
    check = completeness_html(row) if row.completeness_error is not None else ""
    kind = "" if row.is_attribution else " not-attribution"
    return (f'<div class="why-panel{kind}" data-method="{html.escape(row.key)}"><h4>{html.escape(row.title)} '
            f'<span class="why-seconds">{row.seconds:.1f} s</span></h4>'
            f'<p class="why-formula">{html.escape(row.formula)}</p><div class="why-chips">{chips}</div>{check}</div>')


def target_html(result) -> str:
    line = (f'Why <code>{html.escape(result.target_text)}</code>? p = {result.target_prob:.3f} '
            f'(rank {result.target_rank}) after the prompt, on {html.escape(result.model_id)}.')
    if result.target_id != result.top_id:
        line += (f' The most probable token is <code>{html.escape(result.top_text)}</code> '
                 f'(p = {result.top_prob:.3f}).')
    return f'<div class="why-target">{line}</div>'


def attribution_html(result) -> str:
    panels = "".join(panel_html(result.tokens, row) for row in result.methods)
    return f'<div class="why-view">{target_html(result)}<div class="why-panels">{panels}</div></div>'
