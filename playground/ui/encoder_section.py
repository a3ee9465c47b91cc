"""The Inside tab's encoder-only section: the lecture's BERT input slide on a real WordPiece tokenizer.

Two sentences become "[CLS] A [SEP] B [SEP]" (`playground.inside.encoder_only`); the section shows
the slide's table for them (each token's input vector = its token row + its segment row + its
position row, every token text escaped) with a line saying what the encoding shows, and an encoder's
bidirectional attention mask beside a decoder's causal one on the same tokens. No model runs: the
tokenizer is trained once per process (0.1 s). The demo `encoder-only` opens it with the slide's pair.

What it leaves out: the tokenizer and masks (`playground.inside.encoder_only`), the table's HTML
(`playground.html.inside`), the chart (`playground.plots.inside`).
"""

from __future__ import annotations

import gradio as gr
from gradio.components.plot import PlotData

from playground.html import inside as text_views
from playground.inside import encoder_only
from playground.plots import inside as plots
from playground.plots.sampling import spec_json
from playground.ui.common import user_errors

CSS = text_views.ENCODER_CSS
LECTURE = """*The lecture (Encoder-only):* a transformer encoder (BERT) with **bidirectional attention**; input
a text, output a (sequence of) embeddings. Pre-training: **masked language modelling** (mask out tokens
of the input, reconstruct them) and next-sentence prediction (a binary task on the `[CLS]` token).
Good at embedding and classifying text; not at generation."""


@user_errors
def show_pair(first, second):
    """The pair's table and the two masks (no model call)."""
    pair = encoder_only.encode_pair(first, second)
    spec = plots.encoder_masks_spec(pair, encoder_only.masks(len(pair.tokens)))
    return (text_views.encoder_note_html(pair) + text_views.encoder_table_html(pair),
            PlotData(type="plotly", plot=spec_json(spec)))


def build() -> dict:
    """The section (an accordion); returns its parts for the tab's link (fields, the accordion)."""
    with gr.Accordion("Encoder-only models (BERT): WordPiece, [CLS] and [SEP], three embeddings", open=False,
                      elem_id="encoder-section") as accordion:
        gr.Markdown(LECTURE)
        with gr.Row():
            first = gr.Textbox(encoder_only.SLIDE_PAIR[0], label="Sentence A", max_length=encoder_only.MAX_CHARS,
                               elem_id="encoder-first", scale=2)
            second = gr.Textbox(encoder_only.SLIDE_PAIR[1], label="Sentence B", max_length=encoder_only.MAX_CHARS,
                                elem_id="encoder-second", scale=2)
            run = gr.Button("Show the encoder's input", variant="primary", elem_id="encoder-run", scale=1)
        with gr.Column(elem_id="encoder-result"):
            table = gr.HTML('<p class="encoder-note">Press <b>Show the encoder\'s input</b>: the pair as BERT '
                            "reads it.</p>", elem_id="encoder-table")
            mask_plot = gr.Plot(show_label=False, elem_id="encoder-masks")
    run.click(show_pair, [first, second], [table, mask_plot], api_name="inside_encoder")
    return {"accordion": accordion, "first": first, "second": second}
