"""Encoder-only models (playground.inside.encoder_only): the lecture's BERT input slide on a real
WordPiece tokenizer trained on the bundled book, its table and its masks."""

from __future__ import annotations

import pytest
import torch

from playground.errors import PlaygroundError
from playground.html import inside as text_views
from playground.inside import encoder_only
from playground.plots import inside as plots


def test_the_slides_pair_reads_as_on_the_slide():
    pair = encoder_only.encode_pair(*encoder_only.SLIDE_PAIR)
    assert pair.tokens[0] == "[CLS]" and pair.tokens[-1] == "[SEP]" and pair.tokens.count("[SEP]") == 2
    assert ("play", "##ing") in zip(pair.tokens, pair.tokens[1:])  # the slide's WordPiece split
    first_sep = pair.tokens.index("[SEP]")
    assert pair.segments == tuple([0] * (first_sep + 1) + [1] * (len(pair.tokens) - first_sep - 1))
    assert pair.positions == tuple(range(len(pair.tokens)))
    assert "##ing" in pair.continued and all(t.startswith("##") for t in pair.continued)
    tokenizer = encoder_only.wordpiece()
    assert list(pair.ids) == [tokenizer.token_to_id(t) for t in pair.tokens]
    assert pair.vocab_size == encoder_only.VOCAB_SIZE


def test_the_tokenizer_is_wordpiece_lower_cased_with_berts_special_tokens():
    tokenizer = encoder_only.wordpiece()
    assert type(tokenizer.model).__name__ == "WordPiece"
    assert tokenizer.encode("Playing", add_special_tokens=False).tokens == tokenizer.encode(
        "playing", add_special_tokens=False).tokens
    assert all(tokenizer.token_to_id(t) is not None for t in encoder_only.SPECIAL)


@pytest.mark.parametrize("first, second", [("", "he likes playing"), ("my dog", "  "), ("x" * 121, "y")])
def test_empty_or_long_sentences_are_refused_in_words(first, second):
    with pytest.raises(PlaygroundError, match="sentences|characters"):
        encoder_only.encode_pair(first, second)


def test_the_masks_are_bidirectional_and_causal():
    masks = encoder_only.masks(4)
    assert torch.equal(masks.bidirectional, torch.ones(4, 4, dtype=torch.int64))
    assert torch.equal(masks.causal, torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]))


def test_the_table_names_the_three_rows_of_each_token_and_escapes_text():
    assert encoder_only.encode_pair("<b>my</b> dog", "x").tokens[1] == "[UNK]"  # the book has no "<"
    odd = encoder_only.EncodedPair(("[CLS]", "<b>x", "[SEP]", "y&", "[SEP]"), (2, 7, 3, 9, 3), (0, 0, 0, 1, 1), 1500)
    table = text_views.encoder_table_html(odd)
    assert "<b>x" not in table and "&lt;b&gt;x" in table and "y&amp;" in table
    pair = encoder_only.encode_pair(*encoder_only.SLIDE_PAIR)
    table = text_views.encoder_table_html(pair)
    assert table.count("E<sub>A</sub>") == pair.segments.count(0)
    assert table.count("E<sub>B</sub>") == pair.segments.count(1)
    assert f"E<sub>{len(pair.tokens) - 1}</sub>" in table
    note = text_views.encoder_note_html(encoder_only.encode_pair(*encoder_only.SLIDE_PAIR))
    assert "<code>##ing</code>" in note and "1,500 entries" in note and "segment B from position 9" in note


def test_the_masks_chart_draws_both_on_the_same_tokens():
    pair = encoder_only.encode_pair(*encoder_only.SLIDE_PAIR)
    spec = plots.encoder_masks_spec(pair, encoder_only.masks(len(pair.tokens)))
    encoder, decoder = spec["data"]
    assert encoder["x"] == decoder["x"] == plots.position_labels(pair.tokens)
    assert sum(map(sum, encoder["z"])) == len(pair.tokens) ** 2
    assert sum(map(sum, decoder["z"])) == len(pair.tokens) * (len(pair.tokens) + 1) // 2
