"""The chat template, loss mask and teacher forcing on the real packaged models, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground import chat
from playground.errors import PlaygroundError
from playground.models import load_tokenizer
from playground.plots.chat import surprisal_figure
from playground.token_text import token_bytes

ROOT = Path(__file__).resolve().parents[2]
CHAT, BASE = "smollm2-135m-instruct", "gemma-3-270m"
ORANGES = [
    {"role": "user", "content": "What is the color of oranges?"},
    {"role": "assistant", "content": "The answer, of course, depends on the type of orange!"},
    {"role": "user", "content": "I have a green orange, can I eat it?"},
    {"role": "assistant", "content": "You might be surprised to know that some oranges are indeed green!"},
]


def run_cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "playground", "--json", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_chat_model_template_and_loss_mask():
    tokenizer = load_tokenizer(CHAT)
    view = chat.template_view(CHAT, ORANGES)
    assert list(view.ids) == list(tokenizer.apply_chat_template(ORANGES, tokenize=True, return_dict=False))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    trained = [t for t in view.tokens if t.trained]
    # exactly the two replies' tokens, each closed by <|im_end|>
    text = b"".join(token_bytes(tokenizer, t.id) for t in trained).decode()
    assert text == ORANGES[1]["content"] + "<|im_end|>" + ORANGES[3]["content"] + "<|im_end|>"
    assert [t.id for t in trained].count(end) == 2
    assert sum(t.id == end for t in view.tokens) == 5  # system, user, assistant, user, assistant


def test_base_model_has_no_template():
    with pytest.raises(PlaygroundError, match="no chat template"):
        chat.template_view(BASE, ORANGES)


def test_surprisal_alignment_across_tokenizers():
    text = "You might be surprised to know that some oranges are indeed green! 🍊"
    base, chat_scored = chat.score_text(BASE, text), chat.score_text(CHAT, text)
    assert base.context_ids == (2,)  # Gemma's <bos>
    # SmolLM2 reads no start token (as its tokenizer and llama.cpp have it): "You" is its context,
    # so both are compared from " might" on
    assert chat_scored.context_ids == (chat_scored.context_ids[0],) and chat_scored.tokens[0].start == 3
    spans = chat.align_scores(base, chat_scored)
    assert "".join(s.text for s in spans) == text[3:]
    assert sum(s.bits[0] for s in spans) == pytest.approx(sum(t.surprisal_bits for t in base.tokens if t.start >= 3))
    assert sum(s.bits[1] for s in spans) == pytest.approx(chat_scored.total_bits)
    assert all(0 < t.prob <= 1 for t in base.tokens + chat_scored.tokens)
    figure = surprisal_figure(base, chat_scored, spans)
    notes = " ".join(a.text for a in figure.layout.annotations)
    assert "The tokenizers differ" in notes  # Gemma's and SmolLM2's vocabularies differ
    assert "smollm2-135m-instruct reads no start token" in notes and "compared after “You”" in notes
    assert f"{BASE} {sum(s.bits[0] for s in spans):.0f} bits" in notes  # totals over the compared text
    assert ("summed over it" in notes) == ([(t.start, t.end) for t in base.tokens]
                                           != [(t.start, t.end) for t in chat_scored.tokens])
    assert len(figure.data[0].y) == len(spans)


def test_cli_chat_template_from_stdin_and_score():
    result = run_cli("chat-template", "--model", CHAT, "-", stdin=json.dumps(ORANGES))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["ids"]) == len(data["tokens"]) == len(data["loss_mask"])
    assert {t["role"] for t in data["tokens"]} == {"system", "user", "assistant"}
    assert sum(data["loss_mask"]) == data["num_trained"] > 0
    result = run_cli("score", "--model", BASE, "Oranges are orange.")
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)
    assert "".join(t["text"] for t in scored["tokens"]) == "Oranges are orange."
    assert all(t["logprob"] <= 0 for t in scored["tokens"])
    bad = run_cli("chat-template", "--model", BASE, "-", stdin=json.dumps(ORANGES))
    assert bad.returncode == 2 and "no chat template" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("chat-template", "--model", CHAT, "-", stdin="not json")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


def test_base_model_borrows_the_chat_template_as_text():
    from playground.side_by_side import contender

    column = contender(BASE, "conversation_template", messages=ORANGES[:1], chat_model_id=CHAT)
    assert column.prompt_text == chat.render_with_template(load_tokenizer(CHAT), ORANGES[:1])
    assert "the chat model's template, as plain text" in column.note
    gemma = load_tokenizer(BASE)
    assert column.prompt_ids[0] == gemma.bos_token_id
    # <|im_start|> is not a token of Gemma's vocabulary: it is spelled with ordinary pieces
    assert not set(column.prompt_ids[1:]) & {gemma.bos_token_id, gemma.eos_token_id}
    assert len(column.prompt_ids) > len(chat.template_prompt_ids(CHAT, ORANGES[:1]))
