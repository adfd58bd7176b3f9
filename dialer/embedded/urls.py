"""Where the embedded servers listen, and the URLs processes connect with."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

HOST = "127.0.0.1"
DATABASE_NAME = "dialer"
POSTGRES_SUPERUSER = "postgres"


@dataclass(frozen=True)
class ServiceUrls:
    """The URLs every process connects with (configured or embedded)."""

    database_url: str
    redis_url: str


def postgres_url(port: int, database: str = DATABASE_NAME) -> str:
    """SQLAlchemy URL of the embedded server (trust auth on loopback: no password)."""
    return f"postgresql+psycopg://{POSTGRES_SUPERUSER}@{HOST}:{port}/{database}"


def redis_url(port: int, db: int = 0) -> str:
    """Redis URL of the embedded server."""
    return f"redis://{HOST}:{port}/{db}"


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
