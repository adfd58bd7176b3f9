"""Where the simulator keeps its state: Redis (shared by every process) or memory.

Several worker processes share one simulator, so the Redis store keeps every bit of
state under ``sim:{namespace}:`` and none in process memory:

- ``idem:{key}`` / ``msgidem:{key}``: the call/message id an idempotency key created;
- ``call:{id}`` / ``message:{id}``: what was decided at placement (JSON);
- ``ledger`` / ``messages``: one JSON entry per call placed / message sent, in order;
- ``events`` (sorted set scored by simulated due time, epoch seconds) and
  ``event_bodies`` (hash): the webhook bodies still to deliver, taken by ``pop_due``
  atomically;
- ``tries:{key}``: how many times a key was requested (drives transient errors).

The memory store keeps the same things in one process's dicts, under a lock, with
the same ordering rules (due time, then token): for the in-process pipeline and
service tests, which then need no Redis. Both satisfy ``SimulatorStore``.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple, Protocol, cast

import redis

from dialer.providers.events import as_utc
from dialer.providers.simulation.deliveries import Delivery


@dataclass(frozen=True)
class ObjectKind:
    """What a store creates once per idempotency key: calls or messages, and their log."""

    idempotency_prefix: str
    record_prefix: str
    log: str


CALLS: Final = ObjectKind(idempotency_prefix="idem", record_prefix="call", log="ledger")
MESSAGES: Final = ObjectKind(idempotency_prefix="msgidem", record_prefix="message", log="messages")


class Creation(NamedTuple):
    """One object to create unless its idempotency key already created one."""

    idempotency_key: str
    object_id: str
    record_json: str
    log_entry: Mapping[str, Any]
    deliveries: Sequence[Delivery]


class SimulatorStore(Protocol):
    def create_many(self, kind: ObjectKind, creations: Sequence[Creation]) -> list[str]:
        """Create each object in order, once per key; return each key's object id."""
        ...

    def read_record(self, kind: ObjectKind, object_id: str) -> str | None: ...

    def read_log(self, kind: ObjectKind) -> list[dict[str, Any]]: ...

    def next_try(self, idempotency_key: str) -> int:
        """Count one more request for ``idempotency_key``; return the count."""
        ...

    def pop_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Remove and return the bodies due by ``now`` (due time, then token), each once."""
        ...

    def pending(self) -> int: ...

    def clear(self) -> int:
        """Forget everything (a fresh demo run); returns how many keys were dropped."""
        ...


# --------------------------------------------------------------------------- redis


# Create an object once per idempotency key, with its log entry and events, in one
# atomic step: a racing second request sees the first one's id and creates nothing.
# KEYS: idem, record, log, events, bodies. ARGV: id, record, log entry, then
# (token, score, body) triples.
_CREATE_ONCE_LUA: Final = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
for i = 4, #ARGV, 3 do
  redis.call('ZADD', KEYS[4], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2])
end
return ARGV[1]
"""

# Take the due deliveries: ZRANGEBYSCORE and ZREM in one script, so two workers
# popping at the same moment never both get an event. KEYS: events, bodies.
# ARGV: now (epoch seconds), limit.
_POP_DUE_LUA: Final = """
local tokens = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local bodies = {}
for _, token in ipairs(tokens) do
  redis.call('ZREM', KEYS[1], token)
  bodies[#bodies + 1] = redis.call('HGET', KEYS[2], token)
  redis.call('HDEL', KEYS[2], token)
end
return bodies
"""


class RedisSimulatorStore:
    """The simulator's Redis keys and scripts under one namespace."""

    def __init__(self, client: redis.Redis, namespace: str = "default") -> None:
        self.redis = client
        self.namespace = namespace
        self.prefix = f"sim:{namespace}:"
        self.events_key = self._key("events")
        self.bodies_key = self._key("event_bodies")
        self._create_once = client.register_script(_CREATE_ONCE_LUA)
        self._pop_due = client.register_script(_POP_DUE_LUA)

    @classmethod
    def from_url(cls, redis_url: str, namespace: str = "default") -> RedisSimulatorStore:
        return cls(redis.Redis.from_url(redis_url, decode_responses=True), namespace)

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def create_many(self, kind: ObjectKind, creations: Sequence[Creation]) -> list[str]:
        """One round trip for all: each create-once script queued on one pipeline."""
        if len(creations) == 1:  # no pipeline object for the common single send
            return [self._run_create(kind, creations[0], None)]
        with self.redis.pipeline(transaction=False) as pipe:
            for creation in creations:
                self._run_create(kind, creation, pipe)
            return [str(object_id) for object_id in pipe.execute()]

    def _run_create(
        self, kind: ObjectKind, creation: Creation, pipe: redis.client.Pipeline | None
    ) -> str:
        """On a pipeline the script is only queued and the return value means nothing."""
        args: list[str | float] = [
            creation.object_id,
            creation.record_json,
            json.dumps(creation.log_entry),
        ]
        for item in creation.deliveries:
            args += [item.token, item.due.timestamp(), item.body]
        keys = [
            self._key(f"{kind.idempotency_prefix}:{creation.idempotency_key}"),
            self._key(f"{kind.record_prefix}:{creation.object_id}"),
            self._key(kind.log),
            self.events_key,
            self.bodies_key,
        ]
        return str(self._create_once(keys=keys, args=args, client=pipe))

    def read_record(self, kind: ObjectKind, object_id: str) -> str | None:
        value = self.redis.get(self._key(f"{kind.record_prefix}:{object_id}"))
        return None if value is None else str(value)

    def read_log(self, kind: ObjectKind) -> list[dict[str, Any]]:
        entries = self.redis.lrange(self._key(kind.log), 0, -1)
        return [cast(dict[str, Any], json.loads(entry)) for entry in entries]

    def next_try(self, idempotency_key: str) -> int:
        return int(self.redis.incr(self._key(f"tries:{idempotency_key}")))

    def pop_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        keys = [self.events_key, self.bodies_key]
        bodies = self._pop_due(keys=keys, args=[as_utc(now).timestamp(), limit])
        return [cast(dict[str, Any], json.loads(body)) for body in bodies if body is not None]

    def pending(self) -> int:
        return int(self.redis.zcard(self.events_key))

    def clear(self) -> int:
        names = list(self.redis.scan_iter(match=f"{self.prefix}*", count=500))
        return int(self.redis.delete(*names)) if names else 0


# --------------------------------------------------------------------------- memory


@dataclass
class MemorySimulatorStore:
    """The same state in this process's memory: nothing survives the process."""

    _ids: dict[str, str] = field(default_factory=dict)  # "kind:idempotency key" -> id
    _records: dict[str, str] = field(default_factory=dict)  # "kind:object id" -> JSON
    _logs: dict[str, list[str]] = field(default_factory=dict)
    _tries: dict[str, int] = field(default_factory=dict)
    _due: list[tuple[float, str]] = field(default_factory=list)  # a heap, like the zset
    _bodies: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create_many(self, kind: ObjectKind, creations: Sequence[Creation]) -> list[str]:
        with self._lock:
            return [self._create_once(kind, creation) for creation in creations]

    def _create_once(self, kind: ObjectKind, creation: Creation) -> str:
        id_key = f"{kind.idempotency_prefix}:{creation.idempotency_key}"
        existing = self._ids.get(id_key)
        if existing is not None:
            return existing
        self._ids[id_key] = creation.object_id
        self._records[f"{kind.record_prefix}:{creation.object_id}"] = creation.record_json
        self._logs.setdefault(kind.log, []).append(json.dumps(creation.log_entry))
        for item in creation.deliveries:
            heapq.heappush(self._due, (item.due.timestamp(), item.token))
            self._bodies[item.token] = item.body
        return creation.object_id

    def read_record(self, kind: ObjectKind, object_id: str) -> str | None:
        return self._records.get(f"{kind.record_prefix}:{object_id}")

    def read_log(self, kind: ObjectKind) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._logs.get(kind.log, ()))
        return [cast(dict[str, Any], json.loads(entry)) for entry in entries]

    def next_try(self, idempotency_key: str) -> int:
        with self._lock:
            self._tries[idempotency_key] = self._tries.get(idempotency_key, 0) + 1
            return self._tries[idempotency_key]

    def pop_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        until = as_utc(now).timestamp()
        bodies: list[str] = []
        with self._lock:
            while self._due and self._due[0][0] <= until and len(bodies) < limit:
                _, token = heapq.heappop(self._due)
                bodies.append(self._bodies.pop(token))
        return [cast(dict[str, Any], json.loads(body)) for body in bodies]

    def pending(self) -> int:
        return len(self._due)

    def clear(self) -> int:
        with self._lock:
            tables = (self._ids, self._records, self._logs, self._tries, self._bodies)
            dropped = sum(len(table) for table in tables)
            for table in tables:
                table.clear()
            self._due.clear()
        return dropped
