"""SMS becomes a channel: the CHECK constraints that list channels and contact facts

``sms`` joins the words of every CHECK that lists channels: a sender's kind
(channels.kind), a message's channel (messages.channel, which exists already: no new
column is needed), a contact fact's channel (contact_events.channel), a campaign's
first contact and fallback channel. ``sms_reply`` joins the contact-fact kinds: an
SMS reply is its own fact, as a WhatsApp reply is (``whatsapp_reply``).

The downgrade fails while any row uses the new words (PostgreSQL checks the narrower
CHECK against every row), rather than dropping data.

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-03 17:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint name, column, words before, words after), spelled here, not
# imported: a migration keeps meaning what it meant when it was written.
CHECKS = (
    ("channels", "kind", "kind", ("email", "whatsapp"), ("email", "sms", "whatsapp")),
    ("messages", "channel", "channel", ("email", "whatsapp"), ("email", "sms", "whatsapp")),
    (
        "contact_events",
        "channel",
        "channel",
        ("call", "email", "whatsapp"),
        ("call", "email", "sms", "whatsapp"),
    ),
    (
        "contact_events",
        "kind",
        "kind",
        ("ai_evaluation", "answered_call", "email_delivered", "whatsapp_reply"),
        ("ai_evaluation", "answered_call", "email_delivered", "sms_reply", "whatsapp_reply"),
    ),
    (
        "campaigns",
        "first_channel",
        "first_contact_channel",
        ("call", "whatsapp"),
        ("call", "sms", "whatsapp"),
    ),
    ("campaigns", "fallback_channel", "fallback_channel", ("whatsapp",), ("sms", "whatsapp")),
)


def _in(column: str, words: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{word}'" for word in words) + ")"


def _replace(table: str, name: str, condition: str) -> None:
    op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, condition)


def upgrade() -> None:
    for table, name, column, _before, after in CHECKS:
        _replace(table, name, _in(column, after))


def downgrade() -> None:
    for table, name, column, before, _after in CHECKS:
        _replace(table, name, _in(column, before))
