"""Smaller defects found by probing the hosted app (issue 13, item 6), through the real app.

Each test failed before its fix: a 5,000-digit id to decode was an internal error; anonymous
uploads were stored although no component takes files; the BPE step before training gave Gradio's
"Value 5 is greater than maximum value 1."; user-sized tokenizer-tab work (BPE training and
encoding, decoding) had no cap. (Unknown ids never reach a handler over the API, since Gradio checks
dropdown choices first: that defect's tests are in tests/unit/test_tokenizer_limits.py.)
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from gradio_client import Client

from playground.ui import tokenizer_tab


def message_of(call) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def test_decoding_a_5000_digit_id_says_it_is_not_a_token_id(client):
    message = message_of(lambda: client.predict("cl100k_base", "9" * 5000, api_name="/decode_ids"))
    assert "is not a token id of cl100k_base (0 to 100" in message
    assert "went wrong" not in message and len(message) < 300


def test_uploads_are_refused(app_url):
    boundary = "playground-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"x" * 20_000 + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(app_url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 403
    assert "upload" in info.value.read().decode().lower()


def test_the_page_still_loads_with_uploads_refused(app_url):
    with urllib.request.urlopen(app_url, timeout=30) as response:
        assert response.status == 200


def test_bpe_step_and_encode_before_training_ask_to_train_first(app_url):
    fresh = Client(app_url, verbose=False)  # a session that has not trained
    assert "Train BPE first" in message_of(lambda: fresh.predict(5, api_name="/bpe_step"))
    assert "Train BPE first" in message_of(lambda: fresh.predict(5, "the cat", api_name="/bpe_encode"))


def test_bpe_training_text_is_cut_with_a_note(client):
    text = "the quick brown fox jumps over the lazy dog. " * 6000  # 270,000 characters
    assert len(text) > tokenizer_tab.BPE_TRAIN_BYTES
    start = time.monotonic()
    _, _, view = client.predict("My own text", text, "", 2000, "none", api_name="/bpe_train")
    assert f"cut to the first {tokenizer_tab.BPE_TRAIN_BYTES:,} characters" in view
    assert time.monotonic() - start < 60


def test_bpe_encode_text_is_cut_with_a_note(app_url):
    session = Client(app_url, verbose=False)
    session.predict("Bundled corpus", "", "", 500, "none", api_name="/bpe_train")
    start = time.monotonic()
    encoded = session.predict(500, "It is a truth universally acknowledged. " * 5000, api_name="/bpe_encode")
    assert f"cut to the first {tokenizer_tab.BPE_ENCODE_BYTES:,} characters" in encoded
    assert time.monotonic() - start < 60


def test_decoding_many_ids_draws_a_bounded_view(client):
    out = client.predict("cl100k_base", ", ".join(["1000"] * 50_000), api_name="/decode_ids")
    assert f"first {tokenizer_tab.RENDER_LIMIT:,} of 50,000" in out
    assert len(out) < 3_000_000  # 50,000 drawn pieces were 7.5 MB of HTML


def test_texts_above_the_cap_are_refused_with_a_message(client):
    text = "a" * (tokenizer_tab.MAX_TEXT_CHARS + 1)
    message = message_of(lambda: client.predict("cl100k_base", text, False, False, api_name="/tokenize"))
    assert f"at most {tokenizer_tab.MAX_TEXT_CHARS:,}" in message
