"""rotation cursor off the campaign row; concurrency up to 1000

Concurrency per campaign may now be up to 1000 calls (was 100): one campaign of a
large account must be able to use the dialer's full rate.

Dispatch advanced campaigns.rotation_cursor with an UPDATE, which held the campaign
row's lock for the rest of the dispatch transaction; the scan, which locks that row
with SKIP LOCKED, then skipped the campaign. The cursor gets a table of its own.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rotation_cursors",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_rotation_cursors_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_rotation_cursors")),
    )
    op.execute(
        "INSERT INTO rotation_cursors (campaign_id, position) "
        "SELECT id, rotation_cursor FROM campaigns WHERE rotation_cursor <> 0"
    )
    op.drop_column("campaigns", "rotation_cursor")
    _concurrency_at_most(1000)


def _concurrency_at_most(limit: int) -> None:
    op.drop_constraint(op.f("ck_campaigns_concurrency"), "campaigns", type_="check")
    op.create_check_constraint(
        op.f("ck_campaigns_concurrency"), "campaigns", f"concurrency BETWEEN 1 AND {limit}"
    )


def downgrade() -> None:
    op.execute("UPDATE campaigns SET concurrency = 100 WHERE concurrency > 100")
    _concurrency_at_most(100)
    op.add_column(
        "campaigns",
        sa.Column("rotation_cursor", sa.Integer(), server_default="0", nullable=False),
    )
    op.execute(
        "UPDATE campaigns SET rotation_cursor = c.position::integer "
        "FROM rotation_cursors c WHERE c.campaign_id = campaigns.id"
    )
    op.drop_table("rotation_cursors")
