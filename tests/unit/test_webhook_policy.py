"""Outbound webhooks, the pure part: signatures, backoff, when to give up, which URLs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.policies.webhooks import (
    RetryPolicy,
    address_problem,
    after_failure,
    backoff_seconds,
    should_disable,
    signature_header,
    url_problem,
    verify_signature,
)

SECRET = "whsec_0123456789abcdef"
BODY = b'{"id":"e1","type":"call.completed"}'
T = 1_780_000_000
T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def test_a_signature_verifies_with_the_same_secret_body_and_time() -> None:
    header = signature_header(SECRET, BODY, T)
    assert header.startswith(f"t={T},v1=")
    assert verify_signature(SECRET, BODY, header, now_unix=T + 10)


def test_the_signed_bytes_are_timestamp_dot_body() -> None:
    """The documented recipe, spelled out with hmac, gives the same digest."""
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, BODY, T) == f"t={T},v1={digest}"


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("whsec_another_secret_12", BODY, T),  # wrong secret
        (SECRET, BODY + b" ", T),  # body changed
        (SECRET, BODY, T + 301),  # too old: a replay
        (SECRET, BODY, T - 301),  # from the future
    ],
)
def test_a_signature_is_refused_when_anything_differs(secret: str, body: bytes, now: int) -> None:
    assert not verify_signature(secret, body, signature_header(SECRET, BODY, T), now_unix=now)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", f"t={T}", "v1=00", "garbage"])
def test_a_malformed_header_is_refused(header: str) -> None:
    assert not verify_signature(SECRET, BODY, header, now_unix=T)


def test_any_of_several_v1_values_may_match() -> None:
    good = signature_header(SECRET, BODY, T).split(",")[1]
    assert verify_signature(SECRET, BODY, f"t={T},v1=deadbeef,{good}", now_unix=T)


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    moved = signature_header(SECRET, BODY, T).replace(f"t={T}", f"t={T + 1}")
    assert not verify_signature(SECRET, BODY, moved, now_unix=T)


POLICY = RetryPolicy(base_seconds=30, cap_seconds=3600, max_attempts=5, disable_after=3)


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (1, 0.0, 15.0),  # half of the 30 s step
        (1, 1.0, 30.0),
        (2, 0.0, 30.0),
        (3, 0.5, 90.0),  # step 120: 60 + 30
        (8, 1.0, 3600.0),  # capped
        (30, 0.0, 1800.0),
    ],
)
def test_backoff_is_exponential_capped_and_jittered(
    attempt: int, jitter: float, expected: float
) -> None:
    assert backoff_seconds(attempt, jitter, POLICY) == expected


@given(st.integers(1, 60), st.floats(0, 1))
def test_backoff_never_shrinks_below_half_a_step_nor_passes_the_cap(
    attempt: int, jitter: float
) -> None:
    wait = backoff_seconds(attempt, jitter, POLICY)
    step = min(POLICY.cap_seconds, POLICY.base_seconds * 2 ** (attempt - 1))
    assert step / 2 <= wait <= step


def test_after_the_last_try_the_delivery_is_dead() -> None:
    assert after_failure(4, T0, 0.0, POLICY) == after_failure(4, T0, 0.0, POLICY)
    retry = after_failure(4, T0, 0.0, POLICY)
    assert not retry.dead
    assert retry.next_attempt_at == T0 + timedelta(seconds=backoff_seconds(4, 0.0, POLICY))
    dead = after_failure(5, T0, 0.0, POLICY)
    assert dead.dead
    assert dead.next_attempt_at is None


def test_an_endpoint_is_disabled_after_consecutive_failures() -> None:
    assert not should_disable(2, POLICY)
    assert should_disable(3, POLICY)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/dialer", None),
        ("http://hooks.example.com:8080/x?y=1", None),
        ("https://8.8.8.8/hook", None),
        ("ftp://hooks.example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("https:///nohost", "no host"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("http://127.0.0.1:9000/", "private"),
        ("http://[::1]/", "private"),
        ("http://10.1.2.3/", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://[::ffff:192.168.0.1]/", "private"),
        ("http://localhost:8000/", "local host"),
        ("http://api.localhost/", "local host"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
    ],
)
def test_only_public_http_urls_are_allowed(url: str, problem: str | None) -> None:
    found = url_problem(url, allow_private=False)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_private_addresses_are_allowed_when_the_setting_says_so() -> None:
    assert url_problem("http://127.0.0.1:9000/", allow_private=True) is None
    assert url_problem("ftp://127.0.0.1/", allow_private=True) is not None
    assert address_problem("127.0.0.1", allow_private=True) is None
    assert address_problem("192.168.1.1", allow_private=False) is not None
    assert address_problem("93.184.216.34", allow_private=False) is None


def test_the_documented_receiver_snippet_verifies_our_signatures() -> None:
    """docs/OPERATIONS.md shows integrators a verify(); it must accept what we send."""
    import re
    import time
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text()
    found = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", guide, re.S)
    assert found is not None
    namespace: dict[str, object] = {}
    exec(found.group(1), namespace)  # our own documentation's code
    verify = cast(Callable[[str, bytes, str], bool], namespace["verify"])
    now = int(time.time())
    assert verify(SECRET, BODY, signature_header(SECRET, BODY, now))
    assert not verify("whsec_other", BODY, signature_header(SECRET, BODY, now))
    assert not verify(SECRET, BODY, signature_header(SECRET, BODY, now - 600))
