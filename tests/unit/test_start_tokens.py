"""What a model reads for a plain text (`playground.start_tokens`), on the tiny random model's
SmolLM2 tokenizer (which adds no start token) and a byte-level explorer tokenizer with a BOS.

Checked: the three modes; an empty text reads the document start in every mode; an unknown mode
is a message naming the valid ones; the explorer's `Tokenizer` interface (an engine's /tokenize)
gets the same answers as a Hugging Face tokenizer; the lab shows the start tokens as chips, escaped.
"""

from __future__ import annotations

import pytest

from playground import lab, start_tokens
from playground.errors import PlaygroundError
from playground.html.generated import generated_html
from playground.models import load_model
from playground.sampling import SamplingSettings
from playground.tokenizer_base import Tokenizer

MODEL = "tiny-random"


class BytesWithBos(Tokenizer):
    """UTF-8 bytes as ids, and a BOS (256) put in front when special tokens are added."""

    id, description, kind, vocab_size, bos_id, eos_id = "bytes-bos", "test", "bytes", 258, 256, 257

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return ([256] if add_special_tokens else []) + list(text.encode())

    def _bytes_of(self, token_id: int) -> bytes:
        return {256: b"<s>", 257: b"</s>"}.get(token_id, bytes([token_id]) if token_id < 256 else b"")


def test_the_modes_on_a_tokenizer_without_a_start_token(monkeypatch):
    tokenizer = load_model(MODEL).tokenizer
    own = start_tokens.own_ids(tokenizer, "Hello there")
    separator = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert start_tokens.text_ids(tokenizer, "Hello there").ids == own  # default: what the tokenizer adds
    assert start_tokens.text_ids(tokenizer, "Hello there", "always").ids == [separator, *own]
    assert start_tokens.text_ids(tokenizer, "Hello there", "none").ids == own
    for mode in start_tokens.MODES:
        assert start_tokens.text_ids(tokenizer, "", mode).ids == [separator]  # a model needs one token
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", "always")
    assert start_tokens.text_ids(tokenizer, "Hello there").start == (separator,)
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", "sometimes")
    with pytest.raises(PlaygroundError, match="'sometimes' is not one of model, always, none"):
        start_tokens.text_ids(tokenizer, "Hello there")


def test_the_explorer_interface_gets_the_same_rules():
    tokenizer = BytesWithBos()
    assert start_tokens.added_start_ids(tokenizer) == [256]
    assert start_tokens.text_ids(tokenizer, "hi").ids == [256, 104, 105]
    assert start_tokens.text_ids(tokenizer, "hi", "none").ids == [104, 105]
    assert start_tokens.text_ids(tokenizer, "", "none").ids == [256]


def test_the_lab_shows_the_start_tokens_as_escaped_chips(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", "always")
    session = lab.open_session(MODEL, "Hello", False, 64)
    view = lab.view(session, SamplingSettings())
    assert view.start_labels == ("<|endoftext|>",)
    html = generated_html(view.shown_prompt, [], start=view.start_labels)
    assert '<span class="gen-start"' in html and "&lt;|endoftext|&gt;" in html and "<|endoftext|>" not in html
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", "model")
    assert lab.view(lab.open_session(MODEL, "Hello", False, 64), SamplingSettings()).start_labels == ()
