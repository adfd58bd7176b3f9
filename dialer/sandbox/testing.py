"""Run an ASGI app (the sandbox, a webhook receiver) on a free loopback port, in a thread.

For tests and load runs: real HTTP, no fixed port to collide on, stopped on exit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from dialer.dependencies import Clock
from dialer.sandbox.app import create_app
from dialer.sandbox.config import SandboxConfig

STARTUP_TIMEOUT_SECONDS: Final = 10.0
_POLL_SECONDS: Final = 0.01


@contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:PORT``).

    ``port`` 0 lets the kernel pick a free one; a given port brings a server back at an
    address a client already uses (a restarted ingress).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{port}", daemon=True
    )
    thread.start()
    try:
        _wait_until_started(server, thread)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the ASGI server did not start (see its log above)")
        time.sleep(_POLL_SECONDS)


@contextmanager
def running_sandbox(config: SandboxConfig, *, clock: Clock | None = None) -> Iterator[str]:
    """The sandbox provider on a free loopback port; yields its base URL."""
    with serve_in_thread(create_app(config, clock=clock)) as base_url:
        yield base_url
