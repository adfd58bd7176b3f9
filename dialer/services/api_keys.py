"""API keys: ``sk_`` secrets shown once, stored as a hash, looked up by their prefix.

A key reads ``sk_<8 hex>_<43 url-safe chars>``. The first 11 characters (the
prefix) are stored in clear to find the row; the whole secret is stored only as
SHA-256. A fast hash is right here: the secret carries 256 random bits, so there is
nothing to brute-force, and every request pays for the check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.errors import NotFound, ValidationFailed
from models import ApiKey

SCOPES: Final = (
    "campaigns:read",
    "campaigns:write",
    "calls:read",
    "calls:write",
    "customers:read",
    "customers:write",
    "webhooks:read",
    "webhooks:write",
)
_PREFIX_HEX_CHARS: Final = 8
_PREFIX_CHARS: Final = len("sk_") + _PREFIX_HEX_CHARS


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's account (every query is scoped to it) and its scopes."""

    account_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class IssuedKey:
    """A new key; ``secret`` exists only here and is never stored or shown again."""

    key: ApiKey
    secret: str


def issue_key(
    session: Session, account_id: uuid.UUID, name: str, scopes: list[str] | tuple[str, ...]
) -> IssuedKey:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValidationFailed("scopes", f"unknown scope(s) {unknown}; known: {list(SCOPES)}")
    if not scopes:
        raise ValidationFailed("scopes", "a key needs at least one scope")
    prefix = "sk_" + secrets.token_hex(_PREFIX_HEX_CHARS // 2)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        account_id=account_id,
        name=name,
        prefix=prefix,
        secret_hash=_digest(secret),
        scopes=sorted(set(scopes)),
    )
    session.add(key)
    session.flush()
    return IssuedKey(key=key, secret=secret)


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal of a live key with this exact secret, else None."""
    if not secret.startswith("sk_") or len(secret) <= _PREFIX_CHARS:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == secret[:_PREFIX_CHARS])).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _digest(secret)):
        return None
    return Principal(account_id=key.account_id, key_id=key.id, scopes=frozenset(key.scopes))


def principal_of_key(session: Session, key_id: uuid.UUID) -> Principal | None:
    """The principal of the live key ``key_id`` (a dashboard session names its key so)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return None
    return Principal(account_id=key.account_id, key_id=key.id, scopes=frozenset(key.scopes))


def list_keys(session: Session, account_id: uuid.UUID) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at)
    return list(session.scalars(query))


def revoke_key(session: Session, account_id: uuid.UUID, prefix: str, now: datetime) -> ApiKey:
    query = select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.prefix == prefix)
    key = session.scalars(query).first()
    if key is None:
        raise NotFound(f"no API key {prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = now
    return key


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
