"""The Sampling lab's chain section handlers (tiny-random): the funnel follows the chain and the
lab's session without a model call, the editor's buttons rewrite the chain, bad input is a message."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from playground import lab, models
from playground.sampling import SamplingSettings
from playground.ui import chain_section

MODEL = "tiny-random"


@pytest.fixture(scope="module")
def session():
    session = lab.open_session(MODEL, "Once upon a time", False, 1024)
    lab.view(session, SamplingSettings())  # what "Show distribution" does: the distribution is cached
    return session


def test_the_funnel_draws_each_stage_without_calling_the_model(session):
    loaded = models.load_model(MODEL)
    calls = loaded.forward_calls
    plot, table, text, stages = chain_section.show_chain(session, "llama.cpp default")
    assert loaded.forward_calls == calls
    spec = json.loads(plot.plot)
    assert spec["data"][0]["x"][0] == "model" and spec["data"][0]["x"][4] == "4. top_k"
    assert spec["data"][0]["y"][4] == 40 and spec["data"][0]["y"][0] == loaded.model.config.vocab_size
    assert table.count("<tr data-stage=") == 10 and "top_k" in table
    assert text.startswith("repeat_penalty=1.0;") and len(stages["choices"]) == 9
    _plot, hint, _text, _stages = chain_section.show_chain(None, "top_k=3")
    assert "Show distribution" in hint


def test_the_editor_buttons_rewrite_the_chain():
    assert chain_section.add("top_k=40", "min_p") == "top_k=40;min_p=0.05"
    assert chain_section.move_up("top_k=40;min_p=0.05", 1) == ("min_p=0.05;top_k=40", 0)  # the picker follows
    assert chain_section.move_down("top_k=40;min_p=0.05", 0) == ("min_p=0.05;top_k=40", 1)
    _plot, _table, _text, picker = chain_section.show_chain(None, "top_k=40;min_p=0.05", 1)
    assert picker["value"] == 1
    assert chain_section.remove("top_k=40;min_p=0.05", 0) == "min_p=0.05"
    assert chain_section.preset_text("Ollama").startswith("repeat_penalty=1.1")


@pytest.mark.parametrize("call", [lambda s: chain_section.show_chain(s, "top_q=1"),
                                  lambda s: chain_section.remove("top_k=40", None),
                                  lambda s: chain_section.add("top_k=40", "top_k")])
def test_bad_input_is_a_message(session, call):
    with pytest.raises(gr.Error):
        call(session)


def test_the_table_escapes_token_text_and_the_chart_names_each_stage():
    from playground.html.chain import funnel_table
    from playground.plots.chain import funnel_spec

    rows = [{"name": "input", "params": {}, "kept_count": 3, "kept_mass": 1.0, "entropy_bits": 1.5,
             "top": [{"id": 7, "text": "<script>x</script>", "prob": 0.5}]},
            {"name": "top_k", "params": {"top_k": 1}, "kept_count": 1, "kept_mass": 0.5, "entropy_bits": 0.0,
             "top": [{"id": 7, "text": "<script>x</script>", "prob": 1.0}]}]
    table = funnel_table(rows)
    assert "<script>" not in table and "&lt;script&gt;" in table
    spec = funnel_spec(rows, "t")
    assert spec["data"][0]["x"] == ["model", "1. top_k"] and spec["data"][0]["y"] == [3, 1]
    assert spec["data"][2]["y"] == [1.5, 0.0] and "top_k=1" in spec["data"][0]["customdata"][1]


def test_ab_strips_mark_the_first_divergence(session):
    same = chain_section.run_ab(session, "top_k=40;temperature=0.8", "top_k=40;temperature=0.8", 3, 8)
    assert "Identical on every position" in same and "ab-diverged" not in same
    assert same.count("class='ab-tok") == 16
    differ = chain_section.run_ab(session, "top_k=40;temperature=0.8", "top_k=40;temperature=3.0", 3, 8)
    assert "First divergence at position" in differ and differ.count("ab-diverged") == 2  # one per strip
    assert chain_section.run_ab(session, "top_k=40;temperature=0.8", "top_k=40;temperature=3.0", 3, 8) == differ
    with pytest.raises(gr.Error, match="Show distribution"):
        chain_section.run_ab(None, "top_k=3", "top_k=4", 0, 4)


def test_k_samples_ab_draw_histograms_side_by_side_on_the_same_numbers(session):
    """Identical chains: the same token in every draw, equal bars; greedy against a hot chain: the
    greedy side is one bar of K; the title says how many draws agreed; the same seed, the same chart."""
    same = json.loads(chain_section.run_ab_samples(session, "top_k=40;temperature=0.8", "top_k=40;temperature=0.8",
                                                   5, 64).plot)
    a, b = same["data"]
    title = same["layout"]["title"]["text"]
    assert a["y"] == b["y"] and "64 of 64 (100%)" in title
    if len(a["x"]) == 20:  # tiny-random's flat distribution: more tokens than bars, and the title says so
        assert f"A's other {64 - sum(a['y'])} and B's other {64 - sum(b['y'])} draws are not shown" in title
    else:
        assert sum(a["y"]) == 64
    differ = json.loads(chain_section.run_ab_samples(session, "top_k=1", "temperature=3.0", 5, 64).plot)
    a, b = differ["data"]
    assert sorted(a["y"], reverse=True)[0] == 64 and sum(b["y"]) <= 64 and len(b["x"]) > 1
    assert a["x"] == b["x"] and a["name"] == "A: top_k=1" and b["name"] == "B: temperature=3.0"
    assert chain_section.run_ab_samples(session, "top_k=1", "temperature=3.0", 5, 64).plot == \
        chain_section.run_ab_samples(session, "top_k=1", "temperature=3.0", 5, 64).plot
    with pytest.raises(gr.Error, match="K must be a number"):
        chain_section.run_ab_samples(session, "top_k=1", "top_k=2", 5, "many")
    clamped = json.loads(chain_section.run_ab_samples(session, "top_k=1", "top_k=2", 5, 10**6).plot)
    assert "K = 256 " in clamped["layout"]["title"]["text"]  # clamped to the page's bound
    with pytest.raises(gr.Error, match="Show distribution"):
        chain_section.run_ab_samples(None, "top_k=1", "top_k=2", 5, 8)
