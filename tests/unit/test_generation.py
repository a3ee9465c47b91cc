"""Generation on the tiny random model: reproducibility, forward-call counts, stop reasons, undo."""

from __future__ import annotations

import math

import pytest
import torch

from playground import decoding, generation
from playground.errors import PlaygroundError
from playground.models import load_model
from playground.plots.sampling import distribution_figure
from playground.sampling import PRESETS, RankedLogits, SamplingSettings, filter_logits

MODEL = "tiny-random"
HOT = SamplingSettings(temperature=1.5)  # a random model at T=1.5: every draw is a real draw


@pytest.fixture(scope="module")
def loaded():
    return load_model(MODEL)


@pytest.fixture(scope="module")
def prompt(loaded):
    return decoding.prompt_ids(loaded, "Once upon a time")


def test_same_seed_same_tokens(loaded, prompt):
    a = generation.generate(loaded, prompt, HOT, 12, seed=7)
    b = generation.generate(loaded, prompt, HOT, 12, seed=7)
    c = generation.generate(loaded, prompt, HOT, 12, seed=8)
    assert a.token_ids == b.token_ids
    assert [r.prob for r in a.records] == [r.prob for r in b.records]
    assert a.token_ids != c.token_ids


def test_token_by_token_equals_one_run(loaded, prompt):
    whole = generation.generate(loaded, prompt, HOT, 8, seed=3)
    decoder = generation.Decoder(loaded, prompt)
    pieces = []
    for _ in range(8):
        pieces += list(generation.iter_generation(decoder, HOT, 1, 3))
    assert [r.id for r in pieces] == whole.token_ids
    assert decoder.generated_ids == whole.token_ids


def test_undo_then_next_draws_the_same_token(loaded, prompt):
    decoder = generation.Decoder(loaded, prompt)
    first = [r.id for r in generation.iter_generation(decoder, HOT, 4, 11)]
    logits_before = decoder.logits.clone()
    decoder.rewind(len(decoder.ids) - 2)
    again = [r.id for r in generation.iter_generation(decoder, HOT, 2, 11)]
    assert again == first[2:]
    torch.testing.assert_close(decoder.logits, logits_before, atol=1e-4, rtol=1e-4)
    with pytest.raises(PlaygroundError):
        decoder.rewind(len(prompt) - 1)


def test_a_run_of_n_tokens_costs_n_forward_calls(loaded, prompt):
    before = loaded.forward_calls
    result = generation.generate(loaded, prompt, PRESETS["nucleus"], 6, seed=0)
    assert len(result.records) == 6
    assert loaded.forward_calls - before == 6  # the prompt, then one per token except the last


def test_refiltering_never_runs_the_model(loaded):
    distribution = decoding.next_token_distribution(MODEL, "The capital of France is")
    before = loaded.forward_calls
    again = decoding.next_token_distribution(MODEL, "The capital of France is")
    ranked = RankedLogits(again.logits)
    for settings in [*PRESETS.values(), SamplingSettings(temperature=3.0, min_p=0.2),
                     SamplingSettings(temperature=0.5, order="temperature_last", top_p=0.5)]:
        result = filter_logits(ranked, settings)
        distribution_figure(ranked, result, loaded.tokenizer, 20)
    assert loaded.forward_calls == before
    assert again is distribution


def test_tab_control_changes_never_run_the_model(loaded):
    from playground.ui import sampling_tab

    rules = (1.0, 1000, 1.0, 0.0, "transformers")
    state = sampling_tab.show_distribution(MODEL, False, "A tab test prompt", 20, False, *rules)[0]
    before = loaded.forward_calls
    for temperature in (0.0, 0.3, 1.0, 2.5, 5.0):
        for top_k in (0, 10):
            out = sampling_tab.refilter(state, 20, temperature > 2, temperature, top_k, 0.9, 0.05, "transformers")
            assert out[1] is not None
    sampling_tab.refilter(state, 50, True, 1.0, 0, 1.0, 0.0, "temperature_last")
    assert loaded.forward_calls == before
    sampling_tab.next_token(state, 20, False, *rules, 1)
    assert loaded.forward_calls == before + 2  # the decoder encodes the prompt, then feeds the token
    sampling_tab.refilter(state, 20, False, 0.7, 0, 1.0, 0.0, "transformers")
    assert loaded.forward_calls == before + 2


def test_stop_max_tokens_and_stop_string(loaded, prompt):
    greedy = SamplingSettings(temperature=0.0)
    result = generation.generate(loaded, prompt, greedy, 6, seed=0)
    assert result.stop_reason == "max_tokens" and len(result.records) == 6
    assert [r.stop for r in result.records] == [None] * 5 + ["max_tokens"]
    assert all(r.rank == 1 for r in result.records)  # greedy always takes the most probable token
    # a stop string made of the third token's text stops the same run at the third token
    third = result.records[2].text
    assert third.strip()
    stopped = generation.generate(loaded, prompt, greedy, 6, seed=0, stop_strings=[third.strip()])
    assert stopped.stop_reason == "stop_string"
    assert len(stopped.records) <= 3
    assert stopped.token_ids == result.token_ids[: len(stopped.records)]


def test_stop_context(loaded):
    long_prompt = [5] * (loaded.context_length - 2)
    result = generation.generate(loaded, long_prompt, HOT, 10, seed=0)
    assert result.stop_reason == "context"
    assert len(long_prompt) + len(result.records) == loaded.context_length
    with pytest.raises(PlaygroundError):
        generation.generate(loaded, [5] * loaded.context_length, HOT, 3, seed=0)


def test_forced_eos_stops_and_is_recorded(loaded, prompt):
    decoder = generation.Decoder(loaded, prompt)
    eos = loaded.eos_token_ids[0]
    record = generation.forced_step(decoder, HOT, eos)
    assert record.stop == "eos" and record.is_eos and record.chosen == "forced"
    assert record.eos_raw_prob == pytest.approx(record.raw_prob)
    assert generation.generated_text(loaded.tokenizer, decoder.generated_ids, loaded.eos_token_ids) == ""
    with pytest.raises(PlaygroundError):
        generation.forced_step(decoder, HOT, loaded.vocab_size)


def test_records_describe_the_distribution(loaded, prompt):
    result = generation.generate(loaded, prompt, PRESETS["top-10"], 5, seed=4)
    for record in result.records:
        assert 1 <= record.rank <= 10 + 5  # top-10 keeps ranks 1..10 (plus exact ties)
        assert record.kept_count >= 10
        assert 0 < record.raw_prob <= record.prob <= 1
        assert len(record.alternatives) == generation.TOP_ALTERNATIVES
        assert record.alternatives[0].raw_prob >= record.alternatives[-1].raw_prob
    expected = sum(math.log(r.raw_prob) for r in result.records)
    assert result.logprob == pytest.approx(expected)
    assert result.perplexity == pytest.approx(math.exp(-expected / 5))


def sample_many(loaded, prompt, settings, k, max_new_tokens, seed=0):
    """The finished result of `generation.iter_samples`."""
    *_, last = generation.iter_samples(loaded, prompt, settings, k, max_new_tokens, seed)
    return last


def test_samples_equal_single_runs_with_shifted_seeds(loaded, prompt):
    samples = sample_many(loaded, prompt, HOT, 4, 6, seed=20)
    assert samples.finished and len(samples.samples) == 4
    for i, sample in enumerate(samples.samples):
        assert sample.token_ids == generation.generate(loaded, prompt, HOT, 6, seed=20 + i).token_ids
    assert sum(samples.first_token_counts.values()) == 4
    again = sample_many(loaded, prompt, HOT, 4, 6, seed=20)
    assert [s.token_ids for s in again.samples] == [s.token_ids for s in samples.samples]


def test_partial_samples_say_they_are_running(loaded, prompt):
    from playground.html.generated import samples_html

    partial = list(generation.iter_samples(loaded, prompt, HOT, 3, 5, seed=1))
    first, last = partial[0], partial[-1]
    assert not first.finished and all(s.stop_reason is None for s in first.samples if not s.records[-1].stop)
    assert "running…" in samples_html(first.samples, generation.STOP_REASONS)
    stopped = samples_html(first.samples, generation.STOP_REASONS, stopped=True)
    assert "running…" not in stopped and "stopped (you pressed Stop)" in stopped
    assert last.finished and all(s.stop_reason in generation.STOP_REASONS for s in last.samples)
    assert "running…" not in samples_html(last.samples, generation.STOP_REASONS)


def test_samples_follow_the_processed_distribution(loaded, prompt):
    settings = SamplingSettings(top_k=3)
    samples = sample_many(loaded, prompt, settings, 40, 1, seed=0)
    allowed = set(samples.first_distribution.kept_ids.tolist())
    assert len(allowed) == 3
    assert set(samples.first_token_counts) <= allowed


@pytest.mark.parametrize("bad", [dict(max_new_tokens=0), dict(max_new_tokens=10**6), dict(seed=-1)])
def test_bad_generation_input(loaded, prompt, bad):
    kwargs = dict(max_new_tokens=3, seed=0) | bad
    with pytest.raises(PlaygroundError):
        generation.generate(loaded, prompt, HOT, **kwargs)


def test_an_end_of_sequence_note_says_how_probable_the_model_made_it(loaded, prompt):
    """The eos demo's point on screen: the model chose to stop, with this probability."""
    decoder = generation.Decoder(loaded, prompt)
    eos = loaded.tokenizer.eos_token_id
    record = generation.forced_step(decoder, PRESETS["top-10"], eos)
    note = generation.stop_note("eos", record)
    assert note.startswith("Stopped: the model chose its end-of-sequence token (probability ")
    raw = f"{record.raw_prob * 100:.1f}%" if record.raw_prob >= 0.001 else f"{record.raw_prob:.1e}"
    assert f"probability {raw} under the model" in note and note.endswith(" after the rules).")
    assert generation.stop_note("eos") == "Stopped: the model chose its end-of-sequence token."
    assert generation.stop_note("max_tokens", record) == "Stopped: the maximum number of new tokens was reached."
