"""Streamed engine columns (`playground.engines.stream`, the Base vs chat tab) against a fake engine.

The fake answers `/v1/completions` and `/v1/chat/completions` as llama.cpp streams them (server-sent
events, one token per event with its id, bytes, log-probability and top alternatives, then an event
with the finish reason), through an httpx MockTransport. Checked: a streamed answer becomes records
(ids, probabilities, alternatives, the stop reason, the text) with our settings sent as the
engine's parameters and the prompt as token ids; the column's header says the engine sampled; an
engine without a tokenizer gets text or its chat API; a down engine, an error mid-stream and an
answer without logprobs end only their own column, in words; closing the stream closes the HTTP
response; the template view says when an engine's template cannot be shown.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from playground import models, side_by_side
from playground.engines import lab as engine_lab
from playground.engines.client import EngineClient, EngineError
from playground.engine_config import engine_config
from playground.engines.stream import EngineRun, engine_sampling, streamed_tokens
from playground.model_spec import ModelSpec
from playground.sampling import SamplingSettings
from playground.token_text import display_text, token_bytes

TOKENIZER = "tiny-random"  # SmolLM2's tokenizer: <|im_end|> is id 2
GREEDY = SamplingSettings(temperature=0.0)


class Body(httpx.SyncByteStream):
    """A response body that records whether it was closed."""

    def __init__(self, chunks: list[bytes]):
        self.chunks, self.closed = chunks, False

    def __iter__(self):
        yield from self.chunks

    def close(self):
        self.closed = True


def sse(events: list) -> list[bytes]:
    return [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]


def token_event(token_id: int, logprob: float, top: list[tuple[int, float]], chat_api: bool = False,
                piece: str | None = None) -> dict:
    def item(i, lp):
        text = piece if piece is not None and i == token_id else f"t{i}"
        return {"id": i, "token": text, "bytes": list(text.encode()), "logprob": lp}

    choice = {"index": 0, "finish_reason": None,
              "logprobs": {"content": [{**item(token_id, logprob), "top_logprobs": [item(i, lp) for i, lp in top]}]}}
    choice.update({"delta": {"content": "x"}} if chat_api else {"text": "x"})
    return {"choices": [choice]}


def finish_event(reason: str) -> dict:
    return {"choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": reason}]}


class FakeEngine:
    """Streams `events` for every generation request; records the requests."""

    def __init__(self, events: list | None = None, down: bool = False):
        self.events, self.down = events or [], down
        self.requests: list[tuple[str, dict]] = []
        self.bodies: list[Body] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "fake", "meta": {"n_vocab": 1000}}]})
        self.requests.append((request.url.path, json.loads(request.content)))
        body = Body(sse(self.events))
        self.bodies.append(body)
        return httpx.Response(200, stream=body, headers={"content-type": "text/event-stream"})


def install(monkeypatch, engine_id: str, fake: FakeEngine, tokenizer: str | None = TOKENIZER, role: str = "chat",
            kind: str = "llama.cpp", **capabilities) -> ModelSpec:
    config = engine_config(kind, "http://fake:1", **capabilities)
    spec = ModelSpec(id=engine_id, role=role, source="engine", description="fake", engine=config,
                     tokenizer_from=tokenizer)
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    engine_lab.engine_for(spec, EngineClient(config, transport=httpx.MockTransport(fake), retries=0, name=spec.id))
    return spec


@pytest.fixture(autouse=True)
def fresh_engines():
    models.model_list_problems()  # the operator list is read first (it would replace the entries)
    engine_lab.forget_engines()
    yield
    engine_lab.forget_engines()


def run_columns(contenders, settings=GREEDY, max_new_tokens=8, seed=0):
    last = None
    for columns in side_by_side.iter_side_by_side(contenders, settings, max_new_tokens, seed):
        last = columns
    return last


def ids_of(text: str) -> list[int]:
    return list(models.load_tokenizer(TOKENIZER)(text, add_special_tokens=False)["input_ids"])


def test_a_streamed_completion_becomes_records(monkeypatch):
    hello, world = ids_of(" Hello world")[:2]
    events = [token_event(hello, math.log(0.6), [(hello, math.log(0.6)), (7, math.log(0.3))]),
              token_event(world, math.log(0.5), [(9, math.log(0.45)), (world, math.log(0.5))]),
              token_event(2, math.log(0.9), [(2, math.log(0.9))]), finish_event("stop")]
    fake = FakeEngine(events)
    install(monkeypatch, "fake-chat", fake)
    entry = side_by_side.contender("fake-chat", "template", "Hi there")
    assert entry.prompt_ids and "<|im_start|>assistant" in entry.prompt_text
    [column] = run_columns([entry], SamplingSettings(temperature=0.7, top_p=0.9, order="temperature_last"), seed=3)
    path, body = fake.requests[0]
    assert path == "/v1/completions" and body["prompt"] == list(entry.prompt_ids)  # the rendered template's ids
    assert body["stream"] and body["logprobs"] == 20 and body["max_tokens"] == 8
    assert (body["temperature"], body["top_k"], body["top_p"], body["min_p"], body["seed"]) == (0.7, 0, 0.9, 0.0, 3)
    assert body["samplers"] == ["top_k", "top_p", "min_p", "temperature"]
    records = column.records
    assert [r.id for r in records] == [hello, world, 2]
    assert [r.raw_prob for r in records] == pytest.approx([0.6, 0.5, 0.9])
    assert [r.rank for r in records] == [1, 1, 1]  # world (0.5) is above t9 (0.45) though listed second
    assert [a.id for a in records[1].alternatives][:2] == [world, 9]
    tokenizer = models.load_tokenizer(TOKENIZER)
    assert records[0].text == display_text(token_bytes(tokenizer, hello))  # the token itself, not the engine's "x"
    assert records[-1].is_eos and records[-1].stop == "eos" and column.stop == "eos"
    assert column.text == tokenizer.decode([hello, world])
    assert "sampled by the engine (llama.cpp), seed 3" in column.header
    assert column.stop_note() == "Stopped after 3 tokens: it generated <|im_end|>, its end-of-turn token."


def test_greedy_after_rules_probability_is_one_and_length_means_max_tokens(monkeypatch):
    events = [token_event(5, math.log(0.4), [(5, math.log(0.4)), (6, math.log(0.35))]),
              token_event(6, math.log(0.7), [(6, math.log(0.7))]), finish_event("length")]
    install(monkeypatch, "fake-base", FakeEngine(events), role="base")
    [column] = run_columns([side_by_side.contender("fake-base", "raw", "Once upon")], max_new_tokens=2)
    assert [r.prob for r in column.records] == [1.0, 1.0] and all(r.chosen == "greedy" for r in column.records)
    assert column.stop == "max_tokens" and "greedy, by the engine (llama.cpp)" in column.header


def test_without_a_tokenizer_the_engine_gets_text_or_its_chat_api(monkeypatch):
    events = [token_event(5, math.log(0.4), [(5, math.log(0.4))], chat_api=True, piece="Hi"), finish_event("stop")]
    fake = FakeEngine(events)
    install(monkeypatch, "fake-opaque", fake, tokenizer=None)
    chat_entry = side_by_side.contender("fake-opaque", "template", "Hello?")
    assert not chat_entry.prompt_ids and "engine's own chat template (not shown" in chat_entry.note
    [column] = run_columns([chat_entry])
    path, body = fake.requests[-1]
    assert path == "/v1/chat/completions" and body["messages"] == [{"role": "user", "content": "Hello?"}]
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert column.text == "Hi" and column.stop == "end_of_turn" and "does not stream" in column.stop_note()
    raw = side_by_side.contender("fake-opaque", "raw", "Once upon")
    run_columns([raw])
    assert fake.requests[-1] == ("/v1/completions", {**fake.requests[-1][1], "prompt": "Once upon"})


def test_a_down_engine_says_so_in_its_column_and_the_other_column_runs(monkeypatch):
    install(monkeypatch, "fake-down", FakeEngine(down=True))
    columns = run_columns([side_by_side.contender("fake-down", "template", "Hi"),
                           side_by_side.contender("tiny-random", "raw", "Hi")], max_new_tokens=4)
    down, other = columns
    assert down.stop == "halted" and down.halted.startswith("Not run: The engine for model 'fake-down'")
    assert "not reachable" in down.halted and isinstance(down.error, EngineError) and down.error.reason == "down"
    assert len(other.records) == 4 and other.stop == "max_tokens"


def test_an_error_mid_stream_keeps_the_tokens_before_it(monkeypatch):
    events = [token_event(5, math.log(0.4), [(5, math.log(0.4))]), token_event(6, math.log(0.5), [(6, math.log(0.5))]),
              {"error": {"message": "the slot was cancelled"}}]
    install(monkeypatch, "fake-broken", FakeEngine(events))
    [column] = run_columns([side_by_side.contender("fake-broken", "raw", "Hi")])
    assert [r.id for r in column.records] == [5, 6]
    assert column.halted.startswith("Stopped after 2 tokens:") and "the slot was cancelled" in column.halted


def test_no_logprobs_is_said_in_words(monkeypatch):
    plain = [{"choices": [{"index": 0, "text": " hello", "logprobs": None, "finish_reason": None}]},
             finish_event("stop")]
    install(monkeypatch, "fake-plain", FakeEngine(plain))
    [column] = run_columns([side_by_side.contender("fake-plain", "raw", "Hi")])
    assert column.stop == "halted" and "without token probabilities" in column.halted
    install(monkeypatch, "fake-capped", FakeEngine(plain), top_logprobs=0)
    [column] = run_columns([side_by_side.contender("fake-capped", "raw", "Hi")])
    assert "gives no logprobs (top_logprobs = 0" in column.halted


def test_closing_the_columns_closes_the_engine_stream(monkeypatch):
    events = [token_event(5, math.log(0.4), [(5, math.log(0.4))]) for _ in range(6)] + [finish_event("length")]
    fake = FakeEngine(events)
    install(monkeypatch, "fake-long", fake, role="base")
    stream = side_by_side.iter_side_by_side([side_by_side.contender("fake-long", "raw", "Hi")], GREEDY, 6, 0)
    next(stream), next(stream)  # the empty columns, then the first token
    assert fake.bodies and not fake.bodies[0].closed
    stream.close()  # what Stop does (through the tab's handler)
    assert fake.bodies[0].closed


def legacy_logprobs() -> dict:
    return {"logprobs": {"tokens": [" a"], "token_logprobs": [math.log(0.5)],
                         "top_logprobs": [{" a": math.log(0.5), " b": math.log(0.2)}]}}


def test_text_only_logprobs_and_the_other_kinds_parameters():
    [(chosen, top)] = streamed_tokens(legacy_logprobs())
    assert chosen.token_id is None and chosen.prob == pytest.approx(0.5) and [t.text for t in top] == [" a", " b"]
    params, note = engine_sampling("ollama", SamplingSettings(temperature=0.8, top_k=40), 1)
    assert "top_k" not in params and "top-k not sent" in note and params["seed"] == 1
    params, note = engine_sampling("vllm", SamplingSettings(temperature=0.8), 2)
    assert params["top_k"] == -1 and note.startswith("sampled by the engine (vllm), seed 2")


def test_text_only_records_say_so(monkeypatch):
    events = [{"choices": [{"index": 0, "text": " a", "finish_reason": None, **legacy_logprobs()}]},
              finish_event("length")]
    install(monkeypatch, "fake-openai", FakeEngine(events), tokenizer=None, role="base", kind="openai")
    run = EngineRun("fake-openai", SamplingSettings(temperature=0.8), 1, 0, prompt_text="Hi")
    [record] = list(run)
    assert record.id == -1 and record.text == " a" and record.rank == 1 and record.stop == "max_tokens"
    assert "tokens named by text only" in run.note


def test_the_template_view_of_an_engine_model(monkeypatch):
    from playground.ui import chat_tab

    install(monkeypatch, "fake-chat", FakeEngine())
    template, loss = chat_tab.template_views([], "", "fake-chat", False)
    assert "im_start" in template and "im_start" in loss  # the entry's tokenizer renders it
    install(monkeypatch, "fake-opaque", FakeEngine(), tokenizer=None)
    template, loss = chat_tab.template_views([], "", "fake-opaque", False)
    assert template == loss and "has no tokenizer named in its entry" in template
    assert "is the engine&#x27;s own and is not shown" in template
