"""The Celery queues by name, and how deep each one is in the Redis broker.

The names live here, below the tasks layer, so the API process (which reads the
depths for Prometheus) and the processes that start workers share one list with the
Celery app (tasks/app.py) without importing Celery.

kombu's Redis transport keeps a queue as a list under the queue's own name (no
priority steps are configured) and the messages delivered but not yet acknowledged
in the hash ``unacked``: with late acks, a task runs while its message sits there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import redis

QUEUES: Final = ("scan", "dispatch", "results", "messages", "events")
UNACKED_KEY: Final = "unacked"  # kombu.transport.redis.Channel.unacked_key


@dataclass(frozen=True, slots=True)
class QueueDepths:
    waiting: dict[str, int]  # messages waiting in each queue
    unacked: int  # delivered to a worker, not yet acknowledged (running or lost)


def queue_depths(redis_url: str, queues: tuple[str, ...] = QUEUES) -> QueueDepths:
    """One round trip: LLEN of every queue and HLEN of the unacked hash."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for name in queues:
            pipe.llen(name)
        pipe.hlen(UNACKED_KEY)
        *lengths, unacked = pipe.execute()
    finally:
        client.close()
    return QueueDepths(dict(zip(queues, (int(n) for n in lengths), strict=True)), int(unacked))
