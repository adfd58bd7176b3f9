"""The campaign's voicemail policy goes out with each placement and is kept on the attempt."""

from __future__ import annotations

from collections.abc import Sequence

from dialer.policies.vocabulary import VoicemailAction
from dialer.providers.base import Gate, PlaceCallRequest, Placement
from dialer.services.dispatch import dispatch_batch
from models.session import transaction
from scheduler.scan import scan_campaign
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_8_UTC,
    attempts_of,
    make_driver,
    relay,
    rome_csv,
    setup_campaign,
    start,
)

VOICEMAIL = {
    "voicemail_action": "leave_message",
    "voicemail_message": "Hi {{name}}, this is {{campaign_name}}. We will call again.",
}


def _dispatched(url: str, redis_url: str, spec: dict[str, str]) -> list[PlaceCallRequest]:
    campaign_id = setup_campaign(url, {"name": "Voicemail", **spec}, rome_csv(2))
    driver = make_driver(url, redis_url, now=MONDAY_8_UTC)
    sent: list[PlaceCallRequest] = []
    place_many = driver.voice.place_calls

    def capture(batch: Sequence[PlaceCallRequest], gate: Gate | None = None) -> list[Placement]:
        sent.extend(batch)
        return place_many(batch, gate)

    driver.voice.place_calls = capture  # type: ignore[method-assign]
    start(url, campaign_id, MONDAY_8_UTC)
    relay(driver)
    with transaction(url) as session:
        claimed = scan_campaign(session, campaign_id, MONDAY_8_UTC, LEGAL, 10).claimed
    dispatch_batch(driver.uow, driver.voice, claimed, driver.clock, driver.limits)
    recorded = {a.voicemail_action for a in attempts_of(url, campaign_id)}
    expected = spec.get("voicemail_action")
    assert recorded == {VoicemailAction(expected) if expected else None}
    return sent


def test_leave_message_is_rendered_into_each_request_and_recorded(
    clean_db: str, redis_url: str
) -> None:
    sent = _dispatched(clean_db, redis_url, VOICEMAIL)
    assert len(sent) == 2
    messages = {r.context["voicemail_message"] for r in sent}
    assert messages == {f"Hi Name{n}, this is Voicemail. We will call again." for n in (0, 1)}
    assert {r.context["voicemail_action"] for r in sent} == {"leave_message"}


def test_without_a_policy_the_agents_own_setting_applies(clean_db: str, redis_url: str) -> None:
    sent = _dispatched(clean_db, redis_url, {})
    assert sent
    assert not any("voicemail_action" in r.context for r in sent)
