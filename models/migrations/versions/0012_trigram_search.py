"""trigram search: GIN pg_trgm indexes for the call list's q (issue 15)

GET /calls?q= is a case-insensitive substring search (ILIKE '%term%') over the
customer's name, surname, phone and customer_id and the attempt's conv_id (seed 000).
A B-tree cannot serve a leading wildcard; a GIN index with ``gin_trgm_ops`` can.
``pg_trgm`` is a trusted contrib extension (PostgreSQL 13+: the database owner may
create it). When the server does not offer it, or refuses it, the migration skips
the indexes and says so: q then reads by sequential scan, as before.

The indexes are built CONCURRENTLY (outside the migration's transaction), so
upgrading a deployment with millions of rows does not block writes meanwhile.

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-03 17:00:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# Spelled out here, not imported: a migration is frozen (models.optional_indexes mirrors it).
TRIGRAM_INDEXES = (
    ("ix_customers_name_trgm", "customers", "name"),
    ("ix_customers_surname_trgm", "customers", "surname"),
    ("ix_customers_phone_trgm", "customers", "phone"),
    ("ix_customers_customer_id_trgm", "customers", "customer_id"),
    ("ix_call_attempts_conv_id_trgm", "call_attempts", "conv_id"),
)


def upgrade() -> None:
    if not _enable_pg_trgm():
        return
    with op.get_context().autocommit_block():
        for name, table, column in TRIGRAM_INDEXES:
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} "
                f"ON {table} USING gin ({column} gin_trgm_ops)"
            )


def downgrade() -> None:
    # The extension stays: other objects may use it, and it costs nothing idle.
    with op.get_context().autocommit_block():
        for name, _table, _column in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def _enable_pg_trgm() -> bool:
    bind = op.get_bind()
    offered = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    if offered is None:
        log.warning("pg_trgm is not installed on this server: q search stays unindexed")
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning("CREATE EXTENSION pg_trgm refused (%s): q search stays unindexed", exc.orig)
        return False
    return True
