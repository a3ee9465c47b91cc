"""The Base vs chat tab on engine models: real llama.cpp `llama-server`s with the packaged GGUFs.

Two servers: the packaged SmolLM2-135M-Instruct GGUF (Q4_1) as a chat model whose entry names the
`smollm2-135m-instruct` tokenizer (so its template is rendered here and sent as a raw completion of
token ids), and the packaged Gemma-3-270M GGUF (Q4_K_M) as a base model. The in-process models are
the same GGUFs dequantized, so the weights agree; llama.cpp multiplies with 8-bit activations, so
its probabilities differ from ours by up to ~0.11 (SmolLM2, measured on the prompts below over 48
greedy tokens; Gemma up to ~0.06). Hence the tolerances:

- `PROB_TOL`: the engine's probability of each token both columns chose, against ours;
- `MARGIN` = 2 x PROB_TOL + 0.01: at every step of the same text so far where our top-1 leads our
  top-2 by more than that, the engine's greedy choice must be the same token (differences within
  PROB_TOL cannot reorder them); the texts may part only at a step with a smaller margin.

Also: an engine column next to an in-process column on the tab's own handler, a seeded engine
column repeats (llama.cpp's sampler and seed), an entry without a tokenizer streams the chat API,
and a down engine says so in its column while the other finishes. Skipped when llama-server is not
built (`make llama-server`; `make test` builds it first).
"""

from __future__ import annotations

import pytest

from playground import models, side_by_side
from playground.engines import lab as engine_lab
from playground.engines.build import find_server
from playground.engines.server import LlamaServer, free_port
from playground.sampling import SamplingSettings

pytestmark = pytest.mark.skipif(find_server() is None, reason="llama-server is not built (make llama-server)")

PROB_TOL = 0.12
MARGIN = 2 * PROB_TOL + 0.01
GREEDY = SamplingSettings(temperature=0.0)
PROMPTS = ["Write me a poem about large language models", "What is the color of oranges?",
           "The capital of France is", "Explain gravity to a child."]
PAIRS = [("smol-engine", "smollm2-135m-instruct", "template"), ("gemma-engine", "gemma-3-270m", "raw")]


def _entry(**fields) -> str:
    return "[[models]]\n" + "".join(f'{key} = "{value}"\n' for key, value in fields.items())


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine-chat") / "models.toml"
    smol = models.gguf_path(models.get_spec("smollm2-135m-instruct"))
    gemma = models.gguf_path(models.get_spec("gemma-3-270m"))
    with LlamaServer(smol, context=2048) as smol_server, LlamaServer(gemma, context=2048) as gemma_server:
        path.write_text(
            _entry(id="smol-engine", role="chat", engine="llama.cpp", base_url=smol_server.base_url,
                   tokenizer="smollm2-135m-instruct")
            + _entry(id="smol-opaque", role="chat", engine="llama.cpp", base_url=smol_server.base_url)
            + _entry(id="gemma-engine", role="base", engine="llama.cpp", base_url=gemma_server.base_url,
                     tokenizer="gemma-3-270m")
            + _entry(id="down-engine", role="base", engine="llama.cpp", base_url=f"http://127.0.0.1:{free_port()}"))
        try:
            assert models.configure_model_list(str(path), ()) == ()
            engine_lab.forget_engines()
            yield
        finally:
            engine_lab.forget_engines()
            models.configure_model_list("", ())


def _last(contenders, settings=GREEDY, max_new_tokens=32, seed=0):
    columns = None
    for columns in side_by_side.iter_side_by_side(contenders, settings, max_new_tokens, seed):
        pass
    return columns


def _margin(record) -> float:
    first, second = record.alternatives[:2]
    return first.raw_prob - second.raw_prob


@pytest.mark.parametrize("engine_id, model_id, mode", PAIRS)
def test_greedy_engine_column_equals_the_in_process_column(engines, engine_id, model_id, mode):
    compared, same, largest = 0, 0, 0.0
    for prompt in PROMPTS:
        engine_entry = side_by_side.contender(engine_id, mode, prompt)
        ours_entry = side_by_side.contender(model_id, mode, prompt)
        assert engine_entry.prompt_ids == ours_entry.prompt_ids  # the same ids, made by the entry's tokenizer
        engine, ours = _last([engine_entry, ours_entry])  # one engine column next to one in-process column
        assert "greedy, by the engine (llama.cpp)" in engine.header and engine.records
        for mine, theirs in zip(engine.records, ours.records):  # while both texts are the same so far
            if _margin(theirs) > MARGIN:
                assert mine.id == theirs.id, (prompt, mine.index, mine.text, theirs.text)
                compared += 1
            if mine.id != theirs.id:
                break  # the texts parted, at a step whose margin is within the tolerance
            same += 1
            assert abs(mine.raw_prob - theirs.raw_prob) <= PROB_TOL, (prompt, mine.text, mine.raw_prob, theirs.raw_prob)
            assert mine.prob == 1.0 and mine.alternatives[0].id == mine.id  # greedy: the engine's top token
            largest = max(largest, abs(mine.raw_prob - theirs.raw_prob))
        if engine.stop == "eos":
            assert engine.records[-1].is_eos and "Stopped after" in engine.stop_note()
    print(f"{engine_id}: {compared} greedy steps with margins > {MARGIN:.2f} all agree; {same} tokens the same "
          f"before the texts parted; largest |dp| {largest:.3f}")
    assert compared >= 20  # the comparison is not empty


def test_the_tabs_handler_runs_an_engine_column_next_to_an_in_process_one(engines):
    from playground.ui import chat_tab

    views = list(chat_tab.side_by_side("What is the color of oranges?", "gemma-3-270m", "smol-engine", 12,
                                       0.0, 0, 1.0, 0.0, "transformers", 0))
    base_html, chat_html, columns = views[-1]
    assert "gen-done" in base_html and "gen-done" in chat_html
    assert "greedy, by the engine (llama.cpp)" in chat_html and columns[1].records
    assert all(0 < r.raw_prob <= 1 for r in columns[1].records)


def test_a_seeded_engine_column_repeats_and_says_who_sampled(engines):
    settings = SamplingSettings(temperature=0.9, top_k=40, top_p=0.95)
    runs = [_last([side_by_side.contender("gemma-engine", "raw", "Once upon a time")], settings, 16, 7)[0]
            for _ in range(2)]
    assert [r.id for r in runs[0].records] == [r.id for r in runs[1].records] and len(runs[0].records) == 16
    assert "sampled by the engine (llama.cpp), seed 7" in runs[0].header
    assert all(r.chosen == "sampled" and 0 < r.raw_prob <= 1 and r.alternatives for r in runs[0].records)


def test_an_entry_without_a_tokenizer_streams_the_chat_api(engines):
    entry = side_by_side.contender("smol-opaque", "template", "Say hello.")
    assert not entry.prompt_ids and "engine's own chat template" in entry.note
    [column] = _last([entry], max_new_tokens=64)
    assert column.records and column.text.strip()
    assert all(0 < r.raw_prob <= 1 and r.alternatives for r in column.records)
    assert column.stop in ("end_of_turn", "max_tokens"), column.stop_note()


def test_a_down_engine_says_so_and_the_other_column_finishes(engines):
    down, other = _last([side_by_side.contender("down-engine", "raw", "Hello"),
                         side_by_side.contender("smol-engine", "template", "Hello")], max_new_tokens=8)
    assert down.stop == "halted" and down.halted.startswith("Not run:") and "not reachable" in down.halted
    assert other.stop in ("eos", "max_tokens") and other.records
