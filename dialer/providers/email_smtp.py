"""Campaign email over SMTP (smtplib), one connection per message.

SMTP has no idempotency, so a send goes through a SendOnceGuard (Redis): the same
idempotency key is never handed to the server twice while the guard remembers it.
The Message-ID is derived from the key, so even a copy sent in the guard's crash
window (see send_guard) carries the same Message-ID, which many mail stores use to
drop duplicates.

Errors: a 4xx reply is transient (greylisting, mailbox busy), a 5xx reply is
permanent (unknown user, policy refusal), and connection failures are transient.
Accepted by the server means "sent", not "delivered": SMTP reports no delivery.
Delivery comes from the relay's event webhook: every message carries our message id
in ``X-SMTPAPI`` unique args, which SendGrid echoes in its events
(dialer.providers.sendgrid_events); other servers ignore the header.
A subject with CR or LF is refused (header injection), as is one longer than
``MAX_SUBJECT_CHARS``; campaigns validate theirs when created.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Final

import redis

from dialer.policies.vocabulary import Channel
from dialer.providers.base import (
    PermanentProviderError,
    SendMessageRequest,
    SendResult,
    TransientProviderError,
)
from dialer.providers.send_guard import SendOnceGuard
from dialer.providers.sendgrid_events import SMTPAPI_HEADER, smtpapi_header
from dialer.settings import Settings

PROVIDER_NAME: Final = "smtp"
DEFAULT_TIMEOUT_SECONDS: Final = 15.0
MAX_SUBJECT_CHARS: Final = 998  # RFC 5322's line limit; campaigns allow far fewer


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


class SmtpEmailProvider:
    """A MessageProvider for the email channel."""

    name = PROVIDER_NAME

    def __init__(self, config: SmtpConfig, guard: SendOnceGuard) -> None:
        self._config = config
        self._guard = guard

    @classmethod
    def from_settings(cls, settings: Settings, redis_url: str) -> SmtpEmailProvider:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        config = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=password,
            starttls=settings.smtp_starttls,
        )
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        return cls(config, SendOnceGuard(client, "email"))

    def send(self, request: SendMessageRequest) -> SendResult:
        """Send once per idempotency key; the result's id is the Message-ID."""
        _validate(request)
        message = build_email(request, self._config.sender)
        message_id = self._guard.send_once(request.idempotency_key, lambda: self._deliver(message))
        return SendResult(provider_message_id=message_id, status="sent")

    def _deliver(self, message: EmailMessage) -> str:
        try:
            self._submit(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _reply_error(code, reply) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS asked, not offered
            raise PermanentProviderError(f"smtp: {exc}", code="smtp_not_supported") from exc
        except OSError as exc:  # refused, reset, timed out, disconnected
            raise TransientProviderError(f"smtp unreachable: {exc!r}") from exc
        return str(message["Message-ID"])

    def _submit(self, message: EmailMessage) -> None:
        config = self._config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(message)


def _validate(request: SendMessageRequest) -> None:
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key is required", code="validation_error")
    if request.channel != Channel.EMAIL:
        raise PermanentProviderError(
            f"unsupported channel {request.channel!r}", code="unsupported_channel"
        )
    if "@" not in request.to.strip():
        raise PermanentProviderError("recipient is not an email address", code="invalid_recipient")
    subject = request.subject or ""
    if "\r" in subject or "\n" in subject or len(subject) > MAX_SUBJECT_CHARS:
        raise PermanentProviderError(
            f"subject has a line break or is longer than {MAX_SUBJECT_CHARS} characters",
            code="invalid_subject",
        )


def build_email(request: SendMessageRequest, default_sender: str) -> EmailMessage:
    """The message to submit; its Message-ID depends on the idempotency key alone."""
    sender = request.sender if request.sender and "@" in request.sender else default_sender
    message = EmailMessage()
    message["From"] = sender
    message["To"] = request.to.strip()
    message["Subject"] = request.subject or ""
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id_for(request.idempotency_key, sender)
    our_id = request.metadata.get("message_id")
    if our_id:
        message[SMTPAPI_HEADER] = smtpapi_header(our_id)
    message.set_content(request.body)
    return message


def message_id_for(idempotency_key: str, sender: str) -> str:
    """``<sha256(key)[:32]@sender's domain>``: stable per key, revealing nothing of it."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    return f"<{digest}@{domain}>"


def _reply_error(code: int, reply: bytes | str) -> TransientProviderError | PermanentProviderError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    message = f"smtp {code}: {text}"
    if 500 <= code < 600:
        return PermanentProviderError(message, code=f"smtp_{code}")
    return TransientProviderError(message)
