"""Odd text through every tab's handlers with the real packaged models: a result or a message.

Empty, whitespace only, NUL and control characters, lone surrogates, right-to-left text,
combining marks, 4-byte emoji and a 1 MB paste go into the tokenizer tab, the sampling lab, beam
search and the base-vs-chat tab (prompt, conversation, template view, teacher forcing). Each
call must return or raise a gr.Error with a real message: never the generic internal error.
Runs are kept short (2 beams x 2 tokens, 2 new tokens per chat column).

The 1 MB paste is checked on the chat tab's prompt budget *before* generation (tokenization only):
letting it reach the model would run a 32k-token Gemma forward pass (minutes, many GB).
"""

from __future__ import annotations

import pytest

from tests.conftest import handler_outcome

BASE, CHAT = "gemma-3-270m", "smollm2-135m-instruct"
RULES = (1.0, 0, 0.9, 0.0, "transformers")
ODD = {
    "empty": "", "whitespace": "  \n\t ", "nul-control": "a\x00b\x01\x07\x1b[0m\x7f end",
    "lone-surrogate": "a\ud800b", "rtl": "שלום עולם — مرحبا", "combining": "e\u0301\u0308 Z\u0351\u0352",
    "emoji": "👩‍👩‍👧‍👦 🙂 🇫🇷",
}
MEGABYTE = "Lorem ipsum 🙂 dolor sit amet. " * 34_000


@pytest.mark.parametrize("name", [*ODD, "megabyte"])
def test_sampling_lab(name):
    from playground.ui import sampling_tab

    text = MEGABYTE if name == "megabyte" else ODD[name]
    out = sampling_tab.show_distribution(CHAT, True, text, 10, False, *RULES)
    assert len(out[5]["tokens"]) == 10
    assert handler_outcome(sampling_tab.generate_n, out[0], 2, "", 10, False, *RULES, 1) == "ok"
    if name == "megabyte":
        assert "cut from the left" in out[5]["prompt_note"]


@pytest.mark.parametrize("name", [*ODD, "megabyte"])
def test_tokenizer_tab(name):
    from playground.ui import tokenizer_tab

    text = MEGABYTE if name == "megabyte" else ODD[name]
    for tokenizer in ("llama-3", BASE, CHAT, "o200k_base"):
        assert handler_outcome(tokenizer_tab.explore, tokenizer, text, True, True) in ("ok", "The text contains an unpaired "
                                                                             "surrogate character, which is not valid Unicode.")


@pytest.mark.parametrize("name", [*ODD, "megabyte"])
def test_beam_search(name):
    from playground.ui import beam_tab

    text = MEGABYTE if name == "megabyte" else ODD[name]
    for model in (CHAT, BASE):
        handler_outcome(beam_tab.run_search, text, model, False, 2, 2, 1.0, "false", 1, True, True, 1, False)


@pytest.mark.parametrize("name", ODD)
def test_chat_tab(name):
    from playground.ui import chat_tab

    text = ODD[name]
    handler_outcome(chat_tab.side_by_side, text, BASE, CHAT, 2, *RULES, 1)
    handler_outcome(chat_tab.converse, text, [], text, CHAT, BASE, "conversation_text", 2, *RULES, 1)
    handler_outcome(chat_tab.template_views, [{"role": "user", "content": text}], text, CHAT, True)
    handler_outcome(chat_tab.teacher_forcing, text, [], BASE, CHAT)


def test_chat_tab_megabyte_paste_is_cut_or_refused_before_the_model():
    """A 1 MB prompt must not reach a model call whole (Gemma's context is 32k tokens)."""
    from playground.errors import PlaygroundError
    from playground.side_by_side import contender

    for model, mode in ((BASE, "raw"), (CHAT, "template")):
        try:
            column = contender(model, mode, MEGABYTE)
        except PlaygroundError:
            continue
        assert len(column.prompt_ids) <= 8192, f"{model} ({mode}) would read {len(column.prompt_ids)} prompt tokens"
    from playground.ui import chat_tab

    handler_outcome(chat_tab.teacher_forcing, MEGABYTE, [], BASE, CHAT)
    handler_outcome(chat_tab.template_views, [{"role": "user", "content": MEGABYTE}], "", CHAT, True)
