"""The sampling lab's pure view pieces: shared controls' values, generated-text HTML, chart specs."""

from __future__ import annotations

import html
import json
import re

import pytest
import torch

from playground import generation
from playground.errors import PlaygroundError
from playground.html.generated import generated_html, probability_color
from playground.models import load_model
from playground.plots.sampling import (
    KEPT_COLOR,
    RAW_COLOR,
    REMOVED_COLOR,
    REST_COLOR,
    SAMPLE_COLOR,
    distribution_spec,
    first_token_spec,
    spec_json,
)
from playground.sampling import PRESETS, RankedLogits, SamplingSettings, filter_logits


def test_controls_turn_widget_values_into_settings():
    from playground.ui.controls import preset_values, seed_from_value, settings_from_values

    for name, settings in PRESETS.items():
        assert settings_from_values(*preset_values(name), settings.order) == settings
    assert settings_from_values(0.7, 0, 0.9, 0.05, "temperature_last") == SamplingSettings(
        temperature=0.7, top_k=None, top_p=0.9, min_p=0.05, order="temperature_last")
    assert settings_from_values(1.0, None, None, None, None) == SamplingSettings()
    with pytest.raises(PlaygroundError):
        settings_from_values(-1, 0, 1, 0)
    assert seed_from_value(None) == seed_from_value("") == 42 and seed_from_value(7.0) == 7
    with pytest.raises(PlaygroundError):
        seed_from_value("x")


def test_controls_build_inside_blocks():
    import gradio as gr

    from playground.ui.controls import sampling_controls

    with gr.Blocks():
        a = sampling_controls(elem_prefix="one")
        b = sampling_controls(elem_prefix="two", show_order=False)
    assert len(a.inputs) == 6 and len(a.settings_inputs) == 5 and set(a.preset_buttons) == set(PRESETS)
    assert a.temperature.elem_id != b.temperature.elem_id


def test_generated_html_escapes_and_describes_tokens():
    loaded = load_model("tiny-random")
    decoder = generation.Decoder(loaded, [1, 2, 3])
    evil = loaded.tokenizer.encode("<script>", add_special_tokens=False)[0]
    record = generation.forced_step(decoder, PRESETS["top-10"], evil)
    page = generated_html("<b>prompt</b>", [record], "Stopped: eos.")
    assert "<script>" not in page and "<b>prompt" not in page and "&lt;" in page
    assert f"rank {record.rank}" in page and "top alternatives" in page
    assert probability_color(1.0) != probability_color(1e-6)


def test_chart_specs_are_plain_json():
    loaded = load_model("tiny-random")
    logits = torch.randn(loaded.vocab_size, generator=torch.Generator().manual_seed(0)) * 3
    ranked = RankedLogits(logits)
    result = filter_logits(ranked, PRESETS["top-10"])
    spec = distribution_spec(ranked, result, loaded.tokenizer, 20, log_scale=True)
    data = json.loads(spec_json(spec))
    raw, processed = data["data"]
    assert len(raw["y"]) == 21 and raw["customdata"][-1] == -1  # 20 tokens and the rest of the vocabulary
    assert sum(x is not None for x in processed["x"][:20]) == 10  # top-10: ten bars survive
    assert data["layout"]["xaxis"]["type"] == "log"
    assert abs(sum(raw["x"]) - 1) < 1e-4
    hist = first_token_spec(ranked, result, loaded.tokenizer, {int(result.kept_ids[0]): 3, int(result.kept_ids[1]): 1})
    shares = hist["data"][1]["x"]
    assert shares[0] == 0.75 and abs(sum(shares) - 1) < 1e-9


def test_chart_pacer_draws_the_first_view_then_at_most_once_per_interval():
    from playground.ui.sampling_tab import StreamPacer

    now = [100.0]
    pacer = StreamPacer(0.5, clock=lambda: now[0])
    drawn = []
    for _ in range(12):  # a token every 0.2 s
        drawn.append(pacer())
        now[0] += 0.2
    assert drawn == [True, False, False, True, False, False, True, False, False, True, False, False]
    assert all(StreamPacer(0.0, clock=lambda: now[0])() for _ in range(3))


def _is_skip(value) -> bool:
    import gradio as gr

    return isinstance(value, dict) and value == gr.skip()


def test_generate_n_streams_within_a_frame_budget_and_always_ends_with_everything(monkeypatch):
    """A view per token, each with the chart, the token list and the details JSON, kept the browser
    busy; the text and numbers come TEXT_VIEWS_PER_CHART times per PLOT_INTERVAL_SECONDS, the
    chart, token list and details at most once in it, and the stream's last view has everything."""
    from playground.ui import sampling_tab as tab

    rules = (0.0, 0, 1.0, 0.0, "transformers")
    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 3600.0)  # only the first and the last view
    state = tab.show_distribution("tiny-random", False, "Hello there", 10, False, *rules)[0]
    views = list(tab.generate_n(state, 6, "", 10, False, *rules, 1))
    assert len(views) == 2, len(views)  # the first token's view, then the final one
    first, last = views
    assert not any(_is_skip(part) for part in first) and not any(_is_skip(part) for part in last)
    assert [len(view[5]["generated"]) for view in views] == [1, 6]
    assert "(6 generated tokens)" in last[1].plot and last[4].count("gen-tok") == 6

    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 0.0)  # everything with every token: no extra view
    views = list(tab.generate_n(state, 3, "", 10, False, *rules, 1))
    assert len(views) == 3 and not any(_is_skip(part) for view in views for part in view)

    # a chart every 0.4 s on a clock that moves 0.05 s at each look: light text views in between
    looks = iter(range(100_000))
    monkeypatch.setattr(tab, "_now", lambda: next(looks) * 0.05)
    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 0.4)
    views = list(tab.generate_n(state, 12, "", 10, False, *rules, 1))
    light = [view for view in views if _is_skip(view[1])]
    assert light and all(_is_skip(view[3]) and _is_skip(view[5]) for view in light)
    assert not any(_is_skip(part) for part in views[-1])


def test_samples_stream_light_paced_views_and_end_with_the_whole_view(monkeypatch):
    """Running views: no hover cards, no JSON, the histogram only in the first; the last view (all
    an API caller gets) and the view after Stop have everything."""
    from playground.ui import sampling_tab as tab

    rules = (1.0, 0, 1.0, 0.0, "transformers")
    state = tab.show_distribution("tiny-random", False, "Hello there", 10, False, *rules)[0]
    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 0.0)  # a running view after every step
    views = list(tab.draw_samples(state, 3, 4, "", 10, *rules, 1))
    assert len(views) == 4
    *running, last = views
    assert not _is_skip(running[0][1]) and all(_is_skip(view[1]) for view in running[1:])
    card = re.compile(r'<span class="gen-tok[^>]*title=')
    assert all(_is_skip(view[2]) and not card.search(view[0]) for view in running)
    assert all("step" in view[0] and "running…" in view[0] and "hover cards appear when the run ends" in view[0]
               for view in running)
    assert not _is_skip(last[1]) and last[2]["finished"] and len(last[2]["samples"]) == 3
    assert card.search(last[0]) and "hover a token for its rank" in last[0] and "running…" not in last[0]

    monkeypatch.setattr(tab, "PLOT_INTERVAL_SECONDS", 3600.0)  # only the first running view, then the last
    views = list(tab.draw_samples(state, 3, 4, "", 10, *rules, 1))
    assert len(views) == 2 and _is_skip(views[0][2]) and views[1][2]["finished"]

    assert tab.samples_after_stop(state) == (tab.gr.skip(),) * 3  # not stopped: the page keeps its views
    assert state.samples is None  # a finished run is not kept in the idle session
    stream = tab.draw_samples(state, 3, 4, "", 10, *rules, 1)
    next(stream)
    stream.close()  # what Stop does to the stream
    html, figure, summary = tab.samples_after_stop(state)  # after Stop: the whole view again
    assert not _is_skip(figure) and summary["stopped_by_user"] and card.search(html)
    assert state.samples is None and tab.samples_after_stop(state) == (tab.gr.skip(),) * 3  # shown once


def test_distribution_spec_bars_rest_and_layout_for_a_fixed_input():
    """Five tokens, logits [1, 3, 2, 3, -1] (ids 1 and 3 tied on top), three bars and the rest."""
    tokenizer = load_model("tiny-random").tokenizer
    ranked = RankedLogits(torch.tensor([1.0, 3.0, 2.0, 3.0, -1.0]))
    spec = json.loads(spec_json(distribution_spec(ranked, filter_logits(ranked, SamplingSettings(top_k=2)),
                                                  tokenizer, 3)))
    raw, processed = spec["data"]
    assert raw["customdata"] == processed["customdata"] == [1, 3, 2, -1]  # ties by id, then the rest
    assert raw["y"] == processed["y"] == spec["layout"]["yaxis"]["tickvals"] == [0, 1, 2, 3]
    assert spec["layout"]["yaxis"]["ticktext"][-1] == "rest (2)"
    assert [round(x, 4) for x in raw["x"]] == [0.3966, 0.3966, 0.1459, 0.0609]
    assert processed["x"] == [0.5, 0.5, None, None] and processed["text"] == ["50.0%", "50.0%", "", ""]
    assert raw["marker"]["color"] == [RAW_COLOR, RAW_COLOR, REMOVED_COLOR, REST_COLOR]
    assert processed["marker"]["color"] == [KEPT_COLOR, KEPT_COLOR, KEPT_COLOR, REST_COLOR]
    assert raw["hovertext"] == processed["hovertext"]
    assert "id 3 · rank 2<br>raw 0.3966<br>processed 0.5" in raw["hovertext"][1]
    assert raw["hovertext"][2].endswith("<i>removed by the rules</i>")
    assert raw["hovertext"][3] == "<b>the other 2 tokens</b><br>raw 0.06094<br>processed 0<br>0 of them kept"
    layout = spec["layout"]
    assert layout["height"] == 420 and layout["margin"]["t"] == 30 and layout["title"]["text"] == ""
    assert layout["xaxis"]["type"] == "linear" and layout["xaxis"]["range"] == [0, 0.59]  # 0.5 * 1.18

    # top-k 4 keeps token 0, below the 3 bars: the rest bar has mass; title, highlight and log scale
    result = filter_logits(ranked, SamplingSettings(top_k=4))
    spec = distribution_spec(ranked, result, tokenizer, 3, log_scale=True, title="T", highlight=3)
    raw, processed = spec["data"]
    assert processed["marker"]["color"] == [KEPT_COLOR, SAMPLE_COLOR, KEPT_COLOR, REST_COLOR]
    assert raw["marker"]["color"] == [RAW_COLOR] * 3 + [REST_COLOR]
    assert processed["x"][3] == pytest.approx(float(result.probs[0]), abs=1e-6)  # 1 - the bars above
    assert raw["hovertext"][3].endswith("<br>1 of them kept")
    layout = spec["layout"]
    assert layout["xaxis"]["type"] == "log" and "range" not in layout["xaxis"]
    assert layout["xaxis"]["title"]["text"] == "probability (log scale)"
    assert layout["title"]["text"] == "T" and layout["margin"]["t"] == 60

    # every token shown: no rest bar
    spec = distribution_spec(ranked, result, tokenizer, 99)
    assert spec["data"][0]["customdata"] == [1, 3, 2, 0, 4] and "rest" not in str(spec["layout"]["yaxis"]["ticktext"])


def test_the_rest_bar_is_exactly_zero_when_the_rules_keep_none_of_it():
    """Top-k 3 of a real-size vocabulary with 3 bars: the rest kept nothing, so its bar and label
    are empty (1 - the bars' sum was labelled "1.5e-08" on Gemma)."""
    tokenizer = load_model("tiny-random").tokenizer
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(len(tokenizer), generator=generator) * 4
    ranked = RankedLogits(logits)
    spec = distribution_spec(ranked, filter_logits(ranked, SamplingSettings(temperature=0.7, top_k=3)), tokenizer, 3)
    processed = spec["data"][1]
    assert processed["x"][-1] is None and processed["text"][-1] == ""
    assert spec["data"][0]["hovertext"][-1].endswith("processed 0<br>0 of them kept")


def test_the_chart_title_names_the_text_it_follows_escaped():
    """A presenter's screen shows the prompt with its result: the title ends with the text's last
    characters (whitespace as single spaces), escaped for plotly's markup, and counts generated tokens."""
    from playground.ui import sampling_tab as tab

    rules = (0.0, 0, 1.0, 0.0, "transformers")
    prompt = "A long\n\nprompt, more words than the title holds, <b>bold</b> & end"
    state, figure, *_ = tab.show_distribution("tiny-random", False, prompt, 10, False, *rules)
    title = json.loads(figure.plot)["layout"]["title"]["text"]
    tail = " ".join(prompt.split())[-(tab.TITLE_TEXT_CHARS - 1):]
    assert title == f"Next token after “…{html.escape(tail)}”", title
    assert "<b>" not in title and "&lt;b&gt;" in title
    *_, last = tab.generate_n(state, 2, "", 10, False, *rules, 1)
    title = json.loads(last[1].plot)["layout"]["title"]["text"]
    text = " ".join((prompt + "".join(r.text for r in state.records)).split())
    assert title.endswith(f"{html.escape(text[-(tab.TITLE_TEXT_CHARS - 1):])}” (2 generated tokens)"), title
    short = tab.show_distribution("tiny-random", False, "Hi", 10, False, *rules)[1]
    assert json.loads(short.plot)["layout"]["title"]["text"] == "Next token after “Hi”"


def test_the_token_list_shows_the_numbers_the_chart_shows():
    """Each entry gives the model's probability and the one after the rules, as the chart labels it
    (it showed the raw 19.13% beside a bar labelled 31.7%)."""
    from playground.plots.sampling import percent
    from playground.ui import sampling_tab as tab

    rules = (1.0, 2, 1.0, 0.0, "transformers")
    session, figure, _numbers, dropdown, _html, details = tab.show_distribution("tiny-random", False, "Hello", 5,
                                                                                 False, *rules)
    labels = [label for label, _ in dropdown["choices"]]
    for label, token in zip(labels, details["tokens"]):
        assert f"model {token['raw_prob'] * 100:.2f}%" in label
        assert (f"after the rules {percent(token['prob'])}" if token["kept"] else "removed") in label
    chart_labels = [text for text in json.loads(figure.plot)["data"][1]["text"] if text]
    assert chart_labels and all(any(f"after the rules {c}" in label for label in labels) for c in chart_labels)


def test_choosing_a_chat_model_leaves_the_chat_template_box_as_it_is():
    """A chat model makes the box clickable without ticking it (a link's chat_template=0 holds);
    a base model unticks it."""
    from playground.ui import sampling_tab

    chat = sampling_tab.model_changed("smollm2-135m-instruct")
    assert chat["interactive"] is True and "value" not in chat
    base = sampling_tab.model_changed("gemma-3-270m")
    assert base["interactive"] is False and base["value"] is False


def test_a_chat_template_chart_title_names_the_users_message():
    from playground.ui import sampling_tab as tab

    rules = (0.0, 0, 1.0, 0.0, "transformers")
    figure = tab.show_distribution("tiny-random", True, "What is the capital of France?", 10, False, *rules)[1]
    title = json.loads(figure.plot)["layout"]["title"]["text"]
    assert title == "Next token after “What is the capital of France?” in the chat template", title
