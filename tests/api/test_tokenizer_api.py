"""The Tokenizer tab through gradio_client against the real app (fixtures in tests/conftest.py)."""

from __future__ import annotations

import html
import re

import pytest

from playground.ui.tokenizer_presets import LECTURE_CAT, LECTURE_CAT_IDS


def count_of(counts_html: str) -> int:
    return int(re.search(r'data-count="(\d+)"', counts_html).group(1))


def test_tokenize_endpoint(client):
    counts, view, byte_view, alternatives, ids = client.predict(
        "cl100k_base", "hello world", False, False, api_name="/tokenize")
    assert ids == [15339, 1917]
    assert count_of(counts) == 2
    assert 'data-id="1917"' in view and "20 77 6f 72 6c 64" in byte_view
    assert "decodes to the same text" in alternatives


def test_tokenize_reproduces_the_lecture_demo(client):
    counts, *_, ids = client.predict("llama-3", LECTURE_CAT, False, False, api_name="/tokenize")
    assert ids == LECTURE_CAT_IDS and count_of(counts) == 33


def test_token_text_is_escaped(client):
    _, view, byte_view, _, _ = client.predict("r50k_base", "<script>alert(1)</script>", False, False,
                                              api_name="/tokenize")
    assert "<script>" not in view and "<script>" not in byte_view
    assert "&lt;</span>" in view  # "<" is its own token, drawn escaped


def test_special_tokens_toggle(client):
    *_, ids = client.predict("llama-3", "hi", True, False, api_name="/tokenize")
    assert ids[0] == 128000


def test_compare_endpoint(client):
    plot, columns = client.predict(["r50k_base", "cl100k_base", "bytes"], "    indented code", False, False,
                                   api_name="/compare_tokenizers")
    assert "plotly" in str(plot)
    for name in ("r50k_base", "cl100k_base", "bytes"):
        assert f"{name}: " in columns
    assert "bytes: 17 tokens" in columns


def test_decode_endpoint(client):
    out = client.predict("llama-3", ", ".join(map(str, LECTURE_CAT_IDS)), api_name="/decode_ids")
    assert html.escape(LECTURE_CAT) in out


def test_bad_ids_give_a_message_not_a_traceback(client):
    with pytest.raises(Exception, match="not a token id"):
        client.predict("cl100k_base", "12, twelve", api_name="/decode_ids")


def test_unknown_tokenizer_gives_the_valid_ids(client):
    with pytest.raises(Exception):
        client.predict("gpt-5", "hello", False, False, api_name="/tokenize")


def test_bpe_train_endpoint(client):
    curve, step, view = client.predict("Bundled corpus", "", "", 50, "gpt2", api_name="/bpe_train")
    assert "After <b>50</b> of 50 merges" in view
    assert "plotly" in str(curve)
