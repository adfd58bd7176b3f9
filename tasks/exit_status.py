"""A worker that ends without being asked to stop exits non-zero (issue 14, item 10e).

`celery worker` exits with ``WorkController.exitcode``, which stays None (exit status
0) on paths that end the worker without a failure code: a cold ``terminate()``
(WorkerTerminate) never sets it, and a ``WorkerShutdown(0)`` / ``SystemExit(0)``
raised inside the consumer stops it with 0. In the fault runs a main worker exited
0 after a kombu ``restore_unacked`` error on a repeated Redis drop and after a pool
child was killed during start-up; a supervisor with ``Restart=on-failure`` (or a
Kubernetes Job) would then leave it down. Here a stop counts as asked for only when
a shutdown signal (SIGTERM, SIGINT, SIGQUIT) reached the worker; any other end turns
status 0 into ``EX_SOFTWARE`` (70), so every supervisor starts it again. A remote
``celery control shutdown`` is not a signal: it exits 70 too (stop workers with
SIGTERM).
"""

from __future__ import annotations

import os
from typing import Any, Final

from celery import signals
from celery.worker import WorkController

from dialer.logging import get_logger

EX_SOFTWARE: Final = getattr(os, "EX_SOFTWARE", 70)

log = get_logger("tasks.exit_status")
_stop_signals: list[str] = []


@signals.worker_shutting_down.connect
def _note_requested_stop(sig: str | None = None, **_: Any) -> None:
    _stop_signals.append(str(sig))


@signals.worker_init.connect
def _guard_exit_status(sender: WorkController, **_: Any) -> None:
    start = sender.start

    def start_then_judge_the_exit() -> None:
        try:
            start()
        finally:
            sender.exitcode = exit_status(sender.exitcode, requested=bool(_stop_signals))

    sender.start = start_then_judge_the_exit


def exit_status(code: int | str | None, *, requested: bool) -> int | str | None:
    """The status to exit with: an unasked-for end is never a success."""
    if requested or code not in (None, 0):
        return code
    log.error("worker_ended_unasked", exit_status=EX_SOFTWARE)
    return EX_SOFTWARE
