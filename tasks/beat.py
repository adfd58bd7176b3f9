"""Beat's scheduler: RedBeat, made to ride out a Redis outage instead of exiting.

RedBeat extends its lock at every tick and reads the schedule from Redis. When Redis
is down, or came back without its data (no append-only file: the lock is gone), or a
standby took the lock while the leader could not renew it, that tick raised and beat
exited (9 of 9 outages in the fault runs). Here such a tick stands by instead: it
tries to take the lock again, without blocking, and schedules only while it holds it;
on taking it, it writes the schedule again (a Redis that lost its data lost that too).
"""

from __future__ import annotations

from typing import Any

import redis
from celery.utils.log import get_logger
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, RedBeatScheduler, get_redis

logger = get_logger(__name__)
# How soon a beat that could not reach Redis, or does not hold the lock, tries again.
STANDBY_RETRY_SECONDS = 1.0
REDIS_TROUBLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class ResilientRedBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat whose tick survives Redis outages and a lost lock (see the module doc)."""

    lock: Any  # redis-py's Lock while this beat leads, None while it stands by

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        if self.lock_key and self.lock is None and not self._take_lock():
            return STANDBY_RETRY_SECONDS
        try:
            return float(super().tick(min=min, **kwargs))
        except redis.exceptions.LockError:
            logger.warning("beat: lost the lock; standing by until it is free")
            self.lock = None
        except REDIS_TROUBLE as exc:
            logger.warning("beat: Redis unavailable (%s); retrying", exc)
        return STANDBY_RETRY_SECONDS

    def _take_lock(self) -> bool:
        """Take the beat lock if it is free (as redbeat does at start-up, but not blocking)."""
        try:
            client = get_redis(self.app)
            lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
            lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
            if not lock.acquire(blocking=False):
                return False
            # A Redis restarted without its append-only file lost the schedule too.
            self.setup_schedule()
        except REDIS_TROUBLE as exc:
            logger.warning("beat: Redis unavailable (%s); retrying", exc)
            return False
        logger.info("beat: acquired lock")
        self.lock = lock
        return True
