"""structlog, configured once: JSON when not a terminal, pretty in one.

Personal data is masked in every event, so logs can be shared without leaking whom
we called: phone numbers keep the country prefix and the last two digits, e-mail
addresses their first letter and domain, and people's names (fields such as
``customer_name`` or ``surname``) their first letter.

Context is bound, not repeated: the API binds ``request_id`` per request, a worker
``task_id`` and ``task`` per task (tasks.observability); services name the
``campaign_id`` and ``attempt_id`` they act on. One event name per action.
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
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-]+)@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# Fields that hold a person's name, wherever they appear in an event (nested too).
PERSON_NAME_FIELDS = frozenset({"customer_name", "surname", "first_name", "last_name", "full_name"})
# ...and "name" inside these (a customer record logged whole).
PERSON_RECORDS = frozenset({"customer", "contact", "recipient"})
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


def mask_email(text: str) -> str:
    """'maria.rossi@example.com' -> 'm***@example.com'."""
    return _EMAIL.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)


def mask_name(value: str) -> str:
    """'Maria Rossi' -> 'M***': enough to tell two log lines apart, not to identify."""
    return f"{value[:1]}***" if value else value


def _is_person_name(key: str, parent: str) -> bool:
    key, parent = key.lower(), parent.lower()
    return key in PERSON_NAME_FIELDS or (key == "name" and parent in PERSON_RECORDS)


def _mask_value(value: Any, key: str = "", parent: str = "") -> Any:
    if isinstance(value, str):
        if _is_person_name(key, parent):
            return mask_name(value)
        return mask_email(mask_phone(value))
    if isinstance(value, Mapping):
        return {k: _mask_value(v, str(k), key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v, key, parent) for v in value]
    return value


def mask_phone_numbers(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask phone numbers, e-mail addresses and names in every field."""
    for key, value in list(event_dict.items()):
        if key not in {"timestamp", "level"}:
            event_dict[key] = _mask_value(value, key)
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
