"""email goals: what an email objective counts, the e-mail subject, accepted-mail facts

`campaigns.email_goal_counts` ('accepted' | 'delivered', 'delivered' for every existing
campaign: what email objectives counted until now) and `campaigns.email_subject` (a
one-line template, at most 200 characters); `contact_events.kind` gains
'email_accepted', recorded when the mail server (or SendGrid's 'processed') took a mail.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# After 0009 (sms_reply joined the kinds there).
KINDS_BEFORE = (
    "kind IN ('ai_evaluation', 'answered_call', 'email_delivered', 'sms_reply', 'whatsapp_reply')"
)
KINDS_AFTER = (
    "kind IN ('ai_evaluation', 'answered_call', 'email_accepted', 'email_delivered',"
    " 'sms_reply', 'whatsapp_reply')"
)


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column(
            "email_goal_counts", sa.String(length=16), server_default="delivered", nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_campaigns_email_goal_counts"),
        "campaigns",
        "email_goal_counts IN ('accepted', 'delivered')",
    )
    op.add_column("campaigns", sa.Column("email_subject", sa.String(length=200), nullable=True))
    op.drop_constraint(op.f("ck_contact_events_kind"), "contact_events", type_="check")
    op.create_check_constraint(op.f("ck_contact_events_kind"), "contact_events", KINDS_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM contact_events WHERE kind = 'email_accepted'")
    op.drop_constraint(op.f("ck_contact_events_kind"), "contact_events", type_="check")
    op.create_check_constraint(op.f("ck_contact_events_kind"), "contact_events", KINDS_BEFORE)
    op.drop_column("campaigns", "email_subject")
    op.drop_constraint(op.f("ck_campaigns_email_goal_counts"), "campaigns", type_="check")
    op.drop_column("campaigns", "email_goal_counts")
