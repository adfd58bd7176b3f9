"""structlog, configured once: JSON when not a terminal, pretty in one.

Personal data is masked in every event, so logs can be shared without leaking whom
we called: phone numbers keep the country prefix and the last two digits, e-mail
addresses their first letter and domain, and people's names (fields such as
``customer_name`` or ``surname``) their first letter.

Tracebacks lose SQLAlchemy's ``[parameters: ...]`` and are masked like any field;
stdlib records (uvicorn, Celery, libraries) pass the same masking through
``privacy_filter``, and the access log drops query strings. Request and task ids are
never masked. Each line is written whole, under a lock.

Context is bound, not repeated: the API binds ``request_id`` per request, a worker
``task_id`` and ``task`` per task (tasks.observability); services name the
``campaign_id`` and ``attempt_id`` they act on. One event name per action.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from dialer.settings import Settings, get_settings

# A number stands alone: not inside an id such as a UUID ("...-1234-5678-9012...").
_PHONE = re.compile(r"(?<![\w\-.])\+?\d[\d \-().]{6,}\d(?![\w\-])")
_UUID_SHAPE = re.compile(r"\d{8}-\d{4}-\d{4}-\d{4}-\d{12}")  # an id, even if all digits
# The lookbehind starts a match only at the start of a run: linear on long words.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9._%+\-]+)@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# SQLAlchemy's error text lists a statement's parameters: names, e-mails, phones.
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\]\n?(?=\(Background on this error|$)", re.S)
# Values that are never personal data and must reach the log as they are.
_NEVER_MASKED = frozenset({"timestamp", "level", "request_id", "task_id", "logger"})
_WRITE_LOCK = threading.Lock()
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
        if len(digits) < 8 or _UUID_SHAPE.fullmatch(raw):
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


def mask_data(value: Any, key: str = "", parent: str = "") -> Any:
    """Any JSON-like value (an error report, say) masked like a log line, tracebacks too."""
    if isinstance(value, str):
        return mask_name(value) if _is_person_name(key, parent) else mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_data(v, str(k), key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v, key, parent) for v in value]
    return value


def mask_text(text: str) -> str:
    """Free text (a message, a traceback): SQL parameters dropped, phones and e-mails masked."""
    return mask_email(mask_phone(_SQL_PARAMETERS.sub("[parameters hidden]\n", text)))


def mask_phone_numbers(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask phone numbers, e-mail addresses and names in every field.

    It runs after format_exc_info, so a traceback (the ``exception`` field) is masked too.
    """
    for key, value in list(event_dict.items()):
        if key == "exception" and isinstance(value, str):
            event_dict[key] = mask_text(value)
        elif key not in _NEVER_MASKED:
            event_dict[key] = _mask_value(value, key)
    return event_dict


def privacy_filter(record: logging.LogRecord) -> bool:
    """stdlib logging filter (uvicorn, Celery, libraries): the same masking as structlog's.

    The access log's path loses its query string (``/calls?q=+8139...``: searches hold
    phone numbers and names); a traceback is formatted here and masked.
    """
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
        client, method, path, version, status = record.args
        record.args = (client, method, str(path).split("?", 1)[0], version, status)
    record.msg, record.args = mask_text(record.getMessage()), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    return True


class _StderrLogger:
    """Writes to whatever sys.stderr is at the time (test runners and daemons swap it).

    One write per line, under a lock: a line and its newline written separately from
    several threads used to glue two JSON lines together.
    """

    def msg(self, message: str) -> None:
        with _WRITE_LOCK:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

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
            structlog.processors.format_exc_info,
            mask_phone_numbers,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    install_privacy_filter(logging.getLogger())
    # Migration chatter is not news to an operator.
    # Libraries that log every request or migration step at INFO: warnings only.
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    _configured = True


def install_privacy_filter(logger: logging.Logger) -> None:
    """Mask what ``logger``'s handlers write (records of every logger that propagates)."""
    for handler in logger.handlers:
        if privacy_filter not in handler.filters:
            handler.addFilter(privacy_filter)


def get_logger(name: str | None = None) -> Any:
    """A bound structlog logger; configure_logging() must have run (the CLI and tasks do it)."""
    return structlog.get_logger(name)
