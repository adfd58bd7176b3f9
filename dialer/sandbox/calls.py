"""What every flavour reads of a planned call: its outcome, its moments, its analysis.

The plan (``dialer.providers.simulation.CallPlan``) holds our own record; a flavour
renders it in its provider's words. These helpers keep that reading in one place.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.base import CallAnalysis, CallRecord
from dialer.providers.simulation import CallPlan
from dialer.providers.voice_adapter import SEED_EXTRACTION_FIELDS

# The analysis of an answered call comes this much simulated time after the hang-up.
ANALYSIS_DELAY: Final = timedelta(seconds=2)


class Ending(StrEnum):
    """How a planned call ends, in the sandbox's words (a flavour maps it to its own)."""

    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


def ending(plan: CallPlan) -> Ending:
    final = plan.final
    if final.status == ProviderCallStatus.COMPLETED:
        return Ending.VOICEMAIL if final.voicemail else Ending.ANSWERED
    if final.status == ProviderCallStatus.NO_ANSWER:
        return Ending.NO_ANSWER
    if final.status == ProviderCallStatus.BUSY:
        return Ending.BUSY
    return Ending.FAILED


def ended_at(plan: CallPlan) -> datetime:
    if plan.final.ended_at is None:
        raise ValueError(f"call {plan.final.id}: a planned call must end")
    return plan.final.ended_at


def created_at(plan: CallPlan) -> datetime:
    if plan.final.created_at is None:
        raise ValueError(f"call {plan.final.id}: a planned call has a creation time")
    return plan.final.created_at


def is_over(record: CallRecord) -> bool:
    """The record as of now is the final one (``CallPlan.record_at`` gave it)."""
    return record.ended_at is not None


def seed_extraction(analysis: CallAnalysis | None) -> dict[str, Any]:
    """The analysis as custom-extraction items under seed 000's names (what agents collect)."""
    if analysis is None:
        return {}
    values = asdict(analysis)
    return {
        seed: values[ours]
        for seed, ours in SEED_EXTRACTION_FIELDS.items()
        if values.get(ours) is not None
    }


def dollars(millicents: int | None) -> float | None:
    return None if millicents is None else millicents / 100_000


def unix_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def iso_z(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as Vapi writes times."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
