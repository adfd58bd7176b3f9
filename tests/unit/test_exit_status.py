"""The worker's exit status: an end nobody asked for is never status 0."""

from __future__ import annotations

import pytest

from tasks.exit_status import EX_SOFTWARE, exit_status


@pytest.mark.parametrize(
    ("code", "requested", "expected"),
    [
        (None, False, EX_SOFTWARE),  # celery's exitcode never set: was status 0
        (0, False, EX_SOFTWARE),
        (1, False, 1),  # a failure keeps its own code
        (None, True, None),  # SIGTERM: a clean, asked-for stop
        (0, True, 0),
        (1, True, 1),
    ],
)
def test_exit_status(code: int | None, requested: bool, expected: int | None) -> None:
    assert exit_status(code, requested=requested) == expected
