"""Campaign lifecycle: every (status, action) pair."""

from __future__ import annotations

import pytest

from dialer.errors import CampaignStateError
from dialer.policies.lifecycle import Action, Transition, transition
from dialer.policies.vocabulary import CampaignStatus

DRAFT, RUNNING, PAUSED, DONE = (
    CampaignStatus.DRAFT,
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
    CampaignStatus.DONE,
)
ERROR = None

# Every pair: the new status, or ERROR when the action is refused.
TABLE: dict[tuple[CampaignStatus, Action], CampaignStatus | None] = {
    (DRAFT, Action.START): RUNNING,
    (RUNNING, Action.START): RUNNING,
    (PAUSED, Action.START): RUNNING,
    (DONE, Action.START): ERROR,
    (DRAFT, Action.PAUSE): ERROR,
    (RUNNING, Action.PAUSE): PAUSED,
    (PAUSED, Action.PAUSE): PAUSED,
    (DONE, Action.PAUSE): ERROR,
    (DRAFT, Action.RESUME): ERROR,
    (RUNNING, Action.RESUME): RUNNING,
    (PAUSED, Action.RESUME): RUNNING,
    (DONE, Action.RESUME): RUNNING,
    (DRAFT, Action.COMPLETE): DONE,
    (RUNNING, Action.COMPLETE): DONE,
    (PAUSED, Action.COMPLETE): DONE,
    (DONE, Action.COMPLETE): DONE,
    (DRAFT, Action.FINISH): ERROR,
    (RUNNING, Action.FINISH): DONE,
    (PAUSED, Action.FINISH): ERROR,
    (DONE, Action.FINISH): DONE,
}


def test_table_covers_every_pair() -> None:
    assert set(TABLE) == {(s, a) for s in CampaignStatus for a in Action}


@pytest.mark.parametrize(("current", "action"), list(TABLE))
def test_transition(current: CampaignStatus, action: Action) -> None:
    expected = TABLE[(current, action)]
    if expected is ERROR:
        with pytest.raises(CampaignStateError) as info:
            transition(current, action)
        assert info.value.current == current
        assert info.value.action == action
    else:
        assert transition(current, action) == Transition(expected, changed=expected != current)


@pytest.mark.parametrize(("current", "action"), [k for k, v in TABLE.items() if v is not ERROR])
def test_every_allowed_action_is_idempotent(current: CampaignStatus, action: Action) -> None:
    once = transition(current, action)
    twice = transition(once.new_status, action)
    assert twice == Transition(once.new_status, changed=False)


@pytest.mark.parametrize(
    ("current", "action", "message"),
    [
        (DONE, Action.START, "campaign is done and cannot be restarted; use resume"),
        (DRAFT, Action.RESUME, "use start"),
        (DRAFT, Action.PAUSE, "use start"),
    ],
)
def test_refusals_tell_the_user_what_to_do(
    current: CampaignStatus, action: Action, message: str
) -> None:
    with pytest.raises(CampaignStateError, match=message):
        transition(current, action)
