"""deploy/docker-compose.yml checked by ``docker compose config``: an optional tier.

Run with ``make test-tools``; not part of ``make test``, because the compose plugin is
neither on PyPI nor in Debian's packages here (Debian ships only the old docker-compose
1.x), so no install step of this project can provide it. Asked for, a missing plugin
fails instead of skipping. tests/unit/test_deploy.py parses and checks the same file
without the tool.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.unit.test_deploy import COMPOSE, DEPLOY


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("the docker CLI is not installed: `docker compose config` not run")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.fail("the docker CLI has no compose plugin: `docker compose config` not run")
    done = subprocess.run(
        [
            docker,
            "compose",
            "--env-file",
            str(DEPLOY / ".env.example"),
            "-f",
            str(COMPOSE),
            "--profile",
            "sandbox",
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
