"""The SMTP email adapter against a real aiosmtpd server on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from dialer.providers.base import (
    PermanentProviderError,
    SendMessageRequest,
    TransientProviderError,
)
from dialer.providers.email_smtp import SmtpConfig, SmtpEmailProvider, message_id_for
from dialer.providers.send_guard import SendOnceGuard
from tests.integration.loopback_support import free_port

SENDER = "campaigns@dialer.example"
USER, PASSWORD = "dialer", "s3cret"


class Mailbox:
    """An aiosmtpd handler: keeps accepted messages; refuses recipients it is told to."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}  # recipient -> SMTP reply
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,  # loopback only; the adapter's STARTTLS is a setting
    )
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def guard(redis_client: redis.Redis, redis_namespace: str) -> SendOnceGuard:
    return SendOnceGuard(redis_client, redis_namespace)


def make_provider(port: int, guard: SendOnceGuard, **config: Any) -> SmtpEmailProvider:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "sender": SENDER}
    return SmtpEmailProvider(SmtpConfig(**(settings | config), timeout_seconds=5.0), guard)


def email(key: str = "msg:e1", to: str = "ann@example.org") -> SendMessageRequest:
    return SendMessageRequest(
        idempotency_key=key,
        channel="email",
        to=to,
        body="Hello Ann,\nwe tried to call you today.",
        subject="We missed you",
    )


def test_an_email_arrives_with_subject_body_and_the_keys_message_id(
    mailbox: tuple[Mailbox, int], guard: SendOnceGuard
) -> None:
    box, port = mailbox
    result = make_provider(port, guard).send(email())

    (received,) = box.received
    assert result.status == "sent"
    assert result.provider_message_id == message_id_for("msg:e1", SENDER)
    assert received["Message-ID"] == result.provider_message_id
    assert received["Message-ID"].endswith("@dialer.example>")
    assert "msg:e1" not in received["Message-ID"]
    assert (received["Subject"], received["From"], received["To"]) == (
        "We missed you",
        SENDER,
        "ann@example.org",
    )
    body = received.get_body()
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")  # lines travel as CRLF
    assert text == "Hello Ann,\nwe tried to call you today.\n"


def test_the_same_key_is_never_sent_twice(
    mailbox: tuple[Mailbox, int], guard: SendOnceGuard
) -> None:
    box, port = mailbox
    first = make_provider(port, guard).send(email("msg:once"))
    again = make_provider(port, guard).send(email("msg:once"))  # another worker, same task
    other = make_provider(port, guard).send(email("msg:other"))

    assert again == first
    assert other.provider_message_id != first.provider_message_id
    assert [m["Message-ID"] for m in box.received] == [
        first.provider_message_id,
        other.provider_message_id,
    ]


def test_a_5xx_refusal_is_permanent_and_nothing_is_sent(
    mailbox: tuple[Mailbox, int], guard: SendOnceGuard
) -> None:
    box, port = mailbox
    box.refuse["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: user unknown"
    with pytest.raises(PermanentProviderError) as raised:
        make_provider(port, guard).send(email(to="nobody@example.org"))
    assert raised.value.code == "smtp_550"
    assert "user unknown" in str(raised.value)
    assert box.received == []


def test_a_4xx_refusal_is_transient_and_the_retry_delivers_once(
    mailbox: tuple[Mailbox, int], guard: SendOnceGuard
) -> None:
    box, port = mailbox
    box.refuse["ann@example.org"] = "451 4.7.1 greylisted, try again later"
    provider = make_provider(port, guard)
    with pytest.raises(TransientProviderError, match="smtp 451"):
        provider.send(email())
    assert box.received == []

    del box.refuse["ann@example.org"]
    provider.send(email())
    provider.send(email())
    assert len(box.received) == 1


def test_login_is_used_when_configured_and_a_bad_password_is_permanent(
    mailbox: tuple[Mailbox, int], guard: SendOnceGuard
) -> None:
    box, port = mailbox
    make_provider(port, guard, username=USER, password=PASSWORD).send(email("msg:auth"))
    assert (box.logins, len(box.received)) == ([USER], 1)

    with pytest.raises(PermanentProviderError) as raised:
        make_provider(port, guard, username=USER, password="wrong").send(email("msg:bad"))
    assert raised.value.code == "smtp_535"
    assert len(box.received) == 1


def test_an_unreachable_server_is_transient(guard: SendOnceGuard) -> None:
    with pytest.raises(TransientProviderError, match="unreachable"):
        make_provider(free_port(), guard).send(email())


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"channel": "whatsapp"}, "unsupported_channel"),
        ({"to": "+390612345600"}, "invalid_recipient"),
    ],
)
def test_requests_that_are_not_email_are_refused_before_connecting(
    guard: SendOnceGuard, overrides: dict[str, str], code: str
) -> None:
    values = {"idempotency_key": "k", "channel": "email", "to": "a@b.c", "body": "x"}
    with pytest.raises(PermanentProviderError) as raised:
        make_provider(free_port(), guard).send(SendMessageRequest(**(values | overrides)))
    assert raised.value.code == code
