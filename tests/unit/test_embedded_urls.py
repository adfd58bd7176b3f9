"""The embedded default's pure parts: URLs, the state file, "a configured URL wins".

No server is started here.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dialer.embedded import (
    ServerState,
    ServicesState,
    ServiceUrls,
    ensure_services,
    load_state,
    ports,
    postgres_url,
    redact_url,
    redis_url,
    save_state,
    services,
    services_status,
    stop_services,
)
from dialer.settings import Settings


def make_settings(
    home: Path, *, database_url: str | None = None, redis_url: str | None = None
) -> Settings:
    # Explicit URLs (None included) beat DIALER_* variables, e.g. those CI exports.
    return Settings(home=home, database_url=database_url, redis_url=redis_url, _env_file=None)


def test_postgres_url_uses_psycopg_driver_loopback_and_dialer_database() -> None:
    assert postgres_url(54321) == "postgresql+psycopg://postgres@127.0.0.1:54321/dialer"
    assert postgres_url(5, database="other").endswith(":5/other")


def test_redis_url_uses_loopback_and_db_zero() -> None:
    assert redis_url(6380) == "redis://127.0.0.1:6380/0"
    assert redis_url(6380, db=2) == "redis://127.0.0.1:6380/2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://app:s3cret@db:5432/dialer",
            "postgresql+psycopg://app:***@db:5432/dialer",
        ),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        (
            "postgresql+psycopg://postgres@127.0.0.1:1/dialer",
            "postgresql+psycopg://postgres@127.0.0.1:1/dialer",
        ),
    ],
)
def test_redact_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "services.json"
    state = ServicesState(
        postgres=ServerState(port=40001, pid=123), redis=ServerState(port=40002, pid=None)
    )
    save_state(path, state)
    assert load_state(path) == state
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file is renamed into place"


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"postgres": 5}', '{"postgres": {"port": "x", "pid": -1}}'],
)
def test_unreadable_state_means_nothing_remembered(tmp_path: Path, content: str) -> None:
    path = tmp_path / "services.json"
    path.write_text(content)
    assert load_state(path) == ServicesState()


def test_missing_state_file_means_nothing_remembered(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent.json") == ServicesState()


def test_configured_urls_win_and_nothing_is_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = make_settings(
        home, database_url="postgresql+psycopg://u@db:5432/x", redis_url="redis://cache:6379/1"
    )
    assert ensure_services(settings) == ServiceUrls(
        database_url="postgresql+psycopg://u@db:5432/x", redis_url="redis://cache:6379/1"
    )
    assert not home.exists(), "no home folder, no servers"


def test_only_the_unconfigured_server_is_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_postgres(*_args: object) -> ServerState:
        raise AssertionError("PostgreSQL is configured: the embedded one must not start")

    monkeypatch.setattr(services, "ensure_postgres", no_postgres)
    monkeypatch.setattr(services, "ensure_redis", lambda *_a: ServerState(port=41234, pid=7))
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://u@db/x")

    urls = ensure_services(settings)

    assert urls == ServiceUrls("postgresql+psycopg://u@db/x", "redis://127.0.0.1:41234/0")
    assert load_state(tmp_path / "services.json").redis == ServerState(port=41234, pid=7)


def test_empty_url_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "ensure_postgres", lambda *_a: ServerState(port=41000, pid=8))
    settings = make_settings(tmp_path, database_url="", redis_url="redis://cache:6379/0")
    assert ensure_services(settings).database_url == postgres_url(41000)


def test_remembered_port_is_kept_while_free() -> None:
    port = ports.choose_port(None)
    assert ports.choose_port(port) == port


def test_remembered_port_taken_by_someone_else_is_replaced() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        assert ports.choose_port(taken) != taken


def test_status_of_an_empty_home_starts_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    status = services_status(make_settings(home, redis_url="redis://:pw@cache:6379/0"))
    assert status["postgres"]["mode"] == "embedded"
    assert status["postgres"]["running"] is False
    assert status["postgres"]["url"] is None
    assert status["redis"]["mode"] == "configured"
    assert status["redis"]["url"] == "redis://:***@cache:6379/0"
    assert not home.exists()


def test_stop_without_a_home_is_a_no_op(tmp_path: Path) -> None:
    stop_services(make_settings(tmp_path / "never-created"))
    assert not (tmp_path / "never-created").exists()
