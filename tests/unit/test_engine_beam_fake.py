"""Beam search on an engine model, against a fake llama.cpp-shaped engine (httpx MockTransport).

The fake serves a fixed random distribution over a 50-token vocabulary per sequence (its top K
with ids and bytes, like llama.cpp), /tokenize and /v1/models. Checked: the search on the
engine's top-K equals the search on the whole distribution node for node (the exactness argument
of `playground.engines.beam`), with and without EOS ids; every request sends token ids and asks
for K = max(2, 1 + #EOS) x beams; an engine that is down, one whose top_logprobs cap is below K,
one without logprobs, one naming tokens by text only and one without token-id prompts get clear
messages.
"""

from __future__ import annotations

import json

import httpx
import pytest
import torch

from playground import beam, models
from playground.backends import backend_for
from playground.engines import lab as engine_lab
from playground.engines.client import EngineClient, EngineError
from playground.engine_config import engine_config
from playground.model_spec import ModelSpec

VOCAB = 50
PROMPT = "Hello"


def _distribution(ids) -> torch.Tensor:
    generator = torch.Generator().manual_seed(hash(tuple(ids)) % (1 << 31))
    return torch.log_softmax(torch.randn(VOCAB, generator=generator) * 2.5, dim=0)


def _prompt_ids(text: str) -> list[int]:
    return [b % VOCAB for b in text.encode()]


class FakeEngine:
    """llama.cpp's answers; `shape` "text" names the top tokens by text only, "none" gives no logprobs."""

    def __init__(self, shape: str = "ids"):
        self.shape = shape
        self.requests = []  # (prompt, logprobs asked)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "fake", "meta": {"n_vocab": VOCAB}}]})
        body = json.loads(request.content)
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": _prompt_ids(body["content"])})
        self.requests.append((body["prompt"], body["logprobs"]))
        values, ids = torch.topk(_distribution(body["prompt"]), min(body["logprobs"], VOCAB))
        top = [{"id": int(i), "token": f"t{int(i)}", "bytes": list(f"t{int(i)} ".encode()), "logprob": float(v)}
               for v, i in zip(values, ids)]
        if self.shape == "none":
            return httpx.Response(200, json={"choices": [{"text": top[0]["token"]}]})
        if self.shape == "text":
            return httpx.Response(200, json={"choices": [{"text": top[0]["token"], "logprobs": {
                "top_logprobs": [{t["token"]: t["logprob"] for t in top}]}}]})
        return httpx.Response(200, json={"choices": [{"text": top[0]["token"], "logprobs": {
            "content": [{"id": top[0]["id"], "token": top[0]["token"], "logprob": top[0]["logprob"],
                         "top_logprobs": top}]}}]})


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def make_engine(monkeypatch):
    """An engine model on a fake transport: `make_engine(handler, **capabilities)` -> its id."""
    models.model_list_problems()  # the operator list is read first (it would replace the entry)
    engine_lab.forget_engines()

    def make(handler, **capabilities):
        config = engine_config("llama.cpp", "http://fake:1", **capabilities)
        spec = ModelSpec(id="fake-engine", role="base", source="engine", description="fake", engine=config)
        monkeypatch.setitem(models.REGISTRY, spec.id, spec)
        engine_lab.forget_engines()
        engine_lab.engine_for(spec, EngineClient(config, transport=httpx.MockTransport(handler), retries=0,
                                                 name=spec.id))
        return spec.id

    yield make
    engine_lab.forget_engines()


def full_search(ids: list[int], settings: beam.BeamSettings, eos: list[int]) -> beam.BeamResult:
    """The search on the whole distribution (as in-process: logits rows, log-softmax in the step)."""
    result = beam.new_result("reference", ids, "", settings, eos)
    sequences = [ids] * settings.num_beams

    def follow(slots, tokens):
        nonlocal sequences
        sequences = [[*sequences[s], t] for s, t in zip(slots.tolist(), tokens.tolist())]
        return torch.stack([_distribution(s) for s in sequences])

    finished = beam.search_steps(result, torch.stack([_distribution(ids)] * settings.num_beams), follow, str)
    result.sequences = beam.returned_sequences(result, finished, None)
    return result


def _tree(result: beam.BeamResult) -> list[tuple]:
    return [(n.parent, n.step, n.token_id, n.rank, n.vocab_rank, n.order, n.status, n.ended, n.eos)
            for n in result.nodes]


@pytest.mark.parametrize("settings", [beam.BeamSettings(3, 6, 1.0, False, 2), beam.BeamSettings(4, 5, 2.0, "never", 4),
                                      beam.BeamSettings(1, 4, 1.0, False, 1)])
def test_the_top_k_search_equals_the_whole_distributions(make_engine, settings):
    fake = FakeEngine()
    model_id = make_engine(fake)
    result = backend_for(model_id).beam_search(PROMPT, settings)
    reference = full_search(_prompt_ids(PROMPT), settings, [])
    assert _tree(result) == _tree(reference)
    assert [n.logprob for n in result.nodes] == pytest.approx([n.logprob for n in reference.nodes], abs=1e-5)
    assert [(s.ids, s.length) for s in result.sequences] == [(s.ids, s.length) for s in reference.sequences]
    assert [s.score for s in result.sequences] == pytest.approx([s.score for s in reference.sequences], abs=1e-5)
    k = 2 * settings.num_beams
    assert result.candidates_per_step == k and {asked for _, asked in fake.requests} == {k}
    assert all(isinstance(p, list) and p[:len(PROMPT)] == _prompt_ids(PROMPT) for p, _ in fake.requests)
    assert len(fake.requests) == 1 + settings.num_beams * (result.steps - 1)  # step 1: the prompt, once
    assert result.forward_calls == result.steps
    assert f"{len(fake.requests)} requests" in result.engine_note and f"top {k} tokens" in result.engine_note
    assert result.nodes[1].label == "t{}␣".format(result.nodes[1].token_id)  # the engine's bytes
    assert result.sequences[0].text == "".join(f"t{i} " for i in result.sequences[0].ids)


def test_eos_ids_finish_hypotheses_as_on_the_whole_distribution(make_engine):
    fake = FakeEngine()
    model_id = make_engine(fake)
    settings = beam.BeamSettings(3, 6, 1.0, True, 3)
    first = full_search(_prompt_ids(PROMPT), settings, [])
    eos = sorted({n.token_id for n in first.nodes if n.step == 2})[:2]  # tokens the search meets
    result = backend_for(model_id).beam_search(PROMPT, settings, eos_token_ids=eos, compare_greedy=True)
    reference = full_search(_prompt_ids(PROMPT), settings, eos)
    assert any(n.eos for n in result.nodes)
    assert _tree(result) == _tree(reference)
    assert [s.ids for s in result.sequences] == [s.ids for s in reference.sequences]
    assert {asked for _, asked in fake.requests} == {3 * 3}  # max(2, 1 + 2 EOS ids) x 3 beams
    assert result.greedy is None and "not computed on engine models" in result.engine_note


def test_an_engine_that_is_down_says_so(make_engine):
    model_id = make_engine(_down)
    with pytest.raises(EngineError, match="not reachable.*is the server running"):
        backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(2, 3))


def test_a_top_logprobs_cap_below_k_is_refused_with_the_beams_it_allows(make_engine):
    fake = FakeEngine()
    model_id = make_engine(fake, top_logprobs=5)
    with pytest.raises(EngineError, match=r"3 beams needs each beam's top 6 tokens per step \(2 x beams\), .*"
                                          r"gives at most 5 .*use at most 2 beams"):
        backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(3, 3))
    assert fake.requests == []
    assert backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(2, 3)).steps == 3


def test_an_engine_without_logprobs_says_so(make_engine):
    model_id = make_engine(FakeEngine(), top_logprobs=0)
    with pytest.raises(EngineError, match="gives no logprobs"):
        backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(2, 3))
    model_id = make_engine(FakeEngine("none"))
    with pytest.raises(EngineError, match="answered without logprobs"):
        backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(2, 3))


def test_tokens_named_by_text_only_or_no_id_prompts_are_refused(make_engine):
    model_id = make_engine(FakeEngine("text"))
    with pytest.raises(EngineError, match="by text only, without token ids: beam search needs ids"):
        backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(2, 3))
    fake = FakeEngine()
    model_id = make_engine(fake, token_prompts=False)
    with pytest.raises(EngineError, match="token_prompts = false"):
        backend_for(model_id).beam_search(PROMPT, beam.BeamSettings(2, 3))
    assert fake.requests == []
