"""Serve the LLM playground: `python app.py [--host H] [--port P] [--device D] [--share] [--allow-hub-ids]
[--models-file PATH] [--model id=...,role=...,hub=...]...`.

`--allow-hub-ids` lets the tokenizer registry load arbitrary Hugging Face hub tokenizer ids
(`org/name`); without it only registry ids are accepted. `--models-file` (a TOML file) and repeatable
`--model` flags add the operator's models to the built-in ones (`playground.model_list`); entries
that are refused are logged, each naming the entry and the field. Flags win over the environment
(`playground.settings`, whose variables the README lists).

The page is served at once; models load lazily on first use (the status line shows which are
loaded). On Hugging Face Spaces this file is the entry point (see the README's front matter).
"""

from __future__ import annotations

import argparse
import logging
import os

from playground import settings
from playground.device import DEVICE_CHOICES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the LLM playground.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                        help="where models run (default: $PLAYGROUND_DEVICE or auto: cuda > mps > cpu)")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--allow-hub-ids", action="store_true",
                        help="accept arbitrary Hugging Face hub tokenizer ids (org/name), not only the registry's")
    parser.add_argument("--models-file", default=None, metavar="PATH",
                        help="a TOML file of models added to the built-in ones (default: $PLAYGROUND_MODELS_FILE)")
    parser.add_argument("--model", action="append", default=[], metavar="ENTRY",
                        help="add one model, e.g. id=qwen3,role=chat,hub=Qwen/Qwen3-0.6B (repeatable)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    settings.apply_flags(device=args.device, allow_hub_ids=True if args.allow_hub_ids else None,
                         models_file=args.models_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from playground import models

    for problem in models.configure_model_list(flag_entries=args.model):
        logging.getLogger("playground.model_list").warning("model entry refused: %s", problem)
    from playground.ui.shell import build_app, launch_kwargs

    app = build_app()
    app.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
               **launch_kwargs())


if __name__ == "__main__":
    main()
