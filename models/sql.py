"""Query helpers shared by services and the scheduler."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, inspect, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstanceState, InstrumentedAttribute, Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value


def among(column: InstrumentedAttribute[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY(:array)`: one parameter, however many values.

    `column.in_(values)` expands to one placeholder per value: a statement text that
    differs with every batch size, never prepared, and slow to build and parse for
    thousands of ids.
    """
    array = bindparam(None, list(values), type_=ARRAY(column.type))
    return column == any_(array)


def write_changes(session: Session, objects: Iterable[object]) -> None:
    """Write the pending column changes of many loaded rows: one UPDATE per kind of change.

    A flush sends one UPDATE per row, and a batch of results changes thousands of
    rows. Here the rows of a table that changed the same columns are written with
    one ``UPDATE t SET c = v.c FROM unnest(:ids, :c, ...) AS v WHERE t.id = v.id``.
    The written values are then marked committed, so the flush that follows sends
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
    columns = [mapper.get_property(key).columns[0] for key in keys]
    params = {"ids": [state.identity[0] for state in states]}  # type: ignore[index]
    arrays = [bindparam("ids", type_=ARRAY(pk.type))]
    for i, key in enumerate(keys):
        params[f"v{i}"] = [state.dict[key] for state in states]
        arrays.append(bindparam(f"v{i}", type_=ARRAY(columns[i].type)))
    names = ("id", *(f"v{i}" for i in range(len(keys))))
    rows = func.unnest(*arrays).table_valued(*names).render_derived()
    values: dict[Any, Any] = {col.name: rows.c[f"v{i}"] for i, col in enumerate(columns)}
    if "updated_at" in table.c and "updated_at" not in keys:
        values["updated_at"] = func.now()
    with session.no_autoflush:  # the point is to not flush these rows one by one first
        session.execute(update(table).values(values).where(table.c[pk.name] == rows.c.id), params)
    for state in states:
        obj = state.obj()
        for key in keys:
            set_committed_value(obj, key, state.dict[key])
        if "updated_at" in values and "updated_at" in state.dict:
            session.expire(obj, ["updated_at"])  # the database's now(), read again if asked
