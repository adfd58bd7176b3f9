"""message status `unknown`: a sent message whose delivery status never came

A WhatsApp status webhook lost while the ingress was down left the message `sent`
forever; the Cloud API has no message lookup to ask. The reaper now marks an
outbound message that stayed `sent` past `DIALER_MESSAGE_STATUS_TIMEOUT_SECONDS`
`unknown` (a late webhook still moves it on). The partial index holds only the
messages still waiting for a status, so the sweep reads only those.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "'canceled', 'delivered', 'failed', 'pending', 'queued', 'read', 'received', 'sent'"
AFTER = (
    "'canceled', 'delivered', 'failed', 'pending', 'queued', 'read', 'received', 'sent', 'unknown'"
)


def upgrade() -> None:
    op.drop_constraint(op.f("ck_messages_status"), "messages", type_="check")
    op.create_check_constraint(op.f("ck_messages_status"), "messages", f"status IN ({AFTER})")
    op.create_index(
        "ix_messages_unconfirmed",
        "messages",
        ["sent_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sent' AND direction = 'outbound'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_unconfirmed", table_name="messages")
    op.execute("UPDATE messages SET status = 'sent' WHERE status = 'unknown'")
    op.drop_constraint(op.f("ck_messages_status"), "messages", type_="check")
    op.create_check_constraint(op.f("ck_messages_status"), "messages", f"status IN ({BEFORE})")
