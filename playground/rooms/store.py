"""The room store interface: where rooms, their answers and their rate counters live.

A store keeps, per room code, a small hash of string fields (the presenter key's hash, the
presenter's state, the current poll, a version bumped by every update), one blob per room (the
current poll's model distribution), the answers of each poll (student id -> text) and per-student
hit counters for rate limits. Rooms expire `ttl_s` after creation and at most `max_rooms` live at
once.

What it leaves out: what the fields mean and who may write them (`playground.rooms.room`), which
implementation a process uses (`playground.rooms.configured`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

CREATED, TAKEN, FULL = "created", "taken", "full"


class RoomStore(ABC):
    """One implementation per backend; every method is safe to call from many threads."""

    @abstractmethod
    def create(self, code: str, fields: dict[str, str], ttl_s: float, max_rooms: int) -> str:
        """CREATED, TAKEN (the code exists) or FULL (max_rooms live rooms)."""

    @abstractmethod
    def read(self, code: str) -> dict[str, str] | None:
        """The room's fields, or None when there is no such (live) room."""

    @abstractmethod
    def update(self, code: str, fields: dict[str, str]) -> int | None:
        """Set fields and bump the room's version; the new version, or None when the room is gone."""

    @abstractmethod
    def put_blob(self, code: str, data: bytes) -> None:
        """The room's one blob (the current poll's distribution), replacing the previous one."""

    @abstractmethod
    def get_blob(self, code: str) -> bytes | None: ...

    @abstractmethod
    def put_answer(self, code: str, poll_id: str, student: str, text: str, max_answers: int) -> bool:
        """Store (or replace) a student's answer; False when the poll already has max_answers others."""

    @abstractmethod
    def answers(self, code: str, poll_id: str) -> dict[str, str]: ...

    @abstractmethod
    def answer_count(self, code: str, poll_id: str) -> int: ...

    @abstractmethod
    def hit(self, code: str, student: str, window_s: float) -> int:
        """Count one hit of `student` in the current window of `window_s` seconds; the window's count."""

    @abstractmethod
    def count(self) -> int:
        """Live rooms."""

    def close(self) -> None:
        """Release connections (nothing for the memory store)."""
