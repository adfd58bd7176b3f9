"""Subprocesses the bench starts (Celery workers, beat, py-spy), and only those.

Each child runs in its own session (process group), so stopping it also stops the
prefork children it forked, and a Ctrl-C in the terminal reaches only the bench,
which then stops what it started. Nothing is ever looked up or killed by name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from bench.env import REPO

_started: list[subprocess.Popen[bytes]] = []
_logs: dict[int, IO[bytes]] = {}


def start(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _started.append(proc)
    _logs[proc.pid] = log
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """Signal the child's process group, wait, then SIGKILL the group if needed."""
    if proc.poll() is None:
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Prefork children may outlive a parent that was killed: sweep the group once.
    _signal_group(proc.pid, signal.SIGKILL)
    log = _logs.pop(proc.pid, None)
    if log is not None:
        log.close()
    if proc in _started:
        _started.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(_started)):
        with contextlib.suppress(Exception):  # cleanup must go on for the others
            stop(proc, grace=5.0)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_cleanup() -> None:
    """Stop our children on normal exit, Ctrl-C (SIGINT) and SIGTERM."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate()`` until true or timeout; True when it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
