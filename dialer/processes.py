"""Start and stop real worker and beat processes (the demo, integration tests, benchmarks).

They are separate `celery` processes, configured only through the environment, as
in production; a fast simulated clock is shared through DIALER_CLOCK_* variables.
Like the deploy files (systemd `Restart=always`, compose `unless-stopped`, k8s pods),
the group restarts a process that exits for any reason, exit status 0 included: a
worker can exit 0 after a kombu `restore_unacked` error or a pool child killed
during start-up, and nothing else would bring it back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from dialer.composition.queues import QUEUES

ALL_QUEUES = ",".join(QUEUES)


def fast_clock_env(sim_start: datetime, speed: float, real_start: datetime) -> dict[str, str]:
    """Environment that makes every process read the same simulated clock."""
    return {
        "DIALER_CLOCK_SPEED": str(speed),
        "DIALER_CLOCK_ANCHOR_REAL": real_start.isoformat(),
        "DIALER_CLOCK_ANCHOR_SIM": sim_start.isoformat(),
    }


# A process that exits is started again after this pause (systemd's RestartSec, shorter).
RESTART_DELAY_SECONDS = 1.0
SUPERVISE_POLL_SECONDS = 0.2


@dataclass
class ProcessGroup:
    """Child processes, restarted when they exit, stopped together (SIGTERM, then SIGKILL)."""

    env: Mapping[str, str]
    log_dir: Path
    restart: bool = True
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    restarts: Counter[str] = field(default_factory=Counter)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _specs: list[tuple[str, list[str], IO[bytes]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        return self.command(name, [sys.executable, "-m", "celery", "-A", "tasks.app", *args])

    def dialer(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """A `dialer` command (api, sandbox) as a child process."""
        return self.command(name, [sys.executable, "-m", "dialer", *args])

    def command(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Any command as a supervised child process (its output in `<name>.log`)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        with self._lock:
            proc = self._launch(argv, log)
            self.procs.append(proc)
            self._specs.append((name, argv, log))
        if self.restart and self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()
        return proc

    def _launch(self, argv: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, we stop them in order
        )

    def _supervise(self) -> None:
        """Start again every process that exited, until the group stops."""
        exited_at: dict[int, float] = {}
        while not self._stopping.wait(SUPERVISE_POLL_SECONDS):
            with self._lock:
                for index, proc in enumerate(self.procs):
                    if proc.poll() is None:
                        continue
                    first_seen = exited_at.setdefault(index, time.monotonic())
                    if time.monotonic() - first_seen < RESTART_DELAY_SECONDS:
                        continue
                    name, argv, log = self._specs[index]
                    log.write(f"\n--- exited with {proc.returncode}; restarting ---\n".encode())
                    log.flush()
                    self.procs[index] = self._launch(argv, log)
                    self.restarts[name] += 1
                    del exited_at[index]

    def current(self, name: str) -> subprocess.Popen[bytes]:
        """The process now running under ``name`` (a restart replaces the first one)."""
        with self._lock:
            for (spec_name, _, _), proc in zip(self._specs, self.procs, strict=True):
                if spec_name == name:
                    return proc
        raise KeyError(name)

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
        """Whether each process runs or, with restarts on, is about to be started again."""
        restarting = self.restart and not self._stopping.is_set()
        return [restarting or p.poll() is None for p in self.procs]

    def stop(self, grace_seconds: float = 15.0) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
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
        self._specs.clear()


@contextmanager
def process_group(env: Mapping[str, str], log_dir: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(env=env, log_dir=log_dir)
    try:
        yield group
    finally:
        group.stop()
