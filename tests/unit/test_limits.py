"""Time limits, injected faults and numeric clamping."""

from __future__ import annotations

import time

import pytest

from playground import decoding, limits, models
from playground.errors import PlaygroundError


def test_deadline_stops_model_calls():
    loaded = models.load_model("tiny-random")
    stepper = decoding.Stepper(loaded, [1, 2, 3])
    with limits.deadline(0.2):
        time.sleep(0.3)
        with pytest.raises(limits.RequestTimeout, match="time limit"):
            stepper.append(4)
    stepper.append(4)  # outside the block there is no limit


def test_batched_request_respects_deadline(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_BATCHING", "1")
    decoding.forget_distributions(models.load_model("tiny-random"))
    with limits.deadline(0.0):
        with pytest.raises(limits.RequestTimeout):
            decoding.next_token_distribution("tiny-random", "timed out prompt")


def test_injected_fault_fails_only_the_call(monkeypatch):
    loaded = models.load_model("tiny-random")
    monkeypatch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=1")
    with pytest.raises(limits.InjectedFault, match="out of memory"):
        decoding.Stepper(loaded, [1, 2, 3])
    monkeypatch.delenv("PLAYGROUND_FAULT_INJECTION")
    assert decoding.Stepper(loaded, [1, 2, 3]).logits.shape == (loaded.vocab_size,)


@pytest.mark.parametrize("value, expected", [(3, 3), ("7", 7), (1e9, 10), (-5, 1), (2.6, 3), (True, 1)])
def test_clamp_int(value, expected):
    assert limits.clamp_int(value, "beams", 1, 10) == expected


@pytest.mark.parametrize("value", [float("nan"), "abc", None, [1]])
def test_clamp_rejects_non_numbers(value):
    with pytest.raises(PlaygroundError, match="must be a number"):
        limits.clamp_float(value, "temperature", 0, 5)
