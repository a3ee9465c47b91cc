"""Assembles the Gradio app: a status line and the four tabs, in lecture order.

The page is served at once; models load lazily on the first request that needs them (the status
line says which are loaded). Queue settings live here: see `QUEUE_*`. What it leaves out: each
tab's layout (its own module) and command-line flags (`app.py`).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from playground.ui import beam_tab, chat_tab, common, sampling_tab, tokenizer_tab

ASSETS = Path(__file__).resolve().parents[2] / "assets"
CSS_FILE = ASSETS / "app.css"

# One heavy event at a time per model call site keeps a 2-core machine responsive; the queue holds
# a lecture hall's worth of waiting requests before refusing new ones with a message.
QUEUE_DEFAULT_CONCURRENCY = 2
QUEUE_MAX_SIZE = 256


def build_app() -> gr.Blocks:
    with gr.Blocks(title="LLM playground") as app:
        gr.Markdown("# LLM playground\nHow large language models turn text into tokens, tokens into probabilities, and probabilities into text.")
        status = gr.Markdown(elem_id="status-line")
        with gr.Tabs():
            with gr.Tab("Tokenizer", id="tokenizer"):
                tokenizer_tab.build()
            with gr.Tab("Base vs chat", id="chat"):
                chat_tab.build()
            with gr.Tab("Sampling lab", id="sampling"):
                sampling_tab.build()
            with gr.Tab("Beam search", id="beam"):
                beam_tab.build()
        timer = gr.Timer(5.0)
        app.load(common.status_markdown, outputs=status, api_name=False, queue=False)
        timer.tick(common.status_markdown, outputs=status, api_name=False, queue=False, show_progress="hidden")
    app.queue(default_concurrency_limit=QUEUE_DEFAULT_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return app


TAB_MODULES = (tokenizer_tab, chat_tab, sampling_tab, beam_tab)


def launch_kwargs() -> dict:
    """Arguments for `Blocks.launch` (Gradio 6 takes theme, css and head there, not in Blocks).

    Each tab module may define `CSS` and `HEAD` strings; they are joined after assets/app.css.
    """
    css = [CSS_FILE.read_text()] if CSS_FILE.exists() else []
    css += [getattr(module, "CSS", "") for module in TAB_MODULES]
    head = "\n".join(getattr(module, "HEAD", "") for module in TAB_MODULES)
    return {"css": "\n".join(c for c in css if c), "head": head or None,
            "theme": gr.themes.Soft(text_size="lg")}
