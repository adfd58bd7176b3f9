"""The process group restarts what exits, whatever the exit status (issue 14, item 10)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from dialer.processes import process_group

WAIT_SECONDS = 15.0


def _wait(check: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_process_that_exits_with_status_0_is_started_again(tmp_path: Path) -> None:
    with process_group({}, tmp_path) as group:
        first = group.command("quick", [sys.executable, "-c", "pass"])
        assert first.wait(timeout=WAIT_SECONDS) == 0
        _wait(lambda: group.restarts["quick"] >= 2, "two restarts of a clean exit")
        assert all(group.alive())
    assert "exited with 0; restarting" in (tmp_path / "quick.log").read_text()


def test_a_killed_process_is_started_again_and_stop_ends_it(tmp_path: Path) -> None:
    sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    with process_group({}, tmp_path) as group:
        first = group.command("sleeper", sleep)
        os.kill(first.pid, signal.SIGKILL)
        _wait(lambda: group.current("sleeper").pid != first.pid, "a new sleeper")
        second = group.current("sleeper")
        assert second.poll() is None
        assert group.restarts["sleeper"] == 1
    assert second.poll() is not None  # stopped with the group, not restarted after it
