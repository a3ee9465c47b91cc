"""The chain on a model (tiny-random): the CLI's `next-token --chain`, `generate --chain` and `ab`;
A/B on common random numbers (identical chains, identical output; a seed reproduces both sides);
an engine model is refused in words."""

from __future__ import annotations

import json

import pytest
import torch

from playground import backends, decoding, models
from playground.__main__ import main
from playground.engine_config import engine_config
from playground.errors import PlaygroundError
from playground.model_spec import ModelSpec
from playground.samplers import ab
from playground.samplers.chain import parse_chain, run_chain
from playground.samplers.pool import Context

MODEL = "tiny-random"
PROMPT = "Once upon a time"
DEFAULT_CHAIN = "repeat_penalty=1.1;dry_multiplier=0.8;top_k=40;typical_p=0.95;top_p=0.9;min_p=0.05;xtc_probability=0.5;" \
                "xtc_threshold=0.1;temperature=0.8"


def _cli(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_next_token_chain_prints_each_stage_and_the_final_tokens(capsys):
    out = _cli(capsys, "next-token", "--model", MODEL, "--chain", DEFAULT_CHAIN, "--top", "5", PROMPT)
    names = [s["name"] for s in out["stages"]]
    assert names == ["input", "penalties", "dry", "top_k", "typical_p", "top_p", "min_p", "xtc", "temperature"]
    counts = [s["kept_count"] for s in out["stages"]]
    assert counts[0] == out["stages"][0]["kept_count"] > counts[3] == 40 >= counts[-1] == out["kept_count"]
    assert all(0 < s["kept_mass"] <= 1.0 and s["entropy_bits"] >= 0 for s in out["stages"])
    # the same numbers as the chain on the cached distribution, re-filtered without the model
    loaded = models.load_model(MODEL)
    ids = decoding.prompt_ids(loaded, PROMPT)
    calls = loaded.forward_calls
    _u, rng = ab.step_draws(0, 0)
    again = run_chain(parse_chain(DEFAULT_CHAIN), decoding.ranked_after(loaded, ids).logits,
                      Context.of(ids, rng=rng, token_text=ab.token_texts(loaded)))
    assert loaded.forward_calls == calls
    assert [s.kept_count for s in again.stages] == counts
    probs = again.probs_by_id()
    assert [t["prob"] for t in out["tokens"]] == pytest.approx([probs[t["id"]] for t in out["tokens"]], abs=1e-7)
    assert sum(t["prob"] for t in out["tokens"]) <= 1.0 + 1e-6


def test_identical_chains_give_identical_output_and_a_seed_reproduces_both(capsys):
    same = _cli(capsys, "ab", "--model", MODEL, "--a", "llama.cpp default", "--b", "llama.cpp default", "--seed", "5",
                "--tokens", "12", PROMPT)
    assert same["first_divergence"] is None and same["a"]["tokens"] == same["b"]["tokens"]
    first = _cli(capsys, "ab", "--model", MODEL, "--a", "top_k=40;temperature=0.8", "--b", "top_k=40;temperature=2.0",
                 "--seed", "5", "--tokens", "12", PROMPT)
    again = _cli(capsys, "ab", "--model", MODEL, "--a", "top_k=40;temperature=0.8", "--b", "top_k=40;temperature=2.0",
                 "--seed", "5", "--tokens", "12", PROMPT)
    assert first == again
    a, b = first["a"]["tokens"], first["b"]["tokens"]
    # common random numbers: the same u at each position on both sides
    assert [t["u"] for t in a] == [t["u"] for t in b][: len(a)] or [t["u"] for t in b] == [t["u"] for t in a][: len(b)]
    divergence = first["first_divergence"]
    assert divergence is not None  # T 0.8 vs 2.0 on a random model's flat distribution
    assert [t["id"] for t in a[:divergence]] == [t["id"] for t in b[:divergence]] and a[divergence]["id"] != b[divergence]["id"]
    assert first["a"]["logprob"] == pytest.approx(sum(float(torch.tensor(t["prob"]).log()) for t in a), abs=1e-4)


def test_generate_chain_matches_the_a_side(capsys):
    out = _cli(capsys, "generate", "--model", MODEL, "--chain", "top_k=40;temperature=0.8", "--seed", "5",
               "--max-new-tokens", "6", PROMPT)
    side = _cli(capsys, "ab", "--model", MODEL, "--a", "top_k=40;temperature=0.8", "--b", "temperature=0.0", "--seed",
                "5", "--tokens", "6", PROMPT)["a"]
    assert [t["id"] for t in out["tokens"]] == [t["id"] for t in side["tokens"]] and out["text"] == side["text"]


def test_bad_chain_is_a_message_and_engines_are_refused(capsys):
    assert main(["next-token", "--model", MODEL, "--chain", "top_q=1", PROMPT]) == 2
    assert "Unknown sampler parameter 'top_q'" in capsys.readouterr().err
    spec = ModelSpec(id="fake-engine", role="base", source="engine", description="fake",
                     engine=engine_config("llama.cpp", "http://fake:1", top_logprobs=20))
    with pytest.raises(PlaygroundError, match="the chain.s funnel, generation and A/B run on in-process models only"):
        backends.backend_for(spec).require("sampler_chain")


def test_k_samples_ab_draw_the_same_numbers_for_both_sides(capsys):
    out = _cli(capsys, "ab", "--model", MODEL, "--a", "top_k=40;temperature=0.8", "--b", "top_k=40;temperature=0.8",
               "--seed", "2", "--tokens", "1", "--samples", "64", PROMPT)["samples"]
    assert out["k"] == 64 and out["same_token"] == 64 and out["a"] == out["b"]  # identical chains, identical draws
    assert sum(t["count"] for t in out["a"]) == 64 and len(out["a"]) > 1
    loaded = models.load_model(MODEL)
    ids = decoding.prompt_ids(loaded, PROMPT)
    greedy = ab.ab_samples(MODEL, ids, len(ids), parse_chain("temperature=0.0"), parse_chain("top_k=40;temperature=2.0"),
                           2, 64)
    assert len(greedy.a) == 1 and greedy.a[0][1] == 64 and len(greedy.b) > 1
    assert greedy.same_token == dict(greedy.b).get(greedy.a[0][0], 0)  # B agrees exactly where it drew A's token
    with pytest.raises(PlaygroundError, match="K must be between"):
        ab.ab_samples(MODEL, ids, len(ids), parse_chain("top_k=3"), parse_chain("top_k=3"), 0, 0)
