"""Server processes: they are not our children (daemons), so we go by pid and poll."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from dialer.embedded.state import positive_int

STOP_TIMEOUT_S = 60


def process_alive(pid: int) -> psutil.Process | None:
    """The live process with this pid, or None (gone, or a zombie nobody reaped yet)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return proc


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (it is not our child, so poll instead of wait())."""
    deadline = time.monotonic() + timeout
    while process_alive(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def read_pid(path: Path) -> int | None:
    try:
        return positive_int(int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None
