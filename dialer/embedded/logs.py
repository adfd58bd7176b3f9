"""The servers' log files: read what a start wrote, and fail with its last lines."""

from __future__ import annotations

from pathlib import Path

from dialer.errors import ServiceUnavailable

LOG_TAIL_LINES = 15


def log_offset(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_since(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]
    return ("\n  " + "\n  ".join(lines)) if lines else ""


def failure(what: str, log_file: Path, offset: int) -> ServiceUnavailable:
    """A ServiceUnavailable that says what failed, where the log is, and its last lines."""
    return ServiceUnavailable(
        f"{what}; see {log_file}{_tail(log_since(log_file, offset))}\n"
        "(or set DIALER_DATABASE_URL / DIALER_REDIS_URL to use servers you run yourself)"
    )
