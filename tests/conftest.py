"""Test tiers and fixtures: real PostgreSQL and Redis, configured or embedded.

A test's tier is its folder, marked here (``pytest -m unit|integration|e2e|tools``):
``unit`` (pure logic), ``integration`` (real PostgreSQL/Redis, servers in threads),
``e2e`` (real worker, beat, api and sandbox processes) and ``tools`` (optional host
tools, run only when asked). A test outside those folders is a collection error.

With DIALER_DATABASE_URL / DIALER_REDIS_URL set, those servers are used; otherwise
the project's embedded servers start (in .dialer/test). Tests that need a server
skip when none can be had on a laptop, but fail under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dialer import migrate
from dialer.embedded import ServiceUrls, ensure_services, services_status, stop_services
from dialer.settings import Settings, get_settings, load_settings
from models import Base
from models.session import engine_for, session_factory

REPO = Path(__file__).resolve().parent.parent
# One database per test session, so two runs on one server (a developer and CI) never collide.
TEST_DATABASE = f"dialer_test_{os.getpid()}"
# The control API fixtures (`api`, `api_server`), for every test module that asks for them.
pytest_plugins = ["tests.integration.api_support"]


TIERS = ("unit", "integration", "e2e", "tools")
TESTS = Path(__file__).resolve().parent


def tier_of(path: Path) -> str:
    """The tier of a test file: the tests/ folder it sits in."""
    folder = path.resolve().relative_to(TESTS).parts[0]
    if folder not in TIERS:
        raise pytest.UsageError(f"{path}: a test belongs in one of tests/{{{','.join(TIERS)}}}")
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item.path)
        # A test may name a higher tier than its folder's (say integration in tests/unit):
        # then it has that tier only, so -m unit needs no server.
        named = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if not named:
            item.add_marker(getattr(pytest.mark, tier))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    os.environ.setdefault("DIALER_HOME", str(REPO / ".dialer" / "test"))
    return load_settings()


@pytest.fixture(scope="session")
def service_urls(base_settings: Settings) -> Iterator[ServiceUrls]:
    status = services_status(base_settings)
    already_running = all(status[name]["running"] for name in ("postgres", "redis"))
    try:
        urls = ensure_services(base_settings)
    except Exception as exc:  # any failure to get a server: skip locally, fail in CI
        if in_ci():
            pytest.fail(f"PostgreSQL/Redis are required in CI and could not be had: {exc}")
        pytest.skip(f"no PostgreSQL/Redis available: {exc}")
    yield urls
    embedded = base_settings.database_url is None or base_settings.redis_url is None
    if embedded and not already_running:  # stop only what this session started
        stop_services(base_settings)


@pytest.fixture(scope="session")
def database_url(service_urls: ServiceUrls) -> Iterator[str]:
    """A test database, recreated once per run and migrated to head."""
    url = make_url(service_urls.database_url).set(database=TEST_DATABASE)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{TEST_DATABASE}"'))
    rendered = url.render_as_string(hide_password=False)
    migrate.upgrade(rendered)
    yield rendered
    engine_for(rendered).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(service_urls: ServiceUrls) -> str:
    """Redis database 15 of the test server, so a developer's db 0 is left alone.

    DIALER_TEST_REDIS_DB picks another one: test runs that share a server at the same
    time need one each, since tests flush their database.
    """
    database = os.environ.get("DIALER_TEST_REDIS_DB", "15")
    return str(make_url(service_urls.redis_url).set(database=database))


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """The test Redis database, empty before and after the test (replies decoded to str)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_namespace(redis_client: redis.Redis) -> str:
    """A key prefix of the test's own, for code that takes one (the database is emptied after)."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def cli(clean_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """Runs `dialer` commands in-process against the test database (emptied after) and Redis."""
    monkeypatch.setenv("DIALER_DATABASE_URL", clean_db)
    monkeypatch.setenv("DIALER_REDIS_URL", redis_url)
    get_settings.cache_clear()  # the commands read the settings through this cache
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def settings(base_settings: Settings, database_url: str, redis_url: str) -> Settings:
    return base_settings.model_copy(update={"database_url": database_url, "redis_url": redis_url})


def truncate_all(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine_for(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def clean_db(database_url: str) -> Iterator[str]:
    """An empty database (truncated after the test); yields its URL."""
    yield database_url
    truncate_all(database_url)


@pytest.fixture
def session(clean_db: str) -> Iterator[Session]:
    """A session on an empty database; the test commits what it wants others to see."""
    with session_factory(clean_db)() as s:
        yield s
        s.rollback()


@pytest.fixture
def statements(clean_db: str) -> Iterator[list[str]]:
    """Every SQL statement sent to the test database while the test runs."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = engine_for(clean_db)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)
