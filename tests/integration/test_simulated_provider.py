"""The simulated provider: deterministic outcomes, idempotency, the event queue, payloads.

Tests that touch Redis are marked ``integration``; they use the suite's ``redis_client``
(the test database, emptied around each test; skipped without Redis, failed under
CI=true). Time is a fake clock advanced by hand; nothing sleeps.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    InboundMessage,
    MessageProvider,
    MessageStatusUpdate,
    NotSent,
    PermanentProviderError,
    PlaceCallRequest,
    ProviderEvent,
    SendMessageRequest,
    TransientProviderError,
    VoiceProvider,
)
from dialer.providers.events import (
    call_record_to_payload,
    call_status_event,
    event_payload,
    inbound_message_event,
    message_status_event,
    parse_event_payload,
)
from dialer.providers.simulation import (
    CALLBACK_REPLY,
    STOP_REPLY,
    THANKS_REPLY,
    MemorySimulatorStore,
    RedisSimulatorStore,
    SimulatedMessageProvider,
    SimulatedVoiceProvider,
    SimulationProfile,
    SimulatorStore,
    build_simulated_providers,
)

START = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
FAR_FUTURE = START + timedelta(days=1)
GOOD_NUMBER = "+15551234567"

needs_redis = pytest.mark.integration


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


VoiceFactory = Callable[..., SimulatedVoiceProvider]
MessageFactory = Callable[..., SimulatedMessageProvider]


StoreFactory = Callable[[str], SimulatorStore]


@pytest.fixture(params=["redis", "memory"])
def store_for(request: pytest.FixtureRequest) -> StoreFactory:
    """Every provider test runs on both stores: a namespace's store, shared like Redis's."""
    if request.param == "memory":
        stores: dict[str, MemorySimulatorStore] = {}
        return lambda namespace: stores.setdefault(namespace, MemorySimulatorStore())
    client: redis.Redis = request.getfixturevalue("redis_client")
    return lambda namespace: RedisSimulatorStore(client, namespace)


@pytest.fixture
def make_voice(store_for: StoreFactory, clock: FakeClock) -> VoiceFactory:
    def make(namespace: str = "test", **profile: Any) -> SimulatedVoiceProvider:
        return SimulatedVoiceProvider(store_for(namespace), clock, SimulationProfile(**profile))

    return make


@pytest.fixture
def make_messages(store_for: StoreFactory, clock: FakeClock) -> MessageFactory:
    def make(namespace: str = "test", **profile: Any) -> SimulatedMessageProvider:
        profile_ = SimulationProfile(**profile)
        return SimulatedMessageProvider(store_for(namespace), clock, profile_)

    return make


def call_request(key: str, to: str = GOOD_NUMBER) -> PlaceCallRequest:
    return PlaceCallRequest(idempotency_key=key, agent_id="agent-1", to=to, metadata={"k": key})


def whatsapp(key: str, to: str = GOOD_NUMBER) -> SendMessageRequest:
    return SendMessageRequest(idempotency_key=key, channel="whatsapp", to=to, body="Hello")


def final_record(provider: SimulatedVoiceProvider, key: str) -> CallRecord:
    placed = provider.place_call(call_request(key))
    assert placed.status == ProviderCallStatus.QUEUED
    return _record_far_ahead(provider, placed.id)


def _record_far_ahead(provider: SimulatedVoiceProvider, call_id: str) -> CallRecord:
    clock = provider._clock
    assert isinstance(clock, FakeClock)
    saved = clock.now
    clock.set(FAR_FUTURE)
    try:
        return provider.get_call(call_id)
    finally:
        clock.set(saved)


def outcome_of(record: CallRecord) -> str:
    return "voicemail" if record.voicemail else record.status


def popped_events(
    provider: SimulatedVoiceProvider | SimulatedMessageProvider,
) -> list[ProviderEvent]:
    """Every event due by FAR_FUTURE, parsed, in due order (batches of 500)."""
    events: list[ProviderEvent] = []
    while batch := provider.pop_due_events(FAR_FUTURE):
        events.extend(provider.parse_event(body) for body in batch)
    return events


OUTCOME_RATES = ("answer_rate", "busy_rate", "voicemail_rate", "no_answer_rate", "failure_rate")


def only(rate: str) -> dict[str, Any]:
    """Profile settings under which every call has the one outcome ``rate`` names."""
    return {**dict.fromkeys(OUTCOME_RATES, 0.0), rate: 1.0}


ANSWERED = only("answer_rate")


# --------------------------------------------------------------------------- profile


def test_profile_from_mapping_converts_lists_and_numbers() -> None:
    profile = SimulationProfile.from_mapping(
        {"seed": "7", "answer_rate": 1, "ring_seconds": [2, 4], "whatsapp_reply_rate": "0.5"}
    )

    assert profile.seed == 7
    assert profile.answer_rate == 1.0
    assert profile.ring_seconds == (2.0, 4.0)
    assert profile.whatsapp_reply_rate == 0.5


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"answer_rte": 0.5}, "answer_rte"),
        ({"busy_rate": 1.5}, "busy_rate"),
        ({"ring_seconds": [9, 3]}, "ring_seconds"),
        ({"ring_seconds": 4}, "ring_seconds"),
        ({"seed": True}, "seed"),
    ],
)
def test_profile_rejects_bad_settings_naming_them(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SimulationProfile.from_mapping(values)


def test_profile_needs_some_outcome_weight() -> None:
    zero: dict[str, Any] = dict.fromkeys(OUTCOME_RATES, 0.0)
    with pytest.raises(ValueError, match="outcome rates"):
        SimulationProfile(**zero)


# --------------------------------------------------------------------------- determinism


@needs_redis
def test_same_seed_and_key_give_the_same_call(make_voice: VoiceFactory) -> None:
    first, second = make_voice("a", seed=3), make_voice("b", seed=3)

    for n in range(30):
        one, two = final_record(first, f"key-{n}"), final_record(second, f"key-{n}")
        assert one.id != two.id
        assert replace(one, id="x") == replace(two, id="x")


@needs_redis
def test_different_seeds_differ_across_keys(make_voice: VoiceFactory) -> None:
    first, second = make_voice("a", seed=1), make_voice("b", seed=2)

    outcomes = [
        (outcome_of(final_record(first, f"k{n}")), outcome_of(final_record(second, f"k{n}")))
        for n in range(100)
    ]

    assert sum(a != b for a, b in outcomes) > 30


@needs_redis
def test_outcome_rates_match_the_profile(make_voice: VoiceFactory) -> None:
    provider = make_voice(seed=11)
    expected = {
        "completed": 0.45,
        "busy": 0.15,
        "voicemail": 0.15,
        "no_answer": 0.2,
        "failed": 0.05,
    }

    counts = Counter(outcome_of(final_record(provider, f"rate-{n}")) for n in range(2000))

    for outcome, rate in expected.items():
        assert counts[outcome] / 2000 == pytest.approx(rate, abs=0.035), outcome


@needs_redis
def test_label_weights_are_honoured(make_voice: VoiceFactory) -> None:
    provider = make_voice(seed=5, **ANSWERED, positive_rate=1, neutral_rate=0, negative_rate=0)

    record = final_record(provider, "label")

    assert record.analysis is not None
    assert record.analysis.sentiment == "positive"
    assert record.analysis.goal_score is not None
    assert 0.6 <= record.analysis.goal_score <= 1.0


# --------------------------------------------------------------------------- idempotency


@needs_redis
def test_repeated_key_returns_the_same_call_once(make_voice: VoiceFactory) -> None:
    provider = make_voice()

    first = provider.place_call(call_request("same"))
    again = provider.place_call(call_request("same"))

    assert again == first
    assert provider.ledger_count_by_key() == {"same": 1}
    assert len(provider.pop_due_events(FAR_FUTURE)) == 2  # ringing + final, not four


@needs_redis
@pytest.mark.usefixtures("redis_client")  # an empty test database
def test_racing_processes_place_one_call_per_key(redis_url: str, clock: FakeClock) -> None:
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def place() -> None:
        # Each thread its own client, like separate worker processes.
        voice, _ = build_simulated_providers(redis_url, clock, SimulationProfile(), "race")
        barrier.wait()
        ids.append(voice.place_call(call_request("raced")).id)

    threads = [threading.Thread(target=place) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    voice, _ = build_simulated_providers(redis_url, clock, SimulationProfile(), "race")
    assert len(ids) == 8
    assert len(set(ids)) == 1
    assert voice.ledger_count_by_key() == {"raced": 1}


@needs_redis
def test_ledger_records_each_placement(make_voice: VoiceFactory) -> None:
    provider = make_voice()

    record = provider.place_call(call_request("ledger"))

    assert provider.ledger() == [
        {
            "call_id": record.id,
            "idempotency_key": "ledger",
            "to": GOOD_NUMBER,
            "from_number": record.from_number,
            "placed_at": START.isoformat(),
        }
    ]


@needs_redis
def test_transient_errors_then_success_on_retry(make_voice: VoiceFactory) -> None:
    provider = make_voice(seed=2, transient_error_rate=0.5)
    failures = 0

    for n in range(100):
        for _try in range(30):
            try:
                provider.place_call(call_request(f"flaky-{n}"))
                break
            except TransientProviderError:
                failures += 1
        else:
            pytest.fail(f"flaky-{n} never succeeded")

    assert 60 < failures < 160  # about one failure per success at rate 0.5
    assert set(provider.ledger_count_by_key().values()) == {1}
    assert len(provider.ledger()) == 100


@needs_redis
def test_transient_errors_are_deterministic_per_try(make_voice: VoiceFactory) -> None:
    def first_tries(provider: SimulatedVoiceProvider) -> list[bool]:
        results = []
        for n in range(40):
            try:
                provider.place_call(call_request(f"t{n}"))
                results.append(True)
            except TransientProviderError:
                results.append(False)
        return results

    one = first_tries(make_voice("a", seed=9, transient_error_rate=0.5))
    two = first_tries(make_voice("b", seed=9, transient_error_rate=0.5))

    assert one == two
    assert True in one
    assert False in one


@needs_redis
@pytest.mark.parametrize("number", ["+15551230000", "+442071230000", "not a number"])
def test_invalid_number_is_a_permanent_error(make_voice: VoiceFactory, number: str) -> None:
    provider = make_voice()

    with pytest.raises(PermanentProviderError) as caught:
        provider.place_call(call_request("bad", to=number))

    assert caught.value.code == "invalid_number"
    assert provider.ledger() == []
    assert provider.pending_event_count() == 0


# --------------------------------------------------------------------------- get_call


@needs_redis
def test_get_call_follows_the_timeline(make_voice: VoiceFactory, clock: FakeClock) -> None:
    provider = make_voice(**ANSWERED)
    call_id = provider.place_call(call_request("timeline")).id
    final = _record_far_ahead(provider, call_id)
    assert final.ringing_at
    assert final.answered_at
    assert final.ended_at

    statuses = []
    for moment in (START, final.ringing_at, final.answered_at, final.ended_at):
        clock.set(moment - timedelta(milliseconds=1))
        statuses.append(provider.get_call(call_id).status)
    clock.set(final.ended_at)
    statuses.append(provider.get_call(call_id).status)

    assert statuses == ["queued", "queued", "ringing", "in_progress", "completed"]
    clock.set(final.ended_at - timedelta(seconds=1))
    live = provider.get_call(call_id)
    assert live.answered_at == final.answered_at
    assert live.ended_at is None
    assert live.analysis is None


@needs_redis
def test_answered_call_carries_billing_analysis_and_extraction(make_voice: VoiceFactory) -> None:
    record = final_record(make_voice(**ANSWERED), "answered")

    assert record.status == "completed"
    assert record.voicemail is False
    assert record.answered_at
    assert record.ended_at
    talk = (record.ended_at - record.answered_at).total_seconds()
    assert 30 <= talk <= 300
    assert record.billable_seconds == pytest.approx(talk, abs=1)
    assert record.billable_seconds is not None
    assert record.cost_millicents == 1200 * math.ceil(record.billable_seconds / 60)
    assert isinstance(record.cost_millicents, int)
    assert record.extraction is not None
    assert record.extraction["status"] == "completed"
    assert "data" in record.extraction
    assert record.extraction_status == "completed"
    assert record.analysis is not None
    assert record.analysis.sentiment in {"positive", "neutral", "negative"}
    assert record.analysis.summary_title


@pytest.mark.parametrize(
    ("rate", "status", "voicemail", "hangup"),
    [
        ("voicemail_rate", "completed", True, "voicemail"),
        ("no_answer_rate", "no_answer", False, "no_answer"),
        ("busy_rate", "busy", False, "busy"),
        ("failure_rate", "failed", False, "error"),
    ],
)
@needs_redis
def test_unanswered_outcomes(
    make_voice: VoiceFactory, rate: str, status: str, voicemail: bool, hangup: str
) -> None:
    provider = make_voice(**only(rate))

    record = final_record(provider, f"only-{rate}")

    assert (record.status, record.voicemail, record.hangup_reason) == (status, voicemail, hangup)
    assert record.answered_at is None
    assert record.analysis is None
    assert record.ended_at is not None
    if status == "failed":
        assert record.provider_error_code
        assert record.error_message
        assert record.ringing_at is None
    if not voicemail:
        assert (record.billable_seconds, record.cost_millicents) == (0, 0)


@needs_redis
def test_get_call_unknown_id_is_not_found(make_voice: VoiceFactory) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        make_voice().get_call("call_missing")

    assert caught.value.code == "not_found"


# --------------------------------------------------------------------------- events


@needs_redis
def test_pop_due_events_returns_only_due_events_once(
    make_voice: VoiceFactory, clock: FakeClock
) -> None:
    provider = make_voice(**ANSWERED)
    call_id = provider.place_call(call_request("due")).id
    final = _record_far_ahead(provider, call_id)
    assert final.ringing_at
    assert final.ended_at

    assert provider.pop_due_events(START) == []
    ringing = provider.pop_due_events(final.ringing_at)
    assert provider.pop_due_events(final.ringing_at) == []
    assert provider.pending_event_count() == 1
    ended = provider.pop_due_events(final.ended_at)

    assert [body["event_id"] for body in ringing] == [f"{call_id}:ringing"]
    assert [body["event_id"] for body in ended] == [f"{call_id}:completed"]
    assert provider.pending_event_count() == 0
    assert provider.parse_event(ended[0]).call == final


@needs_redis
def test_two_workers_popping_never_share_an_event(redis_url: str, clock: FakeClock) -> None:
    provider, _ = build_simulated_providers(redis_url, clock, SimulationProfile(), "pop")
    for n in range(300):
        provider.place_call(call_request(f"pop-{n}"))
    expected = provider.pending_event_count()
    taken: list[list[dict[str, Any]]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(index: int) -> None:
        voice, _ = build_simulated_providers(redis_url, clock, SimulationProfile(), "pop")
        barrier.wait()
        while batch := voice.pop_due_events(FAR_FUTURE, limit=7):
            taken[index].extend(batch)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [body["event_id"] for batch in taken for body in batch]
    assert len(ids) == expected
    assert len(set(ids)) == expected
    assert provider.pending_event_count() == 0


@needs_redis
def test_events_are_popped_in_due_order(make_voice: VoiceFactory) -> None:
    provider = make_voice()
    for n in range(20):
        provider.place_call(call_request(f"order-{n}"))

    times = [event.occurred_at for event in popped_events(provider)]

    assert times == sorted(times)


@needs_redis
def test_knobs_off_each_call_has_distinct_event_ids(make_voice: VoiceFactory) -> None:
    provider = make_voice()
    for n in range(50):
        provider.place_call(call_request(f"plain-{n}"))

    ids = [event.event_id for event in popped_events(provider)]

    assert len(ids) == len(set(ids))


@needs_redis
def test_duplicate_knob_delivers_the_final_event_twice(make_voice: VoiceFactory) -> None:
    provider = make_voice(**ANSWERED, duplicate_event_rate=1.0)
    call_id = provider.place_call(call_request("dup")).id

    ids = [event.event_id for event in popped_events(provider)]

    assert ids == [f"{call_id}:ringing", f"{call_id}:completed", f"{call_id}:completed"]


@needs_redis
def test_reorder_knob_delivers_ringing_after_the_final_event(make_voice: VoiceFactory) -> None:
    provider = make_voice(**ANSWERED, reorder_rate=1.0)
    call_id = provider.place_call(call_request("reorder")).id

    events = popped_events(provider)

    assert [event.event_id for event in events] == [f"{call_id}:completed", f"{call_id}:ringing"]


@needs_redis
def test_fault_knobs_never_change_outcomes(make_voice: VoiceFactory) -> None:
    plain = make_voice("plain", seed=4)
    faulty = make_voice("faulty", seed=4, duplicate_event_rate=0.5, reorder_rate=0.5)

    for n in range(40):
        one, two = final_record(plain, f"f{n}"), final_record(faulty, f"f{n}")
        assert replace(one, id="x") == replace(two, id="x")


# --------------------------------------------------------------------------- payloads


def _sample_call() -> CallRecord:
    return CallRecord(
        id="call_1",
        status="completed",
        to=GOOD_NUMBER,
        from_number="+15550100001",
        agent_id="agent-1",
        created_at=START,
        ringing_at=START + timedelta(seconds=2),
        answered_at=START + timedelta(seconds=9),
        ended_at=START + timedelta(seconds=99),
        duration_seconds=99.0,
        billable_seconds=90,
        cost_millicents=2400,
        extraction={"status": "completed", "data": {"interested": True}},
        extraction_status="completed",
        hangup_reason="customer_hangup",
        metadata={"attempt_id": "a1"},
        analysis=CallAnalysis(sentiment="positive", goal_score=0.8, follow_up_required=False),
    )


SAMPLE_EVENTS = [
    call_status_event(_sample_call()),
    call_status_event(CallRecord(id="call_2", status="queued", to=GOOD_NUMBER, created_at=START)),
    inbound_message_event(
        InboundMessage("whatsapp", GOOD_NUMBER, "STOP", "inb_1", in_reply_to="msg_1"), START
    ),
    message_status_event(MessageStatusUpdate("msg_1", "delivered"), START),
    message_status_event(MessageStatusUpdate("msg_2", "failed", error="blocked"), START),
]


@pytest.mark.parametrize("event", SAMPLE_EVENTS, ids=lambda event: event.event_id)
def test_event_payload_round_trips(event: ProviderEvent) -> None:
    assert parse_event_payload(event_payload(event)) == event


def test_call_event_ids_are_stable_per_call_and_status() -> None:
    event = call_status_event(_sample_call())

    assert event.event_id == "call_1:completed"
    assert event.occurred_at == START + timedelta(seconds=99)
    assert call_record_to_payload(_sample_call())["cost_millicents"] == 2400


def _call_body(**call_changes: Any) -> dict[str, Any]:
    body = event_payload(call_status_event(_sample_call()))
    body["call"].update(call_changes)
    return body


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"event_id": "e"}, "event: missing field 'type'"),
        ({"type": "call.ended"}, "event: field 'type' must be one of"),
        (_without(_call_body(), "event_id"), "call.status: missing field 'event_id'"),
        (_without(_call_body(), "occurred_at"), "call.status: missing field 'occurred_at'"),
        (_without(_call_body(), "call"), "call.status: missing field 'call'"),
        (_without(_call_body(), "call", "id"), "call.status: missing field 'id'"),
        (_call_body(status="ringin"), "call.status: field 'status' must be one of"),
        (_call_body(ended_at="yesterday"), "field 'ended_at' must be an ISO 8601"),
        (_call_body(cost_millicents=1.5), "field 'cost_millicents' must be a whole number"),
        (_call_body(duration_seconds="9"), "field 'duration_seconds' must be a number"),
        (_call_body(voicemail="yes"), "field 'voicemail' must be true or false"),
        (_call_body(analysis={"goal_score": "hi"}), "field 'analysis.goal_score'"),
        (_call_body(analysis=[1]), "field 'analysis' must be an object"),
        (
            _without(event_payload(SAMPLE_EVENTS[2]), "message", "from"),
            "message.inbound: missing field 'from'",
        ),
        (
            _without(event_payload(SAMPLE_EVENTS[3]), "message", "id"),
            "message.status: missing field 'id'",
        ),
        (
            {**event_payload(SAMPLE_EVENTS[3]), "message": {"id": "m", "status": "lost"}},
            "message.status: field 'status' must be one of",
        ),
    ],
)
def test_malformed_payloads_name_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("'", ".")):
        parse_event_payload(body)


def test_payload_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="event: payload must be an object"):
        parse_event_payload([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- messages


@needs_redis
def test_send_is_idempotent_per_key(make_messages: MessageFactory) -> None:
    provider = make_messages(whatsapp_reply_rate=1.0)

    first = provider.send(whatsapp("once"))
    again = provider.send(whatsapp("once"))

    assert first == again
    assert first.status == "sent"
    assert first.provider_message_id.startswith("msg_")
    assert [m["idempotency_key"] for m in provider.sent_messages()] == ["once"]
    assert provider.pending_event_count() == 2  # delivered + the reply, once


@needs_redis
@pytest.mark.usefixtures("redis_client")  # an empty test database
def test_racing_sends_send_once(redis_url: str, clock: FakeClock) -> None:
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def send() -> None:
        _, messages = build_simulated_providers(redis_url, clock, SimulationProfile(), "race")
        barrier.wait()
        ids.append(messages.send(whatsapp("raced")).provider_message_id)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    _, messages = build_simulated_providers(redis_url, clock, SimulationProfile(), "race")
    assert len(set(ids)) == 1
    assert len(messages.sent_messages()) == 1


@needs_redis
@pytest.mark.parametrize(
    ("channel", "to"), [("whatsapp", ""), ("whatsapp", "  "), ("email", ""), ("email", "nobody")]
)
def test_invalid_recipient_is_permanent(
    make_messages: MessageFactory, channel: str, to: str
) -> None:
    provider = make_messages()

    with pytest.raises(PermanentProviderError) as caught:
        provider.send(SendMessageRequest("bad", channel, to, "Hello"))

    assert caught.value.code == "invalid_recipient"
    assert provider.sent_messages() == []


@needs_redis
def test_unknown_channel_is_permanent(make_messages: MessageFactory) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        make_messages().send(SendMessageRequest("sms", "sms", GOOD_NUMBER, "Hello"))

    assert caught.value.code == "unsupported_channel"


@needs_redis
def test_whatsapp_reply_and_stop_rates(make_messages: MessageFactory) -> None:
    provider = make_messages(seed=8, whatsapp_reply_rate=0.3, stop_reply_rate=0.1)
    for n in range(2000):
        provider.send(whatsapp(f"wa-{n}"))

    replies = [e.inbound for e in popped_events(provider) if e.inbound is not None]

    assert len(replies) / 2000 == pytest.approx(0.3, abs=0.035)
    stops = sum(reply.text == STOP_REPLY for reply in replies)
    assert stops / len(replies) == pytest.approx(0.1, abs=0.04)
    assert {reply.text for reply in replies} == {STOP_REPLY, CALLBACK_REPLY, THANKS_REPLY}


@needs_redis
def test_reply_comes_from_the_recipient_after_delivery(
    make_messages: MessageFactory, clock: FakeClock
) -> None:
    provider = make_messages(whatsapp_reply_rate=1.0, stop_reply_rate=1.0)
    sent = provider.send(whatsapp("reply", to="+15557654321"))

    delivered, reply = popped_events(provider)

    assert delivered.message_status == MessageStatusUpdate(sent.provider_message_id, "delivered")
    assert delivered.event_id == f"{sent.provider_message_id}:delivered"
    assert reply.inbound is not None
    assert reply.inbound.from_address == "+15557654321"
    assert reply.inbound.text == STOP_REPLY
    assert reply.inbound.in_reply_to == sent.provider_message_id
    assert reply.event_id == f"{reply.inbound.provider_message_id}:inbound"
    assert START < delivered.occurred_at < reply.occurred_at


@needs_redis
def test_email_is_delivered_and_never_replied(make_messages: MessageFactory) -> None:
    provider = make_messages(whatsapp_reply_rate=1.0)
    email = SendMessageRequest("mail", "email", "ana@example.com", "Hi", subject="Hello")
    sent = provider.send(email)

    events = popped_events(provider)

    assert [event.kind for event in events] == ["message.status"]
    assert events[0].message_status == MessageStatusUpdate(sent.provider_message_id, "delivered")
    assert events[0].occurred_at - START <= timedelta(seconds=10)


@needs_redis
def test_same_key_gives_the_same_reply_decision(make_messages: MessageFactory) -> None:
    def replied_keys(provider: SimulatedMessageProvider) -> list[str]:
        sent = {provider.send(whatsapp(f"d{n}")).provider_message_id: f"d{n}" for n in range(60)}
        events = popped_events(provider)
        return sorted(sent[e.inbound.in_reply_to or ""] for e in events if e.inbound is not None)

    one = replied_keys(make_messages("a", seed=6))
    two = replied_keys(make_messages("b", seed=6))

    assert one == two
    assert one


@needs_redis
@pytest.mark.usefixtures("redis_client")  # an empty test database
def test_providers_share_one_event_queue(redis_url: str, clock: FakeClock) -> None:
    voice, messages = build_simulated_providers(redis_url, clock, SimulationProfile(), "shared")
    voice.place_call(call_request("c"))
    messages.send(whatsapp("m"))

    kinds = Counter(body["type"] for body in voice.pop_due_events(FAR_FUTURE))

    assert kinds["call.status"] == 2
    assert kinds["message.status"] == 1
    assert messages.pending_event_count() == 0


@needs_redis
def test_namespaces_are_isolated_and_clearable(make_voice: VoiceFactory) -> None:
    first, second = make_voice("one"), make_voice("two")
    first.place_call(call_request("iso"))

    assert second.ledger() == []
    assert second.pending_event_count() == 0
    assert first.clear() > 0
    assert first.ledger() == []
    assert first.pending_event_count() == 0


@needs_redis
def test_providers_satisfy_the_interfaces(redis_client: redis.Redis, clock: FakeClock) -> None:
    # mypy checks the assignments against the protocols; the asserts check the names.
    store = RedisSimulatorStore(redis_client)
    voice: VoiceProvider = SimulatedVoiceProvider(store, clock, SimulationProfile())
    messages: MessageProvider = SimulatedMessageProvider(store, clock, SimulationProfile())

    assert voice.name == messages.name == "simulated"


def test_a_batch_places_nothing_the_gate_holds_back(make_voice: VoiceFactory) -> None:
    voice = make_voice()
    answers = voice.place_calls(
        [call_request("k1"), call_request("k2"), call_request("k3")],
        lambda request: request.idempotency_key != "k2",
    )

    assert [type(a) for a in answers] == [CallRecord, NotSent, CallRecord]
    assert voice.ledger_count_by_key() == {"k1": 1, "k3": 1}


def test_a_batch_places_each_key_once_and_answers_in_request_order(
    make_voice: VoiceFactory,
) -> None:
    voice = make_voice()
    first = voice.place_calls([call_request("k1"), call_request("k2", to="not a number")])
    again = voice.place_calls([call_request("k3"), call_request("k1")])

    assert isinstance(first[0], CallRecord)
    assert isinstance(first[1], PermanentProviderError)
    assert first[1].code == "invalid_number"
    assert isinstance(again[1], CallRecord)
    assert again[1].id == first[0].id  # the key's earlier call, not a new one
    assert voice.ledger_count_by_key() == {"k1": 1, "k3": 1}
