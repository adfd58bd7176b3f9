"""Where the time goes: cProfile for the in-process driver, py-spy for Celery workers.

py-spy is not a project dependency; it is used when found on PATH or named by
``PY_SPY=/path/to/py-spy`` (``pip install --target /tmp/pyspy py-spy`` works).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench import procs
from bench.env import REPO

T = TypeVar("T")
PROJECT_DIRS = tuple(str(REPO / d) + "/" for d in ("dialer", "scheduler", "tasks", "models"))
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def cprofile(fn: Callable[[], T], top: int = 25) -> tuple[T, dict[str, Any]]:
    prof = cProfile.Profile()
    result = prof.runcall(fn)
    stats = pstats.Stats(prof)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in entries.values())  # total self time

    def rows(key: int, only_project: bool) -> list[dict[str, Any]]:
        items = []
        for (file, line, func), (cc, nc, tt, ct, _callers) in entries.items():
            if only_project and not file.startswith(PROJECT_DIRS):
                continue
            items.append(
                {
                    "function": f"{func} ({_short(file)}:{line})",
                    "calls": nc,
                    "self_s": round(tt, 3),
                    "cumulative_s": round(ct, 3),
                    "primitive_calls": cc,
                }
            )
        items.sort(key=lambda r: -r["self_s" if key == 2 else "cumulative_s"])
        return items[:top]

    return result, {
        "total_self_s": round(total, 3),
        "top_self": rows(2, only_project=False),
        "top_cumulative_project": rows(3, only_project=True),
    }


def pyspy_binary() -> str | None:
    named = os.environ.get("PY_SPY")
    if named and Path(named).is_file():
        return named
    return shutil.which("py-spy")


def start_pyspy(pid: int, out: Path, rate: int = 100) -> subprocess.Popen[bytes] | None:
    binary = pyspy_binary()
    if binary is None:
        return None
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        # PY_SPY_IDLE=0 samples on-CPU time only; by default time blocked on
        # PostgreSQL/Redis sockets is included, to see where wall time goes.
        *(["--idle"] if os.environ.get("PY_SPY_IDLE", "1") != "0" else []),
        "--full-filenames",
        "--rate",
        str(rate),
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return procs.start(argv, os.environ, out.with_suffix(".log"))


def stop_pyspy(proc: subprocess.Popen[bytes]) -> None:
    import signal

    procs.stop(proc, sig=signal.SIGINT, grace=20)


def _short(file: str) -> str:
    for prefix in (str(REPO) + "/", "/site-packages/"):
        if prefix in file:
            return file.split(prefix, 1)[1]
    return file.rsplit("/", 2)[-1] if "/" in file else file


def _frame(raw: str) -> tuple[str, str]:
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip(), ""
    return match["func"], match["file"]


def _category(func: str, file: str) -> str:
    if "/psycopg" in file:
        return "psycopg (PostgreSQL round trips + driver)"
    if "/redis/" in file:
        return "redis client (simulator, broker results)"
    if "/sqlalchemy/" in file:
        return "SQLAlchemy (Python)"
    if "/kombu/" in file or "/celery/" in file or "/billiard/" in file or "/vine/" in file:
        return "Celery/kombu/billiard"
    if file.startswith(PROJECT_DIRS):
        return "project code (dialer/scheduler/tasks/models)"
    if "/pydantic" in file:
        return "pydantic"
    if "/structlog/" in file or "/logging/" in file:
        return "logging"
    if "json" in file:
        return "json"
    return "other (stdlib, phonenumbers, zoneinfo, ...)"


def parse_pyspy(path: Path, skip_pids: set[int], top: int = 25) -> dict[str, Any]:
    """Summarise a py-spy raw (collapsed) file: categories, leaf functions, project functions."""
    if not path.is_file():
        return {"skipped": f"no py-spy output at {path}"}
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy_total = 0
    idle_total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack_part, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or not stack_part.startswith("process "):
            continue
        parts = stack_part.split(";")
        # --subprocesses prefixes the ancestry: "process PARENT:...;process CHILD:...;"
        pids = [int(m.group(1)) for f in parts if (m := re.match(r"process (\d+)", f))]
        if pids and pids[-1] in skip_pids:
            continue
        count = int(count_text)
        frames = [_frame(f) for f in parts if not f.startswith("process ")]
        if not frames:
            continue
        names = [f for f, _ in frames]
        # A prefork child waiting for its next task sits in billiard's/kombu's loop
        # with no task frame on the stack: idle, not a bottleneck.
        in_task = any(n.endswith(("trace_task", "__protected_call__")) for n in names)
        if not in_task:
            idle_total += count
            continue
        busy_total += count
        func, file = frames[-1]
        categories[_category(func, file)] += count
        leaves[f"{func} ({_short(file)})"] += count
        seen: set[str] = set()
        for f, file in frames:
            if file.startswith(PROJECT_DIRS):
                key = f"{f} ({_short(file)})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count

    def pct(n: int) -> float:
        return round(100 * n / busy_total, 1) if busy_total else 0.0

    return {
        "samples_in_tasks": busy_total,
        "samples_idle": idle_total,
        "busy_share_pct": round(100 * busy_total / (busy_total + idle_total), 1)
        if busy_total + idle_total
        else None,
        "by_category_pct": {k: pct(v) for k, v in categories.most_common()},
        "top_leaf_pct": [{"function": k, "pct": pct(v)} for k, v in leaves.most_common(top)],
        "top_project_inclusive_pct": [
            {"function": k, "pct": pct(v)} for k, v in inclusive.most_common(top)
        ],
    }
