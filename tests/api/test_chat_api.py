"""The base-vs-chat tab through gradio_client against the real app: both columns stream together,
the conversation keeps its history per session, the template view and teacher forcing answer."""

from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError

BASE, CHAT = "gemma-3-270m", "smollm2-135m-instruct"
GREEDY = [0.0, 0, 1.0, 0.0, "transformers", 42]  # temperature, top-k, top-p, min-p, order, seed


def tokens_in(column_html: str) -> int:
    return int(re.search(r'data-tokens="(\d+)"', column_html).group(1))


def status_of(column_html: str) -> str:
    return re.search(r'class="gen-status">(.*?)</div>', column_html, re.S).group(1)


def test_side_by_side_streams_both_columns(client):
    job = client.submit("Write me a poem about large language models", BASE, CHAT, 6, *GREEDY,
                        api_name="/side_by_side")
    updates = [tuple(update) for update in job]
    final = job.outputs()[-1]
    counts = [(tokens_in(base), tokens_in(chat)) for base, chat in job.outputs()]
    assert len(updates) >= 3, "the handler must stream, not answer once"
    # both columns grow together: some intermediate update has tokens in both while still running
    assert any(0 < b < 6 and 0 < c < 6 for b, c in counts[:-1]), counts
    assert counts == sorted(counts)  # never shrink
    assert tokens_in(final[0]) == 6 and "maximum number of new tokens" in status_of(final[0])
    assert 1 <= tokens_in(final[1]) <= 6 and status_of(final[1]).startswith("Stopped")
    assert "gen-done" in final[0] and "gen-done" in final[1]
    assert "through its chat template" in final[1] and "raw text" in final[0]
    # the same request with the same seed gives the same columns
    again = client.predict("Write me a poem about large language models", BASE, CHAT, 6, *GREEDY,
                           api_name="/side_by_side")
    assert tuple(again) == tuple(final)


def test_conversation_template_and_loss_mask(client):
    chatbot, base_column, message, score_text = client.predict(
        "What is the color of oranges?", "", CHAT, BASE, "conversation_text", 5, *GREEDY, api_name="/converse")
    # Gradio 6 sends message content as a list of parts: [{"type": "text", "text": ...}]
    answer = "".join(part["text"] for part in chatbot[1]["content"])
    assert message == "" and score_text == answer  # teacher forcing gets the new answer
    roles = [m["role"] for m in chatbot]
    assert roles == ["user", "assistant"]
    assert "User: What is the color of oranges?" not in base_column  # the prompt is not echoed as tokens
    assert tokens_in(base_column) == 5
    template, loss = client.predict(False, api_name="/template_view")
    # the session's conversation (not the lecture example) is shown, with its counted loss mask
    assert "No conversation yet" not in template and "oranges" in template
    trained, total = map(int, re.search(r"Trained on (\d+) of (\d+) tokens", loss).groups())
    assert 1 <= trained <= 6 and total > trained  # the reply's tokens (<= 5) plus its <|im_end|> at most


def test_teacher_forcing_plot(client):
    plot, note, text = client.predict("Oranges are orange.", BASE, CHAT, api_name="/teacher_forcing")
    assert "Largest disagreements" in note and text == "Oranges are orange."
    assert plot is not None


def test_errors_are_messages(client):
    with pytest.raises(AppError, match="Type a prompt first"):
        client.predict("   ", BASE, CHAT, 4, *GREEDY, api_name="/side_by_side")
