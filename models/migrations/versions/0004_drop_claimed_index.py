"""drop ix_call_attempts_claimed: an index nothing reads, written on every update

The daily cap used (campaign_id, queued_at) to count a day's claims until 0003
moved that count to campaign_daily_claims. Every attempt row changes status about
five times, and a status change is never a HOT update, so each one also wrote a new
entry into this index; the claim UPDATE of a scan tick paid for it on every row.
The reaper's search for stale queued attempts reads the in-flight partial index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_call_attempts_claimed", table_name="call_attempts")


def downgrade() -> None:
    op.create_index(
        "ix_call_attempts_claimed", "call_attempts", ["campaign_id", "queued_at"], unique=False
    )
