"""The Redis room store: rooms shared by several app processes (`PLAYGROUND_ROOM_STORE=redis://...`).

Keys, all under `playground:room:<code>` and all expiring with the room: the room's hash, `:blob`,
`:answers:<poll>` (a hash student -> text) and `:rate:<student>:<window>` (a counter). The sorted
set `playground:rooms` scores each room by its expiry time, so live rooms are counted without a
scan. What it leaves out: running Redis (the operator's, or the tests' own `redis-server`).
"""

from __future__ import annotations

import math
import time

import redis

from playground.rooms.store import CREATED, FULL, TAKEN, RoomStore

PREFIX = "playground:room:"
INDEX = "playground:rooms"


class RedisStore(RoomStore):
    def __init__(self, url: str):
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                           health_check_interval=30)

    def _key(self, code: str, *parts: str) -> str:
        return ":".join([PREFIX + code, *parts])

    def _ttl_ms(self, code: str) -> int | None:
        ttl = self._redis.pttl(self._key(code))
        return ttl if ttl and ttl > 0 else None

    def create(self, code, fields, ttl_s, max_rooms):
        now = time.time()
        self._redis.zremrangebyscore(INDEX, "-inf", now)
        if self._redis.zcard(INDEX) >= max_rooms:
            return FULL
        key = self._key(code)
        if not self._redis.hsetnx(key, "version", "1"):
            return TAKEN
        ttl_ms = max(1, int(ttl_s * 1000))
        with self._redis.pipeline() as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, ttl_ms)
            pipe.zadd(INDEX, {code: now + ttl_s})
            pipe.execute()
        return CREATED

    def read(self, code):
        room = self._redis.hgetall(self._key(code))
        return {k.decode(): v.decode() for k, v in room.items()} or None

    def update(self, code, fields):
        key = self._key(code)
        if not self._redis.exists(key):
            return None
        with self._redis.pipeline() as pipe:
            pipe.hset(key, mapping=fields)
            pipe.hincrby(key, "version", 1)
            _, version = pipe.execute()
        return int(version)

    def put_blob(self, code, data):
        ttl = self._ttl_ms(code)
        if ttl is not None:
            self._redis.set(self._key(code, "blob"), bytes(data), px=ttl)

    def get_blob(self, code):
        return self._redis.get(self._key(code, "blob"))

    def put_answer(self, code, poll_id, student, text, max_answers):
        ttl = self._ttl_ms(code)
        if ttl is None:
            return False
        key = self._key(code, "answers", poll_id)
        if self._redis.hlen(key) >= max_answers and not self._redis.hexists(key, student):
            return False
        with self._redis.pipeline() as pipe:
            pipe.hset(key, student, text)
            pipe.pexpire(key, ttl)
            pipe.execute()
        return True

    def answers(self, code, poll_id):
        found = self._redis.hgetall(self._key(code, "answers", poll_id))
        return {k.decode(): v.decode() for k, v in found.items()}

    def answer_count(self, code, poll_id):
        return int(self._redis.hlen(self._key(code, "answers", poll_id)))

    def hit(self, code, student, window_s):
        window = int(time.time() // window_s)
        key = self._key(code, "rate", student, str(window))
        with self._redis.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, max(1, math.ceil(window_s * 2)))
            count, _ = pipe.execute()
        return int(count)

    def count(self):
        self._redis.zremrangebyscore(INDEX, "-inf", time.time())
        return int(self._redis.zcard(INDEX))

    def close(self):
        self._redis.close()
