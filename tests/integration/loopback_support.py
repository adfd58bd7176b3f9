"""Small helpers for tests that talk to servers over loopback: free ports, bounded polling."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_until(done: Callable[[], bool], timeout_seconds: float, message: str) -> None:
    """Bounded polling: return as soon as ``done()``; fail after ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.01)


def free_port() -> int:
    """A loopback port nothing listens on (for servers that must be given one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
