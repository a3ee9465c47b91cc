"""Token bytes and their display: split UTF-8 as <0xNN>, never U+FFFD; visible whitespace."""

from __future__ import annotations

import pytest

from playground import token_text, tokenizer_registry

FISH = "🐟".encode("utf-8")  # f0 9f 90 9f


def test_valid_utf8_is_shown_as_text():
    assert token_text.display_text("hello 一隻貓".encode()) == "hello 一隻貓"


@pytest.mark.parametrize("data, shown", [
    (FISH[:2], "<0xF0><0x9F>"),
    (FISH[2:], "<0x90><0x9F>"),
    (b" " + FISH[:1], " <0xF0>"),
    ("隻".encode()[:2] + b"x", "<0xE9><0x9A>x"),
    (b"\xff", "<0xFF>"),
])
def test_split_utf8_is_shown_as_bytes(data, shown):
    assert token_text.display_text(data) == shown
    assert "\ufffd" not in token_text.display_text(data)


def test_visible_whitespace():
    assert token_text.visible_whitespace("a b\tc\nd\r") == "a␣b→c↵d␍"


def test_hex_bytes():
    assert token_text.hex_bytes(FISH) == "f09f909f"


def test_token_bytes_of_a_tiktoken_encoding():
    encoding = tokenizer_registry.get_tokenizer("cl100k_base").encoding
    assert token_text.token_bytes(encoding, 15339) == b"hello"
    ids = encoding.encode("🐟")
    assert b"".join(token_text.token_bytes(encoding, i) for i in ids) == FISH
    assert len(ids) > 1 and token_text.display_text(token_text.token_bytes(encoding, ids[-1])).startswith("<0x")


def test_byte_tokenizer_is_the_lecture_v0():
    tokenizer = tokenizer_registry.get_tokenizer("bytes")
    assert tokenizer.vocab_size == 256
    assert tokenizer.encode("a🐟") == [97, 0xF0, 0x9F, 0x90, 0x9F]
    assert tokenizer.decode([0xF0, 0x9F]) == "<0xF0><0x9F>"
    assert tokenizer.decode(list(FISH)) == "🐟"


def test_text_tail_is_one_line_and_says_it_was_cut():
    assert token_text.text_tail("Hi  there\n", 40) == "Hi there"
    assert token_text.text_tail("one\ntwo\tthree four", 10) == "…hree four" and len(token_text.text_tail("x" * 99, 10)) == 10
    assert token_text.text_tail("", 5) == ""
