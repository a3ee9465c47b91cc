"""An engine model's tokenizer and teacher forcing, against a fake llama.cpp-shaped engine (httpx
MockTransport).

The fake tokenizes into one id per UTF-8 byte (ids 0-255, BOS 256 = "<s>"), answering /tokenize
`with_pieces` the way llama.cpp does (text where the byte is valid UTF-8 on its own, else the list
of its byte values), /detokenize as JSON text (U+FFFD for a lone byte that is not UTF-8), /props
with the BOS text, /v1/models with `meta.n_vocab`, and /v1/completions with a fixed random
distribution per prefix (its top K with ids). vLLM's prompt logprobs and an echo answer are
parsed from their documented shapes. Checked: exact bytes per token, the explorer's result and
Decode on the engine's ids, the unavailable entry, a down engine never cached, teacher forcing
exact inside the top K and a bound outside it, the chat tab's scoring through `chat.score_text`.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest
import torch

from playground import chat, models, tokenizer_registry
from playground.engines import forcing
from playground.engines import lab as engine_lab
from playground.engines.client import EngineClient, EngineError
from playground.engine_config import engine_config
from playground.engines.tokenizer import NO_TOKENIZE, EngineTokenizer
from playground.model_spec import ModelSpec

VOCAB, BOS, K = 257, 256, 5


def _logprobs(ids) -> torch.Tensor:
    generator = torch.Generator().manual_seed(hash(tuple(ids)) % (1 << 31))
    return torch.log_softmax(torch.randn(VOCAB, generator=generator) * 3.0, dim=0)


def _piece(token_id: int):
    if token_id == BOS:
        return "<s>"
    return chr(token_id) if token_id < 0x80 else [token_id]


class FakeEngine:
    def __init__(self):
        self.requests: list[str] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "fake", "meta": {"n_vocab": VOCAB}}]})
        if path == "/props":
            return httpx.Response(200, json={"bos_token": "<s>", "eos_token": ""})
        body = json.loads(request.content)
        if path == "/tokenize":
            text = body["content"]
            ids = [BOS] if text == "<s>" else list(text.encode())
            if body.get("add_special") and text != "<s>":
                ids = [BOS, *ids]
            tokens = [{"id": i, "piece": _piece(i)} for i in ids] if body.get("with_pieces") else ids
            return httpx.Response(200, json={"tokens": tokens})
        if path == "/detokenize":
            data = b"".join(b"<s>" if i == BOS else bytes([i]) for i in body["tokens"])
            return httpx.Response(200, json={"content": data.decode("utf-8", errors="replace")})
        logprobs = _logprobs(body["prompt"])
        values, ids = torch.topk(logprobs, min(body["logprobs"], VOCAB))
        top = [{"id": int(i), "token": f"<{int(i)}>", "bytes": [int(i) % 256], "logprob": float(v)}
               for v, i in zip(values, ids)]
        return httpx.Response(200, json={"choices": [{"text": "", "logprobs": {"content": [
            {"id": top[0]["id"], "token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]}}]})


def _spec(model_id: str = "fake-engine", **capabilities) -> ModelSpec:
    config = engine_config("llama.cpp", "http://fake:1", top_logprobs=K, **capabilities)
    return ModelSpec(id=model_id, role="base", source="engine", description="fake engine", engine=config)


@pytest.fixture
def engine(monkeypatch):
    """The fake engine as the registry's model `fake-engine`, reached through its backend's client."""
    fake, spec = FakeEngine(), _spec()
    models.model_list_problems()  # the operator list is read first (it would replace the entry)
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    monkeypatch.delitem(tokenizer_registry._CACHE, spec.id, raising=False)
    engine_lab.forget_engines()
    engine_lab.engine_for(spec, EngineClient(spec.engine, transport=httpx.MockTransport(fake), retries=0, name=spec.id))
    yield spec, fake
    engine_lab.forget_engines()
    tokenizer_registry._CACHE.pop(spec.id, None)


def test_pieces_are_the_engines_exact_bytes(engine):
    tokenizer = tokenizer_registry.get_tokenizer("fake-engine")
    assert tokenizer.kind == "engine" and tokenizer.vocab_size == VOCAB and tokenizer.bos_id == BOS
    text = "hi 🙂"
    ids = tokenizer.encode(text)
    assert ids == list(text.encode())
    assert b"".join(tokenizer.tokens_bytes(ids)) == text.encode()  # the emoji's four lone bytes, exactly
    assert tokenizer.encode(text, add_special_tokens=True)[0] == BOS


def test_the_explorer_shows_the_engines_tokens(engine):
    result = tokenizer_registry.tokenize("fake-engine", "a🙂b")
    assert result.ids == list("a🙂b".encode())
    assert "".join(result.text[t.start:t.end] for t in result.tokens) == "a🙂b"
    assert [t.partial for t in result.tokens] == [False, True, True, True, True, False]
    assert tokenizer_registry.decode_ids("fake-engine", "97 98").text == "ab"


def test_decode_of_an_unseen_byte_says_its_bytes_are_not_exact(engine):
    spec, fake = engine
    fresh = EngineTokenizer(spec, EngineClient(spec.engine, transport=httpx.MockTransport(fake), retries=0))
    assert fresh.token_bytes(200) == "\ufffd".encode() and 200 in fresh.replaced_ids  # JSON text: no lone bytes
    assert fresh.token_bytes(65) == b"A" and 65 not in fresh.replaced_ids
    with pytest.raises(Exception, match="outside the vocabulary"):
        fresh.token_bytes(VOCAB)


def test_an_engine_without_tokenize_is_listed_as_unavailable(monkeypatch):
    spec = _spec("fake-no-tokenize", tokenize=False)
    models.model_list_problems()
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    info = next(i for i in tokenizer_registry.list_tokenizers() if i.id == spec.id)
    assert info.kind == "engine" and not info.available and info.reason == NO_TOKENIZE
    with pytest.raises(EngineError, match="does not provide /tokenize"):
        EngineTokenizer(spec)


def test_a_down_engine_is_a_message_and_never_cached(monkeypatch):
    spec = _spec("fake-down")
    models.model_list_problems()
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    monkeypatch.delitem(tokenizer_registry._CACHE, spec.id, raising=False)
    with pytest.raises(EngineError, match="fake-down"):
        tokenizer_registry.get_tokenizer(spec.id)  # the real client: nothing listens at http://fake:1
    assert spec.id not in tokenizer_registry._CACHE


def test_teacher_forcing_is_exact_inside_the_top_k_and_a_bound_outside(engine):
    text = "abc de"
    spec, _ = engine
    forced = forcing.teacher_forcing(spec, text, tokenizer_registry.get_tokenizer(spec.id))
    assert forced.method == forcing.TOP_K_PER_POSITION and forced.requests == len(text)
    ids = [BOS, *text.encode()]
    assert [t.id for t in forced.tokens] == ids[1:]
    for position, token in enumerate(forced.tokens, start=1):
        logprobs = _logprobs(ids[:position])
        top = torch.topk(logprobs, K)
        inside = ids[position] in top.indices.tolist()
        assert token.in_top_k == inside
        if inside:
            assert token.logprob == pytest.approx(float(logprobs[ids[position]]), abs=1e-6)
        else:  # log p_K: above the token's own log-probability
            assert token.logprob == pytest.approx(float(top.values[-1]), abs=1e-6)
            assert token.logprob >= float(logprobs[ids[position]])
        assert token.expected[0][1] == pytest.approx(math.exp(float(top.values[0])), rel=1e-5)
    assert forced.outside == sum(not t.in_top_k for t in forced.tokens) > 0  # random: most are outside K=5
    assert f"{forced.outside} of {len(text)} tokens lie outside" in forcing.describe(forced)


def test_the_chat_tabs_scoring_runs_on_the_engine(engine):
    text = "a🙂 b"
    scored = chat.score_text("fake-engine", text)
    assert [t.id for t in scored.tokens] == list(text.encode()) and scored.context_ids == (BOS,)
    assert "".join(text[t.start:t.end] for t in scored.tokens) == text
    assert "scored by llama.cpp at http://fake:1" in scored.note
    assert any(t.bounded for t in scored.tokens)
    in_process = chat.score_text("tiny-random", text)  # aligns with another tokenizer's scoring
    spans = chat.align_scores(scored, in_process)
    begun = in_process.tokens[0].start  # SmolLM2's tokenizer reads no start token: its first token is context
    assert begun > 0 and "".join(s.text for s in spans) == text[begun:]


def test_prompt_logprobs_are_parsed_from_vllm_and_echo_answers():
    client = EngineClient(engine_config("vllm", "http://fake:1"), retries=0)
    ids = [1, 10, 11]
    vllm = {"choices": [{"prompt_logprobs": [None, {"10": {"logprob": -1.5, "decoded_token": "a"},
                                                    "12": {"logprob": -0.5, "decoded_token": "b"}},
                                             {"11": {"logprob": -0.25, "decoded_token": "c"}}]}]}
    found = forcing._parse_prompt_logprobs(client, vllm, ids, 1)
    assert [lp for lp, _, _ in found] == [-1.5, -0.25] and all(inside for _, inside, _ in found)
    assert [t.token_id for t in found[0][2].tokens] == [12, 10]
    echo = {"choices": [{"logprobs": {"token_logprobs": [None, -2.0, -0.1],
                                      "top_logprobs": [None, {"a": -2.0, "b": -0.2}, {"c": -0.1}]}}]}
    assert [lp for lp, _, _ in forcing._parse_prompt_logprobs(client, echo, ids, 1)] == [-2.0, -0.1]
    with pytest.raises(EngineError, match="does not provide prompt logprobs"):
        forcing._parse_prompt_logprobs(client, {"choices": [{"text": "x"}]}, ids, 1)


def test_the_tokenizer_tab_offers_the_engines_tokenizer(engine):
    from playground.ui import tokenizer_tab

    assert ("fake-engine (engine: llama.cpp at http://fake:1)", "fake-engine") in tokenizer_tab.tokenizer_choices()
    assert "not computed for an engine&#x27;s tokenizer" in tokenizer_tab.alternatives_html("fake-engine", "abc")
    shown = tokenizer_tab.decode("fake-engine", "200 65")
    shown = shown[0] if isinstance(shown, tuple) else shown
    assert "not UTF-8 on their own" in str(shown)
