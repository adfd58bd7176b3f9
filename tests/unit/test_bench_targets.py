"""bench.targets judges the partitioned-scan figures from what was measured."""

from __future__ import annotations

from typing import Any

from bench import targets
from bench.partition_bench import _cpu_delta


def _run(workers: int, tick_ms: float, busy: float) -> dict[str, Any]:
    return {
        "workers": workers,
        "tick_median_ms": tick_ms,
        "claims_per_s": 50_000 / (tick_ms / 1000),
        "postgres_cpu_share": 0.7,
        "busy_cores": busy,
    }


def _partitions(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"campaigns": 10_000, "partitions": 4, "runs": list(runs)}


def test_the_claiming_tick_is_judged_by_the_fastest_worker_count() -> None:
    met, grows = targets.evaluate(
        {"partitions": _partitions(_run(1, 3000, 1.0), _run(2, 1700, 1.8))}
    )
    assert met["met"] is True
    assert met["best"] == 1700
    assert grows["met"] is True
    slow = targets.evaluate({"partitions": _partitions(_run(1, 3000, 1.0), _run(2, 2100, 1.8))})
    assert slow[0]["met"] is False


def test_a_flat_step_counts_only_when_the_machine_was_already_full() -> None:
    cores = targets._CORES
    full = _partitions(_run(1, 3000, 1.0), _run(2, 1700, cores), _run(4, 1750, cores))
    idle = _partitions(_run(1, 3000, 1.0), _run(2, 1700, 0.3 * cores), _run(4, 1750, cores))
    assert targets.evaluate({"partitions": full})[1]["met"] is True
    assert targets.evaluate({"partitions": idle})[1]["met"] is False


def test_cpu_between_snapshots_counts_processes_born_in_between_from_zero() -> None:
    assert _cpu_delta({1: 2.0, 2: 5.0}, {1: 3.5, 2: 5.0, 3: 0.25}) == 1.75
