"""``services.json``: the ports (and pids) we remember; a hint for the next start, not the truth."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerState:
    """What we remember about one embedded server."""

    port: int | None = None
    pid: int | None = None


@dataclass
class ServicesState:
    """Contents of ``home/services.json``."""

    postgres: ServerState = field(default_factory=ServerState)
    redis: ServerState = field(default_factory=ServerState)


def load_state(path: Path) -> ServicesState:
    """Read the state file; missing or unreadable means "nothing remembered".

    The file is only a hint (which port to prefer), so a corrupt one is not an error.
    """
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return ServicesState()
    if not isinstance(raw, dict):
        return ServicesState()
    return ServicesState(
        postgres=_server_state(raw.get("postgres")), redis=_server_state(raw.get("redis"))
    )


def save_state(path: Path, state: ServicesState) -> None:
    """Write the state file atomically (readers never see half a file)."""
    payload = {
        "postgres": {"port": state.postgres.port, "pid": state.postgres.pid},
        "redis": {"port": state.redis.port, "pid": state.redis.pid},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _server_state(raw: object) -> ServerState:
    if not isinstance(raw, Mapping):
        return ServerState()
    return ServerState(port=positive_int(raw.get("port")), pid=positive_int(raw.get("pid")))


def positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
