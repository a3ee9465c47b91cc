"""Decode steps of different sessions share one forward pass, with each session's own results."""

from __future__ import annotations

import threading

import pytest
import torch

from playground import batching, generation, limits
from playground.models import load_model
from playground.sampling import SamplingSettings

# top-k keeps the draws away from knife edges: a random model's distribution is almost flat, and a
# batched matmul rounds differently (about 1e-7) from a lone one; with 49k nearly equal tokens in
# play such a difference can move a draw, with 20 it practically cannot.
HOT = SamplingSettings(temperature=1.3, top_k=20)
PROMPTS = ["Hello", "The cat sat on the mat and", "One two three four five six seven eight nine ten eleven",
           "a", "Where is the library? It is", "Numbers: 12345 67890", "Once upon a time there", "Q: why"]


@pytest.fixture
def loaded():
    loaded = load_model("tiny-random")
    loaded.runtime.drop("decode-batcher")
    return loaded


def _ids(loaded, text):
    return loaded.tokenizer(text)["input_ids"]


def _together(fn, count):
    """Run fn(i) for i in range(count) in threads released at once; their results in order."""
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return results


def _generate(loaded, i, steps=12):
    result = generation.generate(loaded, _ids(loaded, PROMPTS[i]), HOT, steps, seed=i)
    return result.token_ids, [r.raw_prob for r in result.records]


def test_concurrent_generations_equal_the_same_runs_alone(loaded):
    alone = [_generate(loaded, i) for i in range(len(PROMPTS))]
    batcher = batching.decode_batcher_for(loaded)
    batcher.batch_sizes.clear()
    together = _together(lambda i: _generate(loaded, i), len(PROMPTS))
    assert max(batcher.batch_sizes) > 1, "the steps never shared a forward pass"
    for (tokens, probs), (tokens_alone, probs_alone) in zip(together, alone):
        assert tokens == tokens_alone
        assert probs == pytest.approx(probs_alone, abs=1e-5)


def test_samples_and_single_runs_share_steps_and_keep_their_results(loaded):
    prompt = _ids(loaded, "Samples and a single run")

    def work(i):
        if i == 0:
            *_, last = generation.iter_samples(loaded, prompt, HOT, 4, 8, seed=7)
            return [s.token_ids for s in last.samples]
        return _generate(loaded, i, 8)[0]

    alone = [work(i) for i in range(4)]
    assert _together(work, 4) == alone


def test_a_fault_in_a_shared_step_leaves_every_cache_as_it_was(loaded, monkeypatch):
    ids = [_ids(loaded, p) for p in PROMPTS[:4]]
    clean = []
    for seq in ids:
        decoder = generation.Decoder(loaded, seq)
        clean.append([decoder.stepper.append(t).clone() for t in (5, 6, 7)])

    decoders = [generation.Decoder(loaded, seq) for seq in ids]
    for decoder in decoders:
        decoder.stepper.append(5)
    real = batching._decode_batch
    calls = []

    def failing_once(loaded_, steps):  # the shared forward fails once, like an out-of-memory error
        calls.append(len(steps))
        if len(calls) == 1 and len(steps) > 1:
            with monkeypatch.context() as patch:
                patch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=1")
                return real(loaded_, steps)
        return real(loaded_, steps)

    monkeypatch.setattr(batching, "_decode_batch", failing_once)
    loaded.runtime.drop("decode-batcher")
    # hold the worker until all four steps wait, so they form one batch
    gate = threading.Event()
    original = batching.Batcher._collect

    def gated(self):
        gate.wait(timeout=30)
        return original(self)

    monkeypatch.setattr(batching.Batcher, "_collect", gated)

    def step(i):
        try:
            return decoders[i].stepper.append(6)
        except limits.InjectedFault:
            return None

    threads = []
    results = [None] * 4
    for i in range(4):
        thread = threading.Thread(target=lambda i=i: results.__setitem__(i, step(i)))
        thread.start()
        threads.append(thread)
    while batching.decode_batcher_for(loaded).requests.qsize() < 4:
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join(timeout=60)
    assert calls[0] == 4 and results == [None] * 4  # one shared forward, which failed for all four
    for decoder, expected in zip(decoders, clean):  # every sequence is as it was: the step runs again
        assert decoder.stepper.ids[-1] == 5
        assert torch.allclose(decoder.stepper.append(6), expected[1], atol=1e-5)
        assert torch.allclose(decoder.stepper.append(7), expected[2], atol=1e-5)


def test_beam_searches_share_steps_with_generations_and_keep_their_trees(loaded):
    from playground import beam

    settings = beam.BeamSettings(num_beams=3, max_new_tokens=8)

    def work(i):
        if i % 2 == 0:
            result = beam.beam_search(loaded, _ids(loaded, PROMPTS[i]), settings)
            return [n.token_id for n in result.nodes], [s.ids for s in result.sequences], [n.score for n in result.nodes]
        return _generate(loaded, i, 8)

    alone = [work(i) for i in range(6)]
    batcher = batching.decode_batcher_for(loaded)
    batcher.batch_sizes.clear()
    together = _together(work, 6)
    assert max(batcher.batch_sizes) > 1
    for got, expected in zip(together, alone):
        assert got[:-1] == expected[:-1]  # the same tokens (tree nodes, returned sequences)
        assert got[-1] == pytest.approx(expected[-1], abs=1e-4)  # the same scores / probabilities
