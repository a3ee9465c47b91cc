"""The recorded beam search against transformers' `generate(num_beams=...)` on the tiny random model.

Equality: the returned sequences token for token and `sequences_scores` within 1e-4, over a grid of
num_beams, length_penalty, early_stopping and num_return_sequences. The random model spreads its
probability almost evenly and never picks its own EOS, so EOS handling is tested with EOS ids the
search is known to meet (tokens taken from a first run's tree). Then the tree's invariants, the
comparison paths, the settings checks, the figure and the CLI.
"""

from __future__ import annotations

import html

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground import beam, generation
from playground.__main__ import main as cli_main
from playground.decoding import prompt_ids
from playground.errors import PlaygroundError
from playground.models import load_model
from playground.plots.beam import (
    beam_figure,
    comparison_traces,
    edge_traces,
    figure_layout,
    layout_tree,
    node_traces,
    returned_path_traces,
    summary_markdown,
    summary_rows,
)
from playground.sampling import SamplingSettings

PROMPTS = ["The capital of France is", "Once upon a time"]
GRID = [
    # num_beams, max_new_tokens, length_penalty, early_stopping, num_return_sequences
    (2, 6, 1.0, False, 1),
    (3, 7, 0.0, True, 2),
    (4, 6, 2.0, "never", 4),
    (4, 6, -1.0, False, 3),
    (5, 5, 0.5, True, 5),
    (3, 6, 1.5, "never", 1),
    (8, 4, 1.0, False, 8),
]


@pytest.fixture(scope="module")
def loaded():
    return load_model("tiny-random")


def reference(loaded, ids, s: beam.BeamSettings, eos=None):
    kwargs = dict(num_beams=s.num_beams, max_new_tokens=s.max_new_tokens, length_penalty=s.length_penalty,
                  early_stopping=s.early_stopping, num_return_sequences=s.num_return_sequences, do_sample=False,
                  output_scores=True, return_dict_in_generate=True)
    if eos is not None:
        kwargs["eos_token_id"] = list(eos)
    with torch.inference_mode():
        return loaded.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     **kwargs)


def assert_same_as_generate(loaded, ids, s, eos=None):
    result = beam.beam_search(loaded, ids, s, eos_token_ids=eos)
    out = reference(loaded, ids, s, eos)
    prompt_len = len(ids)
    assert len(result.sequences) == out.sequences.shape[0] == s.num_return_sequences
    generated_len = out.sequences.shape[1] - prompt_len
    for rank, sequence in enumerate(result.sequences):
        ref = out.sequences[rank, prompt_len:].tolist()
        assert sequence.ids == ref[: len(sequence.ids)], f"sequence {rank}"
        assert len(sequence.ids) <= generated_len
        # transformers pads shorter sequences after their EOS
        if len(sequence.ids) < generated_len:
            assert sequence.ids[-1] in (eos if eos is not None else loaded.eos_token_ids)
        assert sequence.score == pytest.approx(float(out.sequences_scores[rank]), abs=1e-4)
    assert max(len(s_.ids) for s_ in result.sequences) == generated_len
    return result


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("grid", GRID, ids=[str(g) for g in GRID])
def test_equals_generate_without_eos(loaded, prompt, grid):
    assert_same_as_generate(loaded, prompt_ids(loaded, prompt), beam.BeamSettings(*grid))


def eos_ids_met(loaded, ids, s, picks):
    """EOS ids the search meets: tokens of the candidates at (step, order) in a first run's tree."""
    first = beam.beam_search(loaded, ids, s)
    by_position = {(n.step, n.order): n.token_id for n in first.nodes}
    return [by_position[p] for p in picks if p in by_position]


@pytest.mark.parametrize("grid", GRID[1:5], ids=[str(g) for g in GRID[1:5]])
@pytest.mark.parametrize("picks", [[(2, 0)], [(3, 1)], [(1, 0), (4, 3)]], ids=["best@2", "second@3", "two-eos"])
def test_equals_generate_with_eos(loaded, grid, picks):
    ids = prompt_ids(loaded, PROMPTS[0], chat_template=True)
    s = beam.BeamSettings(*grid)
    eos = eos_ids_met(loaded, ids, s, picks)
    result = assert_same_as_generate(loaded, ids, s, eos)
    assert result.candidates_per_step == max(2, 1 + len(eos)) * s.num_beams
    # the EOS candidates were really met, so EOS handling was exercised
    assert any(node.eos for node in result.nodes)


def test_eos_finishes_hypotheses_and_early_stopping_stops(loaded):
    ids = prompt_ids(loaded, PROMPTS[1])
    s = beam.BeamSettings(3, 10, 1.0, True, 3)
    first = beam.beam_search(loaded, ids, s)
    # every candidate of step 2 is an EOS id: all live beams end at step 2
    eos = sorted({n.token_id for n in first.nodes if n.step == 2})
    result = assert_same_as_generate(loaded, ids, s, eos)
    assert result.steps <= 2  # (a token of step 2 may already end a hypothesis at step 1)
    assert result.stop_reason.startswith("early_stopping")
    assert all(len(seq.ids) <= 2 and seq.ids[-1] in eos for seq in result.sequences)
    assert {n.status for n in result.nodes if n.step == result.steps and n.order < s.num_beams} <= {
        "returned", "finished"}
    # early_stopping=False stops too (no live beam can beat them), "never" with a length bonus goes on
    assert assert_same_as_generate(loaded, ids, beam.BeamSettings(3, 10, 1.0, False, 3), eos).steps <= 2
    never = assert_same_as_generate(loaded, ids, beam.BeamSettings(3, 10, 2.0, "never", 3), eos)
    assert never.steps > result.steps


def test_one_beam_is_greedy_without_eos(loaded):
    ids = prompt_ids(loaded, PROMPTS[0])
    result = beam.beam_search(loaded, ids, beam.BeamSettings(1, 8, 1.0, False, 1))
    with torch.inference_mode():
        greedy = loaded.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                       max_new_tokens=8, do_sample=False)
    assert result.sequences[0].ids == greedy[0, len(ids):].tolist()


def test_one_batched_forward_per_step(loaded):
    ids = prompt_ids(loaded, PROMPTS[0])
    result = beam.beam_search(loaded, ids, beam.BeamSettings(4, 9, 1.0, False, 2))
    assert result.steps == 9
    assert result.forward_calls == result.steps  # the prompt pass yields step 1; one call per later step


def check_invariants(result: beam.BeamResult) -> None:
    nodes = result.nodes
    s = result.settings
    assert nodes[0].parent is None and nodes[0].status == "root"
    for node in nodes[1:]:
        assert node.parent is not None and 0 <= node.parent < node.id
        parent = nodes[node.parent]
        assert parent.step == node.step - 1
        assert parent.status in ("root", "kept")  # only live beams are expanded
        assert node.cumulative <= parent.cumulative + 1e-6  # log-probs never add up to more
        assert node.cumulative == pytest.approx(parent.cumulative + node.logprob, abs=1e-3)
        assert node.score == pytest.approx(node.cumulative / node.step ** s.length_penalty, rel=1e-5, abs=1e-5)
        assert node.logprob <= 0.0 and node.rank >= 1 and node.vocab_rank >= 1
    for step in range(1, result.steps + 1):
        at_step = [n for n in nodes if n.step == step]
        assert len(at_step) == result.candidates_per_step
        assert sum(n.status == "kept" for n in at_step) <= s.num_beams
        cumulative = [n.cumulative for n in at_step]
        assert cumulative == sorted(cumulative, reverse=True)
        by_parent: dict[int, list] = {}
        for n in at_step:
            by_parent.setdefault(n.parent, []).append(n)
        for siblings in by_parent.values():
            assert [n.rank for n in siblings] == list(range(1, len(siblings) + 1))
            assert [n.logprob for n in siblings] == sorted((n.logprob for n in siblings), reverse=True)
    returned = [n.id for n in nodes if n.status == "returned"]
    assert sorted(returned) == sorted(seq.node for seq in result.sequences)
    parents = {n.parent for n in nodes}
    for seq in result.sequences:
        assert seq.node not in parents  # returned sequences are leaves (no node has them as parent)
        assert nodes[seq.node].ended
        assert beam.path_ids(nodes, seq.node) == seq.ids
    scores = [seq.score for seq in result.sequences]
    assert scores == sorted(scores, reverse=True)
    for node in nodes:
        if node.status in ("finished", "returned"):
            assert node.ended and node.order < s.num_beams


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(num_beams=st.integers(1, 6), max_new_tokens=st.integers(1, 8),
       length_penalty=st.sampled_from([-1.0, 0.0, 0.7, 1.0, 2.0]),
       early_stopping=st.sampled_from([False, True, "never"]), data=st.data(),
       with_eos=st.booleans())
def test_tree_invariants(loaded, num_beams, max_new_tokens, length_penalty, early_stopping, data, with_eos):
    num_return = data.draw(st.integers(1, num_beams))
    s = beam.BeamSettings(num_beams, max_new_tokens, length_penalty, early_stopping, num_return)
    ids = prompt_ids(loaded, "Beam search keeps the best")
    eos = eos_ids_met(loaded, ids, s, [(2, 0), (3, 2)]) if with_eos else None
    check_invariants(beam.beam_search(loaded, ids, s, eos_token_ids=eos))


def test_greedy_and_sampled_paths(loaded):
    ids = prompt_ids(loaded, PROMPTS[0])
    s = beam.BeamSettings(3, 8, 1.0, False, 3)
    result = beam.add_comparisons(loaded, beam.beam_search(loaded, ids, s), greedy=True, sample_seed=7)
    with torch.inference_mode():
        greedy = loaded.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                       max_new_tokens=8, do_sample=False, output_scores=True,
                                       return_dict_in_generate=True)
    assert result.greedy.ids == greedy.sequences[0, len(ids):].tolist()
    ref_logprobs = [float(torch.log_softmax(step_scores[0], -1)[token])
                    for step_scores, token in zip(greedy.scores, result.greedy.ids)]
    assert result.greedy.logprobs == pytest.approx(ref_logprobs, abs=1e-4)
    assert result.greedy.cumulative == pytest.approx(sum(ref_logprobs), abs=1e-3)
    # the greedy first token is the root's best child; the path follows the tree while it can
    assert result.greedy.node_ids[0] == next(n.id for n in result.nodes if n.step == 1 and n.rank == 1)
    for position, node_id in enumerate(result.greedy.node_ids):
        if node_id is None:
            assert all(later is None for later in result.greedy.node_ids[position:])
            break
        assert beam.path_ids(result.nodes, node_id) == result.greedy.ids[: position + 1]
    again = beam.decode_path(loaded, ids, 8, result.eos_token_ids, 1.0, seed=7)
    assert again.ids == result.sampled.ids and result.sampled.seed == 7
    assert beam.decode_path(loaded, ids, 8, result.eos_token_ids, 1.0, seed=8).ids != result.sampled.ids


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_sampled_path_draws_what_the_sampling_lab_draws(loaded, seed):
    """One random-number scheme: the beam tab's sampled path (T = 1) is `generation.generate` with
    the same seed and settings, token for token."""
    ids = prompt_ids(loaded, PROMPTS[1])
    result = beam.run_beam_search("tiny-random", PROMPTS[1], beam.BeamSettings(3, 10, 1.0, False, 1),
                                  compare_greedy=True, sample_seed=seed)
    assert result.prompt_ids == ids
    lab = generation.generate(loaded, ids, SamplingSettings(temperature=1.0), 10, seed=seed)
    assert result.sampled.ids == lab.token_ids and result.sampled.seed == seed
    assert result.sampled.logprobs == pytest.approx([math.log(r.raw_prob) for r in lab.records], abs=1e-4)
    greedy = generation.generate(loaded, ids, SamplingSettings(temperature=0.0), 10)
    assert result.greedy.ids == greedy.token_ids


def test_on_step_reports_the_result_so_far(loaded):
    ids = prompt_ids(loaded, PROMPTS[0])
    seen = []

    def on_step(step, partial):
        seen.append((step, partial.steps, len(partial.nodes), partial.stop_reason, len(partial.sequences)))

    result = beam.beam_search(loaded, ids, beam.BeamSettings(3, 5, 1.0, "never", 2), on_step=on_step)
    k = result.candidates_per_step
    assert seen == [(step, step, 1 + step * k, "running", 0) for step in range(1, result.steps + 1)]
    assert result.stop_reason != "running" and len(result.sequences) == 2


def test_settings_are_checked_when_built():
    assert beam.BeamSettings(2, 3, 1, "TRUE", 2) == beam.BeamSettings(2, 3, 1.0, True, 2)
    assert beam.BeamSettings(early_stopping="never").early_stopping == "never"
    with pytest.raises(PlaygroundError, match="number of beams"):
        beam.BeamSettings(num_beams=2, num_return_sequences=3)


def test_default_eos_is_the_loaded_models(loaded):
    result = beam.beam_search(loaded, prompt_ids(loaded, "Hi"), beam.BeamSettings(2, 2, 1.0, False, 1))
    assert result.eos_token_ids == list(loaded.eos_token_ids)
    generation_eos = loaded.model.generation_config.eos_token_id
    assert set(generation_eos if isinstance(generation_eos, list) else [generation_eos]) <= set(result.eos_token_ids)


@pytest.mark.parametrize("bad", [
    dict(num_beams=0), dict(num_beams=9), dict(max_new_tokens=0), dict(max_new_tokens=41),
    dict(num_beams=2, num_return_sequences=3), dict(length_penalty=float("nan")), dict(early_stopping="sometimes"),
    dict(num_beams="many"),
])
def test_bad_settings_are_user_errors(loaded, bad):
    with pytest.raises(PlaygroundError):
        beam.beam_search(loaded, [1, 2, 3], beam.BeamSettings(**bad))


def test_parse_early_stopping():
    assert beam.parse_early_stopping("TRUE") is True
    assert beam.parse_early_stopping("false") is False
    assert beam.parse_early_stopping(False) is False
    assert beam.parse_early_stopping("never") == "never"


@pytest.fixture(scope="module")
def big_result(loaded):
    ids = prompt_ids(loaded, "A <b>tag</b> & more")
    result = beam.beam_search(loaded, ids, beam.BeamSettings(8, 40, 1.0, "never", 8))
    return beam.add_comparisons(loaded, result, greedy=True, sample_seed=3)


def _points(figure, name_part):
    return sum(len(t.x) for t in figure.data if t.name and name_part in t.name)


def test_figure_draws_every_candidate(big_result):
    figure = beam_figure(big_result)
    check_invariants(big_result)
    counts = {state: sum(1 for n in big_result.nodes if n.status == state) for state in
              ("kept", "pruned", "finished", "returned")}
    assert counts["returned"] == 8
    assert _points(figure, "kept") == counts["kept"]
    assert _points(figure, "pruned") == counts["pruned"]
    assert _points(figure, "returned") >= 8
    assert len(big_result.nodes) == 1 + 40 * 16
    assert figure.layout.xaxis.range[1] >= 40
    # labels are escaped for plotly's HTML-like text
    labels = [text for t in figure.data if t.mode == "markers+text" for text in t.text]
    assert len(labels) >= len(big_result.nodes)
    assert all("<" not in text for text in labels if text != "<b>prompt</b>")
    # the title names the prompt (its end, escaped): a presenter's screen shows it with the tree
    title = figure.layout.title.text
    assert title.startswith(f"“{html.escape(big_result.prompt_text.strip())}” · step 40 of 40"), title
    assert "<b>" not in title and "&lt;b&gt;tag&lt;/b&gt; &amp; more" in title



@pytest.mark.parametrize("kwargs", [dict(), dict(upto_step=5), dict(collapse_pruned=True),
                                    dict(show_greedy=False), dict(show_greedy=False, show_sampled=False)],
                         ids=["full", "step-5", "collapsed", "no-greedy", "no-paths"])
def test_figure_is_its_builders_in_order(big_result, kwargs):
    """The figure's structure: edges, edge hovers, returned paths, nodes by status, comparison paths;
    one edge per shown non-root node, the y range and height sized to the tree's rows and path rows."""
    figure = beam_figure(big_result, **kwargs)
    upto, collapse = kwargs.get("upto_step"), kwargs.get("collapse_pruned", False)
    layout = layout_tree(big_result, upto, collapse)
    font = 15 if max(layout.upto_step, 1) <= 12 else 13
    paths = [p for p, key in ((big_result.greedy, "show_greedy"), (big_result.sampled, "show_sampled"))
             if kwargs.get(key, True)]
    path_traces, band = comparison_traces(paths, layout, font)
    parts = [edge_traces(big_result, layout), returned_path_traces(big_result, layout),
             node_traces(big_result, layout, font), path_traces]
    expected = [trace for part in parts for trace in part]
    assert [t.name for t in figure.data] == [t.get("name") for t in expected]
    assert [t.mode for t in figure.data] == [t["mode"] for t in expected]
    edges, nodes_part = parts[0], parts[2]
    assert edges[-1]["name"] == "edges" and len(edges[-1]["x"]) == len(layout.shown) - 1
    assert sum(len(t["x"]) // 3 for t in edges[:-1]) == len(layout.shown) - 1  # (x0, x1, gap) per edge
    assert sum(len(t["x"]) for t in nodes_part) == len(layout.shown)
    assert bool(parts[1]) == (layout.upto_step == big_result.steps)
    assert band == pytest.approx(-layout.rows - 0.6 - len(paths))
    assert figure.layout.yaxis.range == pytest.approx((band + 0.4, 0.7))
    assert figure.layout.height == max(420, 34 * (layout.rows + len(paths) + 1) + 170)
    assert figure.to_plotly_json()["layout"] == go_layout(figure_layout(big_result, layout, band, len(paths)))


def go_layout(properties: dict) -> dict:
    import plotly.graph_objects as go

    return go.Figure(layout=properties, _validate=False).to_plotly_json()["layout"]


def test_figure_escapes_token_text(loaded):
    result = beam.beam_search(loaded, prompt_ids(loaded, "Hi"), beam.BeamSettings(2, 2, 1.0, False, 1))
    result.nodes[1].label = "<i>&x"  # a token text that plotly would otherwise read as markup
    figure = beam_figure(result)
    labels = [text for t in figure.data if t.mode == "markers+text" for text in t.text]
    hovers = [text for t in figure.data if t.customdata is not None for text in t.customdata]
    assert "&lt;i&gt;&amp;x" in labels and not any("<i>" in text for text in labels + hovers)
    assert any("&lt;i&gt;&amp;x" in text for text in hovers)


def test_figure_replay_and_collapse(big_result):
    at_3 = layout_tree(big_result, upto_step=3)
    assert max(big_result.nodes[i].step for i in at_3.shown) == 3
    assert len(at_3.shown) == 1 + 3 * 16
    assert "returned" not in at_3.status.values()  # not decided before the end
    collapsed = layout_tree(big_result, collapse_pruned=True)
    assert all(state != "pruned" for state in collapsed.status.values())
    assert collapsed.rows <= 8
    figure = beam_figure(big_result, upto_step=5, collapse_pruned=True, show_greedy=False, show_sampled=False)
    assert not any(t.name and "path" in t.name and "returned" not in t.name for t in figure.data)
    assert _points(figure, "pruned") == 0


def test_summary(big_result):
    rows = summary_rows(big_result)
    assert [r[0] for r in rows[:8]] == [f"beam #{i}" for i in range(1, 9)]
    assert rows[8][0] == "greedy" and rows[9][0].startswith("sampled")
    assert rows[0][4] == pytest.approx(big_result.sequences[0].score, abs=1e-4)
    text = summary_markdown(big_result)
    assert "Greedy" in text and "Sampled" in text and str(big_result.steps) in text


def test_cli_prints_nodes_and_sequences(capsys):
    code = cli_main(["--json", "beam", "--model", "tiny-random", "--num-beams", "3", "--max-new-tokens", "5",
                     "--length-penalty", "0.5", "--early-stopping", "never", "--num-return-sequences", "2",
                     "The capital of France is"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    loaded = load_model("tiny-random")
    ids = prompt_ids(loaded, "The capital of France is")
    out = reference(loaded, ids, beam.BeamSettings(3, 5, 0.5, "never", 2))
    assert [s["ids"] for s in data["sequences"]] == out.sequences[:, len(ids):].tolist()
    assert [s["score"] for s in data["sequences"]] == pytest.approx(out.sequences_scores.tolist(), abs=1e-4)
    assert len(data["nodes"]) == 1 + 5 * 6 and data["nodes"][0]["parent"] is None
    assert all(math.isfinite(n["cumulative"]) for n in data["nodes"])


def test_cli_bad_input_exits_2(capsys):
    assert cli_main(["beam", "--model", "tiny-random", "--num-beams", "3", "--num-return-sequences", "4", "x"]) == 2
    assert "between 1 and the number of beams" in capsys.readouterr().err


def test_long_prompts_are_cut_and_odd_prompts_refused():
    result = beam.run_beam_search("tiny-random", "word " * 2000, beam.BeamSettings(2, 2, 1.0, False, 1))
    assert len(result.prompt_ids) <= beam.MAX_PROMPT_TOKENS
    assert result.prompt_note and "cut" in result.prompt_note
    assert result.prompt_note in summary_markdown(result)
    assert beam.run_beam_search("tiny-random", "Hi", beam.BeamSettings(2, 2, 1.0, False, 1)).prompt_note is None
    with pytest.raises(PlaygroundError):
        beam.run_beam_search("tiny-random", ["not", "text"], beam.BeamSettings(2, 2, 1.0, False, 1))
    with pytest.raises(PlaygroundError):
        beam.run_beam_search("no-such-model", "Hi", beam.BeamSettings(2, 2, 1.0, False, 1))


def test_the_tree_title_names_the_users_message_in_a_chat_template():
    from playground.plots.beam import prompt_label

    settings = beam.BeamSettings(2, 2, 1.0, "never", 2)
    templated = beam.run_beam_search("tiny-random", "Hi <b>there</b>", settings, chat_template=True)
    assert templated.user_prompt == "Hi <b>there</b>"
    assert prompt_label(templated) == "“Hi &lt;b&gt;there&lt;/b&gt;” in the chat template"
    plain = beam.run_beam_search("tiny-random", "Hi there", settings)
    assert plain.user_prompt is None and prompt_label(plain) == f"“{html.escape(plain.prompt_text.strip())}”"
