"""Deep links: a tab's state as a short, readable query string, and back.

A link is `?tab=<tab id>&<param>=<value>&...`, plus `present=1` for presenter mode and `run=<action>`
for what to compute on opening (each tab has a default). `?demo=<id>` stands for a lecture demo's
whole query (`playground.lecture`); parameters given beside it override the demo's.

Each tab declares its parameters as `Param`s (name, kind, bounds or choices, default). `parse`
reads a query for one tab and never raises: a value it cannot use is left at the page's default
and named in a note ("top_p: 7 is out of range 0.01..1; it was set to 1"). `query_string` writes
values back, leaving out the ones equal to their defaults, so links stay short; the page's "Copy
link" builds the same string in JavaScript from the same `Param`s (`playground.ui.link_wiring`).

What it leaves out: which components the parameters belong to (the UI), and the demos themselves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

KINDS = ("text", "int", "float", "bool", "choice", "choices", "ids")  # ids: token ids, "12,345,6"
MAX_TEXT = 4000  # characters of one text parameter: a link is not a file
RESERVED = ("tab", "demo", "present", "run", "join", "follow", "class")  # the last three: class rooms
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Param:
    """One link parameter of a tab: `kind` is one of KINDS; `choices` lists the valid values of a
    choice / choices parameter; `minimum`/`maximum` bound a number; `default` is what the page shows."""

    name: str
    kind: str
    default: object = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    max_items: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        if self.name in RESERVED:
            raise ValueError(f"{self.name!r} is reserved for every link")


@dataclass
class LinkState:
    """What a link asks for: the tab, its values (by parameter name), presenter mode, the action to
    run, and a note per value that could not be used."""

    tab: str | None = None
    values: dict = field(default_factory=dict)
    present: bool = False
    run: str | None = None
    notes: list[str] = field(default_factory=list)


def parse_value(param: Param, raw: str) -> tuple[object, str | None]:
    """(value, None), or (None, note) when `raw` is not a valid value of `param`."""
    raw = str(raw)
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    if param.kind == "text":
        if len(raw) > MAX_TEXT:
            return raw[:MAX_TEXT], f"{param.name}: the text was cut to its first {MAX_TEXT:,} characters"
        return raw, None
    if param.kind == "bool":
        if raw.lower() in TRUE:
            return True, None
        if raw.lower() in FALSE:
            return False, None
        return None, f"{param.name}: {shown!r} is not 1 or 0"
    if param.kind == "choice":
        if raw in param.choices:
            return raw, None
        return None, f"{param.name}: {shown!r} is not available here ({_listed(param.choices)})"
    if param.kind == "ids":
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if not all(re.fullmatch(r"[0-9]{1,9}", item) for item in items):
            return None, f"{param.name}: {shown!r} is not a list of token ids (whole numbers, comma separated)"
        most = param.max_items or len(items)
        note = f"{param.name}: only the first {most:,} token ids were used" if len(items) > most else None
        return [int(item) for item in items[:most]], note
    if param.kind == "choices":
        items = [item for item in raw.split(",") if item]
        unknown = [item for item in items if item not in param.choices]
        kept = [item for item in items if item in param.choices][: param.max_items or None]
        if unknown:
            return (kept or None), f"{param.name}: {', '.join(unknown)[:60]} not available here ({_listed(param.choices)})"
        return kept, None
    try:
        number = float(raw)
    except ValueError:
        return None, f"{param.name}: {shown!r} is not a number"
    if not math.isfinite(number):
        return None, f"{param.name}: {shown!r} is not a finite number"
    if param.kind == "int" and number != int(number):
        return None, f"{param.name}: {shown!r} is not a whole number"
    low = -math.inf if param.minimum is None else param.minimum
    high = math.inf if param.maximum is None else param.maximum
    clamped = min(max(number, low), high)
    value = int(clamped) if param.kind == "int" else clamped
    if clamped != number:
        return value, f"{param.name}: {shown} is out of range {_number(low)}..{_number(high)}; it was set to {_number(value)}"
    return value, None


def parse(query: dict, params: list[Param]) -> tuple[dict, list[str]]:
    """The values of `params` found in `query` (a dict of strings) and a note per unusable one."""
    values, notes = {}, []
    for param in params:
        if param.name not in query:
            continue
        value, note = parse_value(param, query[param.name])
        if value is not None:
            values[param.name] = value
        if note:
            notes.append(note)
    known = {param.name for param in params} | set(RESERVED)
    unknown = sorted(name for name in query if name not in known)
    if unknown:
        notes.append(f"not used by this tab: {', '.join(unknown)[:80]}")
    return values, notes


WHY_HINT = "click: why this token? (which prompt tokens made it likely, in a new browser tab)"


def why_query(model_id: str, prompt: str, token_id: int) -> str:
    """The link (`?...`) that opens "Why this token?" on `prompt` with token `token_id` as the target,
    already run: what a click on a generated or teacher-forced token opens."""
    return "?" + urlencode({"tab": "why", "model": model_id, "prompt": prompt, "target": f"#{token_id}",
                            "run": "why"})


def encode_value(param: Param, value) -> str:
    if param.kind == "bool":
        return "1" if value else "0"
    if param.kind in ("choices", "ids"):
        return ",".join(str(item) for item in (value or []))
    if param.kind in ("int", "float"):
        return _number(float(value))
    return str(value)


def query_string(tab: str, params: list[Param], values: dict, present: bool = False, run: str | None = None) -> str:
    """`tab=...&...` for `values`, leaving out values equal to their parameter's default."""
    pairs = [("tab", tab)]
    for param in params:
        if param.name not in values:
            continue
        text = encode_value(param, values[param.name])
        if param.default is not None and text == encode_value(param, param.default):
            continue
        pairs.append((param.name, text))
    if run:
        pairs.append(("run", run))
    if present:
        pairs.append(("present", "1"))
    return urlencode(pairs)


def _number(value: float) -> str:
    if value in (math.inf, -math.inf):
        return "∞" if value > 0 else "-∞"
    return str(int(value)) if float(value) == int(value) else f"{value:g}"


def _listed(choices) -> str:
    shown = ", ".join(str(c) for c in list(choices)[:6])
    return shown + (", ..." if len(choices) > 6 else "")


def slug(name: str) -> str:
    """A preset's name as a link value: "Short answers win (length penalty -1)" -> "short-answers-win-length-penalty-1"."""
    out, dash = [], False
    for ch in name.lower():
        if ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")
