"""daily claim counters: the daily cap in one lookup

The scan counted today's claimed attempts of a campaign on every tick, a cost that
grew with the campaign's rows. The count now lives in campaign_daily_claims, one
row per campaign and local day, increased by the claiming statement's transaction.
Today's (and yesterday's, for zones behind UTC) counts are carried over.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_daily_claims",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("claimed", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_daily_claims_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "day", name=op.f("pk_campaign_daily_claims")),
    )
    op.execute(
        "INSERT INTO campaign_daily_claims (campaign_id, day, claimed) "
        "SELECT a.campaign_id, (a.queued_at AT TIME ZONE c.timezone)::date, count(*) "
        "FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id "
        "WHERE a.queued_at >= now() - interval '2 days' "
        "GROUP BY 1, 2"
    )


def downgrade() -> None:
    op.drop_table("campaign_daily_claims")
