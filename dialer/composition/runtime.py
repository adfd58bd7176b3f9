"""Bootstrap a process: settings (checked against the provider registry), logging, servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from dialer.composition.providers import check_provider_settings
from dialer.embedded import ensure_services
from dialer.logging import configure_logging
from dialer.settings import Settings, get_settings
from dialer.tzdb import tz_database_version
from models.session import engine_for, transaction


@dataclass(frozen=True)
class Runtime:
    """What every entrypoint needs: the settings and the servers' real URLs."""

    settings: Settings
    database_url: str
    redis_url: str

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on error."""
        with transaction(self.database_url) as session:
            yield session

    @contextmanager
    def read_only_session(self) -> Iterator[Session]:
        """A session whose work is always rolled back: for commands that must write nothing."""
        with Session(engine_for(self.database_url)) as session:
            try:
                yield session
            finally:
                session.rollback()

    def readiness_checks(self) -> dict[str, Callable[[], None]]:
        """What /readyz asks: each check raises when its server does not answer."""
        return {"database": self._ping_database, "redis": self._ping_redis}

    def _ping_database(self) -> None:
        with engine_for(self.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))

    def _ping_redis(self) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()

    def dispose(self) -> None:
        engine_for(self.database_url).dispose()


def bootstrap(settings: Settings | None = None) -> Runtime:
    """Check the settings, configure logging, make sure PostgreSQL and Redis answer.

    A provider the registry does not know, or a bad setting of its own, stops here
    with a SettingsError naming the setting, before any server is started.
    """
    cfg = settings or get_settings()
    check_provider_settings(cfg)
    configure_logging(cfg)
    structlog.get_logger(__name__).info("process_started", tz_database=tz_database_version())
    urls = ensure_services(cfg)
    return Runtime(settings=cfg, database_url=urls.database_url, redis_url=urls.redis_url)
