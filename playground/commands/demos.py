"""CLI: `demos` lists the lecture's demos in lecture order, each with the link that opens it.

`python -m playground demos --json` prints `[{"id", "title", "tab", "url", "section", "line",
"needs", "query"}, ...]`; `url` is a path and query relative to the app root (`/?demo=<id>`).
What it leaves out: opening them (the app does, `playground.ui.link_wiring`).
"""

from __future__ import annotations

from playground import lecture


def demos_command(args) -> list[dict]:
    return [demo.as_dict() for demo in lecture.DEMOS]


def register(subparsers) -> None:
    parser = subparsers.add_parser("demos", help="the lecture's demos, in order, with their links")
    parser.set_defaults(handler=demos_command)
