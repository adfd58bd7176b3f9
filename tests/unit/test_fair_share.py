"""Max-min fair shares of a claim budget: accounts first, then their campaigns."""

from __future__ import annotations

import pytest

from dialer.policies.fair_share import Demand, fair_claims, max_min_shares


@pytest.mark.parametrize(
    ("demands", "capacity", "expected"),
    [
        ({"a": 5, "b": 100}, 20, {"a": 5, "b": 15}),  # the small one is met in full
        ({"a": 50, "b": 100}, 20, {"a": 10, "b": 10}),  # both want more: equal halves
        ({"a": 3, "b": 4}, 100, {"a": 3, "b": 4}),  # room for all: everyone's demand
        ({"a": 9, "b": 9, "c": 9}, 2, {"a": 1, "b": 1, "c": 0}),  # fewer units than claimants
        ({"a": 7}, 0, {"a": 0}),
    ],
)
def test_max_min_shares(demands: dict[str, int], capacity: int, expected: dict[str, int]) -> None:
    assert max_min_shares(demands, capacity) == expected
    assert sum(max_min_shares(demands, capacity).values()) <= capacity


def test_accounts_share_first_then_their_campaigns() -> None:
    demands = {
        "big-1": Demand("tenant-a", 1000),
        "big-2": Demand("tenant-a", 1000),
        "small": Demand("tenant-b", 50),
    }
    # Tenant b's one campaign gets all it wants; tenant a's two split the rest.
    assert fair_claims(demands, 250) == {"big-1": 100, "big-2": 100, "small": 50}


def test_no_budget_means_each_campaign_claims_what_it_can() -> None:
    demands = {"x": Demand("a", 7), "y": Demand("b", 3)}
    assert fair_claims(demands, None) == {"x": 7, "y": 3}


def test_an_account_cap_bounds_its_campaigns_together() -> None:
    demands = {"x": Demand("a", 5), "y": Demand("a", 5), "z": Demand("b", 5)}
    shares = fair_claims(demands, None, {"a": 4})
    assert shares == {"x": 2, "y": 2, "z": 5}
    assert fair_claims(demands, None, {"a": -3})["x"] == 0  # over its cap already
