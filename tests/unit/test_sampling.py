"""The sampling rules equal transformers' warpers (in generate's order) on random logits."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings as hsettings, strategies as st
from transformers import LogitsProcessorList
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.errors import PlaygroundError
from playground.sampling import (
    PRESETS,
    RankedLogits,
    SamplingSettings,
    entropy_bits,
    filter_logits,
    sample_token,
)


def reference_probs(logits: torch.Tensor, s: SamplingSettings) -> torch.Tensor:
    """Processed probabilities as transformers computes them (the list `model.generate` builds)."""
    if s.greedy:
        out = torch.zeros_like(logits)
        out[int(torch.argmax(logits))] = 1.0
        return out
    warpers = []
    if s.order == "transformers" and s.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(s.temperature))
    if s.top_k:
        warpers.append(TopKLogitsWarper(top_k=s.top_k))
    if s.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=s.top_p))
    if s.min_p > 0:
        warpers.append(MinPLogitsWarper(min_p=s.min_p))
    scores = LogitsProcessorList(warpers)(torch.zeros(1, 1, dtype=torch.long), logits[None].clone())[0]
    if s.order == "temperature_last" and s.temperature != 1.0:
        scores = TemperatureLogitsWarper(s.temperature)(None, scores)
    return torch.softmax(scores, dim=-1)


def top_p_cut_is_ambiguous(logits: torch.Tensor, s: SamplingSettings) -> bool:
    """Whether some token's ascending cumulative mass is within float error of the top-p cut."""
    if s.greedy or s.top_p >= 1.0:
        return False
    warpers = [TemperatureLogitsWarper(s.temperature)] if s.order == "transformers" and s.temperature != 1.0 else []
    if s.top_k:
        warpers.append(TopKLogitsWarper(top_k=s.top_k))
    scores = LogitsProcessorList(warpers)(torch.zeros(1, 1, dtype=torch.long), logits[None].clone())[0]
    cumulative = torch.softmax(scores.sort().values.double(), dim=0).cumsum(0)
    return bool(((cumulative - (1.0 - s.top_p)).abs() < 1e-5).any())


def assert_matches(logits: torch.Tensor, s: SamplingSettings, ties: bool = False) -> None:
    ours = filter_logits(logits, s)
    ref = reference_probs(logits, s)
    probs = ours.probs
    assert not torch.isnan(probs).any()
    assert ours.kept_count >= 1
    assert math.isclose(float(probs.sum()), 1.0, abs_tol=1e-4)
    assert ours.kept_count == int(ours.kept.sum())
    if ties:
        # Among tokens tied at a top-p cut transformers keeps whichever its (unstable) sort puts
        # last: compare how many survive and the multiset of their probabilities.
        assert ours.kept_count == int((ref > 0).sum())
        torch.testing.assert_close(probs.sort().values, ref.sort().values, atol=1e-5, rtol=1e-4)
    else:
        assert torch.equal(ours.kept, ref > 0), (s, ours.kept_count, int((ref > 0).sum()))
        torch.testing.assert_close(probs, ref, atol=1e-5, rtol=1e-4)


SETTINGS = [
    SamplingSettings(temperature=1.0),
    SamplingSettings(temperature=0.0),
    SamplingSettings(temperature=0.7, top_k=10),
    SamplingSettings(temperature=1.5, top_p=0.9),
    SamplingSettings(temperature=1.0, min_p=0.1),
    SamplingSettings(temperature=2.0, top_k=50, top_p=0.8, min_p=0.05),
    SamplingSettings(temperature=0.3, top_k=3000, top_p=0.95),  # top-k wider than the first candidates
    SamplingSettings(temperature=5.0, top_p=0.99),  # a nucleus of thousands of tokens
    SamplingSettings(temperature=4.0, min_p=0.01),
    SamplingSettings(temperature=1.0, top_k=1),
    SamplingSettings(temperature=1.0, top_p=0.01),
    SamplingSettings(temperature=1.0, min_p=1.0),
    SamplingSettings(temperature=1.0, min_p=0.0, top_p=1.0),  # min_p 0 and top_p 1: off
    SamplingSettings(temperature=0.8, top_k=10, top_p=0.5, order="temperature_last"),
    SamplingSettings(temperature=3.0, top_p=0.9, min_p=0.02, order="temperature_last"),
] + list(PRESETS.values())


@pytest.mark.parametrize("vocab", [50, 49152])
@pytest.mark.parametrize("s", SETTINGS, ids=str)
def test_filters_equal_transformers_warpers(vocab, s):
    generator = torch.Generator().manual_seed(vocab)
    for scale in (1.0, 4.0):
        logits = torch.randn(vocab, generator=generator) * scale
        assert_matches(logits, s)


@pytest.mark.parametrize("s", SETTINGS, ids=str)
def test_ties(s):
    # few distinct values: many ties, including at the top-k and top-p cuts
    generator = torch.Generator().manual_seed(1)
    logits = torch.randint(0, 6, (4000,), generator=generator).float()
    assert_matches(logits, s, ties=True)
    ours = filter_logits(logits, s)
    if s.top_k and not s.greedy:  # top-k keeps every token tied with the k-th
        kth = logits.sort(descending=True).values[min(s.top_k, 4000) - 1]
        assert ours.kept_count >= min(int((logits > kth).sum()) + 1, 4000) or s.top_p < 1 or s.min_p > 0


def test_greedy_picks_first_of_tied_maxima():
    logits = torch.tensor([1.0, 3.0, 2.0, 3.0])
    result = filter_logits(logits, SamplingSettings(temperature=0.0))
    assert result.kept_ids.tolist() == [1]
    assert sample_token(result) == 1


def test_top_k_at_least_vocab_keeps_everything():
    logits = torch.randn(100)
    for k in (100, 101, 10**6):
        result = filter_logits(logits, SamplingSettings(top_k=k))
        assert result.kept_count == 100
        assert_matches(logits, SamplingSettings(top_k=k))


@pytest.mark.parametrize("temperature", [1e-3, 1e-6, 1e-12, 1e-30])
def test_tiny_temperatures_are_finite(temperature):
    logits = torch.randn(5000, generator=torch.Generator().manual_seed(3)) * 10
    for s in (SamplingSettings(temperature=temperature), SamplingSettings(temperature=temperature, top_p=0.9),
              SamplingSettings(temperature=temperature, min_p=0.1, top_k=20)):
        result = filter_logits(logits, s)
        assert torch.isfinite(result.kept_probs).all()
        assert math.isclose(float(result.kept_probs.sum()), 1.0, abs_tol=1e-5)
        assert int(result.probs.argmax()) == int(logits.argmax())
        assert result.probs.max() > 0.99
        assert math.isfinite(result.entropy_bits)
        ref = reference_probs(logits, s)
        if torch.isfinite(ref).all():  # transformers itself overflows for the tiniest ones
            torch.testing.assert_close(result.probs, ref, atol=1e-5, rtol=1e-4)


@given(
    values=st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=1, max_size=60),
    temperature=st.sampled_from([0.0, 0.05, 0.5, 1.0, 2.5, 5.0]),
    top_k=st.integers(0, 70),
    top_p=st.floats(0.01, 1.0),
    min_p=st.floats(0.0, 1.0),
    order=st.sampled_from(["transformers", "temperature_last"]),
)
# a top-p cut exactly at a tie: two tokens of mass 0.5 and top_p 0.5 keep one of them
@example(values=[4.0, 4.0], temperature=0.5, top_k=0, top_p=0.5, min_p=0.0, order="transformers")
@hsettings(max_examples=300, deadline=None)
def test_property_sums_to_one_and_keeps_one(values, temperature, top_k, top_p, min_p, order):
    logits = torch.tensor(values, dtype=torch.float32)
    s = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, order=order)
    result = filter_logits(logits, s)
    assert result.kept_count >= 1
    assert torch.isfinite(result.kept_probs).all()
    assert math.isclose(float(result.kept_probs.sum()), 1.0, abs_tol=1e-5)
    # the most probable raw token always survives
    assert bool(result.kept[int(logits.argmax())])
    ref = reference_probs(logits, s)
    if top_p_cut_is_ambiguous(logits, s):
        return  # a token's mass lies on the cut within float error: keeping it or not are both right
    # a kept token whose probability underflows to 0 in float32 (e.g. logits [0, 6] at T=0.05)
    # counts as kept but has no reference mass: every token with mass must be kept
    assert result.kept_count >= int((ref > 0).sum())
    torch.testing.assert_close(result.probs.sort().values, ref.sort().values, atol=1e-5, rtol=1e-4)


def test_entropy_bits():
    assert math.isclose(entropy_bits(torch.zeros(8)), 3.0, rel_tol=1e-6)
    assert math.isclose(filter_logits(torch.zeros(1024), SamplingSettings()).raw_entropy_bits, 10.0, rel_tol=1e-6)
    # all tied: top-k keeps every token tied with the k-th, so nothing is removed
    assert filter_logits(torch.zeros(1024), SamplingSettings(top_k=4)).kept_count == 1024
    logits = torch.full((1024,), -20.0)
    logits[[3, 70, 500, 900]] = 0.0
    result = filter_logits(logits, SamplingSettings(top_k=4))
    assert sorted(result.kept_ids.tolist()) == [3, 70, 500, 900]
    assert math.isclose(result.entropy_bits, 2.0, rel_tol=1e-6)
    assert filter_logits(torch.randn(50), SamplingSettings(temperature=0)).entropy_bits == 0.0


def test_ranked_logits_reuse_gives_same_result():
    logits = torch.randn(262144, generator=torch.Generator().manual_seed(5)) * 3
    ranked = RankedLogits(logits)
    for s in SETTINGS:
        a, b = filter_logits(ranked, s), filter_logits(logits, s)
        assert torch.equal(a.kept, b.kept)
        torch.testing.assert_close(a.probs, b.probs)
        assert math.isclose(a.entropy_bits, b.entropy_bits, rel_tol=1e-5)


def test_sampling_is_seeded():
    logits = torch.randn(1000)
    result = filter_logits(logits, SamplingSettings(temperature=1.5))
    draws = lambda seed: [sample_token(result, g) for g in [torch.Generator().manual_seed(seed)] for _ in range(20)]
    assert draws(7) == draws(7)
    assert len(set(draws(7))) > 1
    kept = set(filter_logits(logits, SamplingSettings(top_k=3)).kept_ids.tolist())
    small = filter_logits(logits, SamplingSettings(top_k=3))
    g = torch.Generator().manual_seed(0)
    assert {sample_token(small, g) for _ in range(50)} <= kept


@pytest.mark.parametrize("bad", [
    dict(temperature=-1.0), dict(temperature=float("nan")), dict(top_k=-3), dict(top_p=0.0),
    dict(top_p=1.5), dict(min_p=-0.1), dict(min_p=2.0), dict(order="sideways"),
])
def test_bad_settings_are_user_errors(bad):
    with pytest.raises(PlaygroundError):
        SamplingSettings(**bad)


def test_nan_logits_are_user_errors():
    with pytest.raises(PlaygroundError):
        filter_logits(torch.tensor([0.0, float("nan")]), SamplingSettings())


def test_presets_match_the_lecture_modelfiles():
    assert PRESETS["greedy"].greedy and PRESETS["greedy"].top_k == 1000
    assert (PRESETS["random"].temperature, PRESETS["random"].top_k, PRESETS["random"].top_p) == (1.0, 1000, 1.0)
    assert (PRESETS["top-10"].top_k, PRESETS["top-10"].top_p) == (10, 1.0)
    assert (PRESETS["nucleus"].top_k, PRESETS["nucleus"].top_p) == (1000, 0.9)
    assert (PRESETS["min-p"].top_k, PRESETS["min-p"].min_p) == (1000, 0.1)
