"""A real HTTP receiver for outbound webhooks, on loopback, in a thread (stdlib only).

It answers 500 to the first ``fail_first`` requests (or to all, ``always_fail``),
then 200, and keeps every request it got: headers and raw body, to verify.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    always_fail: bool = False
    got: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self) -> int:
        with self._lock:
            failing = self.always_fail or len(self.got) < self.fail_first
            return 500 if failing else 200


@contextmanager
def receiver(fail_first: int = 0, always_fail: bool = False) -> Iterator[Receiver]:
    state = Receiver("", fail_first, always_fail)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            code = state.answer_for()
            headers = {name.lower(): value for name, value in self.headers.items()}
            with state._lock:
                state.got.append(Received(self.path, headers, body, code))
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
