"""Prompt attribution (`playground.attribution`) on the tiny random model, checked against the model.

Occlusion equals re-running the model by hand on each shortened / replaced prompt; gradient x input
equals a hand autograd computation; integrated gradients' scores add up to f(input) - f(baseline)
within a small error, the baseline's value being the model's own on the neutral tokens; attention
rollout equals the formula on a hand-made tensor and comes from the Inside tab's pass; targets,
limits and engine models are refused in words; every forward goes through the model-call preamble
(counted, under the time limit); the CLI prints the scores and the completeness error.
"""

from __future__ import annotations

import json

import pytest
import torch

from playground import attribution, backends, limits
from playground.__main__ import main as cli_main
from playground.engine_config import engine_config
from playground.errors import PlaygroundError
from playground.model_spec import ModelSpec
from playground.models import load_model

MODEL = "tiny-random"
TEXT = "The capital of France is"


@pytest.fixture(scope="module")
def result() -> attribution.Attribution:
    return attribution.attribute(MODEL, TEXT, steps=64)


@pytest.fixture(scope="module")
def loaded():
    return load_model(MODEL)


def _logprob_after(loaded, ids: list[int], target: int) -> float:
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    return float(torch.log_softmax(logits, -1)[target])


def _read(loaded) -> tuple[list[int], list[int]]:
    return attribution.prompt_ids(loaded, TEXT)


def test_the_target_is_the_most_probable_next_token_with_its_probability(result, loaded):
    start, own = _read(loaded)
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([start + own])).logits[0, -1].float()
    probs = torch.softmax(logits, -1)
    assert result.target_id == int(probs.argmax()) == result.top_id
    assert result.target_rank == 1
    assert result.target_prob == pytest.approx(float(probs.max()), rel=1e-4)
    assert [t.id for t in result.tokens] == start + own
    assert [t.start for t in result.tokens] == [True] * len(start) + [False] * len(own)


def test_occlusion_equals_rerunning_the_model_by_hand(result, loaded):
    start, own = _read(loaded)
    f = _logprob_after(loaded, start + own, result.target_id)
    neutral = attribution.neutral_token(loaded.tokenizer)
    removed = [f - _logprob_after(loaded, start + own[:i] + own[i + 1:], result.target_id) for i in range(len(own))]
    replaced = [f - _logprob_after(loaded, start + own[:i] + [neutral] + own[i + 1:], result.target_id)
                for i in range(len(own))]
    got_removed = result.method("occlusion-removed").scores[len(start):]
    got_replaced = result.method("occlusion-replaced").scores[len(start):]
    assert got_removed == pytest.approx(removed, abs=1e-4)
    assert got_replaced == pytest.approx(replaced, abs=1e-4)
    assert max(abs(v) for v in removed) > 1e-3  # the check has something to compare
    assert neutral != loaded.tokenizer.eos_token_id  # SmolLM2's padding is its end token: not neutral


def test_gradient_x_input_equals_a_hand_autograd_computation(result, loaded):
    start, own = _read(loaded)
    ids = torch.tensor([start + own])
    embeds = loaded.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = loaded.model(inputs_embeds=embeds, use_cache=False).logits[0, -1].float()
    torch.log_softmax(logits, -1)[result.target_id].backward()
    expected = (embeds.grad * embeds).sum(-1)[0, len(start):].tolist()
    got = result.method("gradient").scores[len(start):]
    assert got == pytest.approx(expected, abs=1e-5)
    assert max(abs(v) for v in expected) > 1e-4


def test_integrated_gradients_are_complete_up_to_a_small_reported_error(result, loaded):
    start, own = _read(loaded)
    ig = result.method("integrated-gradients")
    neutral = attribution.neutral_token(loaded.tokenizer)
    assert ig.steps == 64
    assert ig.f_input == pytest.approx(result.target_logprob, abs=1e-4)
    assert ig.f_baseline == pytest.approx(_logprob_after(loaded, start + [neutral] * len(own), result.target_id),
                                          abs=1e-4)
    difference = ig.f_input - ig.f_baseline
    assert abs(difference) > 1e-2  # the path changes the target's log-probability
    assert ig.completeness_error == pytest.approx(ig.total - difference, abs=1e-4)
    assert abs(ig.completeness_error) < 0.01 * abs(difference)
    assert ig.scores[: len(start)] == (None,) * len(start)


def test_attention_rollout_is_the_formula_and_labelled_not_an_attribution(result):
    row = result.method("attention")
    assert not row.is_attribution and "NOT" in row.title
    assert all(v is None or v >= 0 for v in row.scores)
    weights = torch.tensor([[[[1.0, 0.0], [0.25, 0.75]]], [[[1.0, 0.0], [0.5, 0.5]]]])  # 2 layers, 1 head
    first = (weights[0, 0] + torch.eye(2)) / 2
    second = (weights[1, 0] + torch.eye(2)) / 2
    expected = second / second.sum(-1, keepdim=True) @ (first / first.sum(-1, keepdim=True))
    assert torch.allclose(attribution.rollout(weights), expected)
    assert attribution.rollout(weights)[-1].sum().item() == pytest.approx(1.0)


def test_every_method_has_its_formula_and_only_the_attention_row_is_not_an_attribution(result):
    keys = [m.key for m in result.methods]
    assert keys == ["occlusion-removed", "occlusion-replaced", "gradient", "integrated-gradients", "attention"]
    assert [m.is_attribution for m in result.methods] == [True, True, True, True, False]
    assert all(m.formula and "{" not in m.formula and "{" not in m.title for m in result.methods)


def test_a_given_target_by_text_or_id_and_its_rank(loaded):
    second = attribution.attribute(MODEL, TEXT, ["occlusion"], target="#5")
    assert second.target_id == 5 and second.target_rank >= 1
    word = attribution.start_tokens.own_ids(loaded.tokenizer, " Paris")
    if len(word) == 1:
        assert attribution.attribute(MODEL, TEXT, ["gradient"], target=" Paris").target_id == word[0]
    with pytest.raises(PlaygroundError, match="tokens for this model"):
        attribution.attribute(MODEL, TEXT, ["gradient"], target=" antidisestablishmentarianism")
    with pytest.raises(PlaygroundError, match="outside this model's vocabulary"):
        attribution.attribute(MODEL, TEXT, ["gradient"], target="#99999999")


@pytest.mark.parametrize("kwargs, message", [
    ({"text": "word " * 200}, "at most 128 tokens"),
    ({"text": "   "}, "Type a prompt"),
    ({"text": TEXT, "steps": 65}, "1 to 64 steps"),
    ({"text": TEXT, "methods": ["saliency"]}, "Unknown attribution method saliency"),
])
def test_over_limit_and_bad_input_are_refused_in_words(kwargs, message):
    with pytest.raises(PlaygroundError, match=message):
        attribution.attribute(MODEL, **kwargs)


def test_engine_models_are_refused_by_the_backend_capabilities(monkeypatch):
    from playground import models

    config = engine_config("llama.cpp", "http://fake:1", top_logprobs=5)
    spec = ModelSpec(id="fake-engine-attr", role="base", source="engine", description="fake", engine=config)
    monkeypatch.setitem(models.REGISTRY, spec.id, spec)
    assert not backends.backend_for(spec.id).capabilities.has("attribution")
    with pytest.raises(PlaygroundError, match="runs in-process models only"):
        attribution.attribute(spec.id, TEXT)


def test_forward_passes_go_through_the_model_call_preamble(loaded):
    before = loaded.forward_calls
    attribution.attribute(MODEL, TEXT, ["gradient", "integrated-gradients"], steps=4)
    assert loaded.forward_calls > before + 2  # the prompt, the gradient's pass, IG's path points
    with limits.deadline(0.0), pytest.raises(limits.RequestTimeout):
        attribution.attribute(MODEL, TEXT, ["occlusion"])


def test_the_cli_prints_each_token_score_the_target_and_the_completeness_error(capsys, result):
    assert cli_main(["attribute", "--model", MODEL, "--method", "integrated-gradients", "--steps", "64",
                     TEXT, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["target"]["id"] == result.target_id
    assert [t["id"] for t in printed["tokens"]] == [t.id for t in result.tokens]
    ig = result.method("integrated-gradients")
    assert [t["score"] for t in printed["tokens"]] == pytest.approx(list(ig.scores), abs=1e-6)
    assert printed["completeness_error"] == pytest.approx(ig.completeness_error, abs=1e-6)
    assert cli_main(["attribute", "--model", MODEL, "--method", "occlusion", "--target", "#99999999", TEXT]) == 2
    assert "vocabulary" in capsys.readouterr().err


def test_the_chips_escape_token_text_and_keep_the_sign_in_the_colour():
    from playground.html import attribution as why_html

    result = attribution.attribute(MODEL, "<b>x</b> & <script>", ["occlusion"])
    page = why_html.attribution_html(result)
    assert "<b>" not in page and "<script>" not in page and "&lt;" in page
    assert why_html.score_color(1.0, 1.0) == "rgb(255,55,55)" and why_html.score_color(-1.0, 1.0) == "rgb(55,55,255)"
    assert why_html.score_color(0.0, 1.0) == "rgb(255,255,255)" == why_html.score_color(0.5, 0.0)
    assert page.count('class="why-panel"') == 2


def test_the_export_has_a_score_column_per_method_and_the_check_in_its_meta(result):
    from playground import exports

    table = exports.attribution_table(result)
    assert table.columns[-5:] == tuple(m.key for m in result.methods)
    assert [row["id"] for row in table.rows] == [t.id for t in result.tokens]
    assert table.rows[0]["gradient"] == result.method("gradient").scores[0]
    assert table.meta["integrated-gradients"]["completeness_error"] == result.method(
        "integrated-gradients").completeness_error
    parsed = json.loads(exports.export(table, "json"))
    assert parsed["target_id"] == result.target_id and len(parsed["tokens"]) == len(result.tokens)


def test_the_tab_handler_answers_bad_input_in_words():
    from playground.ui import attribution_tab
    from tests.conftest import handler_outcome

    assert handler_outcome(attribution_tab.why, TEXT, MODEL, "", [], 8) == "Choose at least one method."
    assert "steps" in handler_outcome(attribution_tab.why, TEXT, MODEL, "", ["gradient"], "many")
    assert "Pick a model" in handler_outcome(attribution_tab.why, TEXT, None, "", ["gradient"], 8)
    assert handler_outcome(attribution_tab.why, TEXT, MODEL, "", ["gradient"], 8) == "ok"
    with pytest.raises(PlaygroundError, match="first"):  # data_downloads words it beside the buttons
        attribution_tab.why_data(None, "csv")
