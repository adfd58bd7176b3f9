"""The home folder of the embedded servers: where each file lives, and the lock on it."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dialer.errors import ServiceUnavailable
from dialer.settings import Settings

LOCK_TIMEOUT_S = 120.0  # another process may be running initdb + start


@dataclass(frozen=True)
class HomePaths:
    """Where each file of the embedded servers lives under home."""

    home: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> HomePaths:
        # Absolute and symlink-free: the path is compared with what the servers report
        # (postgres command line, Redis CONFIG GET dir) and passed to other users.
        return cls(settings.home.expanduser().resolve())

    @property
    def lock(self) -> Path:
        return self.home / ".lock"

    @property
    def state(self) -> Path:
        return self.home / "services.json"

    @property
    def pgdata(self) -> Path:
        return self.home / "postgres"

    @property
    def pgdata_initdb(self) -> Path:
        return self.home / "postgres.initdb"

    @property
    def postgres_log(self) -> Path:
        return self.home / "postgres.log"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_log(self) -> Path:
        return self.home / "redis.log"


@contextmanager
def home_lock(paths: HomePaths) -> Iterator[None]:
    """Hold an exclusive flock on home/.lock so two processes never both init/start/stop.

    Polls with LOCK_NB so a wedged holder produces a clear error instead of a hang.
    The kernel drops the lock if the holder dies, so there is no stale lock to clean.
    """
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"another process has held {paths.lock} for over {LOCK_TIMEOUT_S:.0f} s "
                        "while starting or stopping the embedded servers"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock
