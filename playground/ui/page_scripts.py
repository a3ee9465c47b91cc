"""The page's JavaScript files (`assets/*.js`), read once at import, as the page's `head` takes them.

`script_tag(name)` is `assets/<name>` in a `<script>` element, its text unchanged (so the unit test
that parses every `assets/*.js` with node finds each file whole in the app's head). A script's
settings are written as JSON into a global by the module that owns it, in its own small element
before the file's (`settings_tag`).

What it leaves out: what the scripts do (`presenter`, `links`) and how the head is assembled
(`app.launch_kwargs`).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "assets"


@cache
def script(name: str) -> str:
    """The text of `assets/<name>` (read once)."""
    return (SCRIPTS / name).read_text(encoding="utf-8")


def script_tag(name: str) -> str:
    text = script(name)
    if "</script" in text.lower():
        raise ValueError(f"assets/{name} contains '</script', which would end its element early")
    return f"<script>\n{text}</script>"


def settings_tag(global_name: str, value) -> str:
    """`window.<global_name> = <value as JSON>` in a `<script>` element ('<' escaped, so no text ends it)."""
    return f"<script>window.{global_name} = {json.dumps(value).replace('<', chr(92) + 'u003c')};</script>"
