"""Helpers shared by the command line's subcommands (`playground/commands/*`).

They live here, not in `playground/__main__.py`, because `__main__` loads every command module:
a command importing from it would close an import cycle. What it leaves out: the parser and the
output (`playground.__main__`) and the subcommands themselves (`playground.commands`).
"""

from __future__ import annotations

import sys


def read_text_argument(value: str) -> str:
    """A TEXT argument: `-` reads stdin."""
    return sys.stdin.read() if value == "-" else value
