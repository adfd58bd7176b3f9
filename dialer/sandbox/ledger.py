"""The sandbox's memory: every call placed, per idempotency key, and what became of webhooks.

The ledger is the proof a test reads: ``calls_by_key`` counts the calls actually
created for each key (one per attempt, however often the request was retried) and
``requests_by_key`` counts the requests that asked. A flavour whose provider honours
an idempotency key creates through ``create_once``; one whose provider does not
(Vapi, Twilio, ElevenLabs) through ``create``, so a re-sent request shows up as a
second call, as it would on the real service.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialer.providers.base import PlaceCallRequest
from dialer.providers.simulation import CallPlan


@dataclass(frozen=True)
class StoredCall:
    """A call as placed: its whole planned life, the request, where to report.

    ``placed_at_wall`` is the real time of creation: list filters compare with it,
    because the adapters send their own (real) clock's time there, while the call's
    records are dated on the sandbox's clock (the dialer's, when it runs fast).
    ``extra`` holds what a flavour keeps beyond the plan (a callback URL, overrides).
    """

    idempotency_key: str
    plan: CallPlan
    fingerprint: str
    webhook_url: str | None
    request: PlaceCallRequest | None = None
    placed_at_wall: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class CallLedger:
    """Thread safe: handlers run on the server's loop, tests and admin calls may read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._call_ids_by_key: dict[str, str] = {}
        self._calls: dict[str, StoredCall] = {}
        self._entries: list[dict[str, Any]] = []
        self._requests = Counter[str]()
        self._webhooks = Counter[str]()
        self._faults = Counter[str]()
        self._lost_keys: list[str] = []

    def note_fault(self, idempotency_key: str, fault: str) -> None:
        """A request fault drawn (429, 5xx, timeout, lost_response) for this key."""
        with self._lock:
            self._faults[fault] += 1
            if fault == "lost_response":
                self._lost_keys.append(idempotency_key)

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
            return self._add(make()), True

    def create(self, make: Callable[[], StoredCall]) -> StoredCall:
        """A new call whatever its key: the provider keeps no idempotency key."""
        with self._lock:
            return self._add(make())

    def _add(self, stored: StoredCall) -> StoredCall:
        call = stored.plan.final
        self._call_ids_by_key.setdefault(stored.idempotency_key, call.id)
        self._calls[call.id] = stored
        self._entries.append(_entry(stored))
        return stored

    def get(self, call_id: str) -> StoredCall | None:
        with self._lock:
            return self._calls.get(call_id)

    def calls(self) -> Iterator[StoredCall]:
        """Every call, newest first (a copy: safe to iterate while requests come in)."""
        with self._lock:
            stored = list(self._calls.values())
        return reversed(stored)

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
                "faults": dict(self._faults),
                "lost_response_keys": list(self._lost_keys),
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
        "voicemail": call.voicemail,
    }
