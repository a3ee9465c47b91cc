"""The Tokenizer tab: explore, compare, decode, and train BPE live.

Layout top to bottom: a tokenizer and a text (presets from the lecture) drawn as coloured token
spans with counts; the bytes of each token; other id sequences for the same text; up to four
tokenizers compared; ids decoded back to text; the BPE training lab. Handlers are a few lines each:
they call `playground.tokenizer_registry` / `playground.bpe`, then the HTML and plot builders, and turn a
`PlaygroundError` into `gr.Error` (`common.user_errors`). The view is shared like every tab's, with the header's "Copy link" (`playground.ui.link_wiring`).

Limits (checked on the server; every handler also runs under the request time limit): counts
always cover the whole text, exactly; drawing is capped at `RENDER_LIMIT` tokens (explore, decode,
BPE encode) and `COMPARE_LIMIT` per compared tokenizer, with a note; texts longer than
`MAX_TEXT_CHARS` (2 million characters: tokenizing that many 4-byte emoji takes up to 5.5 s per
tokenizer on the 2-core lecture machine) are refused with a message; merges are clamped to 1..2000
and the BPE step to the trained merges; ids to decode are capped at `MAX_DECODE_IDS`. BPE trains on
at most `BPE_TRAIN_BYTES` and encodes at most `BPE_ENCODE_BYTES` of UTF-8 (longer texts are cut at
a character boundary, with a note on the page): on this machine 100 KB train 2,000 merges in
0.5-1.5 s alone and at most 6 s with the CPU four times oversubscribed (a 1.7 MB text took 5-8 s
alone and 850 MB), and encoding one long chunk (pattern "none", or a run of letters without
spaces) is quadratic: 10 KB in under 1 s alone, at most 3.5 s so oversubscribed. Both BPE loops
and the compare loop check the time limit. Text with lone surrogates (not Unicode) gets a message;
NUL, control characters, right-to-left text, combining marks and emoji are ordinary text.

Engine models whose engine provides /tokenize are tokenizers here too (`playground.engines.tokenizer`,
labelled "(engine: llama.cpp at ...)"): one request per text, each token's exact bytes from the
engine; a down engine is a message. Their "other id sequences" are not computed (one request per
character).

The Decode box follows the tokenizer, so Decode never reads one tokenizer's ids with another: a
new tokenizer (chosen, from a preset or from the URL), the special-tokens box or a preset refills
it with the first `DECODE_SAMPLE` ids of the text under that tokenizer and decodes them; typing
text leaves it alone (its ids are still the current tokenizer's).

What it leaves out: tokenization itself (backend), the app shell (`playground.ui.shell`).
"""

from __future__ import annotations

import contextlib
import functools
import html
import threading
from pathlib import Path

import gradio as gr

from playground import bpe, exports, limits, link_query, tokenizer_registry
from playground.errors import PlaygroundError
from playground.html import tokens as token_html
from playground.limits import clamp_int
from playground.plots import tokenizer as token_plots
from playground.token_text import display_text, visible_whitespace
from playground.ui import link_wiring
from playground.ui.common import user_errors
from playground.ui.exports import data_downloads
from playground.ui.tokenizer_presets import PRESETS, PRESETS_BY_NAME

RENDER_LIMIT = 5000  # tokens drawn in the explore view; counts always cover the whole text
COMPARE_LIMIT = 1500
PREVIEW_CHARS = 1500  # of the BPE training text, drawn at the slider's merge
MAX_TEXT_CHARS = 2_000_000
MAX_MERGES = 2000
STEP_SLIDER_MAX = MAX_MERGES  # before training: any merge count reaches the handler, which asks to train
MAX_DECODE_IDS = 100_000
DECODE_SAMPLE = 8  # ids put into the Decode box when the tokenizer changes or a preset is applied
BPE_TRAIN_BYTES = 100_000  # of UTF-8: BPE's work grows with bytes, and an emoji is up to 25 of them
BPE_ENCODE_BYTES = 10_000
TRAIN_FIRST = "Train BPE first (press “Train BPE” above)."
CORPUS = Path(tokenizer_registry.ASSETS) / "corpus" / "pride-and-prejudice-ch1-9.txt"
_SHORT = {
    "r50k_base": "GPT-2", "p50k_base": "Codex", "cl100k_base": "GPT-4", "o200k_base": "GPT-4o",
    "llama-3": "Llama 3", "bytes": "V0: one id per byte",
}
ENGINE_ALTERNATIVES = ("Other id sequences are not computed for an engine's tokenizer (one engine request "
                       "per character).")


def _choice_label(info) -> str:
    if info.kind == "engine":  # "(engine: llama.cpp at http://...)"
        from playground import models
        from playground.engines.tokenizer import label

        return label(models.get_spec(info.id))
    return _SHORT.get(info.id, "model's own" if info.kind == "model" else info.kind)


def tokenizer_choices() -> list[tuple[str, str]]:
    """Every available tokenizer; an engine model's where its engine provides /tokenize."""
    return [(f"{info.id} ({_choice_label(info)})", info.id) for info in tokenizer_registry.list_tokenizers() if info.available]


# ---------------------------------------------------------------------------------------------
# Handlers (each: backend call, then HTML/plot builders)


def _text(value, what: str = "The text") -> str:
    """A text input as str (None -> ""), refused above MAX_TEXT_CHARS."""
    text = "" if value is None else str(value)
    if len(text) > MAX_TEXT_CHARS:
        raise PlaygroundError(f"{what} is {len(text):,} characters; this tab takes at most {MAX_TEXT_CHARS:,}.")
    return text


def _cut(text: str, limit: int, purpose: str) -> tuple[str, str]:
    """`text` cut to its first `limit` UTF-8 bytes (whole characters), and a note that says so ("": not cut)."""
    data = tokenizer_registry.utf8(text)
    if len(data) <= limit:
        return text, ""
    cut = data[:limit].decode("utf-8", errors="ignore")
    return cut, (f"The text has {len(text):,} characters ({len(data):,} UTF-8 bytes); it was cut to the first "
                 f"{len(cut):,} characters ({limit:,} bytes at most) for {purpose}.")


@contextlib.contextmanager
def _time_limit(what: str, hint: str):
    """A `RequestTimeout` inside the block becomes a message that says what to try instead."""
    try:
        yield
    except limits.RequestTimeout:
        raise PlaygroundError(f"{what} ran past this request's time limit ({limits.DEFAULT_REQUEST_SECONDS:.0f} s) "
                              f"and was stopped. {hint}") from None


def _tokenizer_id(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PlaygroundError("Choose a tokenizer.")
    return value


def counts_html(result) -> str:
    return (
        '<div class="tok-counts">'
        f'<b><span class="tok-count" data-count="{result.num_tokens}">{result.num_tokens:,}</span> tokens</b>'
        f" · {result.num_chars:,} characters · {result.num_bytes:,} UTF-8 bytes"
        f" · {result.chars_per_token:.2f} characters per token"
        f' <span class="tok-count-id">({html.escape(result.tokenizer_id)})</span></div>'
    )


def alternatives_html(tokenizer_id: str, text: str) -> str:
    limit = 2000
    if tokenizer_registry.get_tokenizer(tokenizer_id).kind == "engine":
        return f"<p>{html.escape(ENGINE_ALTERNATIVES)}</p>"
    alternatives = tokenizer_registry.alternative_encodings(tokenizer_id, text, limit_chars=limit)
    if not alternatives:
        return "<p>This tokenizer has exactly one id sequence for the text (one id per byte).</p>"
    head = f" (first {limit:,} characters)" if len(text) > limit else ""
    canonical = tokenizer_registry.get_tokenizer(tokenizer_id).encode(text[:limit])
    # the text and its own ids here too: in presenter mode they are above the screen
    quoted = text if len(text) <= 80 else text[:79] + "…"
    rows = [f'<p class="tok-alt-text">The text “{html.escape(quoted)}” in {html.escape(tokenizer_id)}</p>',
            f"<p><b>encode(text)</b>{head}: {len(canonical):,} ids</p>{_ids_div(canonical)}"]
    for alt in alternatives:
        method = "each character encoded on its own" if alt.method == "characters" else "one token per byte"
        same = "decodes to the same text ✓" if alt.same_text else "decodes differently ✗"
        rows.append(f"<p><b>{html.escape(method)}</b>: {len(alt.ids):,} ids, {same}</p>{_ids_div(alt.ids)}")
    return '<div class="tok-root">' + "".join(rows) + "</div>"


def _ids_div(ids, most: int = 300) -> str:
    shown = ", ".join(map(str, ids[:most])) + (", …" if len(ids) > most else "")
    return f'<div class="tok-ids">[{html.escape(shown)}]</div>'



@user_errors
def explore(tokenizer_id: str, text: str, special: bool, whitespace: bool):
    """Tokenize `text`: counts, token spans, byte table, alternative ids, the ids."""
    tokenizer_id, text = _tokenizer_id(tokenizer_id), _text(text)
    result = tokenizer_registry.tokenize(tokenizer_id, text, bool(special), max_tokens=RENDER_LIMIT)
    return (
        counts_html(result),
        token_html.tokenization_html(result, bool(whitespace), RENDER_LIMIT),
        token_html.bytes_table_html(result),
        alternatives_html(tokenizer_id, text),
        result.ids,
    )


def tokens_data(tokenizer_id: str, text: str, special: bool, fmt: str):
    """Every token of the text (ids, texts, exact bytes, spans) as CSV or JSON text."""
    result = tokenizer_registry.tokenize(_tokenizer_id(tokenizer_id), _text(text), bool(special),
                                 max_tokens=exports.MAX_TOKEN_ROWS)
    return exports.export(exports.tokenization_table(result), fmt)


@user_errors
def compare(tokenizer_ids: list[str], text: str, special: bool, whitespace: bool):
    """Up to four tokenizers on one text: a bar chart and one token view each."""
    if isinstance(tokenizer_ids, str):
        tokenizer_ids = [tokenizer_ids]
    if tokenizer_ids is not None and not isinstance(tokenizer_ids, (list, tuple)):
        raise PlaygroundError("Choose one to four tokenizers to compare.")
    tokenizer_ids = [_tokenizer_id(t) for t in list(tokenizer_ids or [])[:4]]
    if not tokenizer_ids:
        raise PlaygroundError("Choose one to four tokenizers to compare.")
    text = _text(text)
    results = []
    with _time_limit("Comparing", "Compare fewer tokenizers or a shorter text."):
        for t in tokenizer_ids:
            limits.check_deadline()
            results.append(tokenizer_registry.tokenize(t, text, bool(special), max_tokens=COMPARE_LIMIT))
    columns = "".join(
        f'<div class="tok-col"><h4>{html.escape(r.tokenizer_id)}: {r.num_tokens:,} tokens</h4>'
        + token_html.tokenization_html(r, bool(whitespace), COMPARE_LIMIT, show_ids=False) + "</div>"
        for r in results
    )
    return token_plots.comparison_figure(results), f'<div class="tok-cols">{columns}</div>'


@user_errors
def decode(tokenizer_id: str, ids_text: str):
    """Ids (comma or space separated) back to text, piece by piece."""
    ids_text = _text(ids_text, "The list of ids")
    tokenizer = tokenizer_registry.get_tokenizer(_tokenizer_id(tokenizer_id))
    ids = tokenizer_registry.parse_ids(ids_text, tokenizer)
    if len(ids) > MAX_DECODE_IDS:
        raise PlaygroundError(f"Decode at most {MAX_DECODE_IDS:,} ids at a time (got {len(ids):,}).")
    result = tokenizer_registry.decode_ids(tokenizer.id, ids)
    note = ""
    if len(result.pieces) > RENDER_LIMIT:
        note = token_html.note_html(f"Drawing the first {RENDER_LIMIT:,} of {len(result.pieces):,} ids one by one; "
                                    "the text above is decoded from all of them.")
    replaced = sorted(set(getattr(tokenizer, "replaced_ids", ())) & set(result.ids))
    if replaced:
        note += token_html.note_html(
            f"The engine's /detokenize sent id{'s' if len(replaced) > 1 else ''} {', '.join(map(str, replaced[:20]))} "
            "as text with U+FFFD in place of bytes that are not UTF-8 on their own: their exact bytes are not "
            "known (a text tokenized above gives every token's exact bytes).")
    count = len(result.ids)
    return (f"<p><b>{count:,} {'id decodes' if count == 1 else 'ids decode'} to</b> "
            f"(with {html.escape(tokenizer.id)}):</p>"
            f'<pre class="tok-decoded">{html.escape(result.text)}</pre>'
            + note + token_html.pieces_html(result.pieces[:RENDER_LIMIT]))


@user_errors
def ids_to_decode(tokenizer_id: str, text: str, special: bool):
    """The Decode box refilled for the current tokenizer: the first `DECODE_SAMPLE` ids of the text
    under it, and those ids decoded, so the box never holds another tokenizer's ids."""
    tokenizer_id, text = _tokenizer_id(tokenizer_id), _text(text)
    ids = tokenizer_registry.get_tokenizer(tokenizer_id).encode(text, bool(special))[:DECODE_SAMPLE]
    ids_text = ", ".join(map(str, ids))
    return ids_text, decode(tokenizer_id, ids_text)


def apply_preset(name: str):
    preset = PRESETS_BY_NAME[name]
    return preset.tokenizer, preset.text, list(preset.compare)


# -- BPE lab


def _bpe_view(training: bpe.BPETraining, text: str, step: int, note: str = "") -> str:
    """The merges up to `step` and the start of the training text encoded with them (`note`: a cut)."""
    merges = training.merges[:step]
    preview = text[:PREVIEW_CHARS]
    ids = bpe.encode(preview, merges, training.pattern)
    vocab = bpe.vocabulary(merges)
    result = tokenizer_registry.build_result(f"BPE ({step} merges)", preview, ids, [vocab[i] for i in ids])
    recent = training.merges[max(0, step - 8):step]
    rows = "".join(
        f"<tr><td>{m.new_id - 255}</td><td>{m.pair[0]} + {m.pair[1]}</td><td>{m.new_id}</td>"
        f"<td>{m.count:,}</td><td class=\"tok-cell\">{html.escape(visible_whitespace(display_text(m.token)))}</td></tr>"
        for m in reversed(recent)
    )
    length = training.lengths[step] if step < len(training.lengths) else training.lengths[-1]
    clipped = f" (first {PREVIEW_CHARS:,} characters)" if len(text) > PREVIEW_CHARS else ""
    return (
        (token_html.note_html(note) if note else "")
        + f'<div class="tok-counts">After <b>{step}</b> of {len(training.merges)} merges: the training text is '
        f"<b>{length:,}</b> tokens (from {training.lengths[0]:,} bytes), vocabulary {256 + step:,}.</div>"
        '<table class="tok-bytes"><thead><tr><th>merge</th><th>pair</th><th>new id</th><th>count</th>'
        f"<th>new token</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p>Training text{clipped} with these merges: {result.num_tokens:,} tokens</p>"
        + token_html.tokenization_html(result, False, RENDER_LIMIT, show_ids=False)
    )


def _training_text(source: str, own_text: str, explore_text: str) -> str:
    """The training text: the bundled corpus (a fixed file: users never name a path), or typed text."""
    if source == "Bundled corpus":
        return CORPUS.read_text(encoding="utf-8")
    if source == "The text above":
        return _text(explore_text, "The training text")
    return _text(own_text, "The training text")


@user_errors
def bpe_train(source: str, own_text: str, explore_text: str, merges: int, pattern: str):
    """Train BPE; returns the session state, the curve, the step slider and the view at the last merge."""
    text = _training_text(source, own_text, explore_text)
    if not text:
        raise PlaygroundError("The training text is empty: paste some text or choose the bundled corpus.")
    text, note = _cut(text, BPE_TRAIN_BYTES, "training")  # lone surrogates: a message
    with _time_limit("BPE training", "Try fewer merges."):
        training = bpe.train(text, clamp_int(merges, "Merges", 1, MAX_MERGES, default=500), str(pattern))
    step = len(training.merges)
    state = {"training": training, "text": text, "note": note}
    title = f"BPE on {len(text.encode('utf-8')):,} bytes, pattern {pattern}"
    return (state, token_plots.bpe_curve_figure(training.lengths, step, title),
            gr.Slider(minimum=0, maximum=max(step, 1), value=step, step=1, interactive=step > 0),
            _bpe_view(training, text, step, note))


@user_errors
def bpe_step(state: dict | None, step: int):
    if not state:
        raise PlaygroundError(TRAIN_FIRST)
    training = state["training"]
    step = clamp_int(step, "Merges shown", 0, len(training.merges), default=0)
    return (token_plots.bpe_curve_figure(training.lengths, step, f"pattern {training.pattern}"),
            _bpe_view(training, state["text"], step, state.get("note", "")))


@user_errors
def bpe_encode(state: dict | None, step: int, text: str):
    """New text tokenized with the first `step` learned merges."""
    if not state:
        raise PlaygroundError(TRAIN_FIRST)
    training = state["training"]
    merges = training.merges[: clamp_int(step, "Merges shown", 0, len(training.merges), default=0)]
    text, note = _cut(_text(text), BPE_ENCODE_BYTES, "encoding")
    with _time_limit("Encoding", "Try a shorter text or fewer merges."):
        ids = bpe.encode(text, merges, training.pattern)
    vocab = bpe.vocabulary(merges)
    result = tokenizer_registry.build_result(f"BPE ({len(merges)} merges)", text, ids, [vocab[i] for i in ids],
                                     max_tokens=RENDER_LIMIT)
    return ((token_html.note_html(note) if note else "") + counts_html(result)
            + token_html.tokenization_html(result, False, RENDER_LIMIT))


# ---------------------------------------------------------------------------------------------
# Layout


def _token_view(**kwargs) -> gr.HTML:
    return gr.HTML(css_template=token_html.TOKEN_CSS + EXTRA_CSS, js_on_load=token_html.HOVER_JS, **kwargs)


EXTRA_CSS = """
.tok-counts { font-size: 1.3rem; margin: 4px 0 8px; }
.tok-count-id { color: #666; font-size: 1rem; }
.tok-cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
.tok-col h4 { margin: 0 0 6px; font-size: 1.2rem; }
.tok-decoded { font-size: 1.2rem; white-space: pre-wrap; font-family: MONO_FONTS; }
""".replace("MONO_FONTS", token_html.MONO_FONTS)


def warm_up() -> threading.Thread:
    """Load the packaged tokenizers in the background, so the first visitor does not wait for them."""

    def load_all():
        for name in ("llama-3", *tokenizer_registry.TIKTOKEN_IDS):
            try:
                tokenizer_registry.get_tokenizer(name)
            except PlaygroundError:
                pass  # shown to the user when chosen

    thread = threading.Thread(target=load_all, name="tokenizer-warm-up", daemon=True)
    thread.start()
    return thread


def build() -> link_wiring.TabLink:
    """The tab's content; call inside `with gr.Tab("Tokenizer"):`."""
    warm_up()
    choices = tokenizer_choices()
    first = PRESETS[0]
    gr.Markdown("Type or paste text. Every coloured span is one token; hover a token to see its id and bytes. "
                "Tokens that share one character (a split emoji or CJK character) are outlined together.")
    with gr.Row():
        tokenizer = gr.Dropdown(choices, value=first.tokenizer, label="Tokenizer", scale=3, elem_id="tok-tokenizer")
        special = gr.Checkbox(False, label="Add special tokens (BOS/EOS, as the model does)", scale=2)
        whitespace = gr.Checkbox(False, label="Show whitespace (␣ → ↵)", scale=2)
    with gr.Row():
        preset_buttons = [gr.Button(p.name, size="sm") for p in PRESETS]
    text = gr.Textbox(first.text, lines=5, max_lines=16, label="Text", elem_id="tok-text")
    counts = _token_view(elem_id="tok-counts", label="Counts")
    view = _token_view(elem_id="tok-view", label="Tokens")
    data_downloads("Download the tokens", tokens_data, [tokenizer, text, special], "tokens", "tok-data")
    with gr.Accordion("Bytes of every token", open=False) as bytes_box:
        byte_view = _token_view(elem_id="tok-bytes", label="Bytes")
    with gr.Accordion("Not one-to-one: other id sequences that decode to the same text", open=False) as alt_box:
        alt_view = _token_view(elem_id="tok-alternatives", label="Other id sequences")
    with gr.Accordion("Ids", open=False):
        ids_json = gr.JSON(label="ids")

    gr.Markdown("### Compare tokenizers")
    with gr.Row():
        compare_ids = gr.Dropdown(choices, value=list(first.compare), multiselect=True, max_choices=4,
                                  label="Up to four tokenizers", scale=4)
        compare_button = gr.Button("Compare", variant="primary", scale=1)
    compare_plot = gr.Plot(label="Token counts", elem_id="tok-compare-plot")
    compare_view = _token_view(elem_id="tok-compare", label="Compared tokens")

    gr.Markdown("### Decode ids")
    with gr.Row():
        ids_text = gr.Textbox(", ".join(map(str, [32, 8415, 574, 30608])), label="Ids (comma or space separated), "
                              "decoded with the tokenizer chosen above", scale=4, elem_id="tok-decode-ids")
        decode_button = gr.Button("Decode", scale=1)
    decoded = _token_view(elem_id="tok-decoded", label="Decoded")

    gr.Markdown("### Train BPE (the lecture's algorithm)")
    bpe_state = gr.State(None)
    with gr.Row():
        source = gr.Radio(["Bundled corpus", "The text above", "My own text"], value="Bundled corpus",
                          label="Training text (bundled: Pride and Prejudice, chapters I-IX, 76 KB)", scale=3)
        pattern = gr.Radio(["none", "gpt2", "gpt4"], value="gpt2", label="Regex pre-splitting", scale=2)
        merges = gr.Slider(1, 2000, value=500, step=1, label="Merges", scale=2)
    own_text = gr.Textbox(lines=3, label="My own training text", visible=True)
    train_button = gr.Button("Train BPE", variant="primary", elem_id="tok-bpe-train")
    step = gr.Slider(0, STEP_SLIDER_MAX, value=0, step=1, label="Show the vocabulary after this many merges",
                     interactive=False)
    curve = gr.Plot(label="Sequence length against merges", elem_id="tok-bpe-curve")
    bpe_view = _token_view(elem_id="tok-bpe", label="Merges")
    with gr.Row():
        new_text = gr.Textbox("The cat in the hat sat in a chair.", label="New text to encode with the learned merges",
                              scale=4)
        encode_button = gr.Button("Encode", scale=1)
    encoded = _token_view(elem_id="tok-bpe-encoded", label="Encoded")

    # Events
    explore_io = dict(fn=explore, inputs=[tokenizer, text, special, whitespace],
                      outputs=[counts, view, byte_view, alt_view, ids_json])
    compare_io = dict(fn=compare, inputs=[compare_ids, text, special, whitespace], outputs=[compare_plot, compare_view])
    # `change` covers typing, pasting (which fires no `input` event in Gradio 6), presets and the URL.
    gr.on([text.change, tokenizer.change, special.change, whitespace.change], **explore_io, api_name="tokenize",
          trigger_mode="always_last", show_progress="hidden")
    gr.on([compare_button.click, compare_ids.change, text.change, special.change], **compare_io,
          api_name="compare_tokenizers", trigger_mode="always_last", show_progress="hidden")
    refill_io = dict(fn=ids_to_decode, inputs=[tokenizer, text, special], outputs=[ids_text, decoded],
                     api_visibility="private", show_progress="hidden")
    for button, preset in zip(preset_buttons, PRESETS):
        button.click(functools.partial(apply_preset, preset.name), outputs=[tokenizer, text, compare_ids],
                     api_visibility="private").then(**refill_io)
    gr.on([tokenizer.change, special.change], **refill_io, trigger_mode="always_last")
    decode_button.click(decode, [tokenizer, ids_text], decoded, api_name="decode_ids")
    # The tab's first visit (or a link) presses this hidden button: the defaults, explored and compared.
    opening = gr.Button("open", visible="hidden", elem_id="tok-open")
    opening.click(**explore_io, api_visibility="private").then(**compare_io, api_visibility="private")

    train_button.click(bpe_train, [source, own_text, text, merges, pattern], [bpe_state, curve, step, bpe_view],
                       api_name="bpe_train")
    step.input(bpe_step, [bpe_state, step], [curve, bpe_view], api_name="bpe_step", trigger_mode="always_last",
               show_progress="hidden")
    encode_button.click(bpe_encode, [bpe_state, step, new_text], encoded, api_name="bpe_encode")
    return link_wiring.TabLink(
        "tokenizer", {"tokenizer": tokenizer, "text": text, "compare": compare_ids, "special": special,
                      "whitespace": whitespace, "merges": merges, "pattern": pattern},
        actions={"show": [("tok-open", "#tok-view .tok")],
                 "bpe": [("tok-open", "#tok-view .tok"), ("tok-bpe-train", "#tok-bpe-curve .js-plotly-plot")]},
        default_run="show",
        views={"tokens": "tok-counts", "bytes": ("tok-bytes", bytes_box), "alternatives": ("tok-alternatives", alt_box),
               "compare": "tok-compare-plot", "bpe": "tok-bpe-curve"},
        default_view="tokens", aliases={"preset": preset_query})


def preset_query(name: str) -> dict | None:
    """A lecture preset's tokenizer, text and compared tokenizers, for a link's `preset=` (its slug)."""
    for preset in PRESETS:
        if link_query.slug(preset.name) == name:
            return {"tokenizer": preset.tokenizer, "text": preset.text, "compare": ",".join(preset.compare)}
    return None
