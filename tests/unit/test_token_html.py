"""Token spans as HTML: escaping, neighbour colours, split-character groups, hover data."""

from __future__ import annotations

import re

from playground import tokenizer_registry
from playground.html import tokens as token_html


def test_generic_spans_escape_everything():
    out = token_html.render_spans([token_html.Span('<script>alert("x")</script>', title='"><img src=x>',
                                                   classes=("tok",), color="#fff", data={"i": 0, "id": '"x'})])
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<img" not in out
    assert 'data-id="&quot;x"' in out


def test_token_text_is_escaped_in_every_view():
    result = tokenizer_registry.tokenize("cl100k_base", "<b>bold</b> & <i>")
    for out in (token_html.tokenization_html(result), token_html.bytes_table_html(result)):
        assert "<b>" not in out and "<i>" not in out
        assert "&lt;" in out


def test_neighbours_always_differ_and_split_characters_share_a_colour():
    result = tokenizer_registry.tokenize("cl100k_base", "aaa bbb 🐟 一隻貓 ccc " * 5)
    colors = token_html.token_colors(result.tokens)
    for left, right, c_left, c_right in zip(result.tokens, result.tokens[1:], colors, colors[1:]):
        if left.group == right.group:
            assert c_left == c_right
        else:
            assert c_left != c_right


def test_split_character_is_one_group_with_byte_notation():
    result = tokenizer_registry.tokenize("cl100k_base", "a 🐟")
    out = token_html.tokenization_html(result)
    group = re.search(r"<span class=\"tok-group\"[^>]*>(.*?)</span></span>", out, re.S).group(0)
    assert "&lt;0xF0&gt;&lt;0x9F&gt;" in group and "\ufffd" not in out


def test_hover_data_links_spans_and_id_list():
    result = tokenizer_registry.tokenize("cl100k_base", "hello world")
    out = token_html.tokenization_html(result)
    assert out.count('data-i="1"') == 2  # the span and its id in the list
    assert 'data-id="1917"' in out


def test_visible_whitespace_keeps_line_breaks():
    result = tokenizer_registry.tokenize("cl100k_base", "a b\nc")
    out = token_html.tokenization_html(result, whitespace_visible=True)
    assert "␣" in out and "↵\n" in out


def test_rendering_is_capped_with_a_note_while_counts_stay_exact():
    text = "word " * 3000
    result = tokenizer_registry.tokenize("cl100k_base", text, max_tokens=100)
    assert result.num_tokens == len(tokenizer_registry.get_tokenizer("cl100k_base").encode(text)) > 100
    assert len(result.tokens) == 100 and result.truncated
    out = token_html.tokenization_html(result, limit=100)
    assert "Showing the first 100 of" in out
    assert out.count('class="tok"') == 100


def test_one_generated_renderer_and_one_colour_scale_for_both_tabs():
    from playground import generation
    from playground.html import chat as chat_html
    from playground.html import generated
    from playground.models import load_model
    from playground.sampling import SamplingSettings

    loaded = load_model("tiny-random")
    evil = loaded.tokenizer.encode("<script>", add_special_tokens=False)[0]
    record = generation.forced_step(generation.Decoder(loaded, [1, 2, 3]), SamplingSettings(), evil)
    page = generated.generated_html("", [record], "<i>stopped</i>", header="<b>model</b> · raw", running=False)
    assert "<script" not in page and "<b>model" not in page and "<i>" not in page and "&lt;" in page
    assert 'data-tokens="1"' in page and "gen-done" in page and "top alternatives" in page
    assert f"background:{generated.probability_color(record.raw_prob)}" in page
    assert re.search(r'class="gen-status">&lt;i&gt;stopped', page)
    assert "gen-running" in generated.generated_html("", [], "Loading…", running=True)
    sampling_lab = generated.generated_html("prompt", [record])  # no run state given: neither class
    assert "gen-running" not in sampling_lab and "gen-done" not in sampling_lab
    # the log scale: improbable tokens are told apart, p <= 0.0001 is red
    assert generated.probability_color(1e-5) == generated.probability_color(1e-4) != generated.probability_color(1e-3)
    assert not hasattr(chat_html, "generated_html") and not hasattr(chat_html, "prob_color")


def test_the_alternatives_view_shows_the_text_and_its_own_ids():
    """The "not one-to-one" demo on one screen: the text and encode(text)'s ids beside the other id
    sequences (in presenter mode the text and the ids view are above the screen)."""
    from playground import tokenizer_registry
    from playground.ui import tokenizer_tab

    text = "<b>strawberry"
    page = tokenizer_tab.alternatives_html("cl100k_base", text)
    canonical = tokenizer_registry.get_tokenizer("cl100k_base").encode(text)
    assert "The text “&lt;b&gt;strawberry” in cl100k_base" in page and "<b>strawberry" not in page
    assert f"<b>encode(text)</b>: {len(canonical)} ids</p><div class=\"tok-ids\">[{', '.join(map(str, canonical))}]" in page
    assert page.count("decodes to the same text ✓") >= 1
