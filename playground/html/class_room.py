"""HTML of a class room: the join card (code, link, QR code), what a student follows, a poll's result.

`join_html` is the card the projector shows: the join code and link in type the back row can read,
and the link's QR code (`segno`, inline SVG). `follow_html` is the student's view of a `RoomView`:
the tab the presenter is on, the prompt and settings (the presenter's link parameters), the lab's
step with its text so far and last token, the beam replay step, the layer and head, the current
poll (its question, whether it takes answers, answer chips for a vote) and, after the reveal, its
result; plus "explore from here" (the presenter's link, opened with all controls) and the code to
follow again. `result_html` draws a poll's result as a table and a few sentences. Every string from
a presenter, a student or the vocabulary goes through `html.escape`.

What it leaves out: the chart beside the result (`playground.plots.class_room`), polling for
updates and sending answers (`playground.ui.class_room`, `assets/class_room.js`).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode

import segno

TAB_NAMES = {"lecture": "Lecture", "tokenizer": "Tokenizer", "chat": "Base vs chat", "sampling": "Sampling lab",
             "beam": "Beam search", "inside": "Inside the model"}
SHOWN_PARAMS = 8  # link parameters listed under "what the presenter shows"
QUERY_SKIP = ("tab", "present", "run", "view")


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def qr_svg(url: str, scale: int = 6) -> str:
    return segno.make(url, error="m").svg_inline(scale=scale, dark="#111827", light="#ffffff")


def join_html(code: str, url: str) -> str:
    return (f'<div class="class-join"><div class="class-join-text">'
            f'<div class="class-join-label">Join the class</div>'
            f'<div class="class-code" id="class-code">{esc(code)}</div>'
            f'<div class="class-link" id="class-link">{esc(url)}</div></div>'
            f'<div class="class-qr" id="class-qr" title="{esc(url)}">{qr_svg(url)}</div></div>')


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def result_html(result: dict | None) -> str:
    if not result:
        return ""
    kind = result["kind"]
    if kind == "next_token":
        rows = "".join(
            f'<tr><td class="class-token">{esc(r["label"])}</td><td>{r["rank"]:,}</td><td>{_percent(r["p"])}</td>'
            f'<td>{r["count"]}</td><td>{_percent(r["share"])}</td></tr>' for r in result["rows"])
        several = "".join(f'<li>“{esc(s["text"])}” is {s["tokens"]} tokens; counted as “{esc(s["label"])}”</li>'
                          for s in result["several"])
        return (f'<div class="class-result"><p class="class-verdict">{esc(result["verdict"])}</p>'
                f'<p>{result["answers"]} answers; {_percent(result["top_share"])} of the class picked the '
                f'model\'s top token “{esc(result["top_label"])}”.</p>'
                '<table class="class-table"><thead><tr><th>token</th><th>model rank</th><th>model p</th>'
                f'<th>class</th><th>class share</th></tr></thead><tbody>{rows}</tbody></table>'
                + (f'<ul class="class-several">{several}</ul>' if several else "") + '</div>')
    if kind == "count":
        real = "".join(f"<li>{esc(tid)}: <b>{n:,}</b> tokens</li>" for tid, n in result["real"].items())
        guesses = "".join(f'<tr><td>{esc(g["label"])}</td><td>{g["count"]}</td></tr>' for g in result["guesses"])
        median = f'{result["median"]:g}' if result["median"] is not None else "none"
        return (f'<div class="class-result"><p>{result["answers"]} answers; the class\'s median guess: '
                f'{median}.</p><p>The real count:</p><ul>{real}</ul>'
                f'<table class="class-table"><thead><tr><th>guess</th><th>students</th></tr></thead>'
                f'<tbody>{guesses}</tbody></table></div>')
    rows = "".join(f'<tr><td>{esc(v["label"])}</td><td>{esc(v["model"])}</td><td>{v["count"]}</td>'
                   f'<td>{_percent(v["share"])}</td></tr>' for v in result["votes"])
    return (f'<div class="class-result"><p>{result["answers"]} votes. The models were:</p>'
            '<table class="class-table"><thead><tr><th>column</th><th>model</th><th>votes</th><th>share</th>'
            f'</tr></thead><tbody>{rows}</tbody></table></div>')


def explore_link(query: str, code: str) -> str:
    """The presenter's link for a student's own session (presenter mode left out), and where to follow again."""
    pairs = [(k, v) for k, v in parse_qsl(query or "", keep_blank_values=True)
             if k not in ("present", "follow") and (k, v) != ("tab", "lecture")]  # the Lecture tab has no link
    return "/?" + urlencode([*pairs, ("follow", code)])


def _state_html(state: dict) -> str:
    params = dict(parse_qsl(state.get("query") or "", keep_blank_values=True))
    tab = state.get("tab") or params.get("tab") or ""
    parts = [f'<p class="class-tab">The presenter is on: <b id="class-tab-name">{esc(TAB_NAMES.get(tab, tab or "—"))}</b></p>']
    shown = [(k, v) for k, v in params.items() if k not in QUERY_SKIP][:SHOWN_PARAMS]
    if shown:
        parts.append('<dl class="class-params">' + "".join(
            f"<dt>{esc(k)}</dt><dd>{esc(v[:300])}</dd>" for k, v in shown) + "</dl>")
    if tab == "sampling" and state.get("step") is not None:
        parts.append(f'<p class="class-step" id="class-step">Step {int(state["step"])}: '
                     f'<span class="class-text">{esc(state.get("text", ""))}</span>'
                     f'<mark class="class-last">{esc(state.get("last", ""))}</mark></p>')
    if tab == "beam" and params.get("step"):
        parts.append(f'<p class="class-step" id="class-step">Beam replay: step {esc(params["step"])}</p>')
    if tab == "inside" and (params.get("layer") or params.get("head")):
        parts.append(f'<p class="class-step">Layer {esc(params.get("layer", "default"))}, '
                     f'head {esc(params.get("head", "default"))}</p>')
    return "".join(parts)


def _poll_html(poll: dict | None) -> str:
    if not poll:
        return '<div class="class-poll" data-open="0"></div>'
    subject = poll.get("prompt") or poll.get("text") or ""
    chips = "".join(f'<button type="button" class="class-chip" data-answer="{esc(o)}">{esc(o)}</button>'
                    for o in poll.get("options", []))
    is_open = not poll.get("revealed")
    return (f'<div class="class-poll" data-open="{int(is_open)}" data-poll="{esc(poll["id"])}">'
            f'<h3 class="class-question">{esc(poll["question"])}</h3>'
            + (f'<p class="class-subject">{esc(subject)}</p>' if subject else "")
            + (f'<div class="class-chips">{chips}</div>' if chips and is_open else "")
            + ('' if is_open else '<p class="class-closed">The presenter revealed the answers.</p>')
            + result_html(poll.get("result")) + '</div>')


def follow_html(view) -> str:
    """A student's view of a `playground.rooms.room.RoomView`."""
    state = view.state or {}
    explore = explore_link(state.get("query", ""), view.code)
    return (f'<div class="class-follow" data-version="{view.version}">'
            f'<p class="class-header">Class <b>{esc(view.code)}</b>: following the presenter. '
            f'<a class="class-explore" id="class-explore" href="{esc(explore)}">Explore from here</a></p>'
            + _state_html(state) + _poll_html(view.poll) + '</div>')


def follow_again_html(code: str) -> str:
    """The banner of a student exploring on their own: back to following."""
    return (f'<div class="class-follow-again">Exploring on your own (class {esc(code)}). '
            f'<a id="class-follow-again" href="/?join={esc(code)}">Follow the presenter again</a></div>')


def student_html() -> str:
    """The student page's frame: the followed view (filled by the page's script) and the answer form."""
    return ('<div id="class-student">'
            '<div id="class-follow" aria-live="polite"><p>Joining the class…</p></div>'
            '<form id="class-answer-form" hidden autocomplete="off">'
            '<input id="class-answer" name="answer" maxlength="40" placeholder="Your answer (40 characters at most)">'
            '<button type="submit" id="class-send">Send</button></form>'
            '<p id="class-answer-status" aria-live="polite"></p></div>')


def presenter_poll_html(poll: dict | None, answers: int) -> str:
    """The presenter's line about the current poll (answer texts appear only in the result)."""
    if not poll:
        return '<p class="class-poll-status">No poll yet: start one on what is on screen.</p>'
    status = "revealed" if poll.get("revealed") else "open"
    return (f'<div class="class-poll-status" data-answers="{answers}" data-status="{status}">'
            f'<b>{esc(poll["question"])}</b> ({status}): <span id="class-answer-count">{answers}</span> '
            f'answer{"s" if answers != 1 else ""}</div>')
