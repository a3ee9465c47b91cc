"""The Lecture tab: the lecture's demos in lecture order, each one click from ready.

One list, grouped by the lecture's sections (`playground.lecture.DEMOS`): each demo's title is a
link (`?demo=<id>`, the same mechanism as every deep link, `playground.ui.link_wiring`) followed by its
one line of context, where the packaged models cannot make the point, what it needs, and whether a
class room has a poll for it (`playground.lecture.POLLS`). A link
opens the demo's tab, sets it up and computes its result; presenter mode is kept. The keyboard
shortcuts are listed below the demos. What it leaves out: the demos' settings (`playground.lecture`).
"""

from __future__ import annotations

import re
from html import escape

import gradio as gr

from playground import lecture
from playground.ui import presenter

TAB_LABELS = {"tokenizer": "Tokenizer", "chat": "Base vs chat", "sampling": "Sampling lab", "beam": "Beam search",
              "inside": "Inside the model"}


def _inline(text: str) -> str:
    """`text` escaped, with its `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def index_html(demos=lecture.DEMOS) -> str:
    """The demos as HTML: one list per lecture section, in order (every text escaped)."""
    parts, section = ['<div class="lecture-index">'], None
    for demo in demos:
        if demo.section != section:
            if section is not None:
                parts.append("</ol>")
            section = demo.section
            parts.append(f"<h3>{escape(section)}</h3><ol>")
        needs = f' <span class="demo-needs">Needs: {_inline(demo.needs)}</span>' if demo.needs else ""
        if demo.poll:  # a class room's poll goes with it
            needs += f' <span class="demo-poll">Class poll: {escape(lecture.POLL_NAMES[demo.poll])}</span>'
        parts.append(f'<li id="demo-{escape(demo.id)}"><a class="demo-link" href="{escape(demo.url.lstrip("/"))}" '
                     f'data-demo="{escape(demo.id)}" title="{escape(demo.line)}">{escape(demo.title)}</a> '
                     f'<span class="demo-tab">({escape(TAB_LABELS.get(demo.tab, demo.tab))})</span>'
                     f'<span class="demo-tab-sep"> · </span><span class="demo-line">{_inline(demo.line)}</span>'
                     f'{needs}</li>')
    parts.append("</ol></div>")
    return "".join(parts)


def build() -> None:
    """The tab's content; call inside `with gr.Tab("Lecture"):`."""
    gr.Markdown("Every demo of the lecture, in lecture order. Click one to open it ready: its tab, its settings, "
                "its result. **Presenter mode** (top right, or `present=1` in the link) makes everything "
                "readable from the back of the hall. *Copy link* (top right) copies any tab's state as a link "
                "for your slides.", elem_classes=["app-intro"])
    gr.HTML(index_html(), elem_id="lecture-index")
    gr.Markdown(presenter.shortcuts_markdown(), elem_id="lecture-shortcuts")
