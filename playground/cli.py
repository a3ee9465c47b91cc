"""Helpers shared by the command line's subcommands (`playground/commands/*`).

They live here, not in `playground/__main__.py`, because `__main__` loads every command module:
a command importing from it would close an import cycle. What it leaves out: the parser and the
output (`playground.__main__`) and the subcommands themselves (`playground.commands`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playground.errors import PlaygroundError


def read_text_argument(value: str) -> str:
    """A TEXT argument: `-` reads stdin."""
    return sys.stdin.read() if value == "-" else value


def read_file_argument(value: str) -> str:
    """A FILE argument's text (`-` reads stdin); a file that cannot be read is a message in words."""
    if value == "-":
        return sys.stdin.read()
    try:
        return Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaygroundError(f"Cannot read {value}: {getattr(exc, 'strerror', None) or exc}.") from None
