"""The dashboard's session: a signed cookie naming the API key, and its CSRF tokens.

A person signs in with an API key; the cookie then holds that key's id (never the
secret) and an expiry, signed with HMAC-SHA256 under ``ui_session_secret``. Every
request looks the key up again, so revoking the key ends its sessions at once.

CSRF: every form carries a token derived from the session cookie (HMAC of it under
the same secret), so a page of another site can neither read nor guess it. The
sign-in form, before any session, carries a token bound to a random pre-session
cookie the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from dialer.settings import Settings

UI_PATH_PREFIX: Final = "/ui"
SESSION_COOKIE: Final = "dialer_ui_session"
LOGIN_COOKIE: Final = "dialer_ui_login"  # pre-session nonce the sign-in form's token binds to
FLASH_COOKIE: Final = "dialer_ui_flash"
CSRF_FIELD: Final = "csrf_token"
_SEPARATOR: Final = "."


@dataclass(frozen=True)
class SessionToken:
    key_id: uuid.UUID
    expires_at: int  # unix seconds


class Signer:
    """Signs and checks the dashboard's cookie values and CSRF tokens under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        """The configured secret; unset, a random key of this process (the sandbox only:
        dialer.composition.providers.check_ui_settings refuses it beside a real provider)."""
        configured = settings.ui_session_secret.get_secret_value()
        return cls(configured.encode() if configured else secrets.token_bytes(32))

    def mac(self, purpose: str, value: str) -> str:
        message = f"{purpose}|{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def session_value(self, key_id: uuid.UUID, now: datetime, lifetime: timedelta) -> str:
        """``key_id.expires.nonce.signature``: the nonce makes each sign-in (and so the
        CSRF tokens bound to it) its own, even for one key within one second."""
        expires = int((now + lifetime).timestamp())
        body = _SEPARATOR.join((str(key_id), str(expires), secrets.token_hex(8)))
        return f"{body}{_SEPARATOR}{self.mac('session', body)}"

    def read_session(self, value: str | None, now: datetime) -> SessionToken | None:
        """The token of a cookie value signed here and not expired, else None."""
        if not value or value.count(_SEPARATOR) != 3:
            return None
        body, _, signature = value.rpartition(_SEPARATOR)
        key_text, expires_text, _nonce = body.split(_SEPARATOR)
        expected = self.mac("session", body)
        if not hmac.compare_digest(signature, expected) or not expires_text.isdigit():
            return None
        if int(expires_text) <= now.timestamp():
            return None
        try:
            return SessionToken(uuid.UUID(key_text), int(expires_text))
        except ValueError:
            return None

    def csrf_token(self, bound_to: str) -> str:
        """The token forms carry: bound to the session (or pre-session) cookie value."""
        return self.mac("csrf", bound_to)

    def csrf_ok(self, bound_to: str | None, token: str | None) -> bool:
        if not bound_to or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(bound_to))

    def signed(self, purpose: str, text: str) -> str:
        """``text`` with its signature (the flash message)."""
        return f"{self.mac(purpose, text)}{_SEPARATOR}{text}"

    def unsigned(self, purpose: str, value: str | None) -> str | None:
        if not value or _SEPARATOR not in value:
            return None
        signature, text = value.split(_SEPARATOR, 1)
        return text if hmac.compare_digest(signature, self.mac(purpose, text)) else None


def new_nonce() -> str:
    return secrets.token_urlsafe(24)
