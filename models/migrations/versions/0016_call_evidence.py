"""evidence per call (issue 16)

``call_attempts.evidence`` records why a dialed attempt was allowed, written in the
same statement that marks it ``dispatching`` (dialer.policies.evidence): the zones
and where they came from, the local time in each, the jurisdiction and the rule
packs with their versions, the window, and when the suppression list was checked.
NULL for attempts never dialed and for those dialed before this revision.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("call_attempts", sa.Column("evidence", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("call_attempts", "evidence")
