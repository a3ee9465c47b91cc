"""One prompt, one truth: the same text gives the same ids and the same next-token distribution in
every tab and command, on both packaged models (`playground.start_tokens` decides what is read).

For several texts: the Sampling lab's distribution, beam search's first step, teacher forcing of
the text followed by its most probable next token, the logit lens's last layer and the inside
pass agree to 1e-5 on float32 weights (1e-3 on int4 weights: `LOW_BIT`), and so do the CLI's `next-token`, `score`, `beam` and `logit-lens`. SmolLM2
reads no start token by default (its tokenizer and llama.cpp add none); with
PLAYGROUND_START_TOKEN=always it reads <|endoftext|> first, everywhere at once.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from playground import beam, chat, core, lab, start_tokens
from playground.__main__ import main as cli_main
from playground.inside import lens, passes
from playground.models import load_model

MODELS = ["smollm2-135m-instruct", "gemma-3-270m"]
TEXTS = [
    "A lighthouse keeper counted the ships that passed",
    "The capital of France is",
    "def add(a, b):\n    return",
]
EXACT = 1e-5  # float32 weights: the paths differ only in the order of float32 sums
# int4 weights round every linear layer's input to bfloat16, which turns the last-bit differences
# between two paths (a longer sequence, another attention kernel) into up to ~5e-4 in a probability
LOW_BIT = 1e-3


def _tolerance(loaded) -> float:
    return LOW_BIT if getattr(loaded, "weights", "") == "int4" else EXACT


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
        assert ids == core.prompt_ids(loaded, text) == list(core.next_token_distribution(model_id, text).input_ids)
        shown = torch.softmax(core.next_token_distribution(model_id, text).logits.double(), dim=-1)
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
