"""The Tokenizer tab's Decode box (issue 14.3): its wording, and ids that follow the tokenizer.

Handlers are called directly, as Gradio calls them, on the real tokenizer_registry.
"""

from __future__ import annotations

import html

from playground import tokenizer_registry
from playground.ui import tokenizer_tab as tab
from playground.ui.tokenizer_presets import PRESETS


def test_the_decode_header_agrees_in_number():
    assert "<b>1 id decodes to</b> (with cl100k_base)" in tab.decode("cl100k_base", "15339")
    assert "<b>2 ids decode to</b> (with cl100k_base)" in tab.decode("cl100k_base", "15339, 1917")
    assert "<b>0 ids decode to</b>" in tab.decode("cl100k_base", "")
    assert "1,234 ids decode to" in tab.decode("bytes", ", ".join(["65"] * 1234))


def test_the_decode_box_is_refilled_with_the_current_tokenizers_ids():
    for preset in PRESETS:
        ids_text, view = tab.ids_to_decode(preset.tokenizer, preset.text, False)
        expected = tokenizer_registry.get_tokenizer(preset.tokenizer).encode(preset.text)[:tab.DECODE_SAMPLE]
        assert ids_text == ", ".join(map(str, expected)), preset.name
        decoded = tokenizer_registry.decode_ids(preset.tokenizer, expected).text
        assert preset.text.startswith(decoded) or "<0x" in decoded, preset.name  # a cut character shows bytes
        assert f"(with {preset.tokenizer})" in view and html.escape(decoded) in view


def test_the_refilled_ids_include_bos_when_special_tokens_are_on():
    ids_text, _ = tab.ids_to_decode("llama-3", "A cat", True)
    assert ids_text == "128000, 32, 8415"
    assert tab.ids_to_decode("llama-3", "A cat", False)[0] == "32, 8415"
