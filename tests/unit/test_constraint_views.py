"""The Constraint section's views on the tiny random model: the handler's outputs through the backend,
the step slider redrawing from the kept result, every token text escaped, messages in words."""

from __future__ import annotations

import json

import pytest
from test_constraints import SCHEMA

from playground.html import constraints as constraint_html
from playground.plots import constraints as constraint_plots
from playground.ui import constraint_section
from tests.conftest import handler_outcome

MODEL = "tiny-random"
RULES = (0.0, 0, 1.0, 0.0, "transformers", 0)  # greedy


@pytest.fixture(scope="module")
def shown():
    return constraint_section.run_constraint(MODEL, False, "The answer is", "JSON schema", json.dumps(SCHEMA), 60,
                                             *RULES)


def test_the_run_shows_both_texts_the_mask_and_a_step(shown):
    result, pair, overview, slider, step_plot, table = shown
    steps = result["steps"]
    assert result["complete"] and json.loads(result["text"]).keys() == SCHEMA["properties"].keys()
    assert "with the constraint" in pair and "free (no constraint)" in pair and result["free"]["text"]
    run = json.loads(overview.plot)
    assert run["data"][0]["y"] == [s["removed_mass"] for s in steps]
    assert run["data"][1]["y"] == [s["allowed_count"] for s in steps]
    assert slider["maximum"] == len(steps) and slider["value"] == 1 and len(steps) > 1
    first = json.loads(step_plot.plot)
    assert [t["raw_prob"] for t in steps[0]["model_top"]] == first["data"][0]["y"]
    assert table.count("data-step=") == len(steps) and "constraint-selected" in table
    second_plot, second_table = constraint_section.show_step(result, 2)
    assert "step 2:" in json.loads(second_plot.plot)["layout"]["title"]["text"]
    assert "<tr class='constraint-selected' data-step='1'>" in second_table
    constraint_section.show_step(result, 10_000)  # clamped to the last step


def test_token_text_is_escaped():
    step = {"index": 0, "id": 5, "text": "<script>x</script>", "allowed_count": 3, "removed_mass": 0.5,
            "raw_prob": 0.1, "masked_prob": 0.2, "prob": 0.3, "model_top": [], "allowed_top": []}
    result = {"text": "<b>", "complete": True, "stop_explanation": "done", "steps": [step],
              "free": {"text": "<img src=x>", "stop_reason": "eos", "tokens": 1}}
    page = constraint_html.comparison_html(result) + constraint_html.steps_table([step], 0)
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page
    assert constraint_plots.run_spec([step])["data"][0]["x"] == ["1. <script>x</script>"]  # plotly draws text


@pytest.mark.parametrize("args,words", [
    ((MODEL, False, "Hi", "regular expression", "[0-9", 5), "regular expression cannot be used"),
    ((MODEL, False, "Hi", "JSON schema", "{", 5), "not valid JSON"),
    ((MODEL, False, "Hi", "nonsense", "a", 5), "Pick a constraint kind"),
    ((MODEL, False, "Hi", "choices", "a,b", "many"), "tokens"),
    ((None, False, "Hi", "choices", "a,b", 5), "Choose a model"),
])
def test_bad_input_is_a_message(args, words):
    assert words in handler_outcome(constraint_section.run_constraint, *args, *RULES)


def test_a_one_token_run_keeps_a_valid_slider():
    result, _pair, _overview, slider, _plot, _table = constraint_section.run_constraint(
        MODEL, False, "Hi", "choices", "yes", 5, *RULES)
    assert len(result["steps"]) == 1 and slider["maximum"] == 2 and not slider["interactive"]


def test_the_example_follows_the_kind():
    assert constraint_section.example("regular expression") == constraint_section.EXAMPLES["regex"]
