"""The engine client against fake engines: answer shapes, retries, and a clear message for each failure."""

from __future__ import annotations

import http.server
import json
import math
import threading
import time

import httpx
import pytest

from playground.engines.client import EngineClient, EngineError
from playground.engine_config import KIND_DEFAULTS, engine_config, normalise_base_url
from playground.engines.server import free_port
from playground.engines.topk import next_token_topk, parse_top_logprobs

LLAMA_CPP_ANSWER = {"choices": [{"text": " Paris", "logprobs": {"content": [{
    "id": 7042, "token": " Paris", "bytes": [32, 80, 97, 114, 105, 115], "logprob": math.log(0.5),
    "top_logprobs": [
        {"id": 7042, "token": " Paris", "bytes": [32, 80, 97, 114, 105, 115], "logprob": math.log(0.5)},
        {"id": 253, "token": " a", "bytes": [32, 97], "logprob": math.log(0.2)},
        {"id": 9, "token": "\ufffd", "bytes": [240, 159], "logprob": math.log(0.05)},
    ]}]}}]}
LEGACY_ANSWER = {"choices": [{"text": " Paris", "logprobs": {
    "tokens": [" Paris"], "token_logprobs": [math.log(0.5)],
    "top_logprobs": [{" a": math.log(0.2), " Paris": math.log(0.5)}]}}]}


def client_for(handler, kind="llama.cpp", **kwargs) -> EngineClient:
    config = engine_config(kind, "http://engine.test/v1", "m" if kind != "llama.cpp" else "")
    return EngineClient(config, transport=httpx.MockTransport(handler), backoff=0.0, **kwargs)


def test_config_defaults_per_kind_and_url_normalised():
    assert normalise_base_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080"
    ollama = engine_config("ollama", "http://h:11434/v1", "qwen3", top_logprobs=5)
    assert (ollama.top_logprobs, ollama.token_prompts, ollama.tokenize) == (5, False, False)
    assert engine_config("vllm", "http://h:8000", "x").prompt_logprobs is KIND_DEFAULTS["vllm"]["prompt_logprobs"]
    with pytest.raises(ValueError, match="one of"):
        engine_config("tgi", "http://h")
    with pytest.raises(ValueError, match="http"):
        engine_config("vllm", "h:8000")


def test_topk_from_llama_cpp_answer_has_ids_bytes_and_rest_mass():
    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=LLAMA_CPP_ANSWER)

    with client_for(handler) as client:
        top = next_token_topk(client, [1, 504, 3], 3)
    assert seen[0]["prompt"] == [1, 504, 3] and seen[0]["logprobs"] == 3 and seen[0]["max_tokens"] == 1
    assert [t.token_id for t in top.tokens] == [7042, 253, 9]
    assert top.tokens[2].token_bytes == b"\xf0\x9f"
    assert top.rest_mass == pytest.approx(0.25)
    assert not top.capped


def test_topk_from_legacy_answer_sorted_by_probability():
    tokens = parse_top_logprobs(LEGACY_ANSWER)
    assert [t.text for t in tokens] == [" Paris", " a"] and tokens[0].token_id is None


def test_k_above_the_cap_asks_the_cap():
    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=LLAMA_CPP_ANSWER)

    config = engine_config("ollama", "http://engine.test", "m", top_logprobs=2)
    with EngineClient(config, transport=httpx.MockTransport(handler)) as client:
        top = next_token_topk(client, "The capital", 50)
    assert seen[0]["logprobs"] == 2 and top.capped and len(top.tokens) == 2


def test_token_id_prompt_refused_where_the_engine_takes_text_only():
    with client_for(lambda request: httpx.Response(200, json=LEGACY_ANSWER), kind="ollama") as client:
        with pytest.raises(EngineError, match="does not take prompts as token ids"):
            next_token_topk(client, [1, 2], 5)


def test_no_logprobs_is_a_clear_message():
    answer = {"choices": [{"text": " Paris", "logprobs": None}]}
    with client_for(lambda request: httpx.Response(200, json=answer)) as client:
        with pytest.raises(EngineError, match="without logprobs: this engine does not provide token probabilities") as info:
            next_token_topk(client, "The capital", 5)
    assert info.value.reason == "no-logprobs"


def test_http_error_carries_the_engine_message_and_is_not_retried():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(400, json={"error": {"code": 400, "message": "context length exceeded"}})

    with client_for(handler) as client:
        with pytest.raises(EngineError, match="answered HTTP 400: context length exceeded"):
            client.completion("x")
    assert len(calls) == 1


def test_503_is_retried_then_succeeds():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": {"message": "Loading model"}})
        return httpx.Response(200, json=LLAMA_CPP_ANSWER)

    with client_for(handler, retries=2) as client:
        assert next_token_topk(client, "x", 2).tokens[0].text == " Paris"
    assert len(calls) == 3


def test_503_after_the_retries_names_the_engine():
    with client_for(lambda request: httpx.Response(503, text="busy"), retries=1) as client:
        with pytest.raises(EngineError, match=r"llama.cpp at http://engine.test\) answered HTTP 503: busy"):
            client.completion("x")


def test_engine_down_is_a_clear_message():
    config = engine_config("llama.cpp", f"http://127.0.0.1:{free_port()}")
    with EngineClient(config, retries=1, backoff=0.0, timeout=2.0) as client:
        with pytest.raises(EngineError, match="is not reachable .*is the server running") as info:
            next_token_topk(client, "x", 2)
    assert info.value.reason == "down"


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the stdlib's name
        time.sleep(1.5)
        try:
            self.send_response(200)
            self.end_headers()
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_slow_engine_is_a_clear_message():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = engine_config("llama.cpp", f"http://127.0.0.1:{server.server_address[1]}")
        with EngineClient(config, timeout=0.3, retries=2) as client:
            start = time.monotonic()
            with pytest.raises(EngineError, match="did not answer within 0.3 s") as info:
                client.completion("x")
        assert info.value.reason == "slow" and time.monotonic() - start < 1.2  # a read timeout is not retried
    finally:
        server.shutdown()
        server.server_close()


def test_streaming_reads_events_until_done():
    events = [{"choices": [{"text": "a"}]}, {"choices": [{"text": "b"}]}]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"

    def handler(request):
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    with client_for(handler) as client:
        assert [e["choices"][0]["text"] for e in client.stream_completion("x", 2)] == ["a", "b"]


def test_streamed_error_event_is_a_message():
    body = 'data: {"error": {"message": "slot unavailable"}}\n\n'
    with client_for(lambda request: httpx.Response(200, text=body)) as client:
        with pytest.raises(EngineError, match="slot unavailable"):
            list(client.stream_completion("x", 2))


def test_tokenize_and_detokenize_shapes():
    def handler(request):
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [1, {"id": 2, "piece": "b"}]})
        return httpx.Response(200, json={"content": "ab"})

    with client_for(handler) as client:
        assert client.tokenize("ab") == [1, 2] and client.detokenize([1, 2]) == "ab"
    with client_for(handler, kind="ollama") as client:
        with pytest.raises(EngineError, match="does not provide /tokenize"):
            client.tokenize("ab")


def test_api_key_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("TEST_ENGINE_KEY", "sekrit")
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"data": [{"id": "m"}]})

    config = engine_config("vllm", "http://engine.test", "m", api_key_env="TEST_ENGINE_KEY")
    with EngineClient(config, transport=httpx.MockTransport(handler)) as client:
        assert client.served_models() == ["m"]
    assert seen == ["Bearer sekrit"]


def test_probe_of_an_engine_that_is_down():
    from playground.engines.probe import probe

    found = probe(engine_config("vllm", f"http://127.0.0.1:{free_port()}", "m"), timeout=2.0)
    assert not found.reachable and not found.logprobs and "is not reachable" in found.message
