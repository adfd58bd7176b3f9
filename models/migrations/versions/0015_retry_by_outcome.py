"""retry by outcome: per-outcome retry settings on campaigns, counts on enrollments

``campaigns.retry_by_outcome`` holds a campaign's ``RetryByOutcomeIn`` (issue 16):
delays and max tries per unanswered outcome, the voicemail switch and the "never
again" signals; ``{}`` reads as the defaults, today's plan. ``enrollments.outcome_calls``
counts the current round's calls by outcome (``{"busy": 2}``) for max_tries.

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column("retry_by_outcome", postgresql.JSONB(), server_default=_EMPTY, nullable=False),
    )
    op.add_column(
        "enrollments",
        sa.Column("outcome_calls", postgresql.JSONB(), server_default=_EMPTY, nullable=False),
    )


def downgrade() -> None:
    op.drop_column("enrollments", "outcome_calls")
    op.drop_column("campaigns", "retry_by_outcome")
