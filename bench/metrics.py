"""Throughput and latency figures computed from the attempts' own timestamps."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from models.session import transaction

TERMINAL = ("completed", "failed", "canceled")


@dataclass(frozen=True)
class AttemptTimes:
    status: str
    outcome: str | None
    scheduled_at: datetime
    queued_at: datetime | None
    dispatched_at: datetime | None
    released_at: datetime | None  # when it left the in-flight statuses (terminal update)


def load_attempts(url: str, campaign_id: uuid.UUID) -> list[AttemptTimes]:
    with transaction(url) as session:
        rows = session.execute(
            text(
                "SELECT status, outcome, scheduled_at, queued_at, dispatched_at,"
                " CASE WHEN status IN ('completed', 'failed', 'canceled') THEN updated_at END"
                " FROM call_attempts WHERE campaign_id = :c"
            ),
            {"c": campaign_id},
        ).all()
    return [AttemptTimes(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p90_ms": ms(percentile(seconds, 90)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds) if seconds else None),
        "mean_ms": ms(sum(seconds) / len(seconds) if seconds else None),
    }


def throughput(attempts: Sequence[AttemptTimes]) -> dict[str, Any]:
    """Attempts/s from the first dispatch to the last result applied, and in steady state."""
    placed = [a for a in attempts if a.dispatched_at is not None]
    released = sorted(a.released_at for a in placed if a.released_at is not None)
    if not placed or not released:
        return {"attempts_done": 0, "attempts_per_s": None}
    first = min(a.dispatched_at for a in placed if a.dispatched_at is not None)
    last = released[-1]
    span = (last - first).total_seconds()
    n = len(released)
    out: dict[str, Any] = {
        "attempts_total": len(attempts),
        "attempts_done": n,
        "first_dispatch": first.isoformat(),
        "last_applied": last.isoformat(),
        "span_s": round(span, 3),
        "attempts_per_s": round(n / span, 1) if span > 0 else None,
    }
    lo, hi = int(0.1 * n), int(0.9 * n) - 1
    if hi > lo:
        steady = (released[hi] - released[lo]).total_seconds()
        out["steady_attempts_per_s"] = round((hi - lo) / steady, 1) if steady > 0 else None
    return out


def due_to_dispatch(attempts: Sequence[AttemptTimes], concurrency: int) -> dict[str, Any]:
    """dispatched_at - max(scheduled_at, when it became due), three ways.

    - ``eligible``: the headline. An attempt became due at max(scheduled_at, the moment
      a concurrency slot was free for it): with C slots, the k-th claim (in claim order)
      needs the (k-C)-th slot release (an attempt leaving queued/dispatching/in_progress).
      This is the scheduler's own latency: the wait for the next scan, the broker, and
      the dispatch task, but not the backlog the concurrency cap imposes by design.
    - ``since_scheduled``: dispatched_at - scheduled_at, backlog included.
    - ``claim_to_dispatch``: dispatched_at - queued_at (broker + dispatch task only).
    """
    placed = [a for a in attempts if a.dispatched_at is not None and a.queued_at is not None]
    order = sorted(placed, key=lambda a: (a.queued_at, a.dispatched_at))
    releases = sorted(a.released_at for a in placed if a.released_at is not None)
    eligible: list[float] = []
    for k, a in enumerate(order):
        assert a.dispatched_at is not None
        due = a.scheduled_at
        if k >= concurrency and k - concurrency < len(releases):
            due = max(due, releases[k - concurrency])
        eligible.append(max(0.0, (a.dispatched_at - due).total_seconds()))
    since_scheduled = [
        (a.dispatched_at - a.scheduled_at).total_seconds()
        for a in placed
        if a.dispatched_at is not None
    ]
    claim = [
        (a.dispatched_at - a.queued_at).total_seconds()
        for a in placed
        if a.dispatched_at is not None and a.queued_at is not None
    ]
    in_flight = [
        (a.released_at - a.queued_at).total_seconds()
        for a in placed
        if a.released_at is not None and a.queued_at is not None
    ]
    mean_in_flight = sum(in_flight) / len(in_flight) if in_flight else None
    return {
        "eligible": summary_ms(eligible),
        "since_scheduled": summary_ms(since_scheduled),
        "claim_to_dispatch": summary_ms(claim),
        "claim_to_release": summary_ms(in_flight),
        # Little's law: at most C attempts in flight, each for W seconds on average.
        "concurrency_bound_attempts_per_s": (
            round(concurrency / mean_in_flight, 1) if mean_in_flight else None
        ),
    }


def outcomes(attempts: Sequence[AttemptTimes]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in attempts:
        key = f"{a.status}/{a.outcome}" if a.outcome else a.status
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
