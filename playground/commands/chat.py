"""CLI: `chat-template` shows a conversation as the chat model receives it, with roles and the SFT
loss mask; `score` teacher-forces a text through a model and prints per-token log-probabilities.

What it leaves out: generation (see the sampling commands) and any rendering.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from playground import chat
from playground.cli import read_text_argument
from playground.errors import PlaygroundError


def _read_messages(source: str):
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaygroundError(f"Cannot read {source}: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise PlaygroundError(f"The messages are not valid JSON: {exc}") from None
    if isinstance(data, dict) and "messages" in data:
        data = data["messages"]
    return data


def chat_template_command(args) -> dict:
    view = chat.template_view(args.model, _read_messages(args.messages), args.generation_prompt)
    return {
        "model": view.model_id,
        "rendered": view.rendered,
        "default_system_prompt": view.default_system_prompt,
        "ids": list(view.ids),
        "tokens": [{"id": t.id, "text": t.text, "special": t.special, "role": t.role, "part": t.part,
                    "start": t.start, "end": t.end} for t in view.tokens],
        "loss_mask": view.loss_mask,
        "num_trained": view.num_trained,
        "num_tokens": view.num_tokens,
    }


def score_command(args) -> dict:
    scored = chat.score_text(args.model, read_text_argument(args.text))
    return {
        "model": scored.model_id,
        "context_ids": list(scored.context_ids),  # the start tokens, or the text's first token without one
        "tokens": [{"id": t.id, "text": t.text, "start": t.start, "end": t.end, "logprob": t.logprob,
                    "surprisal_bits": t.surprisal_bits} for t in scored.tokens],
        "total_bits": scored.total_bits,
        "bits_per_char": scored.bits_per_char,
    }


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "chat-template", help="a conversation through a chat model's template: tokens, roles, loss mask")
    parser.add_argument("--model", required=True, help="a chat model id (see `models`)")
    parser.add_argument("messages", metavar="MESSAGES_JSON_FILE",
                        help='a JSON file with [{"role": ..., "content": ...}, ...]; - reads stdin')
    parser.add_argument("--generation-prompt", action="store_true",
                        help="append the assistant header the model generates after")
    parser.set_defaults(handler=chat_template_command)

    parser = subparsers.add_parser("score", help="teacher forcing: per-token log-probabilities of a text")
    parser.add_argument("--model", required=True, help="a model id (see `models`)")
    parser.add_argument("text", metavar="TEXT", help="the text to score; - reads stdin")
    parser.set_defaults(handler=score_command)
