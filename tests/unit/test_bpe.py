"""The BPE trainer against the lecture's slide (a plain recount each merge), and its encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground import bpe
from playground.errors import PlaygroundError

TEXTS = [
    "",
    "a",
    "aaaaa",  # overlapping pairs: the slide merges left to right
    "aaabdaaabac",
    "abcd",  # every pair occurs once: ties go to the first occurrence
    "The cat in the hat sat in a chair. The cat in the hat sat in a chair.",
    "hello hello hello world\n\n  world's end, 1234567 + 89 = ?",
    "一隻貓正在爬樹。一隻貓 🐟🐟🐟",
]


def merges_of(training: bpe.BPETraining) -> list[tuple[tuple[int, int], int]]:
    return [(m.pair, m.count) for m in training.merges]


@pytest.mark.parametrize("pattern", ["none", "gpt2", "gpt4"])
@pytest.mark.parametrize("text", TEXTS)
def test_same_merges_in_same_order_as_the_slide(text, pattern):
    assert merges_of(bpe.train(text, 40, pattern)) == bpe.reference_train(text, 40, pattern)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="ab c\nxé🐟", max_size=80), merges=st.integers(0, 30),
       pattern=st.sampled_from(["none", "gpt2", "gpt4"]))
def test_random_texts_match_the_slide(text, merges, pattern):
    assert merges_of(bpe.train(text, merges, pattern)) == bpe.reference_train(text, merges, pattern)


def test_ties_go_to_the_pair_that_occurs_first():
    training = bpe.train("abcd", 3)
    assert [m.token for m in training.merges] == [b"ab", b"abc", b"abcd"]


def test_overlapping_pair_count_and_left_to_right_replacement():
    training = bpe.train("aaaaa", 1)
    assert training.merges[0].pair == (97, 97) and training.merges[0].count == 4
    assert training.lengths == [5, 3]  # aa aa a


def test_records_new_ids_tokens_and_lengths():
    text = "The cat in the hat sat in a chair. " * 3
    training = bpe.train(text, 25, "gpt2")
    assert [m.new_id for m in training.merges] == list(range(256, 256 + len(training.merges)))
    for m in training.merges:
        assert m.token == training.vocab[m.pair[0]] + training.vocab[m.pair[1]]
    assert training.lengths[0] == len(text.encode())
    assert len(training.lengths) == len(training.merges) + 1
    for m, before, after in zip(training.merges, training.lengths, training.lengths[1:]):
        if m.pair[0] != m.pair[1]:
            assert before - after == m.count  # distinct tokens: occurrences cannot overlap
        else:
            assert 0 < before - after <= m.count


def test_chunks_never_merge_across():
    text = "ab ab ab ab cd cd"
    chunks = bpe.split_chunks(text, "gpt2")
    training = bpe.train(text, 20, "gpt2")
    for m in training.merges:
        assert any(m.token in chunk for chunk in chunks)
    assert not any(b" " in m.token[1:] for m in training.merges)  # a space only starts a chunk
    assert any(b" " in m.token[1:] for m in bpe.train(text, 20, "none").merges)


def test_stops_when_no_pair_is_left():
    training = bpe.train("ab", 10)
    assert len(training.merges) == 1 and training.lengths == [2, 1]


@pytest.mark.parametrize("pattern", ["none", "gpt2", "gpt4"])
def test_encoder_round_trips_new_text(pattern):
    training = bpe.train("the cat sat on the mat; the cat ate the rat. " * 5, 60, pattern)
    for text in ["the cat", "a completely new sentence!", "一隻貓 🐟", "", "   \n\t"]:
        ids = bpe.encode(text, training.merges, pattern)
        assert bpe.decode(ids, training.merges) == text.encode("utf-8")


def test_encoder_uses_the_merges():
    training = bpe.train("the cat sat on the mat; the cat ate the rat. " * 5, 60, "gpt2")
    assert len(bpe.encode("the cat", training.merges, "gpt2")) < len("the cat")
    assert bpe.encode("the cat", [], "gpt2") == list(b"the cat")


def test_encoder_reproduces_the_training_sequence_length():
    text = "the cat sat on the mat; the cat ate the rat. " * 5
    training = bpe.train(text, 30, "gpt2")
    assert len(bpe.encode(text, training.merges, "gpt2")) == training.lengths[-1]


def test_bad_input_is_a_playground_error():
    with pytest.raises(PlaygroundError):
        bpe.train("abc", 5, "gpt5")
    with pytest.raises(PlaygroundError):
        bpe.train("abc", -1)
    with pytest.raises(PlaygroundError):
        bpe.decode([999], [])


def test_training_stops_at_the_request_time_limit():
    from playground import limits

    with limits.deadline(0.0), pytest.raises(limits.RequestTimeout):
        bpe.train("the cat sat on the mat " * 100, 50)


def test_encoding_stops_at_the_request_time_limit():
    from playground import limits

    merges = bpe.train("the cat sat on the mat " * 100, 50).merges
    with limits.deadline(0.0), pytest.raises(limits.RequestTimeout):
        bpe.encode("the cat sat on the mat " * 100, merges)


def test_the_curve_marks_its_merge_with_the_number_on_the_side_with_room():
    """At the last merges the number went right of the marker and was cut at the chart's edge."""
    from playground.plots.tokenizer import bpe_curve_figure

    lengths = [100 - i for i in range(11)]
    assert bpe_curve_figure(lengths, step=10).data[1].textposition == "top left"
    assert bpe_curve_figure(lengths, step=2).data[1].textposition == "top right"
    assert bpe_curve_figure(lengths, step=10).data[1].text == ("90",)
