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


def test_each_scored_token_links_to_why_on_exactly_the_ids_before_it():
    """Teacher forcing's "why?" prompt of token i is the text before it, read back as the very ids it
    was scored after; a text scored after a conversation gets none; the chart carries the links."""
    from urllib.parse import parse_qs

    from playground import chat
    from playground.plots.chat import surprisal_figure

    text = "The capital of France is Paris, and the capital of Italy is Rome."
    scored = scoring.local_score(MODEL, text)
    prompts = chat.why_prompts(scored)
    tokenizer = load_model(MODEL).tokenizer
    assert len(prompts) == len(scored.tokens) and sum(p is not None for p in prompts) >= len(prompts) - 2
    before = list(scored.context_ids)
    for token, prompt in zip(scored.tokens, prompts):
        if prompt is not None:
            assert prompt == text[: token.start] and start_tokens.text_ids(tokenizer, prompt).ids == before
        before.append(token.id)
    after_chat = scoring.local_score(MODEL, text, context_ids=[1, 5, 6, 7])
    assert all(p is None for p in chat.why_prompts(after_chat))
    spans = chat.align_scores(scored, scored)
    figure = surprisal_figure(scored, scored, spans, (prompts, ()))
    links = figure.data[0].customdata
    first = next(i for i, link in enumerate(links) if link)
    query = parse_qs(links[first].lstrip("?"))
    token = scored.tokens[spans[first].tokens[0][0]]
    assert query["tab"] == ["why"] and query["target"] == [f"#{token.id}"] and query["prompt"] == [text[: token.start]]
    assert not any(figure.data[1].customdata)  # no prompts given for the second scoring: no links
