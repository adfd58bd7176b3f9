"""When a held (``uncertain``) placement is looked up again, and when it ends.

A placement whose answer was lost, and which no lookup found, may or may not have
rung the customer. It is held, never re-sent, and looked up at the provider on a
back-off that grows with its age (half its age so far, between 1/720 and 1/12 of
the deadline: with the 3 h default, 15 s to 15 min). The back-off is a fraction of
the deadline, so it reads the same on the demo's fast clock. At the deadline a
placed call has sent its webhooks long ago (the deadline outlasts the longest
call), so no trace by then means the call was not placed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MIN_WAIT_SHARE = 1 / 720
MAX_WAIT_SHARE = 1 / 12


def uncertain_expired(held_since: datetime, now: datetime, deadline: timedelta) -> bool:
    """True once the held placement has had its whole deadline to show a trace."""
    return now >= held_since + deadline


def next_uncertain_check(held_since: datetime, now: datetime, deadline: timedelta) -> datetime:
    """When to look the call up next: later as it ages, never past the deadline."""
    age = max(now - held_since, timedelta(0))
    wait = min(max(age / 2, deadline * MIN_WAIT_SHARE), deadline * MAX_WAIT_SHARE)
    return min(now + wait, held_since + deadline)
