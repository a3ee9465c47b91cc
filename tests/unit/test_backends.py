"""One backend protocol for in-process and engine models (`playground.backends`, issue 21.2).

The same calls of the tabs' backend functions and of the CLI run on the tiny random model and on
the fake llama.cpp-shaped engine of `test_engine_lab_fake` (httpx MockTransport, no server): the
lab's operations, beam search, teacher forcing's refusal, FIM's refusal, and `models` saying
whether an engine answers. Capability refusals are the backend's words.
"""

from __future__ import annotations

import json

import httpx
import pytest
from test_engine_lab_fake import K, VOCAB, FakeEngine

from playground import backends, beam, chat, fim, lab, models
from playground.__main__ import main
from playground.engines import lab as engine_lab
from playground.engines.client import EngineClient
from playground.engine_config import engine_config
from playground.errors import PlaygroundError
from playground.model_spec import ModelSpec
from playground.sampling import SamplingSettings

IN_PROCESS = "tiny-random"
HOT = SamplingSettings(temperature=1.5)


def _install(monkeypatch, spec: ModelSpec, transport) -> ModelSpec:
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    engine_lab.engine_for(spec, EngineClient(spec.engine, transport=transport, retries=0, name=spec.id))
    return spec


@pytest.fixture
def engine(monkeypatch):
    models.model_list_problems()  # the operator list is read first (it would replace the entry)
    engine_lab.forget_engines()
    backends.forget_engine_checks()
    config = engine_config("llama.cpp", "http://fake:1", top_logprobs=K)
    spec = ModelSpec(id="fake-engine", role="base", source="engine", description="fake", engine=config, fim=True)
    fake = FakeEngine()
    yield _install(monkeypatch, spec, httpx.MockTransport(fake)), fake
    engine_lab.forget_engines()
    backends.forget_engine_checks()


def _lab_round(model_id: str) -> lab.LabSession:
    """The Sampling lab's calls, as the tab makes them, on any model."""
    session = lab.open_session(model_id, "Hello", False, 64)
    view = lab.view(session, HOT)
    assert view.number_rows() and isinstance(view.details(), dict) and isinstance(view.start_labels, tuple)
    assert view.max_bars is None or view.max_bars == K
    first = lab.next_token(session, HOT, 3)
    picked = lab.view(session, HOT).top_tokens(1)[0]["id"]
    forced = lab.append_token(session, HOT, picked)
    assert forced.id == picked and forced.chosen == "forced"
    steps = list(lab.generate(session, HOT, 3, 3))
    assert len(steps) == 3 and len(session.records) == 5 and session.records[0] == first
    assert all(lab.view(session, HOT, after).result.vocab_size >= VOCAB for _record, after in steps)
    lab.undo(session)
    assert len(session.records) == 4
    return session


def test_the_lab_runs_the_same_calls_on_both_kinds(engine):
    spec, fake = engine
    for model_id in (IN_PROCESS, spec.id):
        session = _lab_round(model_id)
        assert session.prompt_ids  # the ids the model read
    assert fake.prompts and all(isinstance(p, list) for p in fake.prompts)  # the engine got ids


def test_capabilities_and_their_refusals_come_from_the_backend(engine):
    spec, _ = engine
    assert backends.backend_for(IN_PROCESS).capabilities.missing == {}
    capabilities = backends.backend_for(spec.id).capabilities
    assert not capabilities.has("samples") and capabilities.has("lab") and capabilities.has("beam")
    session = lab.open_session(spec.id, "Hello", False, 64)
    with pytest.raises(PlaygroundError, match="K samples do not run on engine models"):
        lab.samples(session, HOT, 2, 3, 0)  # refused when asked, before any step
    runs, why = fim.can_run_live(spec.id)
    assert not runs and why == capabilities.missing["fim"] and "fake-engine is served by llama.cpp" in why
    with pytest.raises(PlaygroundError, match="scores a text after its start token only"):
        chat.score_text(spec.id, "Hello there", context_ids=[1, 2])
    assert backends.backend_for(IN_PROCESS).capabilities.has("samples")
    in_process = lab.open_session(IN_PROCESS, "Hello", False, 64)
    assert len(next(iter(lab.samples(in_process, HOT, 2, 2, 0))).samples) == 2


def test_beam_search_runs_through_the_backend_for_both_kinds(engine):
    spec, _ = engine
    settings = beam.BeamSettings(2, 3)
    ours = backends.backend_for(IN_PROCESS).beam_search("Hello", settings)
    direct = beam.run_beam_search(IN_PROCESS, "Hello", settings)
    assert [s.ids for s in ours.sequences] == [s.ids for s in direct.sequences] and not ours.engine_note
    on_engine = backends.backend_for(spec.id).beam_search("Hello", settings, compare_greedy=True)
    assert on_engine.steps >= 1 and on_engine.sequences and "Ran on the engine" in on_engine.engine_note
    assert on_engine.greedy is None  # the comparison paths are left out on engines (the note says so)


def test_model_choices_offer_an_engine_model_where_its_tab_runs_it(engine):
    from playground.ui import common

    spec, _ = engine
    assert spec.id in {i for _label, i in common.model_choices(tab="sampling")}
    assert spec.id in {i for _label, i in common.model_choices(tab="beam")}
    assert spec.id not in {i for _label, i in common.model_choices(tab="fim")}  # no "fim" capability
    assert spec.id not in {i for _label, i in common.model_choices()}  # the in-process tabs
    label = dict((i, label) for label, i in common.model_choices(tab="sampling"))[spec.id]
    assert label == "fake-engine (base, engine)"


def _cli(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_cli_runs_an_engine_model_through_the_protocol(engine, capsys):
    spec, fake = engine
    shown = _cli(capsys, "next-token", "--model", spec.id, "--top", "3", "Hello")
    assert len(shown["tokens"]) == 3 and shown["prompt_tokens"] == 5 and shown["known_tokens"] == K
    assert shown["label"] == "approximate: only the top 10 are known"
    made = _cli(capsys, "generate", "--model", spec.id, "--max-new-tokens", "3", "--seed", "1", "Hello")
    assert len(made["tokens"]) == 3 and made["stop_reason"] == "max_tokens"
    assert made["text"] == "".join(t["text"] for t in made["tokens"])
    searched = _cli(capsys, "beam", "--model", spec.id, "--num-beams", "2", "--max-new-tokens", "2", "Hello")
    assert searched["sequences"] and searched["model"] == spec.id
    assert backends.backend_for(spec.id).weights() == "engine"
    # the same seed through the CLI and the lab draws the same tokens
    session = lab.open_session(spec.id, "Hello", False, 64)
    ids = [record.id for record, _after in lab.generate(session, SamplingSettings(), 3, 1)]
    assert [t["id"] for t in made["tokens"]] == ids


def test_the_cli_gives_the_in_process_numbers_it_gave_before(capsys):
    from playground import decoding, generation, sampling

    shown = _cli(capsys, "next-token", "--model", IN_PROCESS, "--top", "5", "Hello there")
    distribution = decoding.next_token_distribution(IN_PROCESS, "Hello there")
    ranked = sampling.RankedLogits(distribution.logits)
    expected = generation.token_rows(ranked, sampling.filter_logits(ranked, SamplingSettings()),
                                     models.load_model(IN_PROCESS).tokenizer, 5)
    assert shown["tokens"] == expected and shown["prompt_tokens"] == len(distribution.input_ids)
    assert "exact" not in shown
    made = _cli(capsys, "generate", "--model", IN_PROCESS, "--max-new-tokens", "4", "--seed", "2", "Hello there")
    loaded = models.load_model(IN_PROCESS)
    reference = generation.generate(loaded, distribution.input_ids, SamplingSettings(), 4, 2)
    assert [t["id"] for t in made["tokens"]] == [r.id for r in reference.records]
    assert made["text"] == reference.text and made["stop_reason"] == reference.stop_reason


def test_models_says_an_answering_engine_is_available(engine, capsys, monkeypatch):
    spec, _ = engine
    rows = {row["id"]: row for row in _cli(capsys, "models", "--all")}
    assert rows[spec.id]["available"] is True and rows[spec.id]["reason"] == ""

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    down = ModelSpec(id="down-engine", role="base", source="engine", description="down",
                     engine=engine_config("llama.cpp", "http://down:1"))
    _install(monkeypatch, down, httpx.MockTransport(refuse))
    rows = {row["id"]: row for row in _cli(capsys, "models", "--all")}
    assert rows["down-engine"]["available"] is False and "does not answer" in rows["down-engine"]["reason"]
    assert rows[IN_PROCESS]["available"] is True
