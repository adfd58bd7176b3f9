"""One exception hierarchy. Each class's docstring is its default message."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class DialerError(Exception):
    """The campaign dialer failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class SettingsError(DialerError):
    """A setting is invalid."""

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "DIALER_") -> SettingsError:
        parts = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            parts.append(f"{prefix}{name.upper()}: {err['msg']}" if err["loc"] else err["msg"])
        return cls("invalid settings: " + "; ".join(parts))


class ValidationFailed(DialerError):
    """Input is invalid."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class WindowNeverOpens(ValidationFailed):
    """The working-hours window can never open."""


class TemplateError(ValidationFailed):
    """A message template is invalid."""


class CampaignStateError(DialerError):
    """The campaign cannot make this transition."""

    def __init__(self, current: str, action: str, reason: str | None = None) -> None:
        self.current = current
        self.action = action
        super().__init__(reason or f"cannot {action} a campaign that is {current}")


class NotFound(DialerError):
    """The object does not exist."""


class Conflict(DialerError):
    """The object is not in a state that allows this operation."""


class ServiceUnavailable(DialerError):
    """A required server (PostgreSQL or Redis) cannot be reached or started."""


def describe_validation_error(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """Turn a pydantic error into (field, reason) pairs a person can act on."""
    pairs = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        pairs.append((f"{prefix}{field}" if field else prefix.rstrip(".") or "input", reason))
    return pairs
