"""Query helpers shared by services and the scheduler."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute


def among(column: InstrumentedAttribute[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY(:array)`: one parameter, however many values.

    `column.in_(values)` expands to one placeholder per value: a statement text that
    differs with every batch size, never prepared, and slow to build and parse for
    thousands of ids.
    """
    array = bindparam(None, list(values), type_=ARRAY(column.type))
    return column == any_(array)
