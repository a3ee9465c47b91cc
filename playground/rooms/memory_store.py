"""The in-process room store (the embedded default): dictionaries under one lock.

Expired rooms are dropped whenever the store is touched; a room's answers, blob and rate counters
go with it. What it leaves out: sharing rooms between app processes (`redis_store`).
"""

from __future__ import annotations

import threading
import time

from playground.rooms.store import CREATED, FULL, TAKEN, RoomStore


class MemoryStore(RoomStore):
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._rooms: dict[str, dict[str, str]] = {}
        self._expires: dict[str, float] = {}
        self._blobs: dict[str, bytes] = {}
        self._answers: dict[tuple[str, str], dict[str, str]] = {}
        self._hits: dict[tuple[str, str], tuple[int, int]] = {}  # (code, student) -> (window, count)

    def _expire(self) -> None:
        now = self._clock()
        for code in [c for c, until in self._expires.items() if until <= now]:
            self._drop(code)

    def _drop(self, code: str) -> None:
        self._rooms.pop(code, None)
        self._expires.pop(code, None)
        self._blobs.pop(code, None)
        for key in [k for k in self._answers if k[0] == code]:
            del self._answers[key]
        for key in [k for k in self._hits if k[0] == code]:
            del self._hits[key]

    def create(self, code, fields, ttl_s, max_rooms):
        with self._lock:
            self._expire()
            if code in self._rooms:
                return TAKEN
            if len(self._rooms) >= max_rooms:
                return FULL
            self._rooms[code] = {**fields, "version": "1"}
            self._expires[code] = self._clock() + ttl_s
            return CREATED

    def read(self, code):
        with self._lock:
            self._expire()
            room = self._rooms.get(code)
            return dict(room) if room is not None else None

    def update(self, code, fields):
        with self._lock:
            self._expire()
            room = self._rooms.get(code)
            if room is None:
                return None
            room.update(fields)
            room["version"] = str(int(room.get("version", "0")) + 1)
            return int(room["version"])

    def put_blob(self, code, data):
        with self._lock:
            if code in self._rooms:
                self._blobs[code] = bytes(data)

    def get_blob(self, code):
        with self._lock:
            return self._blobs.get(code)

    def put_answer(self, code, poll_id, student, text, max_answers):
        with self._lock:
            if code not in self._rooms:
                return False
            answers = self._answers.setdefault((code, poll_id), {})
            if student not in answers and len(answers) >= max_answers:
                return False
            answers[student] = text
            return True

    def answers(self, code, poll_id):
        with self._lock:
            return dict(self._answers.get((code, poll_id), {}))

    def answer_count(self, code, poll_id):
        with self._lock:
            return len(self._answers.get((code, poll_id), {}))

    def hit(self, code, student, window_s):
        window = int(self._clock() // window_s)
        with self._lock:
            last, count = self._hits.get((code, student), (window, 0))
            count = count + 1 if last == window else 1
            self._hits[(code, student)] = (window, count)
            return count

    def count(self):
        with self._lock:
            self._expire()
            return len(self._rooms)
