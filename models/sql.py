"""Query helpers shared by services and the scheduler.

Many values travel as one parameter, never as one placeholder each: `among` sends a
list as one array literal, `write_changes` sends many rows as one JSON document.
Both are built here rather than by the driver because psycopg dumps a list element
by element in Python (about 4 µs per UUID, 7 µs per timestamp), which made array
parameters the largest single cost of applying a batch of results; `str.join` and
the json module's C encoder do the same work in a tenth of the time.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Row,
    Table,
    any_,
    bindparam,
    func,
    inspect,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstanceState, InstrumentedAttribute, Mapper, Session
from sqlalchemy.sql.schema import CallableColumnDefault
from sqlalchemy.types import TypeEngine, UserDefinedType


def among(column: InstrumentedAttribute[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY(:array)`: one parameter, however many values.

    `column.in_(values)` expands to one placeholder per value: a statement text that
    differs with every batch size, never prepared, and slow to build and parse for
    thousands of ids.
    """
    array = bindparam(None, array_literal(values), type_=_array_of(column.type))
    return column == any_(array)


class _TextAs(UserDefinedType[str]):
    """A parameter sent as text and typed by PostgreSQL: rendered `%(p)s::UUID[]`.

    The parameter itself has the target type, so the planner sees a constant (a
    `CAST(%(p)s::VARCHAR AS UUID[])` is a conversion at run time, evaluated again for
    every row a filter or an index recheck looks at).
    """

    cache_ok = True
    render_bind_cast = True

    def __init__(self, sql_type: str) -> None:
        self.sql_type = sql_type

    def get_col_spec(self, **_: Any) -> str:
        return self.sql_type


@lru_cache(maxsize=64)
def _array_of(element: TypeEngine[Any]) -> _TextAs:
    return _TextAs(element.compile(dialect=postgresql.dialect()) + "[]")  # type: ignore[no-untyped-call]


_JSON_TEXT = _TextAs("JSON")


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array: {1b4e...,"a \\"b\\"",NULL}."""
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, uuid.UUID):
        return str(value)  # hex digits and dashes: nothing to quote
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_changes(session: Session, objects: Iterable[object]) -> None:
    """Write the pending column changes of many loaded rows: one UPDATE per kind of change.

    A flush sends one UPDATE per row, and a batch of results changes thousands of
    rows. Here the rows of a table that changed the same columns are written with
    one ``UPDATE t SET c = v.c FROM json_populate_recordset(NULL::t, :rows) AS v
    WHERE t.id = v.id``; the row type gives every value its column's type. The
    written values are then marked committed, so the flush that follows sends
    nothing for these rows. Call it only for rows the transaction holds locked.
    """
    groups: dict[tuple[Mapper[Any], frozenset[str]], list[InstanceState[Any]]] = defaultdict(list)
    for obj in objects:
        state = inspect(obj)
        if not (state.persistent and state.modified):
            continue
        changed = frozenset(state.mapper.column_attrs.keys()) - state.unmodified
        if changed:
            groups[(state.mapper, changed)].append(state)
    for (mapper, changed), states in groups.items():
        _write_group(session, mapper, sorted(changed), states)


def _write_group(
    session: Session, mapper: Mapper[Any], keys: list[str], states: list[InstanceState[Any]]
) -> None:
    table = mapper.local_table
    assert isinstance(table, Table)
    (pk,) = mapper.primary_key
    names = [mapper.get_property(key).columns[0].name for key in keys]
    rows = [
        {
            pk.name: str(state.identity[0]),  # type: ignore[index]
            **{name: _json_value(state.dict[key]) for name, key in zip(names, keys, strict=True)},
        }
        for state in states
    ]
    source = _recordset(table, rows, [pk.name, *names])
    values: dict[Any, Any] = {name: source.c[name] for name in names}
    if "updated_at" in table.c and "updated_at" not in keys:
        values["updated_at"] = func.now()
    with session.no_autoflush:  # the point is to not flush these rows one by one first
        session.execute(update(table).values(values).where(table.c[pk.name] == source.c[pk.name]))
    _mark_written(session, states, keys, expire_updated_at="updated_at" in values)


def _mark_written(
    session: Session, states: list[InstanceState[Any]], keys: list[str], *, expire_updated_at: bool
) -> None:
    """Tell the session these values are in the database, as its own flush would.

    InstanceState._commit/_commit_all are what SQLAlchemy's flush and loaders call;
    the public set_committed_value does the same one attribute at a time, and took a
    third of this function's time. A row with no other pending change also leaves
    the session's modified set, so the next flush does not even look at it.
    """
    written = set(keys)
    for state in states:
        if written.issuperset(state.committed_state):
            state._commit_all(state.dict, session.identity_map)
        else:
            state._commit(state.dict, keys)
        if expire_updated_at and "updated_at" in state.dict:
            # the database's now(), read again if asked
            session.expire(state.obj(), ["updated_at"])


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_columns: Sequence[str] | None = None,
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """Insert many rows with one statement and one JSON parameter; a row that conflicts
    (on `conflict_columns`, or on any unique constraint) is skipped.

    ``INSERT INTO t (cols) SELECT cols FROM json_populate_recordset(NULL::t, :rows)``
    has one text whatever the row count, so it is parsed once and prepared. (An
    executemany becomes multi-row VALUES lists with a placeholder per value, a new
    statement text for every batch size, which psycopg splits with a regex in Python
    each time.) Every row must have the same keys, named like the columns; Python-side
    column defaults (the primary key's uuid4) are filled in here, server defaults by
    the database. A None in a JSON column is stored as SQL NULL.
    """
    if not rows:
        return []
    names = list(rows[0])
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError(f"insert_rows({table.name}): every row needs the keys {names}")
    fillers = [
        (column.name, make)
        for column in table.c
        if column.name not in names and (make := _python_default(column)) is not None
    ]
    documents = [
        {
            **{name: _json_value(value) for name, value in row.items()},
            **{name: _json_value(make()) for name, make in fillers},
        }
        for row in rows
    ]
    columns = [*names, *(name for name, _ in fillers)]
    source = _recordset(table, documents, columns)
    stmt = (
        postgresql.insert(table)
        .from_select(columns, select(*(source.c[name] for name in columns)))
        .on_conflict_do_nothing(index_elements=conflict_columns)
    )
    if returning:
        return list(session.execute(stmt.returning(*(table.c[name] for name in returning))))
    session.execute(stmt)
    return []


def _python_default(column: Column[Any]) -> Callable[[], Any] | None:
    default = column.default
    if isinstance(default, CallableColumnDefault):
        return lambda: default.arg(None)  # type: ignore[arg-type]  # wraps a 0-arg callable
    return None  # server defaults are the database's; no model has a Python scalar one


def _recordset(table: Table, documents: list[dict[str, Any]], names: Sequence[str]) -> Any:
    """json_populate_recordset(NULL::table, :rows) AS v, with the columns `names`."""
    document = bindparam("rows", json.dumps(documents, default=str), type_=_JSON_TEXT)
    return func.json_populate_recordset(
        literal_column(f"NULL::{table.fullname}"), document
    ).table_valued(*names, name="v")


def _json_value(value: Any) -> Any:
    """A column value as JSON that the column's type reads back unchanged."""
    if value is None or isinstance(value, str | int | dict | list):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # 'nan', 'inf': float8 reads them
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)  # UUID, Decimal, enums
