"""uncertain placements: an attempt held after its placement answer was lost

`call_attempts.status` gains `uncertain`: the provider may have placed the call and
no lookup found it, so the attempt is held (open, counted in flight) instead of
failed and retried, which could call the person a second time. `next_check_at` is
when reconciliation looks the call up again; the partial index holds only held rows.

Revision ID: 0007
Revises: 0014
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("canceled", "completed", "dispatching", "failed", "in_progress", "pending", "queued")
_OPEN = ("dispatching", "in_progress", "pending", "queued")
_IN_FLIGHT = ("queued", "dispatching", "in_progress")


def _among(words: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{w}'" for w in words) + ")"


def _set_words(statuses: Sequence[str], open_: Sequence[str], in_flight: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_call_attempts_status"), "call_attempts", type_="check")
    op.drop_constraint(
        op.f("ck_call_attempts_finished_iff_terminal"), "call_attempts", type_="check"
    )
    op.drop_index("uq_call_attempts_one_open_per_enrollment", table_name="call_attempts")
    op.drop_index("ix_call_attempts_in_flight", table_name="call_attempts")
    op.create_check_constraint(op.f("ck_call_attempts_status"), "call_attempts", _among(statuses))
    op.create_check_constraint(
        op.f("ck_call_attempts_finished_iff_terminal"),
        "call_attempts",
        f"({_among(open_)}) = (finished_at IS NULL)",
    )
    op.create_index(
        "uq_call_attempts_one_open_per_enrollment",
        "call_attempts",
        ["enrollment_id"],
        unique=True,
        postgresql_where=sa.text(_among(open_)),
    )
    op.create_index(
        "ix_call_attempts_in_flight",
        "call_attempts",
        ["campaign_id", "status"],
        unique=False,
        postgresql_where=sa.text(_among(in_flight)),
    )


def upgrade() -> None:
    _set_words(
        sorted((*_STATUSES, "uncertain")),
        sorted((*_OPEN, "uncertain")),
        ("queued", "dispatching", "uncertain", "in_progress"),
    )
    op.add_column(
        "call_attempts", sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_call_attempts_uncertain",
        "call_attempts",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("status = 'uncertain'"),
    )


def downgrade() -> None:
    # A held attempt has no older word: it ends failed, as dispatch ended it before.
    op.execute(
        "UPDATE call_attempts SET status = 'failed', outcome = 'failed', finished_at = now(),"
        " last_error = 'placement uncertain (downgraded)' WHERE status = 'uncertain'"
    )
    op.drop_index("ix_call_attempts_uncertain", table_name="call_attempts")
    op.drop_column("call_attempts", "next_check_at")
    _set_words(_STATUSES, _OPEN, _IN_FLIGHT)
