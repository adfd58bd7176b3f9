"""GET /calls and POST /calls/{attempt_id}/start-scheduled (seed 000), over real HTTP.

Attempts are written straight into the database with the fields each rule needs, in
two accounts, so every filter can be checked against a known answer and the other
account's rows can be shown never to leak. The builders here are shared with the
call-log and CLI tests.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from dialer.customers_csv import parse_customers
from dialer.policies.contact_rules import contact_rules
from dialer.policies.evidence import call_evidence
from dialer.policies.location import NO_LOCATION
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.window import CallWindow, LegalBound, WorkingHours
from dialer.policies.zones import resolve_contact_zones
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.calls_query import build_query, list_calls
from dialer.services.campaigns import create_campaign
from dialer.services.imports import import_customers
from models import Account, CallAttempt, Customer, Enrollment
from models.session import engine_for, transaction
from models.vocabulary import ATTEMPT_STATUSES, OPEN_ATTEMPT_STATUSES, OUTCOMES
from tests.integration.api_support import Api

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HEADER = "customer_id,name,surname,phone\n"
CALLER_IDS = {"Front": "+12125550199", "Back": "+12125550198"}


# --- builders (shared with test_api_call_logs and test_cli_calls) --------------------------


@dataclass
class World:
    """Two accounts' campaigns, customers and attempts, by label."""

    account_id: uuid.UUID
    other_account_id: uuid.UUID
    campaigns: dict[str, uuid.UUID] = field(default_factory=dict)
    agents: dict[str, uuid.UUID] = field(default_factory=dict)
    customers: dict[str, uuid.UUID] = field(default_factory=dict)
    attempts: dict[str, uuid.UUID] = field(default_factory=dict)

    def ids(self, *labels: str) -> set[str]:
        return {str(self.attempts[label]) for label in labels}


def make_campaign(
    url: str, account_id: uuid.UUID, name: str, agent: str, csv_rows: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """A campaign with its agent and enrolled customers; returns (campaign id, agent id)."""
    spec = CampaignSpec.model_validate(
        {
            "name": name,
            "agent": {
                "name": agent,
                "provider_agent_id": f"agt_{agent}",
                "phone_numbers": [CALLER_IDS[agent]],
            },
            "timezone": "UTC",
        }
    )
    with transaction(url) as session:
        campaign = create_campaign(
            session, session.get_one(Account, account_id), spec, LegalBound()
        )
        import_customers(
            session, campaign, parse_customers(io.StringIO(HEADER + csv_rows)), partial=False
        )
        return campaign.id, campaign.agent_id


def customer_uuid(url: str, account_id: uuid.UUID, external_id: str) -> uuid.UUID:
    with transaction(url) as session:
        return session.scalars(
            select(Customer.id).where(
                Customer.account_id == account_id, Customer.customer_id == external_id
            )
        ).one()


def add_attempt(
    url: str,
    campaign_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    attempt_no: int = 1,
    status: str = "completed",
    outcome: str | None = None,
    at: datetime = NOW,
    **columns: Any,
) -> uuid.UUID:
    """One attempt; ``at`` is when it was scheduled and, once it has ended, finished."""
    with transaction(url) as session:
        enrollment_id = session.scalars(
            select(Enrollment.id).where(
                Enrollment.campaign_id == campaign_id, Enrollment.customer_id == customer_id
            )
        ).one()
        attempt = CallAttempt(
            enrollment_id=enrollment_id,
            campaign_id=campaign_id,
            customer_id=customer_id,
            attempt_no=attempt_no,
            status=status,
            outcome=outcome,
            idempotency_key=f"{enrollment_id}:{attempt_no}",
            scheduled_at=at,
            finished_at=None if status in OPEN_ATTEMPT_STATUSES else at,
            created_at=at - timedelta(minutes=5),
            **columns,
        )
        session.add(attempt)
        session.flush()
        return attempt.id


def build_world(url: str, account_id: uuid.UUID | None = None) -> World:
    """Account A: campaign Spring (agent "Front": Ann, Bob, Cy, Dee) and Autumn (agent
    "Back": Bob again, Eve); account B: its own Spring with a namesake Ann."""
    with transaction(url) as session:
        other = get_or_create_account(session, f"other-{uuid.uuid4().hex[:8]}").id
        mine = account_id or get_or_create_account(session, f"mine-{uuid.uuid4().hex[:8]}").id
    world = World(account_id=mine, other_account_id=other)
    world.campaigns["spring"], world.agents["front"] = make_campaign(
        url,
        mine,
        "Spring",
        "Front",
        "c1,Ann,Smith,+12125550101\nc2,Bob,Jones,+12125550102\n"
        "c3,Cy,Young,+12125550103\nc4,Dee,,+12125550104\n",
    )
    world.campaigns["autumn"], world.agents["back"] = make_campaign(
        url, mine, "Autumn", "Back", "c2,Bob,Jones,+12125550102\nc5,Eve,Stone,+12125550105\n"
    )
    for ref in ("c1", "c2", "c3", "c4", "c5"):
        world.customers[ref] = customer_uuid(url, mine, ref)
    _add_mine(url, world)
    _add_others(url, world)
    return world


def _add_mine(url: str, world: World) -> None:
    spring, autumn, cust = world.campaigns["spring"], world.campaigns["autumn"], world.customers
    world.attempts["a1"] = add_attempt(
        url, spring, cust["c1"], outcome="answered", at=NOW - 3 * DAY, conv_id="conv-aaa",
        duration_seconds=Decimal("42.50"), external_from="+12125550199",
        external_to="+12125550101", provider_status="completed", hangup_reason="customer_hangup",
        ringing_at=NOW - 3 * DAY - timedelta(seconds=50), ended_at=NOW - 3 * DAY,
        dispatched_at=NOW - 3 * DAY - timedelta(minutes=1),
    )  # fmt: skip
    world.attempts["a2"] = add_attempt(
        url, spring, cust["c2"], outcome="no_answer", at=NOW - 2 * DAY, conv_id="conv-bbb",
        duration_seconds=Decimal("0"), external_from="+12125550198", provider_status="no_answer",
    )  # fmt: skip
    world.attempts["a3"] = add_attempt(
        url, spring, cust["c2"], attempt_no=2, status="pending", at=NOW + timedelta(hours=1)
    )
    world.attempts["a4"] = add_attempt(
        url, spring, cust["c3"], status="failed", outcome="failed", at=NOW - DAY,
        last_error="provider refused: invalid number",
    )  # fmt: skip
    world.attempts["a5"] = add_attempt(
        url, spring, cust["c4"], status="in_progress", at=NOW - timedelta(minutes=15),
        dispatched_at=NOW - timedelta(minutes=10), conv_id="conv-ccc",
        external_from="+12125550199", external_to="+12125550104", provider_status="ringing",
        duration_seconds=Decimal("7"),
    )  # fmt: skip
    world.attempts["a6"] = add_attempt(
        url, autumn, cust["c2"], status="canceled", outcome="canceled", at=NOW - 5 * DAY
    )
    world.attempts["a7"] = add_attempt(
        url, autumn, cust["c5"], outcome="voicemail", at=NOW - 4 * DAY, conv_id="conv-ddd"
    )


def _add_others(url: str, world: World) -> None:
    other = world.other_account_id
    campaign, world.agents["other"] = make_campaign(
        url, other, "Spring", "Front", "c1,Ann,Smith,+12125550101\nc9,Zed,Other,+12125550109\n"
    )
    world.campaigns["other"] = campaign
    world.attempts["b1"] = add_attempt(
        url, campaign, customer_uuid(url, other, "c1"), outcome="answered", at=NOW - 3 * DAY,
        conv_id="conv-aaa-other",
    )  # fmt: skip
    world.attempts["b2"] = add_attempt(
        url, campaign, customer_uuid(url, other, "c9"), status="pending", at=NOW - DAY
    )


MINE = ("a1", "a2", "a3", "a4", "a5", "a6", "a7")


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api.database_url)


@pytest.fixture
def http(api: Api, world: World) -> Iterator[httpx.Client]:
    with api.client(api.key(world.account_id)) as client:
        yield client


def listed(http: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = http.get("/calls", params={"limit": 200, **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ids_of(body: dict[str, Any]) -> list[str]:
    return [row["attempt"]["id"] for row in body["data"]]


def assert_refused(
    answer: httpx.Response, status: int, code: str, field: str | None = None
) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code
    assert body["statusCode"] == status
    assert body["request_id"]
    if field is not None:
        assert [d["field"] for d in body["details"]] == [field]


def scheduled_at_of(api: Api, attempt_id: uuid.UUID) -> datetime:
    with transaction(api.database_url) as session:
        return session.get_one(CallAttempt, attempt_id).scheduled_at


# --- authentication -----------------------------------------------------------------------


def test_listing_without_a_key_is_401(api: Api) -> None:
    with api.client() as anonymous:
        assert_refused(anonymous.get("/calls"), 401, "api_key_invalid")


def test_listing_needs_the_calls_read_scope(api: Api) -> None:
    caller = api.as_new_account(["campaigns:read", "calls:write"])
    answer = caller.http.get("/calls")
    assert_refused(answer, 403, "insufficient_scope")
    assert "calls:read" in answer.json()["message"]


# --- the answer's shape -------------------------------------------------------------------


def test_a_row_holds_the_attempt_its_customer_and_the_customers_campaigns(
    http: httpx.Client, world: World
) -> None:
    body = listed(http, customer_id=str(world.customers["c2"]), sort_field="scheduled_at")
    assert set(body) == {"data", "meta", "query", "aggregations"}
    row = next(r for r in body["data"] if r["attempt"]["id"] == str(world.attempts["a2"]))
    attempt, customer = row["attempt"], row["customer"]
    assert attempt["status"] == "completed"
    assert attempt["outcome"] == "no_answer"
    assert attempt["conv_id"] == "conv-bbb"
    assert attempt["attempt_no"] == 1
    assert attempt["delivery_attempts"] == 0
    assert attempt["messages_count"] == 0
    assert attempt["duration_seconds"] == 0
    assert attempt["direction"] == "outbound"
    assert attempt["voicemail_action"] is None  # no policy: the agent's own setting
    assert attempt["evidence"] is None  # never dialed by dispatch: nothing recorded
    assert attempt["campaign"] == {"id": str(world.campaigns["spring"]), "name": "Spring"}
    assert datetime.fromisoformat(attempt["scheduled_at"]) == NOW - 2 * DAY
    assert {"created_at", "updated_at", "finished_at", "dispatched_at"} <= set(attempt)
    assert customer["id"] == str(world.customers["c2"])
    assert (customer["customer_id"], customer["name"], customer["surname"]) == (
        "c2",
        "Bob",
        "Jones",
    )
    assert customer["phone"] == "+12125550102"
    assert row["campaigns"] == [
        {"id": str(world.campaigns["autumn"]), "name": "Autumn"},
        {"id": str(world.campaigns["spring"]), "name": "Spring"},
    ]


def test_a_dialed_call_shows_the_evidence_of_why_it_was_allowed(
    api: Api, http: httpx.Client, world: World
) -> None:
    window = CallWindow(WorkingHours.create(time(9), time(21)), LegalBound())
    rules = contact_rules(window, NO_LOCATION, "+13055550123", NOW, PACKS)
    record = call_evidence(
        zones=resolve_contact_zones(None, "+13055550123", "UTC"),
        rules=rules,
        checked_at=NOW,
        margin=timedelta(seconds=5),
        calls_in_cap_period=0,
        suppression_checked_at=NOW,
    )
    with transaction(api.database_url) as session:
        session.get_one(CallAttempt, world.attempts["a2"]).evidence = record
    body = listed(http, customer_id=str(world.customers["c2"]))
    row = next(r for r in body["data"] if r["attempt"]["id"] == str(world.attempts["a2"]))
    evidence = row["attempt"]["evidence"]
    assert evidence["zones"] == ["America/New_York"]
    assert evidence["jurisdiction"]["subdivision"] == "FL"
    assert [label.split("@")[0] for label in evidence["rule_packs"]] == ["us", "us-fl"]
    assert evidence["window"]["legal_bound"] == "08:00-20:00"


def test_defaults_are_ten_rows_newest_first(http: httpx.Client, world: World) -> None:
    answer = http.get("/calls")
    assert answer.status_code == 200
    body = answer.json()
    assert body["meta"] == {
        "total": 7,
        "limit": 10,
        "offset": 0,
        "sort": {"field": "created_at", "direction": "desc"},
    }
    created = [row["attempt"]["created_at"] for row in body["data"]]
    assert created == sorted(created, reverse=True)
    assert body["aggregations"] is None
    assert body["query"]["filters"] == {}


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", ("a1", "a2", "a7")),
        ("completed,failed", ("a1", "a2", "a4", "a7")),
        (" Pending , in_progress ", ("a3", "a5")),
        ("canceled", ("a6",)),
    ],
)
def test_status_filter_takes_comma_separated_words(
    http: httpx.Client, world: World, status: str, expected: tuple[str, ...]
) -> None:
    body = listed(http, status=status)
    assert set(ids_of(body)) == world.ids(*expected)
    assert body["meta"]["total"] == len(expected)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("null", ("a3", "a5")),
        ("answered", ("a1",)),
        ("null,answered", ("a1", "a3", "a5")),
        ("no_answer,NULL,voicemail", ("a2", "a3", "a5", "a7")),
        ("busy", ()),
    ],
)
def test_outcome_filter_accepts_null_alone_or_mixed(
    http: httpx.Client, world: World, outcome: str, expected: tuple[str, ...]
) -> None:
    body = listed(http, outcome=outcome)
    assert set(ids_of(body)) == world.ids(*expected)
    assert body["meta"]["total"] == len(expected)


def test_the_query_echo_shows_the_filters_as_understood(http: httpx.Client) -> None:
    body = listed(http, status="completed,completed", outcome="null,answered", q="  ann ")
    assert body["query"]["filters"] == {"status": ["completed"], "outcome": ["null", "answered"]}
    assert body["query"]["q"] == "ann"


@pytest.mark.parametrize(("name", "value"), [("status", "done"), ("outcome", "nil,answered")])
def test_an_unknown_word_is_refused_by_name(http: httpx.Client, name: str, value: str) -> None:
    answer = http.get("/calls", params={name: value})
    assert_refused(answer, 422, "validation_error", name)
    assert value.split(",")[0] in answer.json()["details"][0]["reason"]


def test_campaign_filter_keeps_customers_enrolled_in_it(http: httpx.Client, world: World) -> None:
    autumn = listed(http, campaign_id=str(world.campaigns["autumn"]))
    # Bob (c2) is enrolled in Autumn: his Spring attempts are listed too (seed 000).
    assert set(ids_of(autumn)) == world.ids("a2", "a3", "a6", "a7")
    spring = listed(http, campaign_id=str(world.campaigns["spring"]))
    assert set(ids_of(spring)) == world.ids("a1", "a2", "a3", "a4", "a5", "a6")


def test_another_accounts_campaign_lists_nothing(http: httpx.Client, world: World) -> None:
    body = listed(http, campaign_id=str(world.campaigns["other"]), include_aggregations=True)
    assert body["data"] == []
    assert body["meta"]["total"] == 0
    assert body["aggregations"]["extra"]["total"] == 0


def test_customer_filter(http: httpx.Client, world: World) -> None:
    body = listed(http, customer_id=str(world.customers["c2"]))
    assert set(ids_of(body)) == world.ids("a2", "a3", "a6")


def test_a_malformed_uuid_filter_is_422(http: httpx.Client) -> None:
    assert_refused(http.get("/calls", params={"campaign_id": "x"}), 422, "validation_error")
    answer = http.get("/calls", params={"customer_id": "nope"})
    assert_refused(answer, 422, "validation_error", "customer_id")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ann", ("a1",)),  # name, any case
        ("JONES", ("a2", "a3", "a6")),  # surname
        ("5550103", ("a4",)),  # phone
        ("+1212555010", MINE),  # every phone of account A, none of B's namesake
        ("c5", ("a7",)),  # the customer's own id
        ("CONV-BBB", ("a2",)),  # the provider's call id
        ("conv-aaa", ("a1",)),  # B's "conv-aaa-other" stays B's
        ("%", ()),  # a LIKE wildcard is a character to find
        ("zed", ()),  # B's customer
    ],
)
def test_q_searches_every_documented_field(
    http: httpx.Client, world: World, q: str, expected: tuple[str, ...]
) -> None:
    body = listed(http, q=q)
    assert set(ids_of(body)) == world.ids(*expected)
    assert body["meta"]["total"] == len(expected)


def test_date_range_is_on_the_latest_activity(http: httpx.Client, world: World) -> None:
    body = listed(
        http,
        date_from=(NOW - 3 * DAY - timedelta(hours=1)).isoformat(),
        date_to=(NOW - DAY).isoformat(),  # inclusive
    )
    assert set(ids_of(body)) == world.ids("a1", "a2", "a4")
    # a5 was scheduled 15 minutes ago but dispatched 10 minutes ago: its activity is later.
    recent = listed(http, date_from=(NOW - timedelta(minutes=12)).isoformat())
    assert set(ids_of(recent)) == world.ids("a3", "a5")


def test_a_bare_date_to_includes_that_whole_day(http: httpx.Client, world: World) -> None:
    body = listed(http, date_from="2026-11-20", date_to="2026-11-22")
    assert set(ids_of(body)) == world.ids("a1", "a2", "a4")
    assert body["query"]["date_to"].startswith("2026-11-22T23:59:59.999999")
    naive = listed(http, date_from="2026-11-23T11:00:00")  # no offset: UTC
    assert set(ids_of(naive)) == world.ids("a3", "a5")


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "2026-13-01"}, "date_to"),
        ({"date_from": "2026-11-23", "date_to": "2026-11-22"}, "date_to"),
    ],
)
def test_bad_dates_are_refused_by_name(
    http: httpx.Client, params: dict[str, str], field_name: str
) -> None:
    assert_refused(http.get("/calls", params=params), 422, "validation_error", field_name)


def test_filters_combine(http: httpx.Client, world: World) -> None:
    body = listed(
        http,
        status="completed",
        outcome="no_answer,voicemail",
        campaign_id=str(world.campaigns["autumn"]),
    )
    assert set(ids_of(body)) == world.ids("a2", "a7")


# --- sorting and paging -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("asc", ["a6", "a7", "a1", "a2", "a4", "a5", "a3"]),
        ("desc", ["a3", "a5", "a4", "a2", "a1", "a7", "a6"]),
    ],
)
def test_sort_in_both_directions(
    http: httpx.Client, world: World, direction: str, expected: list[str]
) -> None:
    body = listed(http, sort_field="scheduled_at", sort_dir=direction)
    assert ids_of(body) == [str(world.attempts[label]) for label in expected]
    assert body["meta"]["sort"] == {"field": "scheduled_at", "direction": direction}
    assert body["query"]["sort"] == body["meta"]["sort"]


def test_rows_without_the_sort_value_come_last_either_way(http: httpx.Client, world: World) -> None:
    for direction in ("asc", "desc"):
        body = listed(http, sort_field="finished_at", sort_dir=direction)
        assert set(ids_of(body)[-2:]) == world.ids("a3", "a5")  # not finished


def test_sort_by_latest_activity(http: httpx.Client, world: World) -> None:
    body = listed(http, sort_field="last_activity_at", sort_dir="desc")
    expected = ["a3", "a5", "a4", "a2", "a1", "a7", "a6"]
    assert ids_of(body) == [str(world.attempts[label]) for label in expected]


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"sort_field": "conv_id; DROP TABLE call_attempts"}, "sort_field"),
        ({"sort_field": "name"}, "sort_field"),
        ({"sort_dir": "up"}, "sort_dir"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**63}, "offset"),  # past what PostgreSQL's OFFSET can hold
        ({"q": "a\x00b"}, "q"),  # PostgreSQL text cannot hold NUL
    ],
)
def test_bad_paging_and_sorting_are_refused_by_name(
    http: httpx.Client, params: dict[str, Any], field_name: str
) -> None:
    answer = http.get("/calls", params=params)
    assert_refused(answer, 422, "validation_error", field_name)
    assert answer.json()["message"].startswith(field_name)


def test_limit_bounds_are_inclusive(http: httpx.Client) -> None:
    assert len(listed(http, limit=1)["data"]) == 1
    assert len(listed(http, limit=200)["data"]) == 7


def test_pages_walk_the_whole_set_once(http: httpx.Client, world: World) -> None:
    seen: list[str] = []
    for offset in (0, 3, 6):
        body = listed(http, limit=3, offset=offset, sort_field="scheduled_at", sort_dir="asc")
        assert body["meta"]["total"] == 7
        assert body["meta"]["offset"] == offset
        seen += ids_of(body)
    assert seen == [
        str(world.attempts[label]) for label in ("a6", "a7", "a1", "a2", "a4", "a5", "a3")
    ]


def test_offset_past_the_end_is_empty_with_the_right_total(http: httpx.Client) -> None:
    body = listed(http, offset=50, status="completed")
    assert body["data"] == []
    assert body["meta"]["total"] == 3


def test_a_page_costs_a_fixed_number_of_queries(api: Api, world: World) -> None:
    """Page, count, the page customers' campaigns, and the aggregation only when asked:
    never one query per row."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = engine_for(api.database_url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        with transaction(api.database_url) as session:
            full = list_calls(session, world.account_id, build_query(limit=3))
            last = list_calls(session, world.account_id, build_query(limit=200))
            counted = len(statements)
            list_calls(session, world.account_id, build_query(include_aggregations=True))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert (len(full.rows), full.total, len(last.rows), last.total) == (3, 7, 7, 7)
    # limit=3: page + count + campaigns; limit=200: the short page tells the total.
    assert counted == 3 + 2
    assert len(statements) == counted + 2 + 1  # the aggregation: one more


# --- aggregations -------------------------------------------------------------------------


def test_aggregations_count_the_filtered_set_per_status_and_outcome(
    http: httpx.Client, world: World
) -> None:
    body = listed(http, include_aggregations=True, campaign_id=str(world.campaigns["spring"]))
    aggregations = body["aggregations"]
    assert aggregations["extra"]["total"] == 6
    assert aggregations["extra"]["status"] == {
        **dict.fromkeys(ATTEMPT_STATUSES, 0),
        "completed": 2,
        "pending": 1,
        "failed": 1,
        "in_progress": 1,
        "canceled": 1,
    }
    assert aggregations["extra"]["outcome"] == {
        **dict.fromkeys(OUTCOMES, 0),
        "null": 2,
        "answered": 1,
        "no_answer": 1,
        "failed": 1,
        "canceled": 1,
    }
    quick = aggregations["quick_filters"]
    assert quick["status=completed"] == 2
    assert quick["outcome=null"] == 2
    assert quick["outcome=voicemail"] == 0  # a7 is Eve's, who is not in Spring


def test_aggregations_cover_the_whole_filtered_set_not_the_page(http: httpx.Client) -> None:
    body = listed(http, include_aggregations=True, limit=1, outcome="null,answered")
    quick = body["aggregations"]["quick_filters"]
    assert len(body["data"]) == 1
    assert quick["outcome=null"] == 2
    assert quick["outcome=answered"] == 1  # B's answered call is not counted
    assert sum(v for k, v in quick.items() if k.startswith("status=")) == 3


# --- isolation ----------------------------------------------------------------------------


def test_another_accounts_calls_never_appear(api: Api, http: httpx.Client, world: World) -> None:
    mine = listed(http, include_aggregations=True)
    assert set(ids_of(mine)) == world.ids(*MINE)
    assert mine["meta"]["total"] == 7
    assert mine["aggregations"]["extra"]["total"] == 7
    with api.client(api.key(world.other_account_id)) as theirs:
        body = listed(theirs, include_aggregations=True)
    assert set(ids_of(body)) == world.ids("b1", "b2")
    assert body["aggregations"]["quick_filters"]["status=pending"] == 1
    assert all(row["campaigns"][0]["id"] == str(world.campaigns["other"]) for row in body["data"])


def test_a_new_account_sees_nothing(api: Api, world: World) -> None:
    stranger = api.as_new_account()
    body = listed(stranger.http, include_aggregations=True, q="ann")
    assert body["data"] == []
    assert body["meta"]["total"] == 0
    assert set(body["aggregations"]["quick_filters"].values()) == {0}


# --- start-scheduled ----------------------------------------------------------------------


def test_start_scheduled_moves_a_pending_attempt_to_now(
    api: Api, http: httpx.Client, world: World
) -> None:
    before = datetime.now(UTC)
    answer = http.post(f"/calls/{world.attempts['a3']}/start-scheduled")
    assert answer.status_code == 200, answer.text
    attempt = answer.json()
    assert attempt["id"] == str(world.attempts["a3"])
    assert attempt["status"] == "pending"
    assert attempt["campaign"] == {"id": str(world.campaigns["spring"]), "name": "Spring"}
    scheduled = datetime.fromisoformat(attempt["scheduled_at"])
    assert before - timedelta(seconds=1) <= scheduled <= datetime.now(UTC)
    assert scheduled_at_of(api, world.attempts["a3"]) == scheduled


@pytest.mark.parametrize("label", ["a1", "a4", "a5", "a6"])
def test_start_scheduled_refuses_an_attempt_that_is_not_pending(
    api: Api, http: httpx.Client, world: World, label: str
) -> None:
    before = scheduled_at_of(api, world.attempts[label])
    answer = http.post(f"/calls/{world.attempts[label]}/start-scheduled")
    assert_refused(answer, 409, "conflict")
    assert "pending" in answer.json()["message"]
    assert scheduled_at_of(api, world.attempts[label]) == before


@pytest.mark.parametrize("attempt", ["b2", "unknown"])
def test_start_scheduled_of_another_accounts_or_an_unknown_attempt_is_404(
    api: Api, http: httpx.Client, world: World, attempt: str
) -> None:
    attempt_id = world.attempts.get(attempt, uuid.uuid4())
    assert_refused(http.post(f"/calls/{attempt_id}/start-scheduled"), 404, "not_found")
    assert scheduled_at_of(api, world.attempts["b2"]) == NOW - DAY


def test_start_scheduled_of_a_malformed_id_is_422(http: httpx.Client) -> None:
    answer = http.post("/calls/not-a-uuid/start-scheduled")
    assert_refused(answer, 422, "validation_error", "attempt_id")


def test_start_scheduled_needs_the_calls_write_scope(api: Api, world: World) -> None:
    with api.client(api.key(world.account_id, ["calls:read"])) as reader:
        answer = reader.post(f"/calls/{world.attempts['a3']}/start-scheduled")
    assert_refused(answer, 403, "insufficient_scope")
    assert "calls:write" in answer.json()["message"]
    with api.client() as anonymous:
        answer = anonymous.post(f"/calls/{world.attempts['a3']}/start-scheduled")
    assert_refused(answer, 401, "api_key_invalid")


def test_the_openapi_document_matches_seed_000(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    listing = document["paths"]["/calls"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "status",
        "outcome",
        "campaign_id",
        "customer_id",
        "limit",
        "offset",
        "q",
        "sort_field",
        "sort_dir",
        "include_aggregations",
        "date_from",
        "date_to",
    }
    answer = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/PaginatedResponse_CallWithContextOut_"}
    start = document["paths"]["/calls/{attempt_id}/start-scheduled"]["post"]
    answer = start["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/CallAttemptOut"}
    schemas = document["components"]["schemas"]
    for name in ("CallWithContextOut", "CustomerOut", "CampaignRef", "QueryOut", "AggregationsOut"):
        assert name in schemas  # under the seed's name, not a module-qualified one
