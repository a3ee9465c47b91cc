"""The "Inside the model" tab: the lecture's architecture part on a real model and your own text.

Sections, each with the lecture's words beside it: (1) the architecture card (the real
configuration, parameters counted from the weights), the lecture's table from one formula and
the knowledge capacity ("up to 2 bits per parameter", drawn after the look, no model call);
(2) attention: one layer and head as a heatmap, all heads of the layer grouped by their key/value
head; (3) the logit lens; (4) teacher forcing in one pass; (5) the KV cache; (6) sequence models:
a stated state-space layer run step by step and unrolled on the text's embeddings (their
difference shown), its lower-triangular matrix beside the attention map, its fixed state against
the KV cache (drawn after the look from the cached pass, no model call). Two accordions under the
card: the vocabulary's rare tokens (`rare_section`) and encoder-only models (`encoder_section`).

"Look inside" (`inside_view` API, model-step group) runs the one forward pass
(`playground.inside.passes.inside_pass`, cached per model and text) and draws every view but the
lens. Moving the layer or head sliders (`inside_attention`, instant) redraws from the cached pass
and never runs the model; the session keeps only which (model, text) it looked at. The lens
(`inside_lens`, model-step) applies the output layer to the cached hidden states. What it leaves
out: any model code (`playground.inside`), drawing (`playground.plots.inside`, `playground.html.inside`).
"""

from __future__ import annotations

import html

import gradio as gr
from gradio.components.plot import PlotData

from playground import exports
from playground.errors import PlaygroundError
from playground.html import inside as text_views
from playground.inside import arch, attention, forcing, kv, lens, passes, ssm
from playground.limits import clamp_int
from playground.plots import inside as plots
from playground.plots.sampling import spec_json
from playground.ui import encoder_section, link_wiring, rare_section
from playground.ui.common import model_choices, user_errors
from playground.ui.exports import data_downloads

DEFAULT_TEXT = "The capital of France is Paris. The capital of Germany is Berlin."
DEFAULT_MODEL = "gemma-3-270m"
UNLOOKED_MAX = 127  # layer and head sliders before the first look

LECTURE_ARCHITECTURE = """**The lecture:** *A big transformer. Input: sequence. Output: probability over next token.*

- GPT-1: 12 layers, 768 hidden size, MLP 3072 dim, 12 attention heads; **0.1B** params
- GPT-3: 96 layers, 12288 hidden size, 96 attention heads; **175.0B** params
- Mistral 7b: 32 layers, 4096 hidden size, MLP 14336 dim, 32 attention heads; window attention, Group Query Attention
- Llama 3: SwiGLU, vocabulary 128,000, RoPE (θ = 500,000); key/value heads 8

The table below computes each count from the configuration with one formula; on the model above
the same formula gives the total counted from its weights exactly. (The released Llama 3 configs
have 128,256 tokens; the slide rounds to 128,000.)"""

LECTURE_ATTENTION = """**The lecture:** *Decoder: causal self-attention, MLP.* Scaled dot-product
attention: each query token's row is a softmax over the keys, so it sums to 1; *causal* means a
token sees only the tokens before it: the empty upper triangle. Multi-head attention runs several
heads side by side; *grouped-query attention* lets several query heads share one key/value head
(the rows of the small multiples). Mistral's and Gemma's *window attention* limits a layer to
the last few hundred tokens."""

LECTURE_LENS = """**The lecture:** *Output probabilities*, *distributions / logits*: the last layer
goes through the output layer to a distribution over the next token. The logit lens applies that
same final norm and output layer to every layer's hidden state: you see the prediction form layer
by layer. The top row is the model's real next-token distribution."""

LECTURE_FORCING = """**The lecture:** *Pre-training: next token prediction. Teacher forcing: feed in
ground truth tokens, supervised shifted ground truth. Loss: CrossEntropy shifted training text.*
One forward pass over the text gives the next-token distribution at every position; the text's
probability is the product P(t₁)·P(t₂ | t₁)·…, its log the sum (the loss is minus that, per token)."""

LECTURE_KV = """**The lecture:** *Output: autoregressive probability over text, token-by-token.*
Generating token by token, each layer keeps every earlier token's key and value vectors (the KV
cache) instead of recomputing them. *Key/value heads: 8* (Llama 3) and Mistral's *Group Query
Attention* exist to shrink it: fewer key/value heads, fewer bytes per token."""

LECTURE_SSM = """**The lecture (Sequence models, Mamba and friends):** *State-space model layer: input u<sub>t</sub>,
hidden state x<sub>t</sub> = A x<sub>t−1</sub> + B u<sub>t</sub>, output y<sub>t</sub> = C x<sub>t</sub>.
Unroll: similar to convolution / a transformer with a more structured attention matrix. Same
training as a decoder-only model. Potentially faster inference than a transformer.*

Here a stated layer (16 states, A<sub>n</sub> = e<sup>−0.1(n+½)</sup>, B = 1, C<sub>n</sub> = ±1/16;
not trained) reads u<sub>t</sub> = the first coordinate of each token's embedding in the model above,
both ways: step by step (the state carried) and unrolled (one matrix). Compare its matrix with the
attention heatmap of section 2: fixed weights by distance, against weights that depend on the tokens."""

CSS = rare_section.CSS + encoder_section.CSS + """
.inside-lecture { background: #f6f7fb; border-left: 4px solid #1f4fd8; padding: 0.4rem 0.9rem; font-size: 1.02rem; }
#inside-card table { font-size: 1.02rem; }
/* the lecture's table on one projector screen: all ten columns (its figures and the check were off to
   the right), 15 px, compact rows */
html.playground-present #inside-table table { font-size: 15px !important; }
html.playground-present #inside-table th, html.playground-present #inside-table td { padding: 2px 4px !important; }
html.playground-present #inside-table * { font-size: 15px !important; line-height: 1.25 !important; }
"""


def _plot(spec: dict) -> PlotData:
    return PlotData(type="plotly", plot=spec_json(spec))


def _model(model_id) -> str:
    if not model_id:
        raise PlaygroundError("Pick a model.")
    return str(model_id)


def _looked(looked):
    """The (model, text) this session looked at; its pass if still cached, else a message."""
    if not looked:
        raise PlaygroundError("Press “Look inside” first.")
    model_id, text = looked
    result = passes.cached_pass(model_id, text)
    if result is None:
        raise PlaygroundError("That pass is no longer cached (other texts ran since): press “Look inside” again.")
    return result


def _attention_views(result, layer, head):
    layer = clamp_int(layer, "Layer", 0, result.layers - 1, default=0)
    head = clamp_int(head, "Head", 0, result.heads - 1, default=0)
    return (_plot(plots.attention_spec(attention.attention_map(result, layer, head))),
            _plot(plots.heads_spec(attention.layer_heads(result, layer))))


@user_errors
def look_inside(text, model_id, layer, head):
    """One forward pass (cached per model and text) and every view read from it, the lens aside."""
    model_id, text = _model(model_id), str(text or "")
    card = arch.architecture(model_id)
    result = passes.inside_pass(model_id, text)
    layer = clamp_int(layer, "Layer", 0, result.layers - 1, default=0)
    head = clamp_int(head, "Head", 0, result.heads - 1, default=0)
    heatmap, heads = _attention_views(result, layer, head)
    forced = forcing.teacher_forcing(result)
    report = kv.kv_from_pass(result)
    table = text_views.table_rows([arch.model_row(card), *arch.lecture_table()])
    return ((model_id, text), text_views.card_markdown(card), table,
            gr.Slider(minimum=0, maximum=result.layers - 1, value=layer, step=1, interactive=True),
            gr.Slider(minimum=0, maximum=result.heads - 1, value=head, step=1, interactive=True),
            heatmap, heads, _plot(plots.forcing_spec(forced)), text_views.forcing_markdown(forced),
            text_views.kv_markdown(report), _plot(plots.kv_spec(report)))


@user_errors
def show_capacity(model_id):
    """The lecture's "up to 2 bits per parameter" for the chosen model and the lecture's (no model call:
    the card counts the loaded weights)."""
    return text_views.capacity_markdown(arch.architecture(_model(model_id)))


@user_errors
def show_state_space(looked):
    """The state-space layer both ways on the looked-at text's embeddings (no model call: the pass is cached)."""
    result = _looked(looked)
    embedding = result.hidden[0][:, 0]
    u = embedding / (embedding.std() if embedding.numel() > 1 and float(embedding.std()) > 0 else 1.0)
    demo = ssm.state_space_demo(u)
    report = kv.kv_from_pass(result)
    state_bytes = demo.state_bytes(int(result.hidden.shape[-1]), report.shape.layers, report.shape.dtype_bytes)
    note = (f"Recurrence (step by step) and unrolled matrix on the same {result.tokens} inputs: largest "
            f"difference **{demo.max_difference:.1e}** (the same layer, two ways of computing it). Between "
            f"tokens the layers keep **{text_views.size(state_bytes)}** whatever the length; "
            f"{html.escape(result.model_id)}'s KV cache holds {text_views.size(report.shape.per_token_bytes)} "
            "more with every token.")
    return (note, _plot(plots.ssm_matrix_spec(demo, result.labels)),
            _plot(plots.ssm_memory_spec(report, state_bytes, demo.states)))


@user_errors
def show_attention(looked, layer, head):
    """Redraw the heatmap and the layer's heads from the cached pass (no model call)."""
    return _attention_views(_looked(looked), layer, head)


def slid_attention(looked, layer, head):
    """The sliders moved: redraw, unless nothing was looked at yet (a link setting the sliders
    before its look), when there is nothing to redraw."""
    if not looked:
        return gr.skip(), gr.skip()
    return show_attention(looked, layer, head)


@user_errors
def show_lens(looked, positions):
    """The logit lens over the last `positions` tokens of the text looked at (cached hidden states)."""
    if not looked:
        raise PlaygroundError("Press “Look inside” first.")
    model_id, text = looked
    count = clamp_int(positions, "Lens positions", 1, lens.MAX_POSITIONS, default=lens.DEFAULT_POSITIONS)
    return _plot(plots.lens_spec(lens.logit_lens(model_id, text, count)))


def attention_data(looked, layer, head, fmt):
    """The shown head's attention weights (every pair the mask lets a query see) as CSV or JSON text."""
    result = _looked(looked)
    layer = clamp_int(layer, "Layer", 0, result.layers - 1, default=0)
    head = clamp_int(head, "Head", 0, result.heads - 1, default=0)
    return exports.export(exports.attention_table(result, layer, head), fmt)


def _beside(lecture: str):
    gr.Markdown(lecture, elem_classes=["inside-lecture"])


def build() -> link_wiring.TabLink:
    """The tab's content; call inside `with gr.Tab("Inside the model"):`."""
    choices = model_choices()
    available = [value for _, value in choices]
    gr.Markdown("**Inside the model**: what the lecture's architecture slides describe, on a real model and "
                f"your own text (at most {passes.MAX_TOKENS} tokens). One forward pass keeps every layer's "
                "attention weights and hidden states; moving the sliders never re-runs the model.")
    with gr.Row():
        text = gr.Textbox(DEFAULT_TEXT, lines=2, label="Text", scale=4, elem_id="inside-text")
        with gr.Column(scale=2):
            model = gr.Dropdown(choices, value=DEFAULT_MODEL if DEFAULT_MODEL in available else
                                (available[0] if available else None), label="Model", elem_id="inside-model")
            run = gr.Button("Look inside", variant="primary", elem_id="inside-run")
    looked = gr.State(None)

    gr.Markdown("## 1. Architecture and parameters")
    with gr.Row():
        with gr.Column(scale=3):
            card = gr.Markdown("Press **Look inside** to read the model's configuration and count its weights.",
                               elem_id="inside-card")
        with gr.Column(scale=2):
            _beside(LECTURE_ARCHITECTURE)
    gr.Markdown(text_views.FORMULA)
    table = gr.Dataframe(value=text_views.table_rows(arch.lecture_table()), headers=text_views.TABLE_HEADERS,
                         label="The lecture's models and this one, by the same formula", interactive=False,
                         wrap=True, elem_id="inside-table", max_height=1000,
                         column_widths=["11%", "6%", "6%", "6%", "6%", "6%", "7%", "25%", "12%", "15%"])
    capacity = gr.Markdown("Press **Look inside**: how much this model can memorise at most, beside the "
                           "lecture's models (up to 2 bits per parameter).", elem_id="inside-capacity")
    rare_parts = rare_section.build(model)  # the vocabulary's under-trained tokens (the tokenization slide)
    encoder_parts = encoder_section.build()  # the lecture's encoder-only slides (no model call)

    gr.Markdown("## 2. Attention")
    with gr.Row():
        # The real ranges arrive with the first look; until then a wide one, so that an API caller's first
        # /inside_view with any layer passes Gradio's range check (the server clamps to the model's).
        layer = gr.Slider(0, UNLOOKED_MAX, value=0, step=1, label="Layer (0 = first)", interactive=False,
                          elem_id="inside-layer")
        head = gr.Slider(0, UNLOOKED_MAX, value=0, step=1, label="Head", interactive=False, elem_id="inside-head")
    with gr.Row():
        with gr.Column(scale=3):
            heatmap = gr.Plot(label="attention weights of one head", elem_id="inside-attention")
            data_downloads("Download this head's weights", attention_data, [looked, layer, head], "attention",
                           "inside-attention-data")
        with gr.Column(scale=1):
            _beside(LECTURE_ATTENTION)
    heads = gr.Plot(label="all heads of the layer, grouped by shared key/value head", elem_id="inside-heads")

    gr.Markdown("## 3. Logit lens")
    with gr.Row():
        positions = gr.Slider(1, lens.MAX_POSITIONS, value=lens.DEFAULT_POSITIONS, step=1,
                              label="Positions (the last tokens of the text; each costs one output layer per layer)",
                              scale=3, elem_id="inside-lens-positions")
        lens_button = gr.Button("Apply the logit lens", scale=1, elem_id="inside-lens-run")
    with gr.Row():
        with gr.Column(scale=3):
            lens_plot = gr.Plot(label="logit lens", elem_id="inside-lens")
        with gr.Column(scale=1):
            _beside(LECTURE_LENS)

    gr.Markdown("## 4. Teacher forcing in one pass")
    with gr.Row():
        with gr.Column(scale=3):
            forcing_plot = gr.Plot(label="P(actual next token) at every position", elem_id="inside-forcing")
            forcing_note = gr.Markdown(elem_id="inside-forcing-note")
        with gr.Column(scale=1):
            _beside(LECTURE_FORCING)

    gr.Markdown("## 5. KV cache")
    with gr.Row():
        with gr.Column(scale=3):
            kv_note = gr.Markdown(elem_id="inside-kv-note")
            kv_plot = gr.Plot(label="KV cache against context length", elem_id="inside-kv")
        with gr.Column(scale=1):
            _beside(LECTURE_KV)
    gr.Dataframe(value=text_views.kv_rows(kv.lecture_shapes()), headers=text_views.KV_HEADERS,
                 label="The lecture's models: KV cache per token (16-bit numbers)", interactive=False,
                 elem_id="inside-kv-table")

    gr.Markdown("## 6. Sequence models: a state-space layer")
    with gr.Row():
        with gr.Column(scale=2):
            ssm_note = gr.Markdown("Press **Look inside**: a state-space layer run both ways on the text's tokens.",
                                   elem_id="inside-ssm-note")
            ssm_matrix = gr.Plot(label="The unrolled state-space layer", elem_id="inside-ssm")
        with gr.Column(scale=1):
            _beside(LECTURE_SSM)
    ssm_memory = gr.Plot(label="Memory per sequence", elem_id="inside-ssm-memory")

    run.click(look_inside, [text, model, layer, head],
              [looked, card, table, layer, head, heatmap, heads, forcing_plot, forcing_note, kv_note, kv_plot],
              api_name="inside_view").then(show_capacity, model, capacity, api_name=False, queue=False,
                                           show_progress="hidden").then(
        show_state_space, looked, [ssm_note, ssm_matrix, ssm_memory], api_name=False, queue=False,
        show_progress="hidden")
    gr.on([layer.change, head.change], slid_attention, [looked, layer, head], [heatmap, heads],
          api_name=False, trigger_mode="always_last", show_progress="hidden")
    with gr.Row(visible=False):  # the API's redraw, which says when there is nothing to redraw
        attention_api = gr.Button("inside_attention")
    attention_api.click(show_attention, [looked, layer, head], [heatmap, heads], api_name="inside_attention")
    lens_button.click(show_lens, [looked, positions], lens_plot, api_name="inside_lens")
    looked_in = ("inside-run", "#inside-attention .js-plotly-plot")  # the look is done once its heatmap is drawn
    return link_wiring.TabLink(
        "inside", {"text": text, "model": model, "layer": layer, "head": head, "positions": positions,
                   "sentence_a": encoder_parts["first"], "sentence_b": encoder_parts["second"]},
        actions={"look": [looked_in], "lens": [looked_in, ("inside-lens-run", "#inside-lens .js-plotly-plot")],
                 "rare": [looked_in, ("rare-find", "#rare-table table")],
                 "encoder": [("encoder-run", "#encoder-masks .js-plotly-plot")]}, default_run="look",
        views={"card": "inside-card", "table": "inside-table", "capacity": "inside-capacity", "ssm": "inside-ssm",
               "attention": "inside-attention", "heads": "inside-heads", "lens": "inside-lens",
               "forcing": "inside-forcing", "kv": "inside-kv-note", "rare": ("rare-table", rare_parts["accordion"]),
               "encoder": ("encoder-result", encoder_parts["accordion"])},
        default_view="attention", copy_runs=[("lens", "lens", "#inside-lens .js-plotly-plot")])
