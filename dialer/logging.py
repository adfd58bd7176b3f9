"""structlog, configured once: JSON when not a terminal, pretty in one.

Phone numbers are masked in every event (keep the country prefix and the last two
digits), so logs can be shared without leaking whom we called.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from dialer.settings import Settings, get_settings

_PHONE = re.compile(r"\+?\d[\d \-().]{6,}\d")
_configured = False


def mask_phone(text: str) -> str:
    """'+14155550123' -> '+1*******23'. Leaves short numbers (ids, counts) alone."""

    def _mask(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        if len(digits) < 8:
            return raw
        prefix = "+" if raw.startswith("+") else ""
        return f"{prefix}{digits[:1]}{'*' * (len(digits) - 3)}{digits[-2:]}"

    return _PHONE.sub(_mask, text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def mask_phone_numbers(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask phone-number-looking strings in every field."""
    for key, value in list(event_dict.items()):
        if key not in {"timestamp", "level"}:
            event_dict[key] = _mask_value(value)
    return event_dict


class _StderrLogger:
    """Writes to whatever sys.stderr is at the time (test runners and daemons swap it)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(settings: Settings | None = None, *, force: bool = False) -> None:
    """Configure structlog and stdlib logging once per process."""
    global _configured
    if _configured and not force:
        return
    cfg = settings or get_settings()
    pretty = cfg.log_format == "console" or (cfg.log_format == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    )
    level = logging.getLevelNamesMapping().get(cfg.log_level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_phone_numbers,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # Migration chatter is not news to an operator.
    # Libraries that log every request or migration step at INFO: warnings only.
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    _configured = True


def get_logger(name: str | None = None) -> Any:
    """A bound structlog logger; configure_logging() must have run (the CLI and tasks do it)."""
    return structlog.get_logger(name)
