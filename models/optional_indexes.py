"""Indexes the schema has only where the server offers them (not declared on the models).

Migration 0012 builds the call list's trigram indexes when the server has the
``pg_trgm`` extension (PostgreSQL's contrib: on the Debian server and in the embedded
wheel); where it has not, the migration skips them and ``q`` still works, by
sequential scan. The models do not declare them, so autogenerate and the drift test
leave them alone through ``include_object``.
"""

from __future__ import annotations

from typing import Any, Final

# (index, table, column): a GIN gin_trgm_ops index for ILIKE '%term%' on each column q reads.
TRIGRAM_INDEXES: Final = (
    ("ix_customers_name_trgm", "customers", "name"),
    ("ix_customers_surname_trgm", "customers", "surname"),
    ("ix_customers_phone_trgm", "customers", "phone"),
    ("ix_customers_customer_id_trgm", "customers", "customer_id"),
    ("ix_call_attempts_conv_id_trgm", "call_attempts", "conv_id"),
)
OPTIONAL_INDEX_NAMES: Final = frozenset(name for name, _table, _column in TRIGRAM_INDEXES)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: compare everything but the optional indexes."""
    return not (type_ == "index" and name in OPTIONAL_INDEX_NAMES)
