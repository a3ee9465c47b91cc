"""The Beam search tab over HTTP: `/beam_search` runs the real search, `/beam_redraw` replays it.

The returned sequences' scores are checked against `model.generate(num_beams=...)` run here, in the
test process, so the numbers in the app are transformers' numbers.
"""

from __future__ import annotations

import json

import pytest
import torch

from playground import generation
from playground.decoding import prompt_ids
from playground.models import load_model
from playground.sampling import SamplingSettings
from playground.token_text import visible_whitespace

MODEL = "smollm2-135m-instruct"
PROMPT = "What is the capital of France?"


def _search(client, **overrides):
    values = dict(prompt=PROMPT, model_id=MODEL, chat_template=True, num_beams=2, max_new_tokens=6,
                  length_penalty=1.0, early_stopping="never", num_return=2, compare_greedy=True,
                  compare_sampled=True, seed=5, collapse=False)
    values.update(overrides)
    return client.predict(*values.values(), api_name="/beam_search")


def _figure(plot_output) -> dict:
    plot = plot_output["plot"] if isinstance(plot_output, dict) else plot_output
    return json.loads(plot) if isinstance(plot, str) else plot


def test_beam_search_endpoint_matches_generate(client):
    figure_out, step, table, summary = _search(client)
    loaded = load_model(MODEL)
    ids = prompt_ids(loaded, PROMPT, chat_template=True)
    with torch.inference_mode():
        out = loaded.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                    num_beams=2, max_new_tokens=6, early_stopping="never", num_return_sequences=2,
                                    do_sample=False, output_scores=True, return_dict_in_generate=True)
    rows = table["data"]
    assert [r[0] for r in rows] == ["beam #1", "beam #2", "greedy", "sampled (seed 5)"]
    assert [float(r[4]) for r in rows[:2]] == pytest.approx(out.sequences_scores.tolist(), abs=1e-3)
    for row, generated in zip(rows[:2], out.sequences[:, len(ids):].tolist()):
        eos = loaded.model.generation_config.eos_token_id
        if eos in generated:  # generate pads after the EOS
            generated = generated[: generated.index(eos) + 1]
        assert row[1] == visible_whitespace(loaded.tokenizer.decode(generated))
    assert step == 6 or (isinstance(step, dict) and step.get("value") == 6)
    assert "steps" in summary and "Greedy" in summary and "Sampled" in summary
    figure = _figure(figure_out)
    names = [trace.get("name") or "" for trace in figure["data"]]
    assert any("pruned" in n for n in names) and any("returned" in n for n in names)
    assert any("greedy path" in n for n in names) and any("sampled path" in n for n in names)


def test_sampled_path_is_the_sampling_labs_draw(client):
    """Seed 5 in the beam tab draws what seed 5 draws in the sampling lab at temperature 1."""
    _figure_out, _step, table, _summary = _search(client, seed=5)
    loaded = load_model(MODEL)
    ids = prompt_ids(loaded, PROMPT, chat_template=True)
    lab = generation.generate(loaded, ids, SamplingSettings(temperature=1.0), 6, seed=5)
    sampled = next(r for r in table["data"] if r[0] == "sampled (seed 5)")
    assert sampled[1] == visible_whitespace(loaded.tokenizer.decode(lab.token_ids))
    assert int(sampled[2]) == len(lab.token_ids)
    assert float(sampled[3]) == pytest.approx(lab.logprob, abs=1e-3)


def test_redraw_replays_from_the_stored_search(client):
    _search(client, early_stopping="never", max_new_tokens=5)
    figure = _figure(client.predict(2, True, False, False, api_name="/beam_redraw"))
    assert "step 2 of 5" in figure["layout"]["title"]["text"]
    names = [trace.get("name") or "" for trace in figure["data"]]
    assert not any("pruned" in n for n in names)  # collapsed
    assert not any("greedy path" in n for n in names)  # hidden


def test_more_returned_sequences_than_beams_run_with_the_beams_and_say_so(client):
    """A link or an API call with `returns` above `beams` (the page's slider follows the beams) runs
    with as many returned sequences as beams and says so in the summary, never an error."""
    _figure_out, _step, table, summary = _search(client, num_beams=2, num_return=5, max_new_tokens=3,
                                                 compare_greedy=False, compare_sampled=False)
    assert "5 asked for, 2 returned" in summary, summary
    assert len([row for row in table["data"] if row[0].startswith("beam")]) == 2, table["data"]


@pytest.mark.parametrize("overrides,expected", [
    (dict(seed="abc"), "Sampling seed"),
    (dict(num_beams="many"), "Beams"),
    (dict(early_stopping="sometimes"), "sometimes"),
    (dict(model_id="no-such-model"), "no-such-model"),
    (dict(max_new_tokens=1000), "maximum"),
])
def test_odd_values_give_clean_messages(client, overrides, expected):
    """Each odd value gets a message naming what was wrong (never a traceback or a generic failure)."""
    with pytest.raises(Exception) as error:
        _search(client, **overrides)
    message = str(error.value)
    assert expected in message and "Traceback" not in message and "Something went wrong" not in message
