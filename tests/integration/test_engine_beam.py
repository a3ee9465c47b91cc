"""Beam search on an engine model: a real llama.cpp `llama-server` with the packaged SmolLM2 GGUF.

The engine's search (`playground.engines.beam`: the in-process steps on each beam's top K) is
compared with the in-process search (`smollm2-135m-instruct`: the same GGUF, dequantized to fp32),
prompt by prompt, decision by decision. A decision is an order the search acts on, read from the
in-process tree: each step, the last kept candidate above the best pruned one that could have gone
on, and the num_beams-th above the next where one of them ends (it may finish only from the first
num_beams); at the end, each finished hypothesis above the next by score. Its margin is that gap.

- Same weights, same arithmetic: the packaged GGUF dequantized to an F32 GGUF and served by
  llama-server; 3 beams, 8 new tokens, 3 returned. Where every margin exceeds MARGIN (0.025: the
  two runtimes' cumulative log-probabilities differ by at most 0.012 over the 8 steps here, asserted
  below MARGIN / 2 on every node both trees hold, so a decision's two candidates move by less than
  MARGIN together), the whole tree is the same node for node and so are the returned sequences.
- The packaged Q4_1 GGUF as llama.cpp runs it (8-bit activations: per-token log-probabilities
  differ by up to ~0.4, probabilities by up to ~0.09); 2 beams, 4 new tokens, 1 returned (longer
  searches have almost no decision such differences leave alone). A decision is settled where its
  margin exceeds the two runtimes' differences on its two candidates (measured on both trees);
  where every decision of a prompt is settled, the returned sequence is the same.

A prompt with a margin below its tolerance is left out with its margin printed; at least 2 prompts
must be compared in each. Also: the Beam search tab offers the engine model and says it ran on the
engine; an engine that is down says so. Skipped when llama-server is not built.
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from playground import beam, models
from playground.backends import backend_for
from playground.engines import lab as engine_lab
from playground.engines.build import find_server
from playground.engines.client import EngineError
from playground.engine_config import engine_config
from playground.engines.server import LlamaServer, free_port
from playground.model_spec import ModelSpec

pytestmark = pytest.mark.skipif(find_server() is None, reason="llama-server is not built (make llama-server)")

IN_PROCESS = "smollm2-135m-instruct"
CASES = [  # prompt, chat template
    ("The capital of France is", False),
    ("Once upon a time, there was a", False),
    ("The best thing about living in a small town is", False),
    ("def fibonacci(n):", False),
    ("The sun rises in the", False),
    ("1, 2, 3, 4,", False),
    ("What is the capital of France?", True),
    ("Name three colours.", True),
]
F32_SETTINGS = beam.BeamSettings(num_beams=3, max_new_tokens=8, length_penalty=1.0, early_stopping=False,
                                 num_return_sequences=3)
Q4_SETTINGS = beam.BeamSettings(num_beams=2, max_new_tokens=4, length_penalty=1.0, early_stopping=False,
                                num_return_sequences=1)
MARGIN = 0.025  # log-probability, for the F32 engine (see the module docstring)


def write_f32_gguf(source, target) -> None:
    """`source` with every tensor dequantized to F32 (the weights the in-process model runs)."""
    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(target, reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(gguf.LlamaFileType.ALL_F32)
            continue
        kind = field.types[0]
        writer.add_key_value(field.name, field.contents(), kind,
                             sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    for tensor in reader.tensors:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, data, raw_shape=data.shape)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def engine_model(tmp_path_factory):
    """Two servers (the packaged GGUF, and it dequantized to F32) and three engine models in the
    registry: SmolLM2 on each, and one nobody serves."""
    packaged = models.gguf_path(models.get_spec(IN_PROCESS))
    f32 = tmp_path_factory.mktemp("engine-beam") / "smollm2-f32.gguf"
    write_f32_gguf(packaged, f32)
    with LlamaServer(packaged, context=1024) as server, LlamaServer(f32, context=1024) as f32_server, \
            pytest.MonkeyPatch.context() as patch:
        models.model_list_problems()  # the operator list is read first (it would replace the entries)
        for spec in (ModelSpec(id="smol-engine", role="chat", source="engine", description="SmolLM2 Q4_1",
                               engine=server.config(), tokenizer_from=IN_PROCESS),
                     ModelSpec(id="smol-f32-engine", role="chat", source="engine", description="SmolLM2 F32",
                               engine=f32_server.config(), tokenizer_from=IN_PROCESS),
                     ModelSpec(id="down-engine", role="base", source="engine", description="nobody serves it",
                               engine=engine_config("llama.cpp", f"http://127.0.0.1:{free_port()}"))):
            patch.setitem(models.REGISTRY, spec.id, spec)
        engine_lab.forget_engines()
        try:
            yield server
        finally:
            engine_lab.forget_engines()
        f32.unlink()


def decisions(result: beam.BeamResult) -> list[tuple[beam.BeamNode, beam.BeamNode, str]]:
    """(above, below, by): the orders the search acted on (see the module docstring)."""
    num_beams, found = result.settings.num_beams, []
    for step in range(1, result.steps + 1):
        nodes = sorted((n for n in result.nodes if n.step == step), key=lambda n: n.order)
        kept = [n for n in nodes if n.status == "kept"]
        pruned = [n for n in nodes if n.status == "pruned" and not n.ended]
        if kept and pruned:
            found.append((kept[-1], pruned[0], "cumulative"))
        if len(nodes) > num_beams and (nodes[num_beams - 1].ended or nodes[num_beams].ended):
            found.append((nodes[num_beams - 1], nodes[num_beams], "cumulative"))
    done = sorted((n for n in result.nodes if n.status in ("finished", "returned")), key=lambda n: -n.score)
    done = done[:result.settings.num_return_sequences + 1]
    return found + [(a, b, "score") for a, b in zip(done, done[1:])]


def by_path(result: beam.BeamResult) -> dict[tuple[int, ...], beam.BeamNode]:
    return {tuple(beam.path_ids(result.nodes, n.id)): n for n in result.nodes[1:]}


def slack(ours: beam.BeamResult, engine: beam.BeamResult, tolerance: float | None) -> float:
    """The smallest margin less its tolerance: `tolerance`, or (None) the two runtimes' differences
    on the decision's two candidates (-inf where the engine's tree lacks one)."""
    theirs, ours_by_path = by_path(engine), {n.id: path for path, n in by_path(ours).items()}
    smallest = float("inf")
    for above, below, by in decisions(ours):
        margin = getattr(above, by) - getattr(below, by)
        if tolerance is None:
            others = [theirs.get(ours_by_path[n.id]) for n in (above, below)]
            if None in others:
                return -float("inf")
            margin -= sum(abs(getattr(n, by) - getattr(o, by)) for n, o in zip((above, below), others))
        else:
            margin -= tolerance
        smallest = min(smallest, margin)
    return smallest


def compare(engine_id: str, settings: beam.BeamSettings,
            tolerance: float | None) -> tuple[int, list, list[float], list[float]]:
    """(prompts compared, prompts left out with their slack, |score differences|, |cumulative
    differences| of the nodes both trees hold) over CASES."""
    compared, equal, left_out, scores, cumulative = 0, 0, [], [], []
    for prompt, chat in CASES:
        ours = beam.run_beam_search(IN_PROCESS, prompt, settings, chat_template=chat)
        engine = backend_for(engine_id).beam_search(prompt, settings, chat_template=chat)
        assert engine.prompt_ids == ours.prompt_ids, prompt  # the engine's /tokenize agrees
        assert engine.eos_token_ids == ours.eos_token_ids == [2]
        assert engine.engine_note.startswith(f"Ran on the engine: {engine_id}")
        theirs = by_path(engine)
        cumulative += [abs(n.cumulative - theirs[path].cumulative) for path, n in by_path(ours).items()
                       if path in theirs]
        room = slack(ours, engine, tolerance)
        equal += [s.ids for s in engine.sequences] == [s.ids for s in ours.sequences]
        if room <= 0:
            left_out.append((prompt, round(room, 4)))
            continue
        compared += 1
        assert [s.ids for s in engine.sequences] == [s.ids for s in ours.sequences], (prompt, room)
        if tolerance is not None:  # the same arithmetic: the whole tree
            assert sorted(by_path(engine)) == sorted(by_path(ours)), prompt
            assert [n.status for n in by_path(engine).values()] == [by_path(ours)[p].status for p in by_path(engine)]
        scores += [abs(a.score - b.score) for a, b in zip(engine.sequences, ours.sequences)]
    print(f"\n{engine_id}: {compared} of {len(CASES)} prompts compared, all equal (equal anyway: {equal}); "
          f"max |score difference| {max(scores, default=0):.4f}; max |cumulative difference| {max(cumulative):.4f}; "
          f"left out (slack): {left_out}")
    return compared, left_out, scores, cumulative


def test_on_the_same_weights_in_f32_the_engine_search_is_the_in_process_tree(engine_model):
    compared, left_out, scores, cumulative = compare("smol-f32-engine", F32_SETTINGS, MARGIN)
    assert compared >= 2, left_out
    assert max(cumulative) < MARGIN / 2 and max(scores) < MARGIN / 2


def test_on_the_packaged_gguf_the_sequences_agree_where_the_differences_settle_every_decision(engine_model):
    compared, left_out, _scores, _cumulative = compare("smol-engine", Q4_SETTINGS, None)
    assert compared >= 2, left_out


def test_the_beam_tab_offers_the_engine_model_and_says_it_ran_there(engine_model):
    from playground.ui import beam_tab
    from playground.ui.common import model_choices

    assert "smol-engine" in [i for _, i in model_choices(tab="beam")]
    assert "smol-engine" not in [i for _, i in model_choices()]
    result, _figure, step, rows, summary = beam_tab.run_search(
        "The capital of France is", "smol-engine", False, 2, 4, 1.0, "false", 2, True, True, 42, False,
        progress=lambda *args, **kwargs: None)
    assert result.steps == step.maximum and len(rows) == 2  # the comparison paths are left out on engines
    assert summary.startswith("Ran on the engine: smol-engine") and beam.NEG_INF < result.sequences[0].score
    assert "not computed on engine models" in summary
    assert beam_tab.tree_data(result, "csv").count("\n") >= len(result.nodes)


def test_an_engine_that_is_down_says_so(engine_model):
    with pytest.raises(EngineError, match="not reachable.*is the server running"):
        backend_for("down-engine").beam_search("Hello", Q4_SETTINGS)
