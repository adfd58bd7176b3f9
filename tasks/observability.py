"""Worker-side metrics, log context and process tuning, hooked on Celery's signals.

- Worker and beat processes tune the garbage collector at start (dialer.gc_tuning).
- The worker's main process (before its pool forks) points every process at one
  multiprocess directory and serves the sum of their samples on worker_metrics_port.
- Every task logs with its task_id and task name bound, so one grep follows a task.
- Celery's own log handlers mask personal data as dialer's do (dialer.logging).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from celery import Task, signals

from dialer import gc_tuning, metrics
from dialer.composition import check_providers_in_use, worker
from dialer.errors import SettingsError
from dialer.logging import install_privacy_filter

_served: dict[str, Any] = {}  # this worker's metrics server and directory, for shutdown


def metrics_root(home: Path) -> Path:
    return home / "metrics"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_dead_workers_dirs(root: Path) -> None:
    """Directories of workers that died without shutting down would grow forever."""
    for directory in root.glob("worker-*"):
        pid = directory.name.removeprefix("worker-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _mask_celery_logs(logger: logging.Logger, **_: Any) -> None:
    """Celery replaces the root logger's handlers: put the privacy filter on its own."""
    install_privacy_filter(logger)


@signals.worker_init.connect  # the main process, before the pool forks
@signals.worker_process_init.connect  # each pool process, after the fork
@signals.beat_init.connect
def tune_garbage_collector(**_: Any) -> None:
    gc_tuning.tune(worker().runtime.settings.gc_threshold)


@signals.worker_init.connect  # the main process, before it takes work
def check_voice_providers(**_: Any) -> None:
    """Stop the worker when an agent names a provider this deployment cannot build.

    Celery logs and swallows a handler's Exception; SystemExit stops the process.
    """
    runtime = worker().runtime
    try:
        check_providers_in_use(runtime.settings, runtime.session)
    except SettingsError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        # The pool forks after this: a pooled connection left open here would be shared
        # by every child (one socket, two conversations: "server closed the connection",
        # "connection in transaction status INTRANS").
        runtime.dispose()


@signals.worker_init.connect
def start_worker_metrics(**_: Any) -> None:
    cfg = worker().runtime.settings
    if cfg.worker_metrics_port == 0:
        return
    root = metrics_root(Path(cfg.home))
    remove_dead_workers_dirs(root)
    directory = root / f"worker-{os.getpid()}"
    metrics.enable_multiprocess(directory)  # before the pool forks: children inherit it
    _served["directory"] = directory


@signals.worker_ready.connect
def serve_worker_metrics(**_: Any) -> None:
    cfg = worker().runtime.settings
    if "directory" in _served:
        registry = metrics.exposition_registry()
        auth = metrics.MetricsAuth.from_settings(cfg)
        _served["server"] = metrics.serve(cfg.metrics_host, cfg.worker_metrics_port, registry, auth)


@signals.worker_shutdown.connect
def stop_worker_metrics(**_: Any) -> None:
    server: WSGIServer | None = _served.pop("server", None)
    metrics.stop(server)
    directory: Path | None = _served.pop("directory", None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@signals.task_prerun.connect
def bind_task_context(task_id: str | None = None, task: Task | None = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def clear_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()
