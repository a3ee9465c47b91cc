"""Teacher forcing in chunks (`model_call.forward_chunks`, used by `scoring.local_score`): the same
log-probabilities as one forward of the whole text, the time limit checked between chunks."""

from __future__ import annotations

import pytest
import torch

from playground import limits, model_call, scoring, start_tokens
from playground.limits import RequestTimeout
from playground.models import load_model

MODEL = "tiny-random"
TEXT = "The answer, of course, depends on the type of orange, and on the season. " * 3


def test_chunks_give_the_logits_of_one_forward():
    loaded = load_model(MODEL)
    ids = start_tokens.text_ids(loaded.tokenizer, TEXT, "always").ids
    whole = model_call.reference_logits(loaded, ids)
    pieces = list(model_call.forward_chunks(loaded, ids, chunk=7))
    assert [first for first, _ in pieces] == list(range(0, len(ids), 7))
    assert torch.allclose(torch.cat([logits for _, logits in pieces]), whole, atol=1e-4)


def test_scoring_in_chunks_equals_the_whole_forward(monkeypatch):
    loaded = load_model(MODEL)
    whole = scoring.local_score(MODEL, TEXT)
    monkeypatch.setattr(scoring, "forward_chunks", lambda loaded, ids: model_call.forward_chunks(loaded, ids, 5))
    chunked = scoring.local_score(MODEL, TEXT)
    assert [t.id for t in chunked.tokens] == [t.id for t in whole.tokens] and len(whole.tokens) > 10
    assert [t.logprob for t in chunked.tokens] == pytest.approx([t.logprob for t in whole.tokens], abs=1e-4)


def test_a_long_text_stops_at_its_time_limit_between_chunks(monkeypatch):
    """The first chunk runs; once the limit has passed, the next chunk's call refuses in words."""
    loaded = load_model(MODEL)
    ids = start_tokens.text_ids(loaded.tokenizer, TEXT).ids
    clock = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: clock[0])
    with limits.deadline(30.0):
        chunks = model_call.forward_chunks(loaded, ids, chunk=4)
        assert next(chunks)[0] == 0
        clock[0] += 31.0  # the limit passes while the first chunk is scored
        with pytest.raises(RequestTimeout, match="time limit"):
            next(chunks)
