"""Rare tokens on the packaged models: Gemma 3's least trained rows stand out and the model fails to
repeat one while it repeats a median token; SmolLM2's lowest rows are ordinary (no outliers), and
the page says so rather than calling them rare."""

from __future__ import annotations

from playground.inside import rare_tokens as rare
from playground.models import load_model
from playground.ui import rare_section


def test_gemmas_least_trained_rows_stand_out_and_one_is_not_repeated():
    loaded = load_model("gemma-3-270m")
    found = rare.rare_tokens(loaded)
    assert found.tied and found.lowest[0].z <= rare_section.OUTLIER_Z and found.lowest[0].reachable
    assert "lie more than 3 standard deviations below the mean" in rare_section.summary_html(found)
    answer = rare_section.ask_to_repeat("gemma-3-270m", found.lowest[0].id)
    assert "It repeated 3 of 3 median tokens but not the candidate" in answer, answer


def test_smollm2s_lowest_rows_are_no_outliers_and_the_page_says_so():
    found = rare.rare_tokens(load_model("smollm2-135m-instruct"))
    assert found.lowest[0].z > rare_section.OUTLIER_Z
    assert "no clear under-trained tokens" in rare_section.summary_html(found)
