"""A class room's rules: who may do what, and what a student sees.

`create()` makes a room with a short join code (6 characters, no look-alike letters) and a secret
presenter key (only its SHA-256 is stored; the key is never part of the join link). Only a caller
holding the key may `publish` the presenter's state (the tab, the demo, the link parameters, the
lab's step, the beam step, the layer and head: a small dict, at most `STATE_MAX_BYTES` as JSON),
start a poll, hide an answer or reveal. Anyone with the code may `view` the room (the state and the
poll's public part: no model names, no model distribution before the reveal) and `answer` the
current poll: anonymously (a random id per browser), one answer per student per poll (a new one
replaces it), rate-limited per student (`PLAYGROUND_ANSWER_RATE` per 10 s). Answering is
tokenization and counting; the one model call of a poll is at its start. The reveal's result is
stored with the poll, so followers receive it and never recompute it.

What it leaves out: the store (`playground.rooms.store`), the scoring (`playground.rooms.polls`),
the page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from playground import settings
from playground.errors import PlaygroundError
from playground.lru import BoundedLRU
from playground.rooms import configured, polls, store as room_store

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
STATE_MAX_BYTES = 8192
MAX_ANSWERS = 2000  # students answering one poll at most
RATE_WINDOW_S = 10.0
STUDENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
PUBLIC_POLL_KEYS = ("id", "kind", "question", "prompt", "text", "options", "revealed", "result")


@dataclass(frozen=True)
class Room:
    code: str
    key: str  # the presenter's secret

    @property
    def join_path(self) -> str:
        return f"/?join={self.code}"


@dataclass(frozen=True)
class RoomView:
    """What every follower sees: the presenter's state and the current poll's public part."""

    code: str
    version: int
    state: dict
    poll: dict | None
    answers: int  # answers to the current poll so far


def _store(store):
    return store if store is not None else configured.current()


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def normalize_code(code) -> str:
    """The join code as stored (upper case, no spaces), or a message."""
    text = re.sub(r"\s+", "", code if isinstance(code, str) else "").upper()
    if len(text) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in text):
        raise PlaygroundError(f"“{text[:12]}” is not a class code (it has {CODE_LENGTH} letters and digits).")
    return text


START_WINDOW_S = 3600.0  # PLAYGROUND_CLASS_STARTS counts the classes an address started in this window


def create(store=None, starter: str = "") -> Room:
    """A new room; a message when `PLAYGROUND_MAX_ROOMS` rooms are live, or when `starter` (the
    presenter's network address) has started `PLAYGROUND_CLASS_STARTS` within the hour: one script
    cannot take every room."""
    store = _store(store)
    config = settings.current()
    if starter and config.class_starts > 0 and store.hit("class-start", starter, START_WINDOW_S) > config.class_starts:
        raise PlaygroundError(f"This address has started {config.class_starts} classes within the hour, the most "
                              "it may (PLAYGROUND_CLASS_STARTS): use one of them, or try again later.")
    for _ in range(20):
        room = Room("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)), secrets.token_urlsafe(24))
        outcome = store.create(room.code, {"key": _hash(room.key), "state": "{}", "poll": ""},
                               config.room_ttl, config.max_rooms)
        if outcome == room_store.CREATED:
            return room
        if outcome == room_store.FULL:
            raise PlaygroundError(f"{config.max_rooms} classes are running on this server, the most it "
                                  "keeps (PLAYGROUND_MAX_ROOMS); try again when one has ended.")
    raise PlaygroundError("No free class code was found; try again.")


def _room(store, code) -> tuple[str, dict]:
    code = normalize_code(code)
    fields = store.read(code)
    if fields is None:
        raise PlaygroundError(f"There is no class {code} (it may have ended).")
    return code, fields


def _presenter(store, code, key) -> tuple[str, dict]:
    code, fields = _room(store, code)
    if not isinstance(key, str) or not hmac.compare_digest(_hash(key), fields.get("key", "")):
        raise PlaygroundError(f"Only the presenter of class {code} can do that.")
    return code, fields


def check_presenter(code, key, store=None) -> str:
    """The code, when `key` is this room's presenter key; a message otherwise."""
    return _presenter(_store(store), code, key)[0]


def publish(code, key, state: dict, store=None) -> int:
    """The presenter's state, for every follower; the room's new version."""
    store = _store(store)
    if not isinstance(state, dict):
        raise PlaygroundError("The presenter's state is a dictionary.")
    text = json.dumps(state, ensure_ascii=False, sort_keys=True)
    if len(text.encode("utf-8")) > STATE_MAX_BYTES:
        raise PlaygroundError(f"The presenter's state is larger than {STATE_MAX_BYTES} bytes.")
    code, fields = _presenter(store, code, key)
    if fields.get("state") == text:
        return int(fields.get("version", "1"))
    return _updated(store.update(code, {"state": text}), code)


def _updated(version, code) -> int:
    if version is None:
        raise PlaygroundError(f"There is no class {code} (it may have ended).")
    return version


def _poll(fields) -> dict | None:
    return json.loads(fields["poll"]) if fields.get("poll") else None


def view(code, store=None) -> RoomView:
    store = _store(store)
    code, fields = _room(store, code)
    poll = _poll(fields)
    public = {k: v for k, v in poll.items() if k in PUBLIC_POLL_KEYS} if poll else None
    return RoomView(code, int(fields.get("version", "1")), json.loads(fields.get("state") or "{}"), public,
                    store.answer_count(code, poll["id"]) if poll else 0)


def start_poll(code, key, kind: str, *, model_id: str = "", prompt: str = "", text: str = "",
               tokenizer_ids=(), models=(), store=None) -> dict:
    """Start a poll (replacing the current one): `next_token` on (model_id, prompt), `count` on `text`
    with `tokenizer_ids`, `chat` between `models` (left, right)."""
    store = _store(store)
    code, _fields = _presenter(store, code, key)
    blob = None
    if kind == "next_token":
        poll, blob = polls.next_token_poll(model_id, prompt)
    elif kind == "count":
        from playground.tokenizer_registry import tokenize
        if not isinstance(text, str) or not text.strip():
            raise PlaygroundError("A token-count poll needs a text: type one in the Tokenizer tab.")
        text = text[:400]
        poll = polls.count_poll(text, {tid: len(tokenize(tid, text).ids) for tid in dict.fromkeys(tokenizer_ids)})
    elif kind == "chat":
        if len(models) != 2:
            raise PlaygroundError("A chat-model poll needs the two columns' models.")
        poll = polls.chat_poll(*models)
    else:
        raise PlaygroundError(f"There is no poll “{str(kind)[:20]}” (polls: {', '.join(polls.KINDS)}).")
    if blob is not None:
        store.put_blob(code, blob)
    _updated(store.update(code, {"poll": json.dumps(poll)}), code)
    return poll


# guess -> the model's token, by (model, prompt, guess): a class converges on a few guesses, and an
# answer that hits costs no tokenization (a burst of 300 answers when a poll opens)
_guesses = BoundedLRU(max_entries=4096)


def _mapped(poll: dict, text) -> polls.Guess:
    key = (poll["model"], poll["prompt"], text if isinstance(text, str) else None)
    guess = _guesses.get(key) if key[2] is not None else None
    if guess is None:
        guess = polls.map_guess(_loaded_tokenizer(poll["model"]), poll["prompt"], poll["prompt_ids"], text)
        _guesses.put(key, guess)
    return guess


def _loaded_tokenizer(model_id: str):
    from playground.models import load_model  # the tokenizer the poll's model reads with
    return load_model(model_id).tokenizer


def answer(code, student, text, store=None, poll_id: str | None = None) -> str:
    """Record a student's answer to the current poll (to `poll_id`, when given: an answer that arrives
    after the presenter moved on to another poll is refused); what it was counted as, in words."""
    store = _store(store)
    code, fields = _room(store, code)
    if not isinstance(student, str) or not STUDENT_ID.fullmatch(student):
        raise PlaygroundError("This page has no student id; reload it.")
    if store.hit(code, student, RATE_WINDOW_S) > settings.current().answer_rate:
        raise PlaygroundError("Too many answers at once: wait a few seconds and send it again.")
    poll = _poll(fields)
    if poll is None:
        raise PlaygroundError("There is no poll to answer yet.")
    if poll_id not in (None, "") and poll_id != poll["id"]:
        raise PlaygroundError("That poll has ended: the presenter started another one.")
    if poll.get("revealed"):
        raise PlaygroundError("This poll is closed: the presenter revealed the answers.")
    if poll["kind"] == "next_token":
        guess = _mapped(poll, text)
        stored = {"text": guess.text, "id": guess.token_id, "label": guess.label, "n": guess.n_tokens}
        message = guess.note
    elif poll["kind"] == "count":
        stored = {"v": polls.parse_count(text)}
        message = f"your guess: {stored['v']} tokens"
    else:
        stored = {"v": polls.parse_vote(text)}
        message = f"your vote: {stored['v']}"
    if not store.put_answer(code, poll["id"], student, json.dumps(stored, ensure_ascii=False), MAX_ANSWERS):
        raise PlaygroundError(f"This poll has {MAX_ANSWERS} answers, the most it takes.")
    return "Answer received (a new answer replaces it): " + message + "."


def _score(store, code: str, poll: dict) -> dict:
    answers = [json.loads(a) for a in store.answers(code, poll["id"]).values()]
    if poll["kind"] == "next_token":
        blob = store.get_blob(code)
        if blob is None:
            raise PlaygroundError("This poll's model distribution is gone; start the poll again.")
        return polls.score_next_token(poll, answers, polls.logprobs_of(blob), _loaded_tokenizer(poll["model"]))
    if poll["kind"] == "count":
        return polls.score_count(poll, answers)
    return polls.score_chat(poll, answers)


def reveal(code, key, store=None) -> dict:
    """Close the current poll and store its result (followers receive it); the result."""
    store = _store(store)
    code, fields = _presenter(store, code, key)
    poll = _poll(fields)
    if poll is None:
        raise PlaygroundError("There is no poll to reveal.")
    poll["result"] = _score(store, code, poll)
    poll["revealed"] = True
    _updated(store.update(code, {"poll": json.dumps(poll)}), code)
    return poll["result"]


def hide(code, key, label: str, store=None) -> dict | None:
    """Leave every answer shown as `label` (a token, a number, a column) out; a revealed result is
    scored again. The result, or None before the reveal."""
    store = _store(store)
    code, fields = _presenter(store, code, key)
    poll = _poll(fields)
    if poll is None:
        raise PlaygroundError("There is no poll.")
    if isinstance(label, str) and label and label not in poll["hidden"]:
        poll["hidden"].append(label[:80])
    if poll.get("revealed"):
        poll["result"] = _score(store, code, poll)
    _updated(store.update(code, {"poll": json.dumps(poll)}), code)
    return poll.get("result")


def answer_labels(code, key, store=None) -> list[str]:
    """The labels the current poll's answers are shown as (what `hide` takes), for the presenter."""
    store = _store(store)
    code, fields = _presenter(store, code, key)
    poll = _poll(fields)
    if poll is None:
        return []
    answers = [json.loads(a) for a in store.answers(code, poll["id"]).values()]
    return sorted({a["label"] if "label" in a else str(a["v"]) for a in answers})
