"""The command line: `python -m playground <command> [--json] ...`.

Every module in `playground/commands/` contributes subcommands through `register(subparsers)`;
each subcommand's handler returns a JSON-able object. With `--json` it is printed as one JSON
document on stdout; without, as indented JSON for people. A `PlaygroundError` (unknown id, bad
input) exits with status 2 and its message on stderr, never a traceback. Helpers the subcommands
share live in `playground.cli` (a command importing this module would close an import cycle).
What it leaves out: the commands themselves (`playground.commands`), the web app (`app.py`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

import playground.commands
from playground import settings
from playground.errors import PlaygroundError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m playground", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one compact JSON document on stdout")
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: $PLAYGROUND_DEVICE or auto)")
    parser.add_argument("--start-token", default=None, choices=("model", "always", "none"),
                        help="start tokens before a plain text: model (its tokenizer's and llama.cpp's), always, "
                             "none (default: $PLAYGROUND_START_TOKEN or model)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(playground.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"playground.commands.{module_info.name}")
        module.register(subparsers)
    for subparser in subparsers.choices.values():  # `--json` is accepted after the command too
        subparser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings.apply_flags(device=args.device, start_token=args.start_token)
    try:
        result = args.handler(args)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, ensure_ascii=False) if args.json else json.dumps(result, ensure_ascii=False, indent=2)
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`: the reader left, which is fine
        sys.stdout = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
