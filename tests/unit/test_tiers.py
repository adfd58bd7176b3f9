"""The test tiers: a test's folder is its tier, and process-starting tests live in e2e."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import TESTS, TIERS, tier_of

# What starts a real worker, beat, api, sandbox or Flower process in this suite.
STARTS_PROCESSES = re.compile(r"\bprocess_group\(|\bfast_run\(|\"-m\", \"dialer\"")


def test_a_test_file_is_in_the_tier_of_its_folder(tmp_path: Path) -> None:
    for tier in TIERS:
        assert tier_of(TESTS / tier / "test_example.py") == tier
    with pytest.raises(pytest.UsageError, match="a test belongs in one of"):
        tier_of(TESTS / "elsewhere" / "test_example.py")


def test_every_test_file_sits_in_a_tier_folder() -> None:
    strays = [p for p in TESTS.rglob("test_*.py") if p.relative_to(TESTS).parts[0] not in TIERS]
    assert strays == []


def test_tests_that_start_real_processes_are_in_the_e2e_tier() -> None:
    starters = {
        p.relative_to(TESTS).as_posix()
        for p in TESTS.rglob("test_*.py")
        if STARTS_PROCESSES.search(p.read_text())
    }
    assert starters, "the pattern must find the e2e tests"
    assert {path for path in starters if not path.startswith("e2e/")} == set()


def test_the_tier_markers_are_registered(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(TIERS) <= registered


def test_this_test_is_marked_unit(request: pytest.FixtureRequest) -> None:
    tiers = {mark.name for mark in request.node.iter_markers() if mark.name in TIERS}
    assert tiers == {"unit"}
