"""finish mark near the end, not only at it (the finish-mark race)

Migration 0011's trigger marked a campaign for the finish duty when an enrollment
closed and no active one was left. Two last enrollments closed by concurrent
transactions each still saw the other active, so neither marked it, and the campaign
stayed ``running`` until the slow safety sweep (5 minutes by default) found it. Now a
close marks the campaign when at most two others are still active: concurrent last
closes of up to three enrollments all mark it. The finish duty keeps the mark while
at most two are active (it checks again at the next tick) and drops it when more are
(a resume), so a campaign's mark lives only through its last few closes.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# NEAR_END = 2 (dialer.services.lifecycle.NEAR_END): LIMIT 3 stops the count early.
NEAR_END_CLOSED = """
CREATE OR REPLACE FUNCTION dialer_enrollment_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE campaigns SET finish_check_at = now()
  WHERE id = NEW.campaign_id AND status = 'running' AND finish_check_at IS NULL
    AND (SELECT count(*) FROM (
           SELECT 1 FROM enrollments
           WHERE campaign_id = NEW.campaign_id AND state = 'active' LIMIT 3) AS left_active
        ) <= 2;
  RETURN NULL;
END $$
"""
AT_END_CLOSED = """
CREATE OR REPLACE FUNCTION dialer_enrollment_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE campaigns SET finish_check_at = now()
  WHERE id = NEW.campaign_id AND status = 'running' AND finish_check_at IS NULL
    AND NOT EXISTS (
      SELECT 1 FROM enrollments WHERE campaign_id = NEW.campaign_id AND state = 'active'
    );
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(NEAR_END_CLOSED)


def downgrade() -> None:
    op.execute(AT_END_CLOSED)
