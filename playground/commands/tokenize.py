"""CLI: `tokenizer_registry` lists the tokenizer registry, `tokenize` shows ids and exact token spans,
`bpe-train` runs the lecture's BPE trainer and prints every merge.

Each handler returns a JSON-able object (printed by playground/__main__.py). What it leaves out:
rendering (the UI's job) and decoding (see `playground.tokenizer_registry.decode_ids`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playground import bpe, tokenizer_registry
from playground.cli import read_text_argument
from playground.errors import PlaygroundError


def tokenizers_command(args) -> list[dict]:
    return [{"id": i.id, "available": i.available, "kind": i.kind, "description": i.description,
             "reason": i.reason, "aliases": list(i.aliases)} for i in tokenizer_registry.list_tokenizers()]


def tokenize_command(args) -> dict:
    text = read_text_argument(args.text)
    result = tokenizer_registry.tokenize(args.tokenizer, text, add_special_tokens=args.special)
    return {
        "tokenizer": result.tokenizer_id,
        "ids": result.ids,
        "tokens": [{"id": t.id, "text": t.text, "bytes": t.bytes.hex(), "start": t.start, "end": t.end,
                    "special": t.special, "partial": t.partial} for t in result.tokens],
        "num_tokens": result.num_tokens,
        "num_chars": result.num_chars,
        "num_bytes": result.num_bytes,
    }


def bpe_train_command(args) -> dict:
    if args.file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PlaygroundError(f"Cannot read {args.file}: {exc}") from None
    training = bpe.train(text, args.merges, args.pattern)
    return {
        "pattern": training.pattern,
        "num_bytes": training.num_bytes,
        "merges": [{"pair": list(m.pair), "new_id": m.new_id, "count": m.count, "bytes": m.token.hex()}
                   for m in training.merges],
        "lengths": training.lengths,
    }


def register(subparsers) -> None:
    parser = subparsers.add_parser("tokenizers", help="list the tokenizer registry")
    parser.set_defaults(handler=tokenizers_command)

    parser = subparsers.add_parser("tokenize", help="token ids and spans of TEXT")
    parser.add_argument("--tokenizer", "-t", default="cl100k_base", help="tokenizer id (see `tokenizer_registry`)")
    parser.add_argument("--special", action="store_true", help="add BOS/EOS as the model does")
    parser.add_argument("text", metavar="TEXT", help="the text; `-` reads stdin")
    parser.set_defaults(handler=tokenize_command)

    parser = subparsers.add_parser("bpe-train", help="train the lecture's BPE and print its merges")
    parser.add_argument("--merges", type=int, required=True, help="number of merges")
    parser.add_argument("--pattern", choices=sorted(bpe.PATTERNS), default="none",
                        help="regex pre-splitting: gpt2, gpt4 or none")
    parser.add_argument("file", metavar="FILE", help="UTF-8 text file; `-` reads stdin")
    parser.set_defaults(handler=bpe_train_command)
