"""The sampling lab on the real packaged models: distributions, every lecture preset, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from playground import decoding, generation, models
from playground.sampling import PRESETS, RankedLogits, SamplingSettings, filter_logits
from playground.token_text import display_text, token_bytes
from tests.conftest import ROOT

PACKAGED = ["gemma-3-270m", "smollm2-135m-instruct"]
PROMPT = "The capital of France is"


def _text(loaded, token_id):
    return display_text(token_bytes(loaded.tokenizer, token_id))


def test_chat_model_ranks_paris_in_top_3():
    loaded = models.load_model("smollm2-135m-instruct")
    ranked = RankedLogits(decoding.next_token_distribution("smollm2-135m-instruct", PROMPT).logits)
    _, ids = ranked.top(3)
    assert " Paris" in [_text(loaded, int(i)) for i in ids[:3]]


@pytest.mark.parametrize("model_id", PACKAGED)
@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_on_both_models(model_id, preset):
    loaded = models.load_model(model_id)
    settings = PRESETS[preset]
    ranked = RankedLogits(decoding.next_token_distribution(model_id, PROMPT).logits)
    result = filter_logits(ranked, settings)
    assert ranked.vocab_size == loaded.vocab_size
    assert abs(float(ranked.raw_probs.double().sum()) - 1) < 1e-4  # full vocabulary
    assert abs(float(result.probs.double().sum()) - 1) < 1e-4
    assert not torch.isnan(result.probs).any()
    assert 1 <= result.kept_count <= {"greedy": 1, "top-10": 10}.get(preset, 1000)
    assert bool(result.kept[int(ranked.logits.argmax())])
    run = generation.generate(loaded, list(decoding.prompt_ids(loaded, PROMPT)), settings, 3, seed=1)
    assert 1 <= len(run.records) <= 3
    assert all(r.rank <= 1000 and r.prob > 0 for r in run.records)
    if preset == "greedy":
        assert all(r.rank == 1 for r in run.records)


@pytest.mark.parametrize("model_id", PACKAGED)
def test_greedy_generation_equals_transformers_generate(model_id):
    loaded = models.load_model(model_id)
    ids = list(decoding.prompt_ids(loaded, PROMPT))
    ours = generation.generate(loaded, ids, SamplingSettings(temperature=0.0), 8, seed=0)
    with torch.inference_mode():
        theirs = loaded.model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=8,
                                       eos_token_id=list(loaded.eos_token_ids), pad_token_id=loaded.eos_token_ids[0])
    expected = theirs[0, len(ids):].tolist()
    assert ours.token_ids[: len(expected)] == expected


def test_chat_model_stops_at_end_of_turn():
    loaded = models.load_model("smollm2-135m-instruct")
    ids = list(decoding.prompt_ids(loaded, "What is 2+2?", chat_template=True))
    result = generation.generate(loaded, ids, SamplingSettings(temperature=0.0), 40, seed=0)
    assert result.stop_reason == "eos"
    assert result.records[-1].is_eos and result.records[-1].eos_raw_prob > 0.2
    assert "<|im_end|>" not in result.text


def test_temperature_last_keeps_the_same_tokens_at_any_temperature():
    ranked = RankedLogits(decoding.next_token_distribution("gemma-3-270m", PROMPT).logits)
    kept = [set(filter_logits(ranked, SamplingSettings(temperature=t, top_p=0.8, order="temperature_last"))
                .kept_ids.tolist()) for t in (0.3, 1.0, 3.0)]
    assert kept[0] == kept[1] == kept[2]
    first = [filter_logits(ranked, SamplingSettings(temperature=t, top_p=0.8)).kept_count for t in (0.3, 1.0, 3.0)]
    assert first[0] < first[1] < first[2]  # temperature first: hotter keeps more for the same top-p


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "playground", "--json", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("model_id", PACKAGED)
def test_cli_next_token_and_generate(model_id):
    out = _cli("next-token", "--model", model_id, "--top-p", "0.9", "--top", "5", PROMPT)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    tokens = data["tokens"]
    assert len(tokens) == 5 and {"id", "text", "raw_prob", "prob", "kept"} <= set(tokens[0])
    assert [t["raw_prob"] for t in tokens] == sorted((t["raw_prob"] for t in tokens), reverse=True)
    assert tokens[0]["kept"] and tokens[0]["prob"] >= tokens[0]["raw_prob"]
    assert any(t["text"] == " Paris" for t in tokens)

    out = _cli("generate", "--model", model_id, "--max-new-tokens", "4", "--seed", "3", "--preset", "nucleus",
               "-", stdin=PROMPT)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["stop_reason"] in generation.STOP_REASONS
    assert 1 <= len(data["tokens"]) <= 4
    assert {"id", "text", "prob", "rank"} <= set(data["tokens"][0])
    again = json.loads(_cli("generate", "--model", model_id, "--max-new-tokens", "4", "--seed", "3",
                            "--preset", "nucleus", PROMPT).stdout)
    assert again["tokens"] == data["tokens"] and again["text"] == data["text"]


def test_cli_unknown_model_and_bad_settings_exit_2():
    for args in (["next-token", "--model", "no-such-model", PROMPT],
                 ["generate", "--model", "no-such-model", "--max-new-tokens", "2", "--seed", "0", PROMPT],
                 ["next-token", "--model", "smollm2-135m-instruct", "--top-p", "0", PROMPT]):
        out = _cli(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.startswith("error:")
    assert "gemma-3-270m" in _cli("next-token", "--model", "nope", "x").stderr
