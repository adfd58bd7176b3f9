"""Campaign lifecycle transitions (seed 002 campaign execution, GUIDE section 3).

==========  ==========  ==========  ==========  ==========
action      draft       running     paused      done
==========  ==========  ==========  ==========  ==========
start       running     (no-op)     running     error
pause       error       paused      (no-op)     error
resume      error       (no-op)     running     running
complete    done        done        done        (no-op)
finish      error       done        error       (no-op)
==========  ==========  ==========  ==========  ==========

No-ops make every action safe to repeat (a retried request, a second beat tick).
``resume`` on a running campaign keeps it running; the service still adds the
segment's targets. ``finish`` is the automatic completion when every enrollment is
closed, so it only applies to a running campaign: a paused campaign waits for its
user.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dialer.errors import CampaignStateError
from dialer.policies.vocabulary import CampaignStatus


class Action(StrEnum):
    """What a user (or the dialer itself, for ``finish``) asks of a campaign."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    FINISH = "finish"


@dataclass(frozen=True, slots=True)
class Transition:
    """The campaign's status after the action; ``changed`` is False for a no-op."""

    new_status: CampaignStatus
    changed: bool


_DRAFT = CampaignStatus.DRAFT
_RUNNING = CampaignStatus.RUNNING
_PAUSED = CampaignStatus.PAUSED
_DONE = CampaignStatus.DONE

# (current, action) -> new status. A pair missing here is an error (see _REFUSALS).
_ALLOWED: dict[tuple[CampaignStatus, Action], CampaignStatus] = {
    (_DRAFT, Action.START): _RUNNING,
    (_RUNNING, Action.START): _RUNNING,
    (_PAUSED, Action.START): _RUNNING,
    (_RUNNING, Action.PAUSE): _PAUSED,
    (_PAUSED, Action.PAUSE): _PAUSED,
    (_RUNNING, Action.RESUME): _RUNNING,
    (_PAUSED, Action.RESUME): _RUNNING,
    (_DONE, Action.RESUME): _RUNNING,
    (_DRAFT, Action.COMPLETE): _DONE,
    (_RUNNING, Action.COMPLETE): _DONE,
    (_PAUSED, Action.COMPLETE): _DONE,
    (_DONE, Action.COMPLETE): _DONE,
    (_RUNNING, Action.FINISH): _DONE,
    (_DONE, Action.FINISH): _DONE,
}

# Messages that tell the user what to do instead; the API shows them with a 400.
_REFUSALS: dict[tuple[CampaignStatus, Action], str] = {
    (_DONE, Action.START): "campaign is done and cannot be restarted; use resume",
    (_DRAFT, Action.PAUSE): "campaign is a draft and is not running; use start",
    (_DONE, Action.PAUSE): "campaign is done and cannot be paused",
    (_DRAFT, Action.RESUME): "campaign is a draft and has never run; use start",
    (_DRAFT, Action.FINISH): "campaign is a draft and has never run",
    (_PAUSED, Action.FINISH): "campaign is paused; only a running campaign finishes by itself",
}


def transition(current: CampaignStatus, action: Action) -> Transition:
    """The campaign's next status, or CampaignStateError when the action is refused."""
    new_status = _ALLOWED.get((current, action))
    if new_status is None:
        raise CampaignStateError(current, action, _REFUSALS.get((current, action)))
    return Transition(new_status, changed=new_status is not current)
