"""The pipeline loads only some columns of attempts and enrollments; reading another
must not go row by row.

batch_reads.RESULT_COLUMNS, batch_reads.DECISION_COLUMNS and dispatch.DISPATCH_COLUMNS
name what the hot paths read.
A column read there but missing from the list is still correct, but SQLAlchemy fetches
it with one query per row (``WHERE call_attempts.id = %(pk_1)s``), which turns a batch
of a thousand results into a thousand round trips. This test runs campaigns through
every branch (answers with analysis, retries, fallback, goals met, failures, transient
provider errors) and fails on any such per-row load.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.pipeline_support import (
    MONDAY_6_UTC,
    attempts_of,
    campaign_status,
    make_driver,
    setup_campaign,
    start,
)

BY_KEY = re.compile(r"FROM (call_attempts|enrollments)\s+WHERE \1\.id = %\(pk_1\)s")


def is_deferred_load(statement: str) -> bool:
    """A deferred column's load: by primary key, without the key in its select list
    (a session.get of the whole row, which the message paths do, selects the key)."""
    found = BY_KEY.search(statement)
    return found is not None and f"{found[1]}.id," not in statement[: found.start()]


@pytest.mark.parametrize(
    "spec",
    [
        {},  # no goal objectives
        {
            "goal_spec": {
                "objectives": [
                    {"type": "ai", "label_in": ["positive"], "min_score": 0.5},
                    {"type": "contact", "channels": ["whatsapp"]},
                ]
            },
            "goal_logic": "any",
        },
    ],
    ids=["no-goal", "ai-or-whatsapp-reply-goal"],
)
def test_no_attempt_is_loaded_row_by_row(
    clean_db: str, redis_url: str, statements: list[str], spec: dict[str, Any]
) -> None:
    campaign_id = setup_campaign(clean_db, spec)
    driver = make_driver(
        clean_db,
        redis_url,
        {
            "answer_rate": 0.4,
            "voicemail_rate": 0.2,
            "no_answer_rate": 0.2,
            "busy_rate": 0.1,
            "failure_rate": 0.1,
            "transient_error_rate": 0.2,
        },
    )
    start(clean_db, campaign_id, MONDAY_6_UTC)
    driver.run_until(
        lambda: campaign_status(clean_db, campaign_id) == "done", timedelta(minutes=10), 1000
    )

    attempts = attempts_of(clean_db, campaign_id)
    outcomes = {attempt.outcome for attempt in attempts}
    assert {"answered", "no_answer"} <= outcomes  # the branches above really ran
    assert any(attempt.attempt_no > 1 for attempt in attempts)
    row_by_row = [s for s in statements if is_deferred_load(s)]
    assert row_by_row == [], row_by_row[:3]
