"""The sandbox's memory: every call placed, per idempotency key, and what became of webhooks.

The ledger is the proof a test reads: ``calls_by_key`` counts the calls actually
created for each key (one per attempt, however often the request was retried) and
``requests_by_key`` counts the requests that asked.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dialer.providers.simulation import CallPlan


@dataclass(frozen=True)
class StoredCall:
    """A call as placed: its whole planned life, the request's fingerprint, where to report."""

    idempotency_key: str
    plan: CallPlan
    fingerprint: str
    webhook_url: str | None


class CallLedger:
    """Thread safe: handlers run on the server's loop, tests and admin calls may read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._call_ids_by_key: dict[str, str] = {}
        self._calls: dict[str, StoredCall] = {}
        self._entries: list[dict[str, Any]] = []
        self._requests = Counter[str]()
        self._webhooks = Counter[str]()

    def note_request(self, idempotency_key: str) -> None:
        with self._lock:
            self._requests[idempotency_key] += 1

    def create_once(
        self, idempotency_key: str, make: Callable[[], StoredCall]
    ) -> tuple[StoredCall, bool]:
        """The key's call, made now if it has none; True when this request created it."""
        with self._lock:
            existing = self._call_ids_by_key.get(idempotency_key)
            if existing is not None:
                return self._calls[existing], False
            stored = make()
            call = stored.plan.final
            self._call_ids_by_key[idempotency_key] = call.id
            self._calls[call.id] = stored
            self._entries.append(_entry(stored))
            return stored, True

    def get(self, call_id: str) -> StoredCall | None:
        with self._lock:
            return self._calls.get(call_id)

    def count_webhook(self, outcome: str) -> None:
        """Tally a webhook delivery: scheduled, delivered, dropped, retried or failed."""
        with self._lock:
            self._webhooks[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": list(self._entries),
                "calls_by_key": dict(Counter(entry["idempotency_key"] for entry in self._entries)),
                "requests_by_key": dict(self._requests),
                "webhooks": dict(self._webhooks),
            }


def _entry(stored: StoredCall) -> dict[str, Any]:
    call = stored.plan.final
    return {
        "call_id": call.id,
        "idempotency_key": stored.idempotency_key,
        "agent_id": call.agent_id,
        "to": call.to,
        "from_number": call.from_number,
        "placed_at": None if call.created_at is None else call.created_at.isoformat(),
        "planned_status": call.status,
    }
