"""The sampling rules as units: each one alone equals its transformers warper, the orders are two lists."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import LogitsProcessorList
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.sampling import (
    LLAMA_CPP_ORDER,
    ORDERS,
    RULE_ORDERS,
    TRANSFORMERS_ORDER,
    Candidates,
    Greedy,
    MinP,
    RankedLogits,
    SamplingSettings,
    Temperature,
    TopK,
    TopP,
    apply_rules,
    filter_logits,
    rules_for,
    with_changes,
)
from tests.unit.test_sampling import SETTINGS

WARPER = {
    Temperature: lambda r: TemperatureLogitsWarper(r.temperature),
    TopK: lambda r: TopKLogitsWarper(top_k=r.top_k),
    TopP: lambda r: TopPLogitsWarper(top_p=r.top_p),
    MinP: lambda r: MinPLogitsWarper(min_p=r.min_p),
}
ONE_RULE = [Temperature(0.4), Temperature(3.0), TopK(1), TopK(7), TopK(2000), TopP(0.01), TopP(0.5), TopP(0.97),
            MinP(0.02), MinP(0.3), MinP(1.0)]


def probs_of(candidates: Candidates) -> torch.Tensor:
    ids, scores, _ = candidates.survivors()
    full = torch.zeros(candidates.ranked.vocab_size)
    full[ids] = torch.softmax(scores, dim=0)
    return full


def warped_probs(logits: torch.Tensor, rules: list) -> torch.Tensor:
    warpers = LogitsProcessorList([WARPER[type(rule)](rule) for rule in rules])
    return torch.softmax(warpers(torch.zeros(1, 1, dtype=torch.long), logits[None].clone())[0], dim=-1)


def assert_same(logits: torch.Tensor, rules: list, ties: bool = False) -> None:
    ours, ref = probs_of(apply_rules(RankedLogits(logits), rules)), warped_probs(logits, rules)
    if ties:  # transformers keeps whichever tied token its unstable sort puts last at a top-p cut
        assert int((ours > 0).sum()) == int((ref > 0).sum())
        torch.testing.assert_close(ours.sort().values, ref.sort().values, atol=1e-5, rtol=1e-4)
    else:
        assert torch.equal(ours > 0, ref > 0), rules
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("rule", ONE_RULE, ids=repr)
def test_each_rule_alone_equals_its_transformers_warper(rule):
    generator = torch.Generator().manual_seed(3)
    for vocab, scale in ((50, 1.0), (49152, 1.0), (49152, 4.0)):
        assert_same(torch.randn(vocab, generator=generator) * scale, [rule])
    assert_same(torch.randint(0, 6, (4000,), generator=generator).float(), [rule], ties=True)


@pytest.mark.parametrize("order", list(itertools.permutations([Temperature(1.7), TopK(40), TopP(0.8), MinP(0.05)])),
                         ids=lambda rules: ",".join(type(r).__name__ for r in rules))
def test_rules_compose_in_any_order_like_a_logits_processor_list(order):
    logits = torch.randn(20000, generator=torch.Generator().manual_seed(8)) * 2
    assert_same(logits, list(order))


def test_the_two_orders_are_two_lists_of_the_same_rules():
    assert TRANSFORMERS_ORDER == (Temperature, TopK, TopP, MinP)
    assert LLAMA_CPP_ORDER == (TopK, TopP, MinP, Temperature)
    assert tuple(RULE_ORDERS) == ORDERS
    assert RULE_ORDERS["transformers"] is TRANSFORMERS_ORDER and RULE_ORDERS["temperature_last"] is LLAMA_CPP_ORDER


def test_rules_for_lists_only_the_rules_switched_on_in_order():
    s = SamplingSettings(temperature=0.7, top_k=5, top_p=0.9, min_p=0.1)
    assert rules_for(s) == [Temperature(0.7), TopK(5), TopP(0.9), MinP(0.1)]
    assert rules_for(with_changes(s, order="temperature_last")) == [TopK(5), TopP(0.9), MinP(0.1), Temperature(0.7)]
    assert rules_for(SamplingSettings()) == []  # T=1, top-k/top-p/min-p off
    assert rules_for(SamplingSettings(top_k=0, top_p=1.0, min_p=0.0, temperature=2.0)) == [Temperature(2.0)]
    assert rules_for(SamplingSettings(temperature=0.0, top_k=3, top_p=0.5)) == [Greedy()]


@pytest.mark.parametrize("s", [s for s in SETTINGS if not s.greedy], ids=str)
def test_filter_logits_is_the_warpers_of_rules_for(s):
    logits = torch.randn(5000, generator=torch.Generator().manual_seed(2)) * 3
    torch.testing.assert_close(filter_logits(logits, s).probs, warped_probs(logits, rules_for(s)), atol=1e-5, rtol=1e-4)


def test_rules_read_only_the_top_candidates():
    logits = torch.randn(262144, generator=torch.Generator().manual_seed(4)) * 3
    for rules in ([TopK(10)], [TopP(0.5)], [MinP(0.1)], [Temperature(0.5), TopK(50), TopP(0.9)], [Greedy()]):
        ranked = RankedLogits(logits)
        candidates = apply_rules(ranked, rules)
        assert candidates.count < 2000 and not ranked.complete, rules  # the vocabulary was never sorted
    ranked = RankedLogits(logits)
    ids, _, id_order = apply_rules(ranked, [Temperature(2.0)]).survivors()  # nothing removed: id order, unsorted
    assert id_order and torch.equal(ids, torch.arange(262144)) and not ranked.complete


def test_a_new_rule_is_one_more_unit():
    class KeepTwo:  # any callable with the shared signature
        def __call__(self, candidates: Candidates) -> Candidates:
            return candidates.keep(2)

    logits = torch.tensor([0.0, 5.0, 1.0, 4.0, 3.0])
    candidates = apply_rules(RankedLogits(logits), [TopK(4), KeepTwo(), Temperature(0.5)])
    ids, scores, _ = candidates.survivors()
    assert ids.tolist() == [1, 3] and scores.tolist() == [10.0, 8.0]
