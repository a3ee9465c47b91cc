"""The Sampling lab on an engine model: a real llama.cpp `llama-server` with the packaged SmolLM2 GGUF.

A models file with a llama.cpp entry (the packaged SmolLM2-135M-Instruct tokenizer named for the
chat template and the end-of-sequence id) opens a lab session on the engine: the top tokens shown
are the server's own top-K (by id, with the rest of the vocabulary as one mass), top-k <= K is
labelled exact and the default rules approximate; Next token and Generate N with a seed give the
same tokens twice, sent back to the server as token ids; an engine that is down gives a clear
message. Skipped when llama-server is not built (`make llama-server`; `make test` builds it first).
"""

from __future__ import annotations

import math

import pytest

from playground import backends, lab, models
from playground.engines import lab as engine_lab
from playground.engines.build import find_server
from playground.engines.client import EngineClient, EngineError
from playground.engines.server import LlamaServer, free_port
from playground.engines.topk import next_token_topk
from playground.sampling import SamplingSettings

pytestmark = pytest.mark.skipif(find_server() is None, reason="llama-server is not built (make llama-server)")

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def engine_model(tmp_path_factory):
    gguf = models.gguf_path(models.get_spec("smollm2-135m-instruct"))
    path = tmp_path_factory.mktemp("engine-lab") / "models.toml"
    with LlamaServer(gguf, context=1024) as server:
        entries = [dict(id="smol-engine", role="chat", engine="llama.cpp", base_url=server.base_url,
                        tokenizer="smollm2-135m-instruct"),
                   dict(id="down-engine", role="base", engine="llama.cpp", base_url=f"http://127.0.0.1:{free_port()}")]
        path.write_text("".join("[[models]]\n" + "".join(f'{key} = "{value}"\n' for key, value in entry.items())
                                for entry in entries))
        try:
            assert models.configure_model_list(str(path), ()) == ()
            engine_lab.forget_engines()
            yield server
        finally:
            engine_lab.forget_engines()
            models.configure_model_list("", ())


def test_the_sampling_lab_offers_engine_models_and_the_other_tabs_say_why_not(engine_model):
    from playground.ui.common import model_choices

    assert "smol-engine" in [i for _, i in model_choices(tab="sampling")]
    assert "smol-engine" in [i for _, i in model_choices(tab="beam")]
    assert "smol-engine" not in [i for _, i in model_choices()]  # inside: not on engines
    info = {i.id: i for i in backends.model_infos()}["smol-engine"]
    assert info.available and info.reason == ""  # its server answers (`python -m playground models` says so)
    state = backends.backend_for("smol-engine").state(info.available, info.reason, None)
    assert "the Sampling lab, Beam search and Base vs chat (teacher forcing included) run it" in state


def test_top_tokens_are_the_servers_and_the_label_says_what_is_exact(engine_model):
    session = lab.open_session("smol-engine", PROMPT, False, 1024)
    with EngineClient(engine_model.config(), timeout=120.0) as client:
        expected = next_token_topk(client, list(session.prompt_ids), 100)
    view = lab.view(session, SamplingSettings(top_k=20))
    assert [row["id"] for row in view.top_tokens(20)] == [t.token_id for t in expected.tokens[:20]]
    # the shown probabilities are the engine's answer, normalised (llama.cpp's top 100 with the rest
    # sum to 1 + ~1e-4); a second request (llama.cpp reuses the prompt's cache, re-evaluating its
    # last token) differs from the first by ~1e-4
    shown = [row["raw_prob"] for row in view.top_tokens(20)]
    total = math.fsum(t.prob for t in view.known.topk.tokens) + view.known.rest_mass
    assert abs(total - 1) < 1e-3, total
    assert shown == pytest.approx([t.prob / total for t in view.known.topk.tokens[:20]], abs=1e-6)
    assert shown == pytest.approx([t.prob for t in expected.tokens[:20]], abs=1e-3)
    assert view.known.rest_mass == pytest.approx(expected.rest_mass, abs=1e-3)
    assert view.exact and view.label == "exact: the kept tokens lie inside the top 100"
    assert view.result.kept_count == 20 and abs(sum(view.result.prob_of(i) for i in view.known.ids) - 1) < 1e-5
    default = lab.view(session, SamplingSettings(temperature=1.0))
    assert not default.exact and default.label == "approximate: only the top 100 are known"
    assert dict(default.number_rows())["entropy after the rules"].startswith("unknown")


def test_next_token_and_generate_repeat_with_a_seed(engine_model):
    runs = []
    for _ in range(2):
        session = lab.open_session("smol-engine", PROMPT, False, 1024)
        first = lab.next_token(session, SamplingSettings(temperature=0.8, top_k=40), 11)
        rest = [record for record, _ in lab.generate(session, SamplingSettings(top_p=0.9), 8, 11)]
        runs.append([first.id, *[r.id for r in rest]])
        assert all(0 < r.raw_prob <= 1 for r in session.records)
    assert runs[0] == runs[1] and len(runs[0]) >= 2


def test_chat_template_goes_through_the_named_tokenizer(engine_model):
    session = lab.open_session("smol-engine", "Name a fruit.", True, 1024)
    tokenizer = models.load_tokenizer("smollm2-135m-instruct")
    assert session.chat_template and list(session.prompt_ids) == list(tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name a fruit."}], add_generation_prompt=True, tokenize=True, return_dict=False))
    lab.next_token(session, SamplingSettings(temperature=0.0), 0)
    assert session.records[0].chosen == "greedy"


def test_an_engine_that_is_down_says_so(engine_model):
    with pytest.raises(EngineError, match="not reachable.*is the server running"):
        lab.open_session("down-engine", PROMPT, False, 1024)


def test_the_cli_runs_the_engine_model_through_the_backend(engine_model, capsys):
    """`next-token`, `generate`, `beam`, `score`, `tokenize` and `models` on the real llama-server entry."""
    import json

    from playground.__main__ import main

    def run(*argv):
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    shown = run("next-token", "--model", "smol-engine", "--top", "5", "--temperature", "0", PROMPT)
    session = lab.open_session("smol-engine", PROMPT, False, 1024)
    assert [t["id"] for t in shown["tokens"]] == [r["id"] for r in lab.view(session, SamplingSettings()).top_tokens(5)]
    assert shown["exact"] and shown["prompt_tokens"] == len(session.prompt_ids)
    made = run("generate", "--model", "smol-engine", "--max-new-tokens", "4", "--temperature", "0", PROMPT)
    assert made["tokens"] and made["tokens"][0]["id"] == shown["tokens"][0]["id"] and made["text"]
    searched = run("beam", "--model", "smol-engine", "--num-beams", "2", "--max-new-tokens", "3", PROMPT)
    assert searched["sequences"] and searched["steps"] >= 1
    scored = run("score", "--model", "smol-engine", PROMPT)
    assert scored["tokens"] and all(t["logprob"] <= 0 for t in scored["tokens"])
    tokens = run("tokenize", "--tokenizer", "smol-engine", PROMPT)
    assert tokens["ids"] == list(session.prompt_ids)[-len(tokens["ids"]):]
    rows = {row["id"]: row for row in run("models")}
    assert rows["smol-engine"]["available"] is True and rows["down-engine"]["available"] is False
    assert "does not answer" in rows["down-engine"]["reason"]
