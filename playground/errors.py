"""Errors a user can act on.

`PlaygroundError` carries a message meant for the person at the keyboard: the UI shows it as a
`gr.Error`, the CLI prints it on stderr and exits with status 2. Anything else that escapes is a bug
and is reported as a generic failure without a traceback. This module leaves logging to callers.
"""

from __future__ import annotations

from collections.abc import Iterable


class PlaygroundError(ValueError):
    """Bad input or an unavailable resource, explained in one user-facing message."""


class UnknownIdError(PlaygroundError):
    """An id that is not in a registry; the message lists the valid ids."""

    def __init__(self, kind: str, given: str, valid: Iterable[str]):
        self.kind = kind
        self.given = given
        self.valid = sorted(valid)
        super().__init__(f"Unknown {kind} id {given!r}. Valid ids: {', '.join(self.valid)}")
