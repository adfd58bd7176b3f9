"""the WhatsApp fallback becomes a fallback channel: channel-neutral campaign columns

A campaign's fallback after unanswered calls is a message on its *fallback channel*
(WhatsApp today, SMS next), so the columns stop naming WhatsApp:

  campaigns.whatsapp_channel_id      -> fallback_channel_id
  campaigns.whatsapp_first_message   -> fallback_first_message
  campaigns.whatsapp_after_attempts  -> fallback_after_attempts
  enrollments.whatsapp_fallback_at   -> fallback_at

and campaigns gain ``fallback_channel`` ('whatsapp' for every existing campaign, which
is what they meant). Renames keep the data; the API still speaks seed 002's names.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CAMPAIGN_RENAMES = (
    ("whatsapp_channel_id", "fallback_channel_id"),
    ("whatsapp_first_message", "fallback_first_message"),
    ("whatsapp_after_attempts", "fallback_after_attempts"),
)
CONSTRAINT_RENAMES = (
    ("fk_campaigns_whatsapp_channel_id_channels", "fk_campaigns_fallback_channel_id_channels"),
    ("ck_campaigns_whatsapp_after", "ck_campaigns_fallback_after"),
)


def upgrade() -> None:
    for old, new in CAMPAIGN_RENAMES:
        op.alter_column("campaigns", old, new_column_name=new)
    op.alter_column("enrollments", "whatsapp_fallback_at", new_column_name="fallback_at")
    # Constraint names follow the columns (models.base.NAMING_CONVENTION); PostgreSQL
    # rewrites a CHECK's expression itself when its column is renamed.
    for old, new in CONSTRAINT_RENAMES:
        op.execute(f"ALTER TABLE campaigns RENAME CONSTRAINT {old} TO {new}")
    op.add_column(
        "campaigns",
        sa.Column(
            "fallback_channel", sa.String(length=16), server_default="whatsapp", nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_campaigns_fallback_channel"), "campaigns", "fallback_channel IN ('whatsapp')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_campaigns_fallback_channel"), "campaigns", type_="check")
    op.drop_column("campaigns", "fallback_channel")
    for old, new in CONSTRAINT_RENAMES:
        op.execute(f"ALTER TABLE campaigns RENAME CONSTRAINT {new} TO {old}")
    op.alter_column("enrollments", "fallback_at", new_column_name="whatsapp_fallback_at")
    for old, new in CAMPAIGN_RENAMES:
        op.alter_column("campaigns", new, new_column_name=old)
