"""The customer's own location, read from ``Customer.fields`` in SQL or from a loaded row.

The scan reads thousands of due rows per tick: it selects just the strings the
location policy needs (``fields->>'country'``, the first subdivision key present and the
first postal key present),
not the whole JSON document.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

from dialer.policies.location import (
    COUNTRY_KEYS,
    POSTAL_KEYS,
    SUBDIVISION_KEYS,
    CustomerLocation,
    location_from_fields,
    location_from_values,
)
from models import Customer


def country_column() -> Any:
    """SQL: the record's country as written (``fields->>'country'``)."""
    return func.coalesce(*(Customer.fields[key].astext for key in COUNTRY_KEYS))


def subdivision_column() -> Any:
    """SQL: the record's state/region/province/subdivision, the first one present."""
    return func.coalesce(*(Customer.fields[key].astext for key in SUBDIVISION_KEYS))


def postal_code_column() -> Any:
    """SQL: the record's postal code, the first of its keys present."""
    return func.coalesce(*(Customer.fields[key].astext for key in POSTAL_KEYS))


def location_of(customer: Customer) -> CustomerLocation:
    """The location a loaded customer row states."""
    return location_from_fields(customer.fields)


__all__ = [
    "country_column",
    "location_from_values",
    "location_of",
    "postal_code_column",
    "subdivision_column",
]
