"""Share a scarce claim budget fairly: accounts first, then the campaigns of each account.

When the provider's rate limit or the workers are the bottleneck, the scan may hand
out only so many claims per tick. Max-min fairness (water-filling) splits them: every
account with due work gets an equal share, an account that needs less than its share
gives the rest to the others; inside an account its campaigns share the same way. So
one tenant's 1M-contact campaign takes what the others leave, and a 50-contact
campaign of another tenant is served in its first tick. An account's concurrency cap
(its calls in flight across all of its campaigns) bounds its demand before sharing.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Demand:
    """How many claims a campaign could use this tick (its slots and due attempts)."""

    account: Hashable
    wants: int


def max_min_shares(demands: Mapping[K, int], capacity: int) -> dict[K, int]:
    """Water-filling: smallest demands are met first, the rest split what is left.

    Shares are whole claims; when the capacity is smaller than the number of
    claimants, the ones with the smallest demands (then the first listed) get one each.
    """
    shares: dict[K, int] = {}
    left = max(capacity, 0)
    ordered = sorted(demands.items(), key=lambda item: item[1])
    for position, (key, wants) in enumerate(ordered):
        remaining = len(ordered) - position
        share = -(-left // remaining)  # ceiling: a unit left over goes to the smaller ones
        shares[key] = min(max(wants, 0), share)
        left -= shares[key]
    return shares


def fair_claims(
    demands: Mapping[K, Demand],
    budget: int | None,
    account_room: Mapping[Any, int] | None = None,
) -> dict[K, int]:
    """Claims per campaign: within each account's room, the budget shared fairly.

    `budget` None: no shared budget (each campaign's own caps are the only limit);
    `account_room` maps an account to the calls it may still start (its concurrency cap
    minus its calls in flight); an account not in it has no cap.
    """
    by_account: dict[Hashable, dict[K, int]] = {}
    for key, demand in demands.items():
        by_account.setdefault(demand.account, {})[key] = demand.wants
    account_wants = {
        account: _capped(sum(campaigns.values()), account, account_room)
        for account, campaigns in by_account.items()
    }
    account_shares = account_wants if budget is None else max_min_shares(account_wants, budget)
    out: dict[K, int] = {}
    for account, campaigns in by_account.items():
        out.update(max_min_shares(campaigns, account_shares[account]))
    return out


def _capped(wants: int, account: Hashable, room: Mapping[Any, int] | None) -> int:
    if room is None or account not in room:
        return wants
    return max(0, min(wants, room[account]))
