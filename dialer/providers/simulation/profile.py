"""How the simulated world behaves: outcome and label weights, timings, fault knobs.

Read from settings (``DIALER_SIMULATION``) or the sandbox's config with
``SimulationProfile.from_mapping``; every bad value is refused naming its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dialer.policies.vocabulary import AiLabel, Outcome

Bounds = tuple[float, float]  # (low, high), inclusive


@dataclass(frozen=True)
class SimulationProfile:
    """How the simulated world behaves. Outcome and label weights are normalised."""

    seed: int = 0
    answer_rate: float = 0.45
    busy_rate: float = 0.15
    voicemail_rate: float = 0.15
    no_answer_rate: float = 0.2
    failure_rate: float = 0.05
    # Fraction of place_call requests refused with TransientProviderError before
    # anything is placed; drawn per (seed, key, try number) so a retry can succeed.
    transient_error_rate: float = 0.0
    ringing_after_seconds: Bounds = (1.0, 3.0)
    ring_seconds: Bounds = (5.0, 25.0)  # from ringing to pick-up or give-up
    answered_seconds: Bounds = (30.0, 300.0)
    voicemail_seconds: Bounds = (10.0, 40.0)
    positive_rate: float = 0.5
    neutral_rate: float = 0.3
    negative_rate: float = 0.2
    positive_score: Bounds = (0.6, 1.0)
    neutral_score: Bounds = (0.3, 0.7)
    negative_score: Bounds = (0.0, 0.4)
    cost_per_minute_millicents: int = 1200
    whatsapp_reply_rate: float = 0.3
    stop_reply_rate: float = 0.1
    reply_delay_seconds: Bounds = (60.0, 900.0)
    delivery_delay_seconds: Bounds = (1.0, 10.0)
    # Fault knobs for tests: deliver the last event twice / the ringing event last.
    duplicate_event_rate: float = 0.0
    reorder_rate: float = 0.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_rate"):
                _require_fraction(spec.name, value)
            elif isinstance(value, tuple):
                _require_range(spec.name, value)
        _require_positive_total("outcome rates", self.outcome_weights().values())
        _require_positive_total("label rates", self.label_weights().values())
        if self.cost_per_minute_millicents < 0:
            raise ValueError("cost_per_minute_millicents: must be >= 0")

    def outcome_weights(self) -> dict[Outcome, float]:
        return {
            Outcome.ANSWERED: self.answer_rate,
            Outcome.BUSY: self.busy_rate,
            Outcome.VOICEMAIL: self.voicemail_rate,
            Outcome.NO_ANSWER: self.no_answer_rate,
            Outcome.FAILED: self.failure_rate,
        }

    def label_weights(self) -> dict[AiLabel, float]:
        return {
            AiLabel.POSITIVE: self.positive_rate,
            AiLabel.NEUTRAL: self.neutral_rate,
            AiLabel.NEGATIVE: self.negative_rate,
        }

    def score_range(self, label: AiLabel) -> Bounds:
        return {
            AiLabel.POSITIVE: self.positive_score,
            AiLabel.NEUTRAL: self.neutral_score,
            AiLabel.NEGATIVE: self.negative_score,
        }[label]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulationProfile:
        """Build from settings (JSON/YAML): ranges may be lists; unknown keys are errors."""
        known = {spec.name: spec for spec in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown simulation setting; known: {', '.join(known)}")
        defaults = cls()
        converted = {
            name: _coerce_setting(name, raw, getattr(defaults, name))
            for name, raw in values.items()
        }
        return cls(**converted)


def _coerce_setting(name: str, raw: Any, default: Any) -> Any:
    """Convert one setting to the type of its default, naming it when that fails."""
    try:
        if isinstance(default, tuple):
            low, high = raw
            return (float(low), float(high))
        if isinstance(raw, bool):
            raise TypeError("a boolean is not a number")
        return int(raw) if isinstance(default, int) else float(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot use {raw!r} ({exc})") from None


def _require_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: must be between 0 and 1, got {value}")


def _require_range(name: str, value: tuple[float, ...]) -> None:
    if len(value) != 2 or not 0.0 <= value[0] <= value[1]:
        raise ValueError(f"{name}: must be (low, high) with 0 <= low <= high, got {value}")


def _require_positive_total(what: str, weights: Any) -> None:
    if sum(weights) <= 0:
        raise ValueError(f"{what}: at least one must be above 0")
