"""Every tab that runs engine models, end to end: the real app started with a models file of real
llama.cpp `llama-server` engines (the packaged GGUFs) and one engine that is down, called over HTTP
with gradio_client like any API user.

Checked per tab: the tokenizer explorer on the engine's /tokenize gives the in-process tokenizer's
ids; the sampling lab shows the engine's distribution (labelled), takes a next token and generates;
beam search runs on the engine and says so; side by side streams both engine columns; teacher
forcing scores with an engine model next to an in-process one. The down engine is a message in
words, and afterwards the server still serves a model call. Skipped when llama-server is not built
(`make llama-server`; `make test` builds it first).
"""

from __future__ import annotations

import json

import pytest
from gradio_client import Client

from playground import models
from playground.engines.build import find_server
from playground.engines.server import LlamaServer, free_port
from tests.conftest import start_app, stop_app

pytestmark = pytest.mark.skipif(find_server() is None, reason="llama-server is not built (make llama-server)")

RANDOM = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, order="transformers")


def _entry(**fields) -> str:
    return "[[models]]\n" + "".join(f'{key} = "{value}"\n' for key, value in fields.items()) + "\n"


@pytest.fixture(scope="module")
def engine_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine-app") / "models.toml"
    smol = models.gguf_path(models.get_spec("smollm2-135m-instruct"))
    gemma = models.gguf_path(models.get_spec("gemma-3-270m"))
    with LlamaServer(smol, context=2048, slots=2) as smol_server, LlamaServer(gemma, context=2048, slots=2) as gemma_server:
        path.write_text(
            _entry(id="smol-engine", role="chat", engine="llama.cpp", base_url=smol_server.base_url,
                   tokenizer="smollm2-135m-instruct")
            + _entry(id="gemma-engine", role="base", engine="llama.cpp", base_url=gemma_server.base_url,
                     tokenizer="gemma-3-270m")
            + _entry(id="down-engine", role="base", engine="llama.cpp", base_url=f"http://127.0.0.1:{free_port()}"))
        url, process = start_app({"PLAYGROUND_MODELS_FILE": str(path)}, log_name="app-engine-server.log")
        try:
            yield url
        finally:
            stop_app(process)


@pytest.fixture
def session(engine_app):
    return Client(engine_app, verbose=False)


def _json(value):
    return value if isinstance(value, (dict, list)) else json.loads(value)


def test_the_tokenizer_explorer_on_the_engines_tokenize(session):
    text = "Tokens: 🙂 and 一隻貓"
    engine = session.predict(tokenizer_id="smol-engine", text=text, api_name="/tokenize")
    ours = session.predict(tokenizer_id="smollm2-135m-instruct", text=text, api_name="/tokenize")
    assert _json(engine[-1]) == _json(ours[-1])  # the ids
    assert "🙂" in engine[1] or "&#" in engine[1]


def test_the_sampling_lab_on_an_engine(session):
    out = session.predict(model_id="smol-engine", prompt="The capital of France is", api_name="/sampling_distribution")
    details = _json(out[-1])
    assert details["engine"] is True and details["model"] == "smol-engine" and details["known_tokens"] >= 20
    assert "Paris" in " ".join(t["text"] for t in details["tokens"][:5])
    step = _json(session.predict(**RANDOM, seed=3, api_name="/sampling_next_token")[-1])
    assert len(step["generated"]) == 1
    generated = _json(session.predict(n=5, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, order="transformers",
                                      seed=3, api_name="/sampling_generate")[-1])
    assert len(generated["generated"]) == 6 and generated["exact"] is True  # greedy is exact on the top K


def test_beam_search_on_an_engine(session):
    out = session.predict(prompt="The capital of France is", model_id="gemma-engine", num_beams=2, num_return=2, max_new_tokens=4,
                          api_name="/beam_search")
    summary = out[-1]
    assert "engine" in summary and "llama.cpp" in summary


def test_side_by_side_on_two_engines(session):
    base, chat = session.predict(prompt="What is the color of oranges?", base_model="gemma-engine",
                                 chat_model="smol-engine", max_tokens=8, temperature=0.0, api_name="/side_by_side")
    for column in (base, chat):
        assert "greedy, by the engine (llama.cpp)" in column and "Error" not in column  # temperature 0


def test_teacher_forcing_with_an_engine_model(session):
    _, summary, text = session.predict(text="Oranges are orange.", base_model="gemma-engine",
                                       chat_model="smollm2-135m-instruct", api_name="/teacher_forcing")
    assert text == "Oranges are orange." and "scored by llama.cpp at" in summary


def test_a_down_engine_is_a_message_and_the_server_keeps_serving(session):
    with pytest.raises(Exception, match="down-engine.*not reachable"):
        session.predict(model_id="down-engine", prompt="Hello", api_name="/sampling_distribution")
    out = session.predict(model_id="gemma-engine", prompt="Hello", api_name="/sampling_distribution")
    assert _json(out[-1])["model"] == "gemma-engine"  # a model call right after: still serving
