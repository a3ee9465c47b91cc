"""Faults under load, in-process on `tiny-random`, through the tabs' own handlers.

What a lecture hall does to the server when memory runs out:

1. Several students' requests share one batched forward (`playground.batching`: next-token
   requests and decode steps) and that forward fails (`PLAYGROUND_FAULT_INJECTION`). Every request
   in the failed batch gets the out-of-memory message, every other request gets exactly what it
   gets without faults, and every session that was hit goes on as if nothing had happened (its
   tokens so far kept, its continuation that of a clean run).
2. A fault in the middle of Generate N, K samples, a beam search and a side-by-side stream, placed
   exactly (faults switched on after a given step), with both kinds of injected fault: the CUDA
   out-of-memory error and Python's own `MemoryError` (`kind=memory`).
3. A real `MemoryError` raised inside the model's forward pass, after the first layer has already
   written its KV entries (a half-updated cache), alone and in a shared batch.

Each test ends with a model call on a fresh prompt (`still_serving`). Results are compared with
clean runs of the same requests alone: tokens exactly, logits within 1e-4 (sampling uses top-k 20,
away from the knife edges of a random model's flat distribution; see test_decode_batching.py).
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections import Counter

import gradio as gr
import pytest
import torch

from playground import batching, decoding, lab, limits, local_lab
from playground.models import load_model
from playground.ui import beam_tab, chat_tab, sampling_tab
from playground.ui.common import OUT_OF_MEMORY
from tests.unit.test_decode_batching import PROMPTS, _together

MODEL = "tiny-random"
FAULTS = "PLAYGROUND_FAULT_INJECTION"
TOP_N = 10
HOT = (1.3, 20, 1.0, 0.0, "transformers")  # widget values: temperature, top-k, top-p, min-p, order
GREEDY = (0.0, 0, 1.0, 0.0, "transformers")
MESSAGES: Counter = Counter()  # out-of-memory messages per handler (all tests)
_messages_lock = threading.Lock()


class Hall:
    """The model with fresh batchers, pools and caches; faults switched on and off; every batched
    forward logged as (kind, requests in it, failed)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.loaded = load_model(MODEL)
        for part in ("decode-batcher", "next-token-batcher", "lab-decoders"):
            self.loaded.runtime.drop(part)
        decoding.forget_distributions(self.loaded)
        monkeypatch.delenv(FAULTS, raising=False)
        monkeypatch.setattr(limits, "_fault_counter", itertools.count(1))
        monkeypatch.setattr(sampling_tab, "PLOT_INTERVAL_SECONDS", 0.0)  # a view after every step
        self.batches: list[tuple[str, int, bool]] = []
        self.fired = 0
        self.budget: int | None = None
        self._lock = threading.Lock()
        for kind, name in (("decode", "_decode_batch"), ("next", "_next_token_batch")):
            monkeypatch.setattr(batching, name, self._logged(kind, getattr(batching, name)))
        real_fault = limits.maybe_inject_fault

        def counted_fault(site):
            try:
                real_fault(site)
            except BaseException:
                with self._lock:
                    self.fired += 1
                    if self.budget is not None and self.fired >= self.budget:
                        os.environ.pop(FAULTS, None)  # spent: the rest of the run is clean
                raise

        monkeypatch.setattr(limits, "maybe_inject_fault", counted_fault)

    def _logged(self, kind, run):
        def logged(loaded, payloads):
            try:
                result = run(loaded, payloads)
            except BaseException:
                self.batches.append((kind, len(payloads), True))
                raise
            self.batches.append((kind, len(payloads), False))
            return result
        return logged

    def faults(self, spec: str | None, budget: int | None = None) -> None:
        """Switch injected faults on (`spec`, at most `budget` of them) or off (None)."""
        self.budget, self.fired = budget, 0
        if spec is None:
            os.environ.pop(FAULTS, None)
        else:
            self.monkeypatch.setenv(FAULTS, spec)

    def batch_together(self, seconds: float = 0.02) -> None:
        """Each batch waits a moment for more requests (the real window), so threads share forwards."""
        self.monkeypatch.setattr(batching, "WINDOW_SECONDS", seconds)

    def failed_shared(self, kind: str) -> int:
        """How many batched forwards of `kind` with more than one request failed."""
        return sum(1 for k, n, failed in self.batches if k == kind and n > 1 and failed)

    def forget(self) -> None:
        """Drop every cached distribution and pooled decoder: the next run computes everything again."""
        decoding.forget_distributions(self.loaded)
        self.loaded.runtime.drop("lab-decoders")


@pytest.fixture
def hall(monkeypatch):
    return Hall(monkeypatch)


# -- calling handlers as Gradio does -----------------------------------------------------------


def call(fn, *args):
    """Run a handler to its end: ("ok", views) or ("oom", views streamed before the error).

    Any other error fails the test: a fault must become the out-of-memory message, never the
    internal-error text.
    """
    views = []
    try:
        result = fn(*args)
        if hasattr(result, "__next__"):
            views.extend(result)
        else:
            views.append(result)
    except gr.Error as exc:
        assert exc.message == OUT_OF_MEMORY, f"{fn.__name__}: {exc.message!r}"
        with _messages_lock:
            MESSAGES[fn.__name__] += 1
        return "oom", views
    return "ok", views


def until_ok(fn, *args, tries: int = 60):
    """The handler's last view, retried after out-of-memory messages; and how many there were."""
    for attempt in range(tries):
        status, views = call(fn, *args)
        if status == "ok":
            return views[-1], attempt
    pytest.fail(f"{fn.__name__} never succeeded in {tries} tries")


def open_lab(prompt: str, rules=HOT):
    """A new sampling-lab session on `prompt` (retried through faults): its state, its logits."""
    view, _ = until_ok(sampling_tab.show_distribution, MODEL, False, prompt, TOP_N, False, *rules)
    state = view[0]
    return state, decoding.cached_ranked(state.loaded, state.ids).logits


def generated(state) -> list[tuple[int, float]]:
    """(id, raw probability) of the session's tokens, read as the page reads them: no model call."""
    return [(r.id, r.raw_prob) for r in state.records]


def generate_through_faults(state, n: int, rules, seed: int, clean_ids=None) -> dict:
    """Generate N until the session has `n` tokens: after each out-of-memory message the tokens so far
    must be intact (a prefix of the clean run's), and the next Generate N goes on from them."""
    ooms = midstream = 0
    for _ in range(200):
        have = len(state.records)
        if have >= n:
            break
        before = generated(state)
        status, _ = call(sampling_tab.generate_n, state, n - have, "", TOP_N, False, *rules, seed)
        if status == "oom":
            ooms += 1
            midstream += len(state.records) > have  # it had generated tokens when the fault came
            now = [token for token, _ in generated(state)]
            assert generated(state)[: len(before)] == before, "a fault changed tokens generated before it"
            if clean_ids is not None:
                assert now == clean_ids[: len(now)], "the tokens kept after a fault are not the clean run's"
    assert len(state.records) == n
    return {"ids": [r.id for r in state.records], "probs": [r.raw_prob for r in state.records],
            "ooms": ooms, "midstream": midstream}


def same_probs(got, expected):
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-7)


def still_serving(hall: Hall) -> None:
    """With faults off, a fresh prompt's distribution and a next token: model calls, not a tokenizer."""
    hall.faults(None)
    status, views = call(sampling_tab.show_distribution, MODEL, False, f"Still here? {uuid.uuid4().hex[:8]}",
                         TOP_N, False, *HOT)
    assert status == "ok"
    status, views = call(sampling_tab.next_token, views[-1][0], TOP_N, False, *HOT, 3)
    assert status == "ok" and len(views[-1][5]["generated"]) == 1


# -- 1. faults while several sessions share one batched forward ---------------------------------


def test_faults_in_shared_next_token_batches(hall):
    prompts = [f"{PROMPTS[i % len(PROMPTS)]} (student {i})" for i in range(24)]
    clean = {p: open_lab(p)[1] for p in prompts}
    hall.forget()
    hall.batch_together()
    hall.faults("forward:every=2")

    def student(i):  # 8 students, 3 prompts each, at once
        return {p: open_lab(p)[1] for p in prompts[i::8]}

    together = {}
    for result in _together(student, 8):
        together.update(result)
    assert hall.failed_shared("next") >= 1, hall.batches
    for prompt in prompts:  # the requests in a failed batch got the message, then their own logits
        assert torch.allclose(together[prompt], clean[prompt], atol=1e-4), prompt
    still_serving(hall)


def test_faults_in_shared_decode_steps_mid_generate_n(hall):
    sessions = 6
    clean = []
    for i in range(sessions):
        state, _ = open_lab(PROMPTS[i])
        clean.append(generate_through_faults(state, 16, HOT, seed=i))
    hall.forget()
    hall.batch_together(0.01)
    hall.faults("forward:every=4")

    def student(i):
        state, _ = open_lab(PROMPTS[i])
        return generate_through_faults(state, 16, HOT, seed=i, clean_ids=clean[i]["ids"])

    together = _together(student, sessions)
    assert hall.failed_shared("decode") >= 1, hall.batches
    assert sum(r["midstream"] for r in together) >= 1
    for got, expected in zip(together, clean):  # hit or not, every session ends with the clean tokens
        assert got["ids"] == expected["ids"]
        same_probs(got["probs"], expected["probs"])
    still_serving(hall)


# -- a hall: every kind of request at once, through faults --------------------------------------


def _samples(state, seed):
    summary = until_ok(sampling_tab.draw_samples, state, 3, 5, "", TOP_N, *HOT, seed)[0][2]
    return [[t["id"] for t in s["tokens"]] for s in summary["samples"]]


def _beam(prompt):
    rows = until_ok(beam_tab.run_search, prompt, MODEL, False, 3, 6, 1.0, "false", 2, False, False, 1, False)[0][3]
    return [row[:3] for row in rows], [number for row in rows for number in row[3:]]


def _side_by_side(prompt, seed):
    columns = until_ok(chat_tab.side_by_side, prompt, MODEL, MODEL, 5, *HOT, seed)[0][2]
    return [[r.id for r in column.records] for column in columns]


def hall_student(i: int) -> dict:
    """One student's lecture: a distribution, two next tokens, Generate N, K samples, a beam search
    and a side-by-side run, starting at a different point of the script than the others."""
    prompt = PROMPTS[i]
    state, logits = open_lab(prompt)
    out = {"logits": logits}
    steps = {
        "next": lambda: [until_ok(sampling_tab.next_token, state, TOP_N, False, *HOT, i) for _ in range(2)],
        "generate": lambda: generate_through_faults(state, len(state.records) + 6, HOT, seed=i),
        "samples": lambda: _samples(state, seed=10 + i),
        "beam": lambda: _beam(prompt),
        "side": lambda: _side_by_side(prompt, seed=20 + i),
    }
    names = list(steps)
    for name in names[i % len(names):] + names[: i % len(names)]:
        out[name] = steps[name]()
    out["tokens"] = generated(state)
    return out


def test_a_hall_of_mixed_requests_through_memory_errors(hall):
    """Real `MemoryError`s (kind=memory) land on whatever is running: next tokens, Generate N, K samples,
    beam steps, side-by-side columns, sharing batches. Every student's results are the clean ones."""
    sessions = 5
    clean = [hall_student(i) for i in range(sessions)]
    hall.forget()
    hall.batch_together(0.01)
    hall.faults("forward:every=3,kind=memory", budget=12)
    MESSAGES.clear()
    together = _together(hall_student, sessions)
    assert hall.fired == 12 and hall.failed_shared("decode") >= 1, hall.batches
    print(f"\nout-of-memory messages by handler: {dict(MESSAGES)}")
    assert len(MESSAGES) >= 3  # the faults landed on several kinds of request
    for i, (got, expected) in enumerate(zip(together, clean)):
        assert torch.allclose(got["logits"], expected["logits"], atol=1e-4)
        assert [t for t, _ in got["tokens"]] == [t for t, _ in expected["tokens"]], f"student {i}: lab tokens"
        same_probs([p for _, p in got["tokens"]], [p for _, p in expected["tokens"]])
        assert got["samples"] == expected["samples"], f"student {i}: samples"
        assert got["side"] == expected["side"], f"student {i}: side by side"
        assert got["beam"][0] == expected["beam"][0], f"student {i}: beams"
        assert got["beam"][1] == pytest.approx(expected["beam"][1], abs=2e-4)
    still_serving(hall)


# -- 2. a fault at a chosen step of each stream -------------------------------------------------


def _fault_after(hall, stream, views: int, spec: str):
    """Consume `views` views of a streaming handler, then switch faults on for the rest of it:
    the views seen and the error's message."""
    seen = [next(stream) for _ in range(views)]
    hall.faults(spec)
    try:
        with pytest.raises(gr.Error) as error:
            for view in stream:
                seen.append(view)
    finally:
        hall.faults(None)
    return seen, error.value.message


@pytest.mark.parametrize("kind", ["cuda", "memory"])
def test_a_fault_mid_generate_n_keeps_the_tokens_and_the_greedy_continuation(hall, kind):
    clean_state, _ = open_lab(PROMPTS[1], GREEDY)
    clean = generate_through_faults(clean_state, 12, GREEDY, seed=1)["ids"]
    hall.forget()
    state, _ = open_lab(PROMPTS[1], GREEDY)
    stream = sampling_tab.generate_n(state, 12, "", TOP_N, False, *GREEDY, 1)
    seen, message = _fault_after(hall, stream, 4, f"forward:every=1,kind={kind}")
    assert message == OUT_OF_MEMORY and len(seen) == 4
    assert [r.id for r in state.records] == clean[:4]  # the 4 tokens streamed before the fault
    status, views = call(sampling_tab.refilter, state, TOP_N, False, *GREEDY)  # the page's view of it
    assert status == "ok" and [g["id"] for g in views[-1][5]["generated"]] == clean[:4]
    assert generate_through_faults(state, 12, GREEDY, seed=1)["ids"] == clean
    still_serving(hall)


@pytest.mark.parametrize("kind", ["cuda", "memory"])
def test_a_fault_mid_k_samples_leaves_the_session_and_a_rerun_is_clean(hall, kind):
    state, _ = open_lab(PROMPTS[2])
    clean = _samples(state, seed=5)
    ids = list(state.ids)
    stream = sampling_tab.draw_samples(state, 3, 5, "", TOP_N, *HOT, 5)
    seen, message = _fault_after(hall, stream, 2, f"forward:every=1,kind={kind}")
    assert message == OUT_OF_MEMORY and "step 2 of 5" in seen[-1][0]  # a running view came before
    assert state.ids == ids and state.samples is None
    assert _samples(state, seed=5) == clean
    still_serving(hall)


@pytest.mark.parametrize("kind", ["cuda", "memory"])
def test_a_fault_mid_beam_search_and_a_rerun_is_clean(hall, kind):
    prompt = PROMPTS[3]
    clean = _beam(prompt)
    steps = []

    def progress(value, desc=None):  # the tab's progress bar: faults from step 3 on
        if isinstance(value, tuple):
            steps.append(value[0])
            if value[0] == 3:
                hall.faults(f"forward:every=1,kind={kind}")

    try:
        with pytest.raises(gr.Error) as error:
            beam_tab.run_search(prompt, MODEL, False, 3, 6, 1.0, "false", 2, False, False, 1, False, progress)
    finally:
        hall.faults(None)
    assert error.value.message == OUT_OF_MEMORY and steps == [1, 2, 3]
    assert _beam(prompt) == clean
    still_serving(hall)


@pytest.mark.parametrize("kind", ["cuda", "memory"])
def test_a_fault_mid_side_by_side_and_a_rerun_is_clean(hall, kind):
    prompt = PROMPTS[4]
    clean = _side_by_side(prompt, seed=9)
    stream = chat_tab.side_by_side(prompt, MODEL, MODEL, 5, *HOT, 9)
    seen, message = _fault_after(hall, stream, 4, f"forward:every=1,kind={kind}")  # waiting, prompts, 2 rounds
    assert message == OUT_OF_MEMORY
    assert [[r.id for r in c.records] for c in seen[-1][2]] == [ids[:2] for ids in clean]
    assert _side_by_side(prompt, seed=9) == clean
    still_serving(hall)


# -- 3. a real MemoryError from inside the forward pass ------------------------------------------


class MemoryErrorInLayer:
    """Layer 0's MLP raises a bare `MemoryError` (what a failed allocation raises) `times` times once
    armed: by then layer 0's attention has written its KV entries, the other layers' not."""

    def __init__(self, loaded, monkeypatch):
        self.left = 0
        self.lock = threading.Lock()
        mlp = loaded.model.model.layers[0].mlp
        real = mlp.forward

        def forward(*args, **kwargs):
            with self.lock:
                fire, self.left = self.left > 0, max(0, self.left - 1)
            if fire:
                raise MemoryError()
            return real(*args, **kwargs)

        monkeypatch.setattr(mlp, "forward", forward)

    def arm(self, times: int = 1) -> None:
        with self.lock:
            self.left = times


def _cache_is_whole(state) -> None:
    """The session's pooled decoder: every layer's KV cache as long as its fed ids, or no cache at all
    (dropped: the next step encodes the sequence again). Never a half-written one."""
    decoder = local_lab._pool(state.loaded).pop(state.key)
    try:
        cache, length = decoder.stepper.cache, len(decoder.stepper.ids)
        if cache is not None:
            assert [layer.keys.shape[-2] for layer in cache.layers] == [length] * len(cache.layers)
    finally:
        local_lab._pool(state.loaded).put(state.key, decoder)


def test_a_real_memory_error_in_a_lone_decode_step_leaves_no_half_written_cache(hall, monkeypatch):
    clean_state, _ = open_lab(PROMPTS[5], GREEDY)
    clean = generate_through_faults(clean_state, 10, GREEDY, seed=1)["ids"]
    hall.forget()
    broken = MemoryErrorInLayer(hall.loaded, monkeypatch)
    state, _ = open_lab(PROMPTS[5], GREEDY)
    stream = sampling_tab.generate_n(state, 10, "", TOP_N, False, *GREEDY, 1)
    seen = [next(stream) for _ in range(3)]
    broken.arm()
    with pytest.raises(gr.Error) as error:
        list(stream)
    assert error.value.message == OUT_OF_MEMORY and len(seen) == 3  # not the internal-error text
    assert [r.id for r in state.records] == clean[:3]
    _cache_is_whole(state)  # layer 0 had written the failed step's entries: not kept
    assert generate_through_faults(state, 10, GREEDY, seed=1)["ids"] == clean
    _cache_is_whole(state)
    still_serving(hall)


def test_a_half_written_cache_is_cut_back_not_dropped(hall, monkeypatch):
    from playground.decoding import Stepper

    stepper = Stepper(hall.loaded, hall.loaded.tokenizer("A half-written cache")["input_ids"])
    MemoryErrorInLayer(hall.loaded, monkeypatch).arm()
    with pytest.raises(MemoryError):
        stepper.append(5)
    assert stepper.cache is not None
    assert [layer.keys.shape[-2] for layer in stepper.cache.layers] == [len(stepper.ids)] * len(stepper.cache.layers)


def test_a_real_memory_error_in_a_shared_decode_step_fails_that_batch_only(hall, monkeypatch):
    sessions = 4
    clean = []
    for i in range(sessions):
        state, _ = open_lab(PROMPTS[i])
        clean.append(generate_through_faults(state, 8, HOT, seed=i)["ids"])
    hall.forget()
    states = [open_lab(PROMPTS[i])[0] for i in range(sessions)]
    for i, state in enumerate(states):  # two tokens each, alone
        generate_through_faults(state, 2, HOT, seed=i)
    broken = MemoryErrorInLayer(hall.loaded, monkeypatch)
    hall.loaded.runtime.drop("decode-batcher")  # a new worker, held until all four steps wait
    gate = threading.Event()
    real_collect = batching.Batcher._collect

    def gated(self):
        gate.wait(timeout=30)
        return real_collect(self)

    def release_when_all_wait():
        while batching.decode_batcher_for(hall.loaded).requests.qsize() < sessions:
            threading.Event().wait(0.005)
        gate.set()

    monkeypatch.setattr(batching.Batcher, "_collect", gated)
    broken.arm()
    threading.Thread(target=release_when_all_wait, daemon=True).start()
    # each student presses "Next token" at the same moment: one shared forward, which fails
    outcomes = _together(lambda i: call(sampling_tab.next_token, states[i], TOP_N, False, *HOT, i)[0], sessions)
    assert outcomes == ["oom"] * sessions and hall.batches[-1] == ("decode", sessions, True)
    for i, state in enumerate(states):
        assert [r.id for r in state.records] == clean[i][:2]
        _cache_is_whole(state)
    together = _together(lambda i: generate_through_faults(states[i], 8, HOT, seed=i)["ids"], sessions)
    assert together == clean
    still_serving(hall)


def test_a_real_memory_error_in_a_shared_next_token_batch(hall, monkeypatch):
    prompts = [f"{PROMPTS[i]} (a real MemoryError)" for i in range(4)]
    clean = [open_lab(p)[1] for p in prompts]
    hall.forget()
    hall.batch_together(0.05)
    broken = MemoryErrorInLayer(hall.loaded, monkeypatch)
    broken.arm()
    outcomes = _together(lambda i: call(sampling_tab.show_distribution, MODEL, False, prompts[i], TOP_N, False,
                                        *HOT)[0], 4)
    assert "oom" in outcomes and any(k == "next" and failed for k, _, failed in hall.batches)
    for prompt, expected in zip(prompts, clean):  # nothing wrong was cached for the failed ones
        assert torch.allclose(open_lab(prompt)[1], expected, atol=1e-4)
    still_serving(hall)


# -- the fault modes themselves ---------------------------------------------------------------


def test_fault_modes(monkeypatch):
    monkeypatch.setattr(limits, "_fault_counter", itertools.count(1))
    monkeypatch.setenv(FAULTS, "forward:every=2,kind=memory")
    limits.maybe_inject_fault("forward")
    with pytest.raises(MemoryError) as error:
        limits.maybe_inject_fault("forward")
    assert type(error.value) is MemoryError and "out of memory" not in str(error.value)  # only its type tells
    limits.maybe_inject_fault("tokenize")  # another site: never
    monkeypatch.setenv(FAULTS, "forward:every=1")
    with pytest.raises(limits.InjectedFault, match="out of memory"):
        limits.maybe_inject_fault("forward")
    monkeypatch.setenv(FAULTS, "forward:every=1,kind=disk")
    with pytest.raises(ValueError, match="unknown kind 'disk'"):
        limits.maybe_inject_fault("forward")
