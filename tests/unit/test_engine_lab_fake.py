"""The Sampling lab on an engine model, against a fake llama.cpp-shaped engine (httpx MockTransport).

The fake serves a fixed random distribution over a 50-token vocabulary per sequence, its top 10
with ids and bytes (like llama.cpp), /tokenize and /v1/models with `meta.n_vocab`. Checked: the
exact/approximate label, entropy bounds, seeded steps repeat, ids are sent back, the in-process
view is untouched, a down engine gives a clear message.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest
import torch

from playground import lab, models
from playground.engines import lab as engine_lab
from playground.engines.client import EngineClient, EngineError
from playground.engine_config import engine_config
from playground.model_spec import ModelSpec
from playground.sampling import SamplingSettings

VOCAB, K = 50, 10


def _distribution(ids) -> torch.Tensor:
    generator = torch.Generator().manual_seed(hash(tuple(ids)) % (1 << 31))
    return torch.log_softmax(torch.randn(VOCAB, generator=generator) * 2.5, dim=0)


class FakeEngine:
    def __init__(self):
        self.prompts = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "fake", "meta": {"n_vocab": VOCAB}}]})
        body = json.loads(request.content)
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [b % VOCAB for b in body["content"].encode()]})
        prompt = body["prompt"]
        self.prompts.append(prompt)
        logprobs = _distribution(prompt)
        values, ids = torch.topk(logprobs, min(body["logprobs"], VOCAB))
        top = [{"id": int(i), "token": f"t{int(i)}", "bytes": list(f"t{int(i)} ".encode()), "logprob": float(v)}
               for v, i in zip(values, ids)]
        return httpx.Response(200, json={"choices": [{"text": top[0]["token"], "logprobs": {
            "content": [{"id": top[0]["id"], "token": top[0]["token"], "logprob": top[0]["logprob"],
                         "top_logprobs": top}]}}]})


@pytest.fixture
def engine(monkeypatch):
    fake = FakeEngine()
    config = engine_config("llama.cpp", "http://fake:1", top_logprobs=K)
    spec = ModelSpec(id="fake-engine", role="base", source="engine", description="fake", engine=config)
    models.model_list_problems()  # the operator list is read first (it would replace the entry)
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    engine_lab.forget_engines()
    engine_lab.engine_for(spec, EngineClient(config, transport=httpx.MockTransport(fake), retries=0, name=spec.id))
    yield spec, fake
    engine_lab.forget_engines()


def test_inside_top_k_rules():
    probs, rest = [0.5, 0.3, 0.1], 0.1
    assert engine_lab.inside_top_k(SamplingSettings(top_k=3), probs, rest)
    assert engine_lab.inside_top_k(SamplingSettings(temperature=0.0), probs, rest)
    assert not engine_lab.inside_top_k(SamplingSettings(), probs, rest)
    assert not engine_lab.inside_top_k(SamplingSettings(top_k=4), probs, rest)
    assert engine_lab.inside_top_k(SamplingSettings(top_p=0.85), probs, rest)  # 0.9 known >= 0.85
    assert not engine_lab.inside_top_k(SamplingSettings(top_p=0.95), probs, rest)
    assert engine_lab.inside_top_k(SamplingSettings(min_p=0.25), probs, rest)  # 0.1 / 0.5 < 0.25
    assert not engine_lab.inside_top_k(SamplingSettings(min_p=0.1), probs, rest)


def test_entropy_bounds_hold_the_truth():
    full = torch.softmax(torch.randn(200, generator=torch.Generator().manual_seed(1)) * 2, dim=0)
    probs = sorted(full.tolist(), reverse=True)
    truth = -sum(p * math.log2(p) for p in probs)
    low, high = engine_lab.entropy_bounds(probs[:20], 1 - sum(probs[:20]), 200)
    assert low <= truth <= high
    assert engine_lab.entropy_bounds(probs[:20], 1 - sum(probs[:20]), None)[1] is None


def test_session_view_labels_and_kept_set(engine):
    spec, fake = engine
    session = lab.open_session(spec.id, "Hello", False, 64)
    assert list(session.prompt_ids) == [b % VOCAB for b in b"Hello"]
    exact = lab.view(session, SamplingSettings(top_k=5))
    assert exact.exact and exact.label.startswith("exact") and exact.result.kept_count == 5
    ids = exact.known.ids[:5]
    truth = torch.softmax(_distribution(list(session.ids))[list(ids)], dim=0)
    assert [exact.result.prob_of(i) for i in ids] == pytest.approx(truth.tolist(), abs=1e-5)
    approximate = lab.view(session, SamplingSettings())
    assert not approximate.exact and approximate.label == "approximate: only the top 10 are known"
    rows = dict(approximate.number_rows())
    assert rows["entropy after the rules"].startswith("unknown")
    assert rows["entropy of the model’s distribution"].startswith("between")
    assert len(approximate.top_tokens(50)) == K


def test_seeded_steps_repeat_and_send_ids(engine):
    spec, fake = engine
    runs = []
    for _ in range(2):
        session = lab.open_session(spec.id, "Hello", False, 64)
        first = lab.next_token(session, SamplingSettings(temperature=1.5), 7)
        rest = [r for r, _ in lab.generate(session, SamplingSettings(), 6, 7)]
        runs.append([first.id, *[r.id for r in rest]])
        assert all(isinstance(p, list) for p in fake.prompts)  # token ids, never text
        assert fake.prompts[-1][:5] == list(session.prompt_ids)
        assert rest[-1].stop == "max_tokens" and len(session.records) == 7
    assert runs[0] == runs[1]
    lab.undo(session)
    assert lab.next_token(session, SamplingSettings(), 7).id == runs[0][-1]  # (seed, position) draws


def test_in_process_views_stay_as_they_are(engine):
    assert lab.view(lab.open_session("tiny-random", "Hi", False, 64), SamplingSettings()).__class__ is lab.LabView


def test_a_down_engine_says_so(monkeypatch):
    config = engine_config("llama.cpp", "http://127.0.0.1:9", top_logprobs=K)
    spec = ModelSpec(id="down-engine", role="base", source="engine", description="down", engine=config)
    models.model_list_problems()  # the operator list is read first (it would replace the entry)
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    engine_lab.forget_engines()
    engine_lab.engine_for(spec, EngineClient(config, timeout=2.0, retries=0, name=spec.id))
    with pytest.raises(EngineError, match="not reachable.*is the server running"):
        lab.open_session(spec.id, "Hello", False, 64)
    engine_lab.forget_engines()


def test_the_tab_renders_an_engine_session(engine):
    from playground.ui import sampling_tab

    spec, _ = engine
    rules = (1.0, 0, 1.0, 0.0, "transformers")
    session, _figure, numbers, _pick, _html, details = sampling_tab.show_distribution(
        spec.id, False, "Hello", 50, False, *rules)
    assert "approximate: only the top 10 are known" in numbers and len(details["tokens"]) == K
    numbers = sampling_tab.next_token(session, 20, False, 1.0, 5, 1.0, 0.0, "transformers", 3)[2]
    assert "exact: the kept tokens lie inside the top 10" in numbers and "generated tokens" in numbers
    with pytest.raises(Exception, match="K samples do not run on engine models"):
        next(sampling_tab.draw_samples(session, 2, 3, "", 20, *rules, 0))


def test_the_distribution_download_lists_only_known_tokens(engine):
    from playground.ui import sampling_tab

    spec, _ = engine
    session = lab.open_session(spec.id, "Hello", False, 64)
    data = json.loads(sampling_tab.distribution_data(session, 50, 1.0, 0, 1.0, 0.0, "transformers", "json"))
    rows = next(value for value in data.values() if isinstance(value, list) and value and isinstance(value[0], dict))
    assert len(rows) == K and data["label"] == "approximate: only the top 10 are known"
