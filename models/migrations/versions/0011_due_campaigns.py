"""beat cost follows due work: per-campaign next-due time, finish marks, reaper indexes

- ``campaigns.next_due_at``: the earliest ``scheduled_at`` of the campaign's pending
  attempts (NULL: none). The scan reads ``ix_campaigns_due`` (running campaigns by
  ``next_due_at``), so a tick with nothing due reads no campaign at all. Two triggers
  keep it current wherever a pending attempt appears or moves earlier (insert, a
  deferred dispatch, a resume, a reaper), writing only when the new time is earlier than
  the stored one, so the campaign row is not written on every result. The scan itself
  recomputes it for the campaigns it visited (one index probe each).
- ``campaigns.finish_check_at``: set by a trigger when an enrollment leaves ``active``
  and no active enrollment of its campaign is left: the finish duty visits only the
  campaigns so marked (``ix_campaigns_finish_check``) instead of locking every running
  one. A slow safety sweep covers two last enrollments closed by concurrent
  transactions (each still saw the other active).
- ``ix_call_attempts_queued_at`` / ``ix_call_attempts_dispatched_at``: the reaper's
  "stale since" reads walk only the in-flight rows, oldest first.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level on INSERT: a bulk insert of a million first attempts runs it once.
# Campaign rows are written in id order, so two inserting transactions cannot deadlock.
DUE_INSERTED = """
CREATE FUNCTION dialer_due_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  due record;
BEGIN
  FOR due IN
    SELECT campaign_id, min(scheduled_at) AS at FROM new_attempts
    WHERE status = 'pending' GROUP BY campaign_id ORDER BY campaign_id
  LOOP
    UPDATE campaigns SET next_due_at = due.at
    WHERE id = due.campaign_id AND (next_due_at IS NULL OR next_due_at > due.at);
  END LOOP;
  RETURN NULL;
END $$
"""
# Row-level on UPDATE, filtered by WHEN in C: dispatch and result updates never call it.
DUE_UPDATED = """
CREATE FUNCTION dialer_due_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE campaigns SET next_due_at = NEW.scheduled_at
  WHERE id = NEW.campaign_id AND (next_due_at IS NULL OR next_due_at > NEW.scheduled_at);
  RETURN NULL;
END $$
"""
ENROLLMENT_CLOSED = """
CREATE FUNCTION dialer_enrollment_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE campaigns SET finish_check_at = now()
  WHERE id = NEW.campaign_id AND status = 'running' AND finish_check_at IS NULL
    AND NOT EXISTS (
      SELECT 1 FROM enrollments WHERE campaign_id = NEW.campaign_id AND state = 'active'
    );
  RETURN NULL;
END $$
"""
TRIGGERS = (
    "CREATE TRIGGER call_attempts_due_inserted AFTER INSERT ON call_attempts "
    "REFERENCING NEW TABLE AS new_attempts FOR EACH STATEMENT "
    "EXECUTE FUNCTION dialer_due_inserted()",
    "CREATE TRIGGER call_attempts_due_updated AFTER UPDATE OF status, scheduled_at "
    "ON call_attempts FOR EACH ROW WHEN (NEW.status = 'pending' AND "
    "(OLD.status <> 'pending' OR NEW.scheduled_at < OLD.scheduled_at)) "
    "EXECUTE FUNCTION dialer_due_updated()",
    "CREATE TRIGGER enrollments_closed AFTER UPDATE OF state ON enrollments "
    "FOR EACH ROW WHEN (OLD.state = 'active' AND NEW.state <> 'active') "
    "EXECUTE FUNCTION dialer_enrollment_closed()",
)
BACKFILL = """
UPDATE campaigns c SET next_due_at = d.at
FROM (SELECT campaign_id, min(scheduled_at) AS at FROM call_attempts
      WHERE status = 'pending' GROUP BY campaign_id) d
WHERE c.id = d.campaign_id
"""


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("next_due_at", sa.DateTime(timezone=True)))
    op.add_column("campaigns", sa.Column("finish_check_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_campaigns_due",
        "campaigns",
        ["next_due_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index(
        "ix_campaigns_finish_check",
        "campaigns",
        ["finish_check_at"],
        postgresql_where=sa.text("status = 'running' AND finish_check_at IS NOT NULL"),
    )
    op.create_index(
        "ix_call_attempts_queued_at",
        "call_attempts",
        ["queued_at"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_call_attempts_dispatched_at",
        "call_attempts",
        ["status", "dispatched_at"],
        postgresql_where=sa.text("status IN ('dispatching', 'in_progress')"),
    )
    for statement in (DUE_INSERTED, DUE_UPDATED, ENROLLMENT_CLOSED, *TRIGGERS, BACKFILL):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER enrollments_closed ON enrollments")
    op.execute("DROP TRIGGER call_attempts_due_updated ON call_attempts")
    op.execute("DROP TRIGGER call_attempts_due_inserted ON call_attempts")
    for function in ("dialer_enrollment_closed", "dialer_due_updated", "dialer_due_inserted"):
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_index("ix_call_attempts_dispatched_at", table_name="call_attempts")
    op.drop_index("ix_call_attempts_queued_at", table_name="call_attempts")
    op.drop_index("ix_campaigns_finish_check", table_name="campaigns")
    op.drop_index("ix_campaigns_due", table_name="campaigns")
    op.drop_column("campaigns", "finish_check_at")
    op.drop_column("campaigns", "next_due_at")
