"""agent providers: each agent names its voice provider and an optional fallback

`agents.provider` was written ("simulated" by default) but never read: every call went
to the deployment's DIALER_PROVIDER. It becomes nullable, NULL meaning exactly that,
and existing rows are set to NULL so today's routing is unchanged.
`agents.fallback_provider` (+ the agent's id there) is where placements go while the
primary refuses (dialer.policies.failover). `call_attempts.provider` records which
provider the attempt was sent to, so webhooks, reconciliation and reports use it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("agents", "provider", nullable=True, server_default=None)
    op.execute("UPDATE agents SET provider = NULL")
    op.add_column("agents", sa.Column("fallback_provider", sa.String(64), nullable=True))
    op.add_column("agents", sa.Column("fallback_provider_agent_id", sa.String(255), nullable=True))
    op.create_check_constraint(
        op.f("ck_agents_fallback_agent_needs_provider"),
        "agents",
        "fallback_provider_agent_id IS NULL OR fallback_provider IS NOT NULL",
    )
    op.add_column("call_attempts", sa.Column("provider", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("call_attempts", "provider")
    op.drop_constraint(op.f("ck_agents_fallback_agent_needs_provider"), "agents", type_="check")
    op.drop_column("agents", "fallback_provider_agent_id")
    op.drop_column("agents", "fallback_provider")
    op.execute("UPDATE agents SET provider = 'simulated' WHERE provider IS NULL")
    op.alter_column("agents", "provider", nullable=False, server_default="simulated")
