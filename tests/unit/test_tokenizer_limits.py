"""The Tokenizer tab's bounds on user-sized work, and its messages (issue 13, item 6).

Handlers are called directly (as Gradio calls them); each test failed before its fix.
"""

from __future__ import annotations

import pytest

from playground import limits, models, tokenizer_registry
from playground.errors import PlaygroundError, UnknownIdError
from playground.ui import tokenizer_tab as tab
from tests.conftest import handler_outcome


@pytest.fixture
def no_time(monkeypatch):
    """Every handler's request limit is already over when it starts."""
    monkeypatch.setattr(limits, "DEFAULT_REQUEST_SECONDS", 0.0)


def test_a_5000_digit_id_is_not_a_token_id():
    tokenizer = tokenizer_registry.get_tokenizer("cl100k_base")
    with pytest.raises(PlaygroundError, match=r"is not a token id of cl100k_base \(0 to 100"):
        tokenizer_registry.parse_ids("1, " + "9" * 5000, tokenizer)
    with pytest.raises(PlaygroundError, match="is not a token id"):
        tokenizer_registry.decode_ids("cl100k_base", "7" * 5000)
    assert tokenizer_registry.parse_ids("0000000000000000000042", tokenizer) == [42]
    assert "is not a token id of cl100k_base" in handler_outcome(tab.decode, "cl100k_base", "9" * 5000)


def test_bpe_training_stops_at_the_time_limit_with_a_message(no_time):
    message = handler_outcome(tab.bpe_train, "Bundled corpus", "", "", 2000, "none")
    assert "time limit" in message and "merges" in message


def test_compare_checks_the_time_limit_between_tokenizers(no_time):
    assert "time limit" in handler_outcome(tab.compare, ["cl100k_base", "bytes"], "hello " * 1000, False, False)


def test_bpe_encode_stops_at_the_time_limit(no_time):
    state = {"training": tab.bpe.train("the cat sat on the mat " * 50, 50), "text": "x", "note": ""}
    assert "time limit" in handler_outcome(tab.bpe_encode, state, 50, "the cat sat " * 500)


def test_the_step_slider_accepts_any_merge_count_before_training():
    # Gradio checks the slider's range before the handler runs: before training the range must
    # cover every merge count, so the handler (not "Value 5 is greater than maximum value 1") answers.
    assert "Train BPE first" in handler_outcome(tab.bpe_step, None, 5)
    assert "Train BPE first" in handler_outcome(tab.bpe_encode, None, 5, "the cat")
    assert tab.STEP_SLIDER_MAX >= tab.MAX_MERGES


def test_o200k_on_a_million_spaces_is_a_message_not_a_crash():
    with pytest.raises(PlaygroundError, match="o200k_base"):
        tokenizer_registry.tokenize("o200k_base", " " * 1_000_000)


def test_unknown_ids_leave_out_hidden_models_which_stay_loadable():
    with pytest.raises(UnknownIdError) as info:
        models.get_spec("gpt-17")
    assert "gemma-3-270m" in str(info.value)
    assert "random:" not in str(info.value) and "tiny-random" not in str(info.value)
    assert models.get_spec("random:smollm2-135m").hidden
    with pytest.raises(UnknownIdError) as info:
        tokenizer_registry.get_tokenizer("gpt-5")
    assert "cl100k_base" in str(info.value) and "random:" not in str(info.value)
    tokenizer_registry._check_id("random:smollm2-135m")  # still accepted by id


def test_bpe_texts_are_cut_by_utf8_bytes_at_a_character_boundary():
    text = "🙂" * 60_000  # 60,000 characters, 240,000 bytes: over the training cap in bytes, not in characters
    state, _, _, view = tab.bpe_train("My own text", text, "", 20, "none")
    assert state["text"] == "🙂" * (tab.BPE_TRAIN_BYTES // 4)
    assert f"cut to the first {tab.BPE_TRAIN_BYTES // 4:,} characters" in view and "for training" in view
    encoded = tab.bpe_encode(state, 20, "🙂" * 2_600 + "x")
    assert "cut to the first 2,500 characters" in encoded and "for encoding" in encoded
    assert "cut to" not in tab.bpe_encode(state, 20, "🙂" * 2_500)


def test_the_cli_names_no_hidden_model_for_an_unknown_tokenizer(capsys):
    from playground.__main__ import main as cli_main

    assert cli_main(["tokenize", "--tokenizer", "gpt-5", "hello"]) == 2
    message = capsys.readouterr().err
    assert "Valid ids" in message and "smollm2-135m-instruct" in message
    assert "random:" not in message and "tiny-random" not in message
