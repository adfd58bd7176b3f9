"""holds by rule per campaign (issue 16)

``campaigns.holds`` counts, by reason, the due attempts the scan moved to a later time
because a rule held them back although the campaign's own hours were open: a public
holiday (``held_holiday``), a weekday the jurisdiction forbids (``held_closed_day``),
the jurisdiction's hours (``held_pack_hours``), or a full frequency cap
(``frequency_cap``). ``{}`` until the first hold. The plan, ``dialer campaign status``
and the demo print them: the skips by reason of a running campaign.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column(
            "holds", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("campaigns", "holds")
