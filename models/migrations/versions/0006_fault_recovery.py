"""fault recovery: when a message was claimed, when an outbox event was handled

`messages.queued_at`: a message claimed by a send task that died stays `queued`;
the reaper finds it by this time, as it finds claimed call attempts by theirs.
`outbox.handled_at`: the relay marks an event published when the broker took it,
but a worker killed while holding the event leaves it unacknowledged in Redis for
the visibility timeout; the relay publishes it again until its handler ran.
The partial indexes hold only owed work, so their cost follows the due work.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_queued",
        "messages",
        ["queued_at"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_messages_owed",
        "messages",
        ["campaign_id"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'queued') AND direction = 'outbound'"),
    )
    op.add_column("outbox", sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_outbox_unhandled",
        "outbox",
        ["published_at"],
        unique=False,
        postgresql_where=sa.text("handled_at IS NULL AND published_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unhandled", table_name="outbox")
    op.drop_column("outbox", "handled_at")
    op.drop_index("ix_messages_owed", table_name="messages")
    op.drop_index("ix_messages_queued", table_name="messages")
    op.drop_column("messages", "queued_at")
