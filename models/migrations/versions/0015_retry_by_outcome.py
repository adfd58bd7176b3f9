"""retry by outcome and voicemail policy (issue 16)

``campaigns.retry_by_outcome`` holds a campaign's ``RetryByOutcomeIn`` (issue 16):
delays and max tries per unanswered outcome, the voicemail switch and the "never
again" signals; ``{}`` reads as the defaults, today's plan. ``enrollments.outcome_calls``
counts the current round's calls by outcome (``{"busy": 2}``) for max_tries.
``campaigns.voicemail_action`` / ``voicemail_message`` are the voicemail policy (NULL:
the agent's own setting) and ``call_attempts.voicemail_action`` records the one sent.

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

    for table in ("campaigns", "call_attempts"):
        op.add_column(table, sa.Column("voicemail_action", sa.String(length=16), nullable=True))
        op.create_check_constraint(
            op.f(f"ck_{table}_voicemail_action"),
            table,
            "voicemail_action IN ('hang_up', 'leave_message')",
        )
    op.add_column("campaigns", sa.Column("voicemail_message", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("campaigns", "voicemail_message")
    for table in ("campaigns", "call_attempts"):
        op.drop_column(table, "voicemail_action")  # its CHECK goes with it
    op.drop_column("enrollments", "outcome_calls")
    op.drop_column("campaigns", "retry_by_outcome")
