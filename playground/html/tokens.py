"""HTML for token sequences: coloured spans with hover titles, id lists, byte tables.

`render_spans` is the generic builder every tab uses: a list of `Span` (text, hover title, CSS
classes, background colour, data attributes) becomes one `<span>` each, every string escaped with
`html.escape`. On top of it, `tokenization_html` draws a `TokenizationResult`: neighbouring tokens
get different colours, tokens that share a character (a split emoji or CJK character) are drawn as
one group in one colour, partial tokens show their bytes as `<0xF0><0x9F>`, special tokens are drawn
dark, and whitespace can be shown as marks (␣ → ↵). `TOKEN_CSS` draws tokens in a monospace stack that
ends in `FALLBACK_FONTS` (Noto CJK, Noto Color Emoji). Each token span and its entry in the id list
carry the same `data-i`, so `HOVER_JS` (installed with `TOKEN_CSS` on a `gr.HTML` through its
`js_on_load` / `css_template`) highlights both together.

What it leaves out: any gradio import, plots (`playground.plots`), and deciding what to cap
(callers pass `limit`; counts elsewhere stay exact).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from playground.token_text import display_text, visible_whitespace

# Light backgrounds that keep dark text readable on a projector; neighbours cycle through them.
PALETTE = ("#ffd6a5", "#caffbf", "#9bf6ff", "#ffc6ff", "#fdffb6", "#bdb2ff", "#ffadad", "#a0c4ff")
SPECIAL_BG = "#374151"
DEFAULT_LIMIT = 5000


@dataclass(frozen=True)
class Span:
    text: str
    title: str = ""
    classes: tuple[str, ...] = ()
    color: str | None = None
    data: Mapping[str, str | int] = field(default_factory=dict)


def _attr_value(value: str | int) -> str:
    return str(value) if isinstance(value, int) else html.escape(value)


@lru_cache(maxsize=256)
def _escape_few(value: str) -> str:
    """Escaping for the few distinct class lists and colours (cached: thousands of spans share them)."""
    return html.escape(value)


def _attrs(span: Span) -> str:
    parts = []
    if span.classes:
        parts.append(f'class="{_escape_few(" ".join(span.classes))}"')
    if span.color:
        parts.append(f'style="background:{_escape_few(span.color)}"')
    if span.title:
        parts.append(f'title="{html.escape(span.title)}"')
    for key, value in span.data.items():
        parts.append(f'data-{_escape_few(key)}="{_attr_value(value)}"')
    return " ".join(parts)


def render_span(span: Span) -> str:
    return f"<span {_attrs(span)}>{html.escape(span.text)}</span>"


def render_spans(spans: Iterable[Span], css_class: str = "tok-spans") -> str:
    """`<div class=css_class>` holding one escaped `<span>` per Span."""
    return f'<div class="{html.escape(css_class)}">' + "".join(render_span(s) for s in spans) + "</div>"


def _shown(text: str, whitespace_visible: bool) -> str:
    """The token's text; with visible whitespace a line break stays a break after its mark."""
    return visible_whitespace(text).replace("↵", "↵\n") if whitespace_visible else text


def token_title(token) -> str:
    """Hover text: position, id, text (whitespace visible) and bytes."""
    kind = " (special)" if token.special else (" (part of a character)" if token.partial else "")
    return (f"#{token.index}  id {token.id}{kind}\n"
            f"text: {visible_whitespace(token.text)}\n"
            f"bytes: {token.bytes.hex(' ') or '(none)'}")


def token_colors(tokens) -> list[str]:
    """One background per token: a new palette colour per group, so neighbours always differ."""
    colors, group_number, last_group = [], -1, None
    for token in tokens:
        if token.group != last_group:
            group_number, last_group = group_number + 1, token.group
        colors.append(SPECIAL_BG if token.special else PALETTE[group_number % len(PALETTE)])
    return colors


def token_spans(result, whitespace_visible: bool = False, limit: int | None = DEFAULT_LIMIT) -> list[Span]:
    tokens = result.tokens if limit is None else result.tokens[:limit]
    spans = []
    for token, color in zip(tokens, token_colors(tokens)):
        classes = ["tok"]
        if token.special:
            classes.append("tok-special")
        if token.partial:
            classes.append("tok-partial")
        spans.append(Span(_shown(token.text, whitespace_visible), token_title(token), tuple(classes), color,
                          {"i": token.index, "id": token.id}))
    return spans


def _grouped(spans: list[Span], tokens) -> str:
    """Spans, with each run of tokens sharing a character wrapped in one `tok-group` element."""
    out, i = [], 0
    while i < len(spans):
        j = i + 1
        while j < len(spans) and tokens[j].group == tokens[i].group:
            j += 1
        if j - i > 1:
            whole = display_text(b"".join(t.bytes for t in tokens[i:j]))
            title = f"{j - i} tokens spell {visible_whitespace(whole)}"
            out.append(f'<span class="tok-group" title="{html.escape(title)}">'
                       + "".join(render_span(s) for s in spans[i:j]) + "</span>")
        else:
            out.append(render_span(spans[i]))
        i = j
    return "".join(out)


def note_html(note: str) -> str:
    return f'<div class="tok-note">{html.escape(note)}</div>'


def cap_note(result, limit: int | None) -> str | None:
    if limit is not None and result.num_tokens > limit:
        return (f"Showing the first {limit:,} of {result.num_tokens:,} tokens; "
                "the counts cover the whole text.")
    return None


def tokenization_html(result, whitespace_visible: bool = False, limit: int | None = DEFAULT_LIMIT,
                      show_ids: bool = True) -> str:
    """Token spans (grouped, coloured, hoverable) and, below them, the id list."""
    tokens = result.tokens if limit is None else result.tokens[:limit]
    spans = token_spans(result, whitespace_visible, limit)
    parts = ['<div class="tok-root">']
    note = cap_note(result, limit)
    if note:
        parts.append(note_html(note))
    ws = " tok-ws" if whitespace_visible else ""
    parts.append(f'<div class="tok-spans{ws}">{_grouped(spans, tokens)}</div>')
    if show_ids:
        parts.append(id_list_html(tokens))
    parts.append("</div>")
    return "".join(parts)


def id_list_html(tokens) -> str:
    """The ids, coloured like their spans; hover titles live on the spans (same `data-i`)."""
    items = []
    for token, color in zip(tokens, token_colors(tokens)):
        special = " tok-special" if token.special else ""
        items.append(f'<span class="tok-id{special}" style="background:{color}" data-i="{token.index}" '
                     f'data-id="{token.id}">{token.id}</span>')
    return '<div class="tok-ids">[' + ", ".join(items) + "]</div>"


def bytes_table_html(result, limit: int = 2000) -> str:
    """One row per token: position, id, text, its bytes in hex, and whether it is a whole character."""
    rows = []
    for token in result.tokens[:limit]:
        status = "special" if token.special else ("part of a character" if token.partial else "")
        rows.append(
            f'<tr data-i="{token.index}"><td>{token.index}</td><td>{token.id}</td>'
            f"<td class=\"tok-cell\">{html.escape(visible_whitespace(token.text))}</td>"
            f"<td class=\"tok-hex\">{html.escape(token.bytes.hex(' '))}</td><td>{len(token.bytes)}</td>"
            f"<td>{html.escape(status)}</td></tr>"
        )
    note = cap_note(result, limit)
    return ((note_html(note) if note else "") + '<div class="tok-root"><table class="tok-bytes"><thead><tr>'
            "<th>#</th><th>id</th><th>text</th><th>bytes (hex)</th><th>n</th><th></th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def pieces_html(pieces, whitespace_visible: bool = True) -> str:
    """Decoded pieces (id -> text) as spans in alternating colours; used by the decode view."""
    spans = []
    for index, piece in enumerate(pieces):
        classes = ("tok", "tok-special") if piece.special else ("tok",)
        color = SPECIAL_BG if piece.special else PALETTE[index % len(PALETTE)]
        title = f"#{index}  id {piece.id}\ntext: {visible_whitespace(piece.text)}\nbytes: {piece.bytes.hex(' ')}"
        spans.append(Span(_shown(piece.text, whitespace_visible), title, classes, color, {"i": index, "id": piece.id}))
    return '<div class="tok-root">' + render_spans(spans) + "</div>"


# After the usual fonts: Debian's Noto CJK and colour emoji (`make fonts`), so Chinese, Japanese and
# emoji tokens are glyphs, not empty boxes, wherever those fonts are installed. The page uses the
# viewer's fonts: a viewer without any CJK font still sees boxes.
FALLBACK_FONTS = '"Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK KR", "Noto Color Emoji"'
MONO_FONTS = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace, " + FALLBACK_FONTS

TOKEN_CSS = """
.tok-root { font-size: 1.2rem; }
.tok-spans { font-family: MONO_FONTS; line-height: 2.1;
  white-space: pre-wrap; word-break: break-word; color: #111; }
.tok { border-radius: 4px; padding: 2px 1px; margin: 0 1px; color: #111; }
.tok-special { color: #fff !important; font-weight: 700; outline: 2px solid #111; }
.tok-partial { font-size: 0.8em; }
.tok-group { outline: 2px dashed #555; border-radius: 5px; padding: 2px 0; }
.tok-ws .tok { color: #333; }
.tok-ids { font-family: MONO_FONTS; font-size: 1.05rem; line-height: 2; margin-top: 0.8em;
  word-break: break-word; color: #111; }
.tok-id { border-radius: 4px; padding: 1px 3px; }
.tok-hl { outline: 3px solid #d00000 !important; box-shadow: 0 0 6px #d00000; }
.tok-note { background: #fff3cd; color: #664d03; border: 1px solid #ffe69c; border-radius: 6px;
  padding: 6px 10px; margin-bottom: 8px; font-size: 1rem; }
.tok-bytes { border-collapse: collapse; font-size: 1.05rem; }
.tok-bytes td, .tok-bytes th { border: 1px solid #ccc; padding: 2px 8px; }
.tok-hex, .tok-cell { font-family: MONO_FONTS; white-space: pre; }
""".replace("MONO_FONTS", MONO_FONTS)

# Event delegation on the component's root: survives every re-render of its value.
HOVER_JS = """
const root = element;
const mark = (ev, on) => {
  const target = ev.target.closest('[data-i]');
  if (!target || !root.contains(target)) return;
  const box = target.closest('.tok-root') || root;
  box.querySelectorAll('[data-i="' + target.dataset.i + '"]').forEach(el => el.classList.toggle('tok-hl', on));
};
root.addEventListener('mouseover', ev => mark(ev, true));
root.addEventListener('mouseout', ev => mark(ev, false));
"""
