"""The sampler chain's units: each equals transformers' processor where one exists (random logits),
the llama.cpp-only samplers follow their formulas on hand-checked cases, the chain parses and
prints llama.cpp's names, and the inverse-CDF draw is the same for identical chains."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LogitsProcessorList
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from playground.errors import PlaygroundError
from playground.samplers.chain import (
    PRESETS,
    ChainState,
    chain_from,
    format_chain,
    parse_chain,
    preset_chain,
    run_chain,
)
from playground.samplers.cuts import Epsilon, Eta, MinP, TopK, TopNSigma, TopP, Typical, Xtc
from playground.samplers.penalties import Dry, NoRepeatNGram, OpenAIPenalties, Penalties, RepetitionPenalty
from playground.samplers.pool import Context, Pool
from playground.samplers.temperature import DynamicTemperature, MirostatV2, Temperature

VOCAB = 5000  # more than the cuts' first look (1024): their widening runs


def _logits(seed: int, vocab: int = VOCAB, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(vocab, generator=torch.Generator().manual_seed(seed)) * scale


def _history(seed: int, length: int = 60, vocab: int = 40) -> list[int]:
    return torch.randint(0, vocab, (length,), generator=torch.Generator().manual_seed(seed + 100)).tolist()


def _ours(samplers, logits, history=()) -> torch.Tensor:
    """Our processed probabilities over the vocabulary (0 where removed)."""
    pool = Pool.every_token(logits)
    context = Context.of(history)
    for sampler in samplers:
        pool = sampler(pool, context)
    probs = torch.zeros(logits.numel())
    probs[pool.token_ids] = pool.probs()
    return probs


def _theirs(processors, logits, history=()) -> torch.Tensor:
    ids = torch.tensor([list(history) or [0]])
    scores = LogitsProcessorList(processors)(ids, logits.clone().reshape(1, -1))
    return torch.softmax(scores[0], dim=0)


def _same(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert torch.equal(ours > 0, theirs > 0), f"kept {int((ours > 0).sum())} vs {int((theirs > 0).sum())}"
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


CASES = [
    ("repetition", lambda: [RepetitionPenalty(1.3)], lambda: [RepetitionPenaltyLogitsProcessor(1.3)]),
    ("no-repeat 2", lambda: [NoRepeatNGram(2)], lambda: [NoRepeatNGramLogitsProcessor(2)]),
    ("no-repeat 3", lambda: [NoRepeatNGram(3)], lambda: [NoRepeatNGramLogitsProcessor(3)]),
    ("typical .9", lambda: [Typical(0.9)], lambda: [TypicalLogitsWarper(0.9)]),
    ("typical .2", lambda: [Typical(0.2)], lambda: [TypicalLogitsWarper(0.2)]),
    ("epsilon", lambda: [Epsilon(3e-4)], lambda: [EpsilonLogitsWarper(3e-4)]),
    ("eta", lambda: [Eta(2e-3)], lambda: [EtaLogitsWarper(2e-3)]),
    ("top-k", lambda: [TopK(37)], lambda: [TopKLogitsWarper(37)]),
    ("top-p .9", lambda: [TopP(0.9)], lambda: [TopPLogitsWarper(0.9)]),
    ("top-p .999", lambda: [TopP(0.999)], lambda: [TopPLogitsWarper(0.999)]),
    ("min-p", lambda: [MinP(0.02)], lambda: [MinPLogitsWarper(0.02)]),
    ("temperature", lambda: [Temperature(0.7)], lambda: [TemperatureLogitsWarper(0.7)]),
    ("penalty then cuts", lambda: [RepetitionPenalty(1.2), NoRepeatNGram(2), Temperature(1.3), TopK(400), TopP(0.95),
                                   MinP(0.01), Typical(0.95), Epsilon(1e-4), Eta(1e-3)],
     lambda: [RepetitionPenaltyLogitsProcessor(1.2), NoRepeatNGramLogitsProcessor(2), TemperatureLogitsWarper(1.3),
              TopKLogitsWarper(400), TopPLogitsWarper(0.95), MinPLogitsWarper(0.01), TypicalLogitsWarper(0.95),
              EpsilonLogitsWarper(1e-4), EtaLogitsWarper(1e-3)]),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_unit_equals_transformers(name, ours, theirs, seed):
    logits, history = _logits(seed), _history(seed)
    _same(_ours(ours(), logits, history), _theirs(theirs(), logits, history))


def test_the_transformers_preset_is_transformers_order():
    chain = parse_chain("repetition_penalty=1.15;no_repeat_ngram_size=3;temperature=0.9;top_k=50;top_p=0.9;"
                        "min_p=0.01;typical_p=0.95;epsilon_cutoff=0.0001;eta_cutoff=0.0005")
    logits, history = _logits(7), _history(7, vocab=30)
    theirs = _theirs([RepetitionPenaltyLogitsProcessor(1.15), NoRepeatNGramLogitsProcessor(3),
                      TemperatureLogitsWarper(0.9), TopKLogitsWarper(50), TopPLogitsWarper(0.9), MinPLogitsWarper(0.01),
                      TypicalLogitsWarper(0.95), EpsilonLogitsWarper(1e-4), EtaLogitsWarper(5e-4)], logits, history)
    _same(_ours(chain.stages, logits, history), theirs)


def test_typical_may_drop_the_most_probable_token():
    logits = torch.log(torch.tensor([0.4] + [0.05] * 12))  # H = 2.16 nats; -log 0.4 = 0.92 is far from it
    ours = _ours([Typical(0.3)], logits)
    assert ours[0] == 0 and ours[1:].sum() == pytest.approx(1.0)
    _same(ours, _theirs([TypicalLogitsWarper(0.3)], logits))


def test_llama_penalties_count_a_window_and_shift_after_dividing():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0, 1.0])
    history = [3, 0, 0, 1, 2, 2, 2]  # last 5: 0 1 2 2 2 -> counts 0:1, 1:1, 2:3; token 3 outside the window
    pool = Penalties(repeat_penalty=2.0, repeat_last_n=5, frequency_penalty=0.5, presence_penalty=0.25)(
        Pool.every_token(logits), Context.of(history))
    expected = [2.0 / 2 - 0.5 - 0.25, -1.0 * 2 - 0.5 - 0.25, 0.5 / 2 - 1.5 - 0.25, 3.0, 1.0]
    torch.testing.assert_close(pool.logits, torch.tensor(expected))


def test_openai_penalties_count_generated_tokens_only():
    logits = torch.zeros(4)
    context = Context.of([1, 1, 2, 2, 2], prompt_length=2)  # the prompt's 1s do not count
    pool = OpenAIPenalties(presence_penalty=0.5, frequency_penalty=0.25)(Pool.every_token(logits), context)
    torch.testing.assert_close(pool.logits, torch.tensor([0.0, 0.0, -0.5 - 0.75, 0.0]))


def test_repetition_penalty_definitions_differ():
    """transformers: every token of the sequence once; llama.cpp: a window, and 0 is multiplied (same)."""
    logits = torch.tensor([2.0, -2.0, 1.0])
    history = [0, 1, 1, 1]
    hf = RepetitionPenalty(2.0)(Pool.every_token(logits), Context.of(history)).logits
    llama_window = Penalties(2.0, repeat_last_n=2)(Pool.every_token(logits), Context.of(history)).logits
    torch.testing.assert_close(hf, torch.tensor([1.0, -4.0, 1.0]))
    torch.testing.assert_close(llama_window, torch.tensor([2.0, -4.0, 1.0]))  # token 0 left the window


def test_top_n_sigma_keeps_within_n_deviations_of_the_max():
    logits = _logits(3)
    kept = TopNSigma(1.5)(Pool.every_token(logits), Context()).token_ids
    std = logits.double().std(unbiased=False)
    expected = (logits >= logits.max() - 1.5 * std).nonzero().reshape(-1)
    assert torch.equal(torch.sort(kept).values, expected)
    assert 1 <= kept.numel() < logits.numel()


def test_xtc_removes_the_top_choices_but_the_last_above_threshold():
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04]))
    pool = Xtc(probability=1.0, threshold=0.15)(Pool.every_token(logits), Context())
    assert sorted(pool.token_ids.tolist()) == [2, 3, 4]
    one_above = Xtc(probability=1.0, threshold=0.35)(Pool.every_token(logits), Context())
    assert one_above.count == 5  # fewer than two reach the threshold: nothing happens
    never = Xtc(probability=0.5, threshold=0.15)
    draws = [never(Pool.every_token(logits), Context(rng=torch.Generator().manual_seed(s))).count for s in range(40)]
    assert set(draws) == {3, 5}  # the coin decides per step


def test_dry_penalises_tokens_that_extend_a_repeat():
    # llama.cpp's example: "a b c c b c y a b c"; after it, "c" would make "a b c" -> "a b c c" (length 3),
    # "y" extends "b c" (2), "b" extends "c" (1, under the allowed length 2)
    a, b, c, y = 1, 2, 3, 4
    history = [a, b, c, c, b, c, y, a, b, c]
    dry = Dry(multiplier=0.8, base=1.75, allowed_length=2, penalty_last_n=-1, sequence_breakers=())
    assert dry.repeat_lengths(Context.of(history)) == {c: 3, y: 2}
    pool = dry(Pool.every_token(torch.zeros(6)), Context.of(history))
    torch.testing.assert_close(pool.logits, torch.tensor([0.0, 0.0, 0.0, -0.8 * 1.75, -0.8, 0.0]))
    texts = {a: "a", b: "b", c: "c", y: "\n"}
    breaker = Dry(0.8, 1.75, 2, -1, ("\n",))
    assert breaker.repeat_lengths(Context.of(history, token_text=texts.get)) == {c: 3, y: 2}  # limit 3: y is 3 back
    pool = breaker(Pool.every_token(torch.zeros(6)), Context.of(history, token_text=texts.get))
    torch.testing.assert_close(pool.logits, torch.tensor([0.0, 0.0, 0.0, -0.8 * 1.75, 0.0, 0.0]))  # "y" never
    near = Context.of(history + [y, a, b], token_text=texts.get)  # "a b" repeats, but the breaker is 2 back
    assert breaker.repeat_lengths(near) == {c: 2}


def test_dynamic_temperature_maps_entropy_to_a_temperature():
    logits = torch.log(torch.tensor([0.7, 0.1, 0.1, 0.1]))
    dyn = DynamicTemperature(1.0, dynatemp_range=0.5, dynatemp_exponent=1.0)
    p = torch.tensor([0.7, 0.1, 0.1, 0.1])
    normalised = float(-(p * p.log()).sum()) / math.log(4)
    assert dyn.effective_temperature(Pool.every_token(logits)) == pytest.approx(0.5 + 1.0 * normalised, rel=1e-6)
    torch.testing.assert_close(dyn(Pool.every_token(logits), Context()).logits, logits / (0.5 + normalised))


def test_mirostat_cuts_by_surprise_and_moves_mu():
    logits = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125]))  # surprises 1, 2, 3, 3 bits
    mirostat = MirostatV2(tau=2.0, eta=0.5)
    pool = mirostat(Pool.every_token(logits), Context(mu=2.5))
    assert pool.token_ids.tolist() == [0, 1]
    assert mirostat.next_mu(2.5, pool, 1) == pytest.approx(2.5 - 0.5 * (-math.log2(1 / 3) - 2.0))
    chain = parse_chain("temperature=1.0;mirostat=2;mirostat_tau=2.0;mirostat_eta=0.5")
    run = run_chain(chain, logits)
    assert run.stages[-1].kept_count == 4  # mu starts at 2 tau = 4 bits: every surprise is below
    state = run.next_state(0)  # p' = 0.5: 1 bit, mu 4 - 0.5 * (1 - 2) = 4.5
    assert state.mu_at(1) == pytest.approx(4.5)
    low = run_chain(chain, logits, state=ChainState(((1, 1.5),)))
    assert low.stages[-1].kept_count == 1 and low.as_dict()["mirostat_mu"] == {1: 1.5}


def test_chain_order_is_the_order_of_first_mention_and_prints_back():
    text = ("repeat_penalty=1.1;dry_multiplier=0.8;top_k=40;typical_p=0.95;top_p=0.9;min_p=0.05;"
            "xtc_probability=0.5;xtc_threshold=0.1;temperature=0.8")
    chain = parse_chain(text)
    assert [s.name for s in chain.stages] == ["penalties", "dry", "top_k", "typical_p", "top_p", "min_p", "xtc",
                                              "temperature"]
    assert chain.stages[0] == Penalties(1.1, 64, 0.0, 0.0)  # llama.cpp's defaults fill the family
    assert parse_chain(format_chain(chain)) == chain
    assert parse_chain("temp=0.7;top_k=3").stages == (Temperature(0.7), TopK(3))  # llama.cpp's aliases
    assert parse_chain("temperature=0.8;dynatemp_range=0.3").stages == (DynamicTemperature(0.8, 0.3, 1.0),)
    for name in PRESETS:
        assert parse_chain(format_chain(preset_chain(name))) == preset_chain(name)
    assert chain_from("llama.cpp default") == preset_chain("llama.cpp default")


@pytest.mark.parametrize("text,words", [
    ("", "empty"),
    ("top_k", "no value"),
    ("top_q=0.9", "Unknown sampler parameter 'top_q'"),
    ("top_p=abc", "top_p must be a number"),
    ("top_p=1.5", "top_p must be between 0 and 1"),
    ("top_k=2.5", "top_k must be a whole number"),
    ("temperature=nan", "finite"),
    ("top_k=4;top_k=5", "given twice"),
    ("mirostat=2;top_k=40", "must be the chain's last sampler"),
    ("mirostat=1", "mirostat must be between 2 and 2"),
    ("dry_multiplier=0.8;dry_sequence_breakers=\\n", "JSON list"),
    ("top_k=1;" * 1000, "too long"),
])
def test_bad_chains_are_refused_in_words(text, words):
    with pytest.raises(PlaygroundError, match=words.replace("(", r"\(")):
        parse_chain(text)


def test_stages_report_count_mass_entropy_and_top_tokens():
    logits = _logits(4)
    run = run_chain(chain_from("llama.cpp default"), logits, Context.of(_history(4)))
    rows = run.as_dict()["stages"]
    assert rows[0]["name"] == "input" and rows[0]["kept_count"] == VOCAB and rows[0]["kept_mass"] == 1.0
    top_k = rows[[r["name"] for r in rows].index("top_k")]
    assert top_k["kept_count"] == 40
    expected_mass = float(torch.softmax(logits, 0).topk(40).values.double().sum())
    assert top_k["kept_mass"] == pytest.approx(expected_mass, rel=1e-6)
    counts = [r["kept_count"] for r in rows]
    assert counts == sorted(counts, reverse=True)  # the default chain only ever cuts
    final = run.final
    assert rows[-1]["entropy_bits"] == pytest.approx(
        float(-(final.probs() * final.probs().log2()).sum()), abs=1e-5)
    assert rows[-1]["top"][0]["prob"] == pytest.approx(float(final.probs().max()), rel=1e-6)


def test_the_draw_inverts_the_cdf_in_the_raw_order():
    logits = torch.log(torch.tensor([0.1, 0.6, 0.3]))
    run = run_chain(parse_chain("temperature=1.0"), logits)
    assert [run.draw(u) for u in (0.0, 0.59, 0.61, 0.89, 0.91, 0.999)] == [1, 1, 2, 2, 0, 0]
    other = run_chain(parse_chain("temperature=1.0"), logits)
    us = torch.rand(200, generator=torch.Generator().manual_seed(0)).tolist()
    assert [run.draw(u) for u in us] == [other.draw(u) for u in us]  # identical chains, identical draws
    greedy = run_chain(parse_chain("temperature=0.0"), logits)
    assert {greedy.draw(u) for u in us} == {1}


def test_llama_cpp_request_names_its_samplers_and_refuses_the_rest():
    from playground.samplers.chain import llama_cpp_request

    fields = llama_cpp_request(preset_chain("llama.cpp default"))
    assert fields["samplers"] == ["penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc",
                                  "temperature"]
    assert fields["top_k"] == 40 and fields["min_p"] == 0.05 and fields["mirostat"] == 0
    assert llama_cpp_request(parse_chain("temperature=0.7;mirostat=2"))["mirostat"] == 2
    with pytest.raises(PlaygroundError, match="llama.cpp has no eta_cutoff sampler"):
        llama_cpp_request(parse_chain("top_k=3;eta_cutoff=0.001"))


def test_the_editor_adds_removes_and_moves_stages():
    from playground.samplers.chain import add_stage, move_stage, remove_stage

    chain = parse_chain("top_k=40;temperature=0.8")
    added = add_stage(chain, "min_p")
    assert format_chain(added) == "top_k=40;temperature=0.8;min_p=0.05"
    assert format_chain(move_stage(added, 2, -1)) == "top_k=40;min_p=0.05;temperature=0.8"
    assert format_chain(move_stage(added, 0, -1)) == format_chain(added)  # the top stays the top
    assert format_chain(remove_stage(added, 0)) == "temperature=0.8;min_p=0.05"
    with_mirostat = add_stage(parse_chain("temperature=1.0;mirostat=2"), "top_k")
    assert [s.name for s in with_mirostat.stages] == ["temperature", "top_k", "mirostat"]
    with pytest.raises(PlaygroundError, match="already has a top_k stage"):
        add_stage(chain, "top_k")
    with pytest.raises(PlaygroundError, match="already has a dynatemp stage"):
        add_stage(parse_chain("temperature=0.8;dynatemp_range=0.2"), "temperature")
    with pytest.raises(PlaygroundError, match="There is no stage 5"):
        remove_stage(chain, 4)
    with pytest.raises(PlaygroundError, match="must stay the chain's last"):
        move_stage(with_mirostat, 2, -1)
