"""One prompt, one truth: the same text gives the same ids and the same next-token distribution in
every tab and command, on both packaged models (`playground.start_tokens` decides what is read).

For several texts: the Sampling lab's distribution, beam search's first step, teacher forcing of
the text followed by its most probable next token, the logit lens's last layer and the inside
pass agree to 2e-5 on float32 weights and on the GGUF's blocks (both float32 arithmetic), and so do the CLI's
`next-token`, `score`, `beam` and `logit-lens` (also run on float32 weights, in their own processes,
to 2e-5). SmolLM2
reads no start token by default (its tokenizer and llama.cpp add none); with
PLAYGROUND_START_TOKEN=always it reads <|endoftext|> first, everywhere at once.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from playground import beam, chat, decoding, lab, start_tokens
from playground.__main__ import main as cli_main
from playground.inside import lens, passes
from playground.models import load_model
from playground.sampling import SamplingSettings

MODELS = ["smollm2-135m-instruct", "gemma-3-270m"]
TEXTS = [
    "A lighthouse keeper counted the ships that passed",
    "The capital of France is",
    "def add(a, b):\n    return",
]
# float32 weights: the paths differ only in the order of float32 sums (a softmax over 262,144
# tokens in float32 is good to ~1e-5); measured up to 1.4e-5 on these texts
EXACT = 2e-5


def _tolerance(loaded) -> float:
    """The same on the GGUF's blocks (the default) as on float32 weights: both are float32 arithmetic."""
    return EXACT


def _lab_probs(model_id: str, text: str) -> tuple[list[int], torch.Tensor]:
    session = lab.open_session(model_id, text, False, 2048)
    return list(session.prompt_ids), torch.softmax(lab.distribution(session).logits.double(), dim=-1)


def _top(probs: torch.Tensor, k: int = 5) -> list[int]:
    return probs.topk(k).indices.tolist()


def _continuation(loaded, text: str, probs: torch.Tensor) -> tuple[int, str] | None:
    """The most probable next token whose text, appended, tokenizes back to the same ids."""
    read = start_tokens.text_ids(loaded.tokenizer, text)
    for token_id in _top(probs, 10):
        piece = loaded.tokenizer.decode([token_id])
        if start_tokens.text_ids(loaded.tokenizer, text + piece).ids == [*read.ids, token_id]:
            return token_id, piece
    return None


def _cli(capsys, *argv) -> dict:
    assert cli_main(["--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("model_id", MODELS)
def test_every_tab_reads_the_same_ids_and_gives_the_same_distribution(model_id):
    loaded = load_model(model_id)
    tolerance = _tolerance(loaded)
    for text in TEXTS:
        ids, probs = _lab_probs(model_id, text)
        assert ids == start_tokens.text_ids(loaded.tokenizer, text).ids
        assert ids == decoding.prompt_ids(loaded, text) == list(decoding.next_token_distribution(model_id, text).input_ids)
        shown = torch.softmax(decoding.next_token_distribution(model_id, text).logits.double(), dim=-1)
        assert float((shown - probs).abs().max()) < tolerance

        inside = passes.inside_pass(model_id, text)
        assert list(inside.ids) == ids
        inside_probs = torch.softmax(inside.last_logits.double(), dim=-1)
        assert float((inside_probs - probs).abs().max()) < tolerance, (text, "inside pass")

        grid = lens.logit_lens(model_id, text, 1)
        assert grid.positions[-1] == len(ids) - 1
        last = grid.top_ids[-1, -1].tolist()
        assert last[:3] == _top(probs, 3)
        assert grid.top_probs[-1, -1].double().tolist() == pytest.approx(probs[last].tolist(), abs=tolerance)

        result = beam.run_beam_search(model_id, text, beam.BeamSettings(num_beams=2, max_new_tokens=1))
        assert result.prompt_ids == ids
        first_step = [n for n in result.nodes if n.step == 1]
        assert first_step
        for node in first_step:
            assert math.exp(node.logprob) == pytest.approx(float(probs[node.token_id]), abs=tolerance), (text, "beam")

        following = _continuation(loaded, text, probs)
        assert following is not None, text
        token_id, piece = following
        scored = chat.score_text(model_id, text + piece)
        assert scored.tokens[-1].id == token_id
        assert scored.tokens[-1].prob == pytest.approx(float(probs[token_id]), abs=tolerance), (text, "forcing")


@pytest.mark.parametrize("model_id", MODELS)
def test_the_cli_commands_agree_with_the_lab(model_id, capsys):
    loaded = load_model(model_id)
    tolerance = _tolerance(loaded)
    text = TEXTS[0]
    _, probs = _lab_probs(model_id, text)
    top = _top(probs, 5)

    listed = _cli(capsys, "next-token", "--model", model_id, "--top", "5", text)
    assert [row["id"] for row in listed["tokens"]] == top
    assert [row["raw_prob"] for row in listed["tokens"]] == pytest.approx(probs[top].tolist(), abs=tolerance)

    lensed = _cli(capsys, "logit-lens", "--model", model_id, "--positions", "1", text)
    cells = lensed["rows"][-1]["positions"][-1]["top"]
    assert [c["id"] for c in cells][:3] == top[:3]
    assert [c["prob"] for c in cells] == pytest.approx(probs[[c["id"] for c in cells]].tolist(), abs=2e-6 + tolerance)

    searched = _cli(capsys, "beam", "--model", model_id, "--num-beams", "2", "--max-new-tokens", "1", text)
    assert searched["prompt_ids"] == start_tokens.text_ids(loaded.tokenizer, text).ids
    for node in (n for n in searched["nodes"] if n["step"] == 1):
        assert math.exp(node["logprob"]) == pytest.approx(float(probs[node["token_id"]]), abs=tolerance)

    token_id, piece = _continuation(loaded, text, probs)
    scored = _cli(capsys, "score", "--model", model_id, text + piece)
    assert scored["tokens"][-1]["id"] == token_id
    assert math.exp(scored["tokens"][-1]["logprob"]) == pytest.approx(float(probs[token_id]), abs=tolerance)


@pytest.mark.parametrize("model_id", MODELS)
def test_on_float32_weights_the_cli_commands_agree_to_float32_precision(model_id):
    """The reference weights (PLAYGROUND_WEIGHTS=fp32), each command in its own process."""
    environment = {**os.environ, "PLAYGROUND_WEIGHTS": "fp32"}

    def run(*argv) -> dict:
        done = subprocess.run([sys.executable, "-m", "playground", "--json", *argv], env=environment,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    text = TEXTS[0]
    listed = run("next-token", "--model", model_id, "--top", "3", text)
    probs = {row["id"]: row["raw_prob"] for row in listed["tokens"]}
    best = listed["tokens"][0]
    lensed = run("logit-lens", "--model", model_id, "--positions", "1", text)["rows"][-1]["positions"][-1]["top"]
    assert {c["id"]: c["prob"] for c in lensed if c["id"] in probs} == pytest.approx(probs, abs=EXACT + 1e-6)
    searched = run("beam", "--model", model_id, "--num-beams", "2", "--max-new-tokens", "1", text)
    for node in (n for n in searched["nodes"] if n["step"] == 1 and n["token_id"] in probs):
        assert math.exp(node["logprob"]) == pytest.approx(probs[node["token_id"]], abs=EXACT)
    scored = run("score", "--model", model_id, text + best["text"])
    if scored["tokens"][-1]["id"] == best["id"]:  # the piece tokenizes back to the same token
        assert math.exp(scored["tokens"][-1]["logprob"]) == pytest.approx(best["raw_prob"], abs=EXACT)


def test_the_start_token_setting_changes_every_tab_at_once(monkeypatch):
    """SmolLM2 with PLAYGROUND_START_TOKEN=always: <|endoftext|> in front, in the lab and the inside
    pass alike, and the distribution differs from the default's (the lecture's point)."""
    model_id, text = "smollm2-135m-instruct", TEXTS[0]
    loaded = load_model(model_id)
    tolerance = _tolerance(loaded)
    separator = loaded.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    default_ids, default_probs = _lab_probs(model_id, text)
    assert default_ids[0] != separator
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", "always")
    ids, probs = _lab_probs(model_id, text)
    assert ids == [separator, *default_ids]
    inside = passes.inside_pass(model_id, text)
    assert list(inside.ids) == ids
    assert float((torch.softmax(inside.last_logits.double(), dim=-1) - probs).abs().max()) < tolerance
    assert float((probs - default_probs).abs().max()) > 0.01


# ---------------------------------------------------------------------------------------------
# The same ids sent to an engine: a real llama-server on each packaged GGUF


def _engines_file(tmp_path_factory, servers) -> str:
    path = tmp_path_factory.mktemp("one-truth") / "models.toml"
    path.write_text("".join(
        f'[[models]]\nid = "{model_id}-engine"\nrole = "base"\nengine = "llama.cpp"\nbase_url = "{server.base_url}"\n'
        f'tokenizer = "{model_id}"\n' for model_id, server in servers.items()))
    return str(path)


@pytest.fixture(scope="module")
def engine_models(tmp_path_factory):
    from playground import models
    from playground.engines import lab as engine_lab
    from playground.engines.build import find_server
    from playground.engines.server import LlamaServer

    if find_server() is None:
        pytest.skip("llama-server is not built (make llama-server)")
    servers = {model_id: LlamaServer(models.gguf_path(models.get_spec(model_id)), context=1024)
               for model_id in MODELS}
    try:
        for server in servers.values():
            server.__enter__()
        assert models.configure_model_list(_engines_file(tmp_path_factory, servers), ()) == ()
        engine_lab.forget_engines()
        yield {model_id: f"{model_id}-engine" for model_id in MODELS}
    finally:
        engine_lab.forget_engines()
        models.configure_model_list("", ())
        for server in servers.values():
            server.__exit__(None, None, None)


@pytest.mark.parametrize("model_id", MODELS)
def test_an_engine_model_is_sent_the_same_ids_and_answers_within_its_tolerance(model_id, engine_models):
    """llama.cpp reads the quantized blocks with 8-bit activations: its top-20 probabilities differ
    from ours by the two runtimes' numeric differences (measured here below 0.08), never by ids."""
    engine_id = engine_models[model_id]
    for text in TEXTS:
        ids, probs = _lab_probs(model_id, text)
        session = lab.open_session(engine_id, text, False, 2048)
        assert list(session.prompt_ids) == ids, text  # the start token included (Gemma's <bos>)
        known = lab.view(session, SamplingSettings(top_k=20)).known
        top = known.topk.tokens[:20]
        assert top[0].token_id == int(probs.argmax()), text
        assert max(abs(t.prob - float(probs[t.token_id])) for t in top) < 0.08, text


def test_the_start_token_setting_reaches_the_engine(engine_models, monkeypatch):
    engine_id = engine_models["smollm2-135m-instruct"]
    separator = load_model("smollm2-135m-instruct").tokenizer.convert_tokens_to_ids("<|endoftext|>")
    monkeypatch.setenv("PLAYGROUND_START_TOKEN", "always")
    ids, _ = _lab_probs("smollm2-135m-instruct", TEXTS[1])
    assert ids[0] == separator
    assert list(lab.open_session(engine_id, TEXTS[1], False, 2048).prompt_ids) == ids
