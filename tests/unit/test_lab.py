"""The lab session in the backend: small when idle, decoders from a bounded pool, rebuilt exactly."""

from __future__ import annotations

import html
import pickle
import re
from urllib.parse import parse_qs

import pytest
import torch

from playground import decoding, lab, local_lab
from playground.models import load_model
from playground.sampling import PRESETS, SamplingSettings

MODEL = "tiny-random"
HOT = SamplingSettings(temperature=1.5, top_k=20)  # draws away from knife edges (see test_decode_batching)


@pytest.fixture
def loaded():
    loaded = load_model(MODEL)
    loaded.runtime.drop("lab-decoders")
    yield loaded
    loaded.runtime.drop("lab-decoders")


def _session(prompt="The lab session test"):
    return lab.open_session(MODEL, prompt, False, 1024)


def _run(session, steps=6, seed=3):
    """Tokens and the distribution after each: a next token, an undo, a forced token, Generate N."""
    lab.next_token(session, HOT, seed)
    lab.next_token(session, HOT, seed)
    lab.undo(session)
    lab.append_token(session, PRESETS["nucleus"], 42)
    out = [ranked.logits for _, ranked in lab.generate(session, HOT, steps, seed)]
    return [r.id for r in session.records], out


def test_an_idle_session_holds_no_model_state(loaded):
    session = _session()
    list(lab.generate(session, HOT, 20, seed=1))
    assert len(session.records) == 20
    # what is left in the session: ids and records; no tensor, cache or decoder anywhere in it
    blob = pickle.dumps({k: v for k, v in vars(session).items() if k != "lock"})
    assert len(blob) < 64 * 1024
    assert b"torch" not in blob and b"Decoder" not in blob and b"Cache" not in blob


def test_a_reclaimed_decoder_is_rebuilt_with_identical_results(loaded, monkeypatch):
    kept_tokens, kept_logits = _run(_session())
    assert local_lab.pooled_decoders(loaded) == 1
    # the same requests, with the session's decoder reclaimed before every one of them
    session = _session()
    real = local_lab._lent_decoder

    def reclaimed_first(s):
        loaded.runtime.drop("lab-decoders")
        return real(s)

    monkeypatch.setattr(local_lab, "_lent_decoder", reclaimed_first)
    decoding.forget_distributions(loaded)
    tokens, logits = _run(session)
    assert tokens == kept_tokens
    for a, b in zip(logits, kept_logits):
        assert torch.allclose(a, b, atol=1e-4)


def test_the_pool_is_bounded_and_lru(loaded, monkeypatch):
    monkeypatch.setattr(local_lab, "LAB_DECODERS", 3)
    sessions = [_session(f"session number {i}") for i in range(5)]
    for session in sessions:
        lab.next_token(session, HOT, 0)
    assert local_lab.pooled_decoders(loaded) == 3
    pool = loaded.runtime.peek("lab-decoders")
    assert [pool.get(s.key) is not None for s in sessions] == [False, False, True, True, True]
    before = loaded.forward_calls
    lab.next_token(sessions[0], HOT, 0)  # rebuilt from its ids: one forward over the sequence, then the token
    assert loaded.forward_calls - before == 2
    assert local_lab.pooled_decoders(loaded) == 3


def test_undo_needs_no_model_call_and_rewinds_the_decoder_when_lent(loaded):
    session = _session()
    for _ in range(3):
        lab.next_token(session, HOT, 5)
    third = session.records[-1].id
    before = loaded.forward_calls
    lab.undo(session)
    lab.view(session, HOT)  # the distribution after two tokens was cached when it was shown
    assert loaded.forward_calls == before
    lab.next_token(session, HOT, 5)  # the same position and seed: the same token again
    assert session.records[-1].id == third


def test_each_generated_token_links_to_why_on_exactly_the_tokens_before_it(loaded):
    """The "why?" link of token i attributes it after the prompt and tokens 0..i-1: the text it
    carries is read back as those very ids (start tokens included), or the token has no link."""
    from playground import start_tokens
    from playground.html import generated

    session = _session("The capital of France is")
    list(lab.generate(session, HOT, 5, 1))
    view = lab.view(session, HOT)
    prompts = view.why_prompts()
    assert len(prompts) == 5
    first = len(session.prompt_ids)
    for i, text in enumerate(prompts):
        if text is not None:
            assert start_tokens.text_ids(loaded.tokenizer, text).ids == session.ids[: first + i]
    assert prompts[0] is not None and prompts[0].startswith("The capital of France is")
    page = generated.generated_html("p", session.records, why=generated.WhyLinks(MODEL, prompts))
    first_link = re.search(r'data-why="([^"]*)"', page).group(1)
    query = parse_qs(html.unescape(first_link).lstrip("?"))
    assert query == {"tab": ["why"], "model": [MODEL], "prompt": [prompts[0]], "target": [f"#{session.records[0].id}"],
                     "run": ["why"]}
    assert page.count("gen-why") == sum(p is not None for p in prompts)


def test_no_why_link_past_what_attribution_reads(loaded):
    from playground.attribution import MAX_TOKENS

    session = _session("word " * (MAX_TOKENS - 2))
    list(lab.generate(session, HOT, 4, 1))
    prompts = lab.view(session, HOT).why_prompts()
    first = len(session.prompt_ids)
    assert all(p is None for i, p in enumerate(prompts) if first + i > MAX_TOKENS)
    assert any(p is None for p in prompts)


def test_why_text_is_escaped_in_the_link():
    from playground import generation
    from playground.html import generated

    loaded = load_model(MODEL)
    record = generation.forced_step(generation.Decoder(loaded, [1, 2, 3]), SamplingSettings(), 5)
    page = generated.generated_html("", [record], why=generated.WhyLinks(MODEL, ('"><script>alert(1)</script>',)))
    assert "<script" not in page and "gen-why" in page
