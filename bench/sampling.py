"""Sample RSS and CPU time of process groups (workers, beat, PostgreSQL, Redis) with psutil."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

Finder = Callable[[], list[psutil.Process]]


def tree(root: psutil.Process | None) -> Finder:
    """The root and all its descendants, looked up again at every sample."""

    def find() -> list[psutil.Process]:
        if root is None:
            return []
        try:
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    return find


@dataclass
class _Group:
    find: Finder
    peak_rss_sum: int = 0
    peak_rss: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)  # latest user+system per pid
    sys_cpu: dict[int, float] = field(default_factory=dict)  # latest system per pid
    sys_baseline: dict[int, float] = field(default_factory=dict)
    baseline: dict[int, float] = field(default_factory=dict)
    procs: dict[int, psutil.Process] = field(default_factory=dict)


class Sampler:
    """A background thread; ``mark()`` sets the CPU baseline, ``report()`` summarises."""

    def __init__(self, groups: dict[str, Finder], interval: float = 0.2) -> None:
        self.groups = {name: _Group(find) for name, find in groups.items()}
        self.interval = interval
        self.samples = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.sample()  # one last look, so short runs are counted

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            self.samples += 1
            for group in self.groups.values():
                total = 0
                for index, proc in enumerate(group.find()):
                    pid = proc.pid
                    known = group.procs.setdefault(pid, proc)  # keep one handle: cached info
                    try:
                        with known.oneshot():
                            rss = known.memory_info().rss
                            times = known.cpu_times()
                            if pid not in group.names:
                                group.names[pid] = _label(known, main=index == 0)
                    except psutil.Error:
                        continue
                    total += rss
                    group.peak_rss[pid] = max(group.peak_rss.get(pid, 0), rss)
                    group.cpu[pid] = times.user + times.system
                    group.sys_cpu[pid] = times.system
                group.peak_rss_sum = max(group.peak_rss_sum, total)

    def mark(self) -> None:
        """From now on, CPU is counted from here (excludes start-up imports)."""
        self.sample()
        with self._lock:
            for group in self.groups.values():
                group.baseline = dict(group.cpu)
                group.sys_baseline = dict(group.sys_cpu)

    def cpu_seconds(self, name: str) -> float:
        group = self.groups[name]
        with self._lock:
            return sum(v - group.baseline.get(pid, 0.0) for pid, v in group.cpu.items())

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, group in self.groups.items():
            per = sorted(group.peak_rss.items(), key=lambda item: -item[1])
            out[name] = {
                "peak_rss_sum_mb": _mb(group.peak_rss_sum),
                "processes": len(per),
                "peak_rss_per_process_mb": [
                    {
                        "pid": pid,
                        "role": group.names.get(pid, "?"),
                        "peak_rss_mb": _mb(rss),
                        "cpu_s": round(group.cpu.get(pid, 0.0) - group.baseline.get(pid, 0.0), 3),
                    }
                    for pid, rss in per
                ],
                "cpu_seconds": round(self.cpu_seconds(name), 3),
                "cpu_system_seconds": round(
                    sum(v - group.sys_baseline.get(pid, 0.0) for pid, v in group.sys_cpu.items()),
                    3,
                ),
            }
        out["samples"] = self.samples
        out["interval_s"] = self.interval
        return out


def _label(proc: psutil.Process, *, main: bool) -> str:
    """'main' for the group's root, else the process title (PostgreSQL backends)."""
    if main:
        return "main"
    try:
        title = " ".join(proc.cmdline())
    except psutil.Error:
        return "child"
    if title.startswith("postgres:"):
        return title.removeprefix("postgres:").strip()[:48]
    return "child"


def _mb(value: int) -> float:
    return round(value / 1_048_576, 1)


class MachineCpu:
    """Busy CPU seconds of the whole machine, to tell our load from other people's."""

    def __init__(self) -> None:
        self.start_busy = machine_busy_seconds()
        self.start_wall = time.perf_counter()
        self.start_self = time.process_time()
        self.load_start = psutil.getloadavg()

    def report(self, ours_cpu_s: float) -> dict[str, Any]:
        wall = time.perf_counter() - self.start_wall
        busy = machine_busy_seconds() - self.start_busy
        ours = ours_cpu_s + (time.process_time() - self.start_self)
        foreign = max(0.0, busy - ours)
        return {
            "cores": psutil.cpu_count(),
            "wall_s": round(wall, 2),
            "busy_cores": round(busy / wall, 2) if wall else None,
            "ours_cores": round(ours / wall, 2) if wall else None,
            "foreign_cores": round(foreign / wall, 2) if wall else None,
            "loadavg_start": [round(x, 2) for x in self.load_start],
            "loadavg_end": [round(x, 2) for x in psutil.getloadavg()],
        }


def machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    parts = ("user", "nice", "system", "irq", "softirq")
    return float(sum(getattr(t, name, 0.0) for name in parts))
