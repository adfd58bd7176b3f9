"""Start and stop real worker and beat processes (the demo, integration tests, benchmarks).

They are separate `celery` processes, configured only through the environment, as
in production; a fast simulated clock is shared through DIALER_CLOCK_* variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

ALL_QUEUES = "scan,dispatch,results,messages,events"


def fast_clock_env(sim_start: datetime, speed: float, real_start: datetime) -> dict[str, str]:
    """Environment that makes every process read the same simulated clock."""
    return {
        "DIALER_CLOCK_SPEED": str(speed),
        "DIALER_CLOCK_ANCHOR_REAL": real_start.isoformat(),
        "DIALER_CLOCK_ANCHOR_SIM": sim_start.isoformat(),
    }


@dataclass
class ProcessGroup:
    """Child processes that are stopped together (SIGTERM, then SIGKILL after a grace period)."""

    env: Mapping[str, str]
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        return self._start(name, [sys.executable, "-m", "celery", "-A", "tasks.app", *args])

    def dialer(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """A `dialer` command (api, sandbox) as a child process."""
        return self._start(name, [sys.executable, "-m", "dialer", *args])

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, we stop them in order
        )
        self.procs.append(proc)
        return proc

    def worker(
        self, name: str = "worker", concurrency: int = 2, queues: str = ALL_QUEUES
    ) -> subprocess.Popen[bytes]:
        return self._spawn(
            name,
            [
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
        )

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        schedule = self.log_dir / f"{name}-schedule"
        return self._spawn(name, ["beat", "-s", str(schedule), "--loglevel", "INFO"])

    def alive(self) -> list[bool]:
        return [p.poll() is None for p in self.procs]

    def stop(self, grace_seconds: float = 15.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self._logs:
            log.close()
        self.procs.clear()


@contextmanager
def process_group(env: Mapping[str, str], log_dir: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(env=env, log_dir=log_dir)
    try:
        yield group
    finally:
        group.stop()
