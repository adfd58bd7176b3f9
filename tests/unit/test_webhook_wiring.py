"""The webhook duty is on beat's schedule, routed, registered, and set from the settings."""

from __future__ import annotations

from datetime import timedelta

from dialer.policies.webhooks import RetryPolicy
from dialer.services.webhook_delivery import lease_for, retry_policy_of
from dialer.settings import Settings
from tasks import pipeline
from tasks.app import ROUTES, app, beat_schedule


def test_beat_sends_webhooks_every_tick_on_the_messages_queue() -> None:
    cfg = Settings(scan_interval_seconds=2)
    entry = beat_schedule(cfg)["deliver-webhooks"]
    assert entry["task"] == "dialer.deliver_webhooks"
    assert entry["schedule"] == 2
    assert ROUTES["dialer.deliver_webhooks"] == "messages"
    assert pipeline.deliver_webhooks.name in app.tasks  # registered when the tasks load


def test_the_retry_policy_and_lease_come_from_the_settings() -> None:
    cfg = Settings(
        webhook_backoff_base_seconds=5,
        webhook_backoff_cap_seconds=50,
        webhook_max_attempts=3,
        webhook_disable_after_failures=7,
        webhook_timeout_seconds=2,
        webhook_batch_size=9,
    )
    assert retry_policy_of(cfg) == RetryPolicy(5, 50, 3, 7)
    assert lease_for(cfg) == timedelta(seconds=20)  # every send of a tick may time out
