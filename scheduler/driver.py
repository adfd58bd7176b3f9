"""Run the whole pipeline in one process on a manual clock: tests and benchmarks.

The same scheduler duties as beat and the workers, in the same order, with the
broker replaced by direct calls. Time moves only when `advance` says so.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dialer.dependencies import UnitOfWork
from dialer.policies.window import LegalBound
from dialer.providers.simulation import SimulatedMessageProvider, SimulatedVoiceProvider
from dialer.providers.voice_fleet import fleet_of
from dialer.services.dispatch import DispatchLimits
from dialer.services.inbox import apply_stored
from scheduler import ticks


@dataclass
class ManualClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class InProcessPipeline:
    uow: UnitOfWork
    voice: SimulatedVoiceProvider
    messages: SimulatedMessageProvider
    clock: ManualClock
    legal: LegalBound = field(default_factory=LegalBound)
    batch_size: int = 500
    max_tries: int = 5
    # A published start event nobody handled is published again after this.
    republish_after: timedelta = timedelta(minutes=5)
    stats: Counter[str] = field(default_factory=Counter)
    scan_plan: ticks.ScanPlan = field(default_factory=ticks.ScanPlan)
    # The finish safety sweep runs every this many ticks (beat: finish_sweep_seconds).
    sweep_every: int = 30
    ticks_run: int = 0

    @property
    def limits(self) -> DispatchLimits:
        return DispatchLimits(legal=self.legal, max_tries=self.max_tries)

    def tick(self) -> Counter[str]:
        """One beat: relay, scan+dispatch, results, messages, finish."""
        now = self.clock()
        ticks.relay_outbox(self.uow, self._materialize, now, self.republish_after)
        scanned = ticks.scan_all(
            self.uow, now, self.legal, self.batch_size, self._dispatch, self.scan_plan
        )
        self.pump()
        self.stats.update(ticks.send_due(self.uow, self.messages, now))
        self.stats["finished"] += len(ticks.finish_all(self.uow, now))
        self.ticks_run += 1
        if self.sweep_every and self.ticks_run % self.sweep_every == 0:
            self.stats["finished_by_sweep"] += len(ticks.finish_sweep(self.uow, now))
        self.stats.update(scanned)
        return scanned

    def pump(self) -> None:
        payloads = self.voice.pop_due_events(self.clock(), 10_000)
        self.stats.update(
            ticks.pump_events(
                self.uow, self.voice.name, self.voice.parse_event, payloads, self.clock()
            )
        )

    def reap(self, limits: ticks.ReapLimits) -> Counter[str]:
        return ticks.reap_all(
            self.uow,
            self.voice,
            self.clock(),
            limits,
            self._dispatch,
            self._reapply,
            messages=self.messages,
        )

    def run_until(self, done: Any, step: timedelta, max_ticks: int = 10_000) -> int:
        """Tick and advance until done() is true; returns the number of ticks."""
        for n in range(1, max_ticks + 1):
            self.tick()
            if done():
                return n
            self.clock.advance(step)
        raise AssertionError(f"not done after {max_ticks} ticks")

    def _dispatch(self, ids: list[uuid.UUID]) -> None:
        batch = ticks.dispatch_many(self.uow, self.voice, ids, self.clock, self.limits)
        self.stats.update(batch.verdicts)
        if batch.retry:
            self._dispatch(batch.retry)  # an immediate retry; the simulator decides per try

    def _materialize(self, topic: str, payload: dict[str, Any]) -> None:
        self.stats["materialized"] += ticks.materialize(
            self.uow, topic, uuid.UUID(payload["campaign_id"]), self.clock(), payload
        )

    def _reapply(self, inbox_id: uuid.UUID) -> None:
        with self.uow() as session:
            apply_stored(
                session,
                inbox_id,
                self.voice.parse_event,
                self.clock(),
                fleet_of(self.voice).parser_for,
            )
