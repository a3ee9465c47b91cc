"""HTML for fill-in-the-middle: the document's three parts coloured, the PSM string, its tokens.

`parts_html` draws the document in reading order with prefix, middle and suffix each in its own
colour; `psm_html` draws the training string in PSM order (sentinels dark, parts in their colours)
and below it the tokens of the model's tokenizer as chips (`tokens.token_spans`, hover titles and
the id list as in the Tokenizer tab), each underlined in its part's colour; `completion_html`
draws the document with a generated middle in place. Every string goes through `html.escape`
(in `tokens.render_spans`).

What it leaves out: cutting and tokenizing (`playground.fim`), any gradio import.
"""

from __future__ import annotations

import html
from dataclasses import replace

from playground.html import tokens

PART_COLORS = {"prefix": "#caffbf", "middle": "#ffd6a5", "suffix": "#a0c4ff"}
PART_NAMES = {"prefix": "prefix: the code before", "middle": "middle: the code to be completed",
              "suffix": "suffix: the code after", "sentinel": "sentinel token"}
CHIP_LIMIT = 2000


def _part_span(part: str, text: str) -> tokens.Span:
    if part == "sentinel":
        return tokens.Span(text, PART_NAMES[part], ("fim-seg", "fim-sentinel"), tokens.SPECIAL_BG)
    return tokens.Span(text, PART_NAMES[part], ("fim-seg", f"fim-{part}"), PART_COLORS[part], {"part": part})


def legend_html() -> str:
    return ('<div class="fim-legend">' + "".join(
        f'<span class="fim-key" style="background:{PART_COLORS[p]}">{html.escape(PART_NAMES[p])}</span>'
        for p in ("prefix", "middle", "suffix")) + "</div>")


def parts_html(example) -> str:
    """The document in reading order: prefix, middle, suffix, each in its colour."""
    spans = [_part_span(part, text) for part, text in
             (("prefix", example.prefix), ("middle", example.middle), ("suffix", example.suffix))]
    return '<div class="fim-root">' + legend_html() + tokens.render_spans(spans, "fim-doc") + "</div>"


def psm_html(encoded) -> str:
    """The training string in PSM order, then its tokens as chips underlined by part."""
    layout = encoded.psm
    prompt = [_part_span(s.part, s.text) for s in layout.segments[:layout.prompt_segments]]
    rest = [_part_span(s.part, s.text) for s in layout.segments[layout.prompt_segments:]]
    result = encoded.result
    spans = [replace(span, classes=(*span.classes, f"fim-chip-{part}"))
             for span, part in zip(tokens.token_spans(result, True, CHIP_LIMIT), encoded.parts)]
    shown = result.tokens[:CHIP_LIMIT]
    note = tokens.cap_note(result, CHIP_LIMIT)
    return ('<div class="fim-root">'
            f'<p class="fim-caption">Training string in PSM order ({html.escape(layout.sentinels.family)}); the '
            "prompt a FIM model completes ends at the middle sentinel:</p>"
            + tokens.render_spans(prompt, "fim-doc fim-psm") + tokens.render_spans(rest, "fim-doc fim-psm fim-target")
            + f'<p class="fim-caption"><b>{result.num_tokens:,} tokens</b> ({encoded.prompt_length:,} in the prompt) '
            f"with {html.escape(result.tokenizer_id)}'s tokenizer; underlined by part:</p>"
            + (tokens.note_html(note) if note else "")
            + '<div class="tok-root fim-chips"><div class="tok-spans tok-ws">'
            + "".join(tokens.render_span(s) for s in spans) + "</div>" + tokens.id_list_html(shown) + "</div></div>")


def completion_html(completion) -> str:
    """The document with the generated middle in place, and why the generation ended."""
    example = completion.encoded.psm.example
    spans = [_part_span("prefix", example.prefix), _part_span("middle", completion.middle),
             _part_span("suffix", example.suffix)]
    why = {"end": f"it ended the middle with {completion.stop_token}",
           "max_tokens": f"it reached {len(completion.ids)} tokens without ending the middle",
           "context": "the model's context length was reached"}[completion.stop]
    return ('<div class="fim-root">'
            f'<p class="fim-caption"><b>{html.escape(completion.model_id)}</b> filled in the middle '
            f"(greedy, {len(completion.ids)} tokens; {html.escape(why)}):</p>"
            + tokens.render_spans(spans, "fim-doc") + "</div>")


CSS = """
.fim-root { font-size: 1.1rem; }
.fim-doc { font-family: MONO_FONTS; white-space: pre-wrap; word-break: break-word; line-height: 1.9;
  color: #111; margin: 4px 0 10px; }
.fim-seg { border-radius: 4px; padding: 2px 0; color: #111; }
.fim-sentinel { color: #fff !important; font-weight: 700; padding: 2px 4px; }
.fim-target { opacity: 0.75; border-left: 4px solid #ffb347; padding-left: 6px; }
.fim-legend { display: flex; gap: 10px; flex-wrap: wrap; margin-bottom: 6px; font-size: 0.95rem; }
.fim-key { border-radius: 4px; padding: 2px 8px; color: #111; }
.fim-caption { margin: 6px 0 4px; }
.fim-chips .fim-chip-prefix { border-bottom: 4px solid #2b9348; }
.fim-chips .fim-chip-suffix { border-bottom: 4px solid #1d4ed8; }
.fim-chips .fim-chip-middle { border-bottom: 4px solid #e76f00; }
""".replace("MONO_FONTS", tokens.MONO_FONTS)
