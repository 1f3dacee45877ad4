"""Statements of the per-step hot path, compiled once and run on the driver's own cursor.

A conversation step runs the same handful of statements every time (lock the user, load the
session, save it, read the campaign's moved windows). Through SQLAlchemy Core each execution
rebuilds the statement, computes its cache key and sets up an execution context and a result
object: measured in `benchmarks/bench_steps.py`, that was ~80 % of a durable step, against
~25 µs for the same transaction in plain sqlite3. So these statements are still written in
SQLAlchemy Core (the same tables, the same dialect rules: `FOR UPDATE` only where the database
has it), compiled once per dialect, and executed on the DBAPI connection under the
SQLAlchemy `Connection` — inside the same transaction, which SQLAlchemy begins and commits.

The columns' own type processors convert parameters and results exactly as Core would (aware
UTC datetimes stored naive, SQLite's dates as text), so a row written here reads back the same
through Core and the other way round. A driver error is raised as SQLAlchemy's own
`DBAPIError` wrapper (with `connection_invalidated` when the connection was lost, which also
invalidates it), so callers handle it as any Core error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

Processor = Callable[[Any], Any] | None


class Prepared:
    """One statement compiled for one dialect; `run`/`rows`/`one` execute it on a Connection."""

    def __init__(self, statement: sa.Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        self._dialect = dialect
        binds = compiled.binds  # name -> BindParameter
        order: Sequence[str] | None = compiled.positiontup
        self._positional = order is not None
        self._names: tuple[str, ...] = tuple(order) if order is not None else tuple(binds)
        self._bind: dict[str, Processor] = {
            name: binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self._names
        }
        self._fixed: dict[str, Any] = {
            name: binds[name].value
            for name in self._names
            if not binds[name].required and binds[name].callable is None
        }
        columns = getattr(statement, "selected_columns", None)
        self._result: tuple[Processor, ...] = (
            tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
            if columns is not None
            else ()
        )
        self._convert = any(p is not None for p in self._result)

    def _params(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        out = []
        for name in self._names:
            value = values[name] if name in values else self._fixed[name]
            process = self._bind[name]
            out.append(value if process is None or value is None else process(value))
        return out if self._positional else dict(zip(self._names, out, strict=True))

    def _execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        params = self._params(values)
        fairy = conn.connection  # the pooled DBAPI connection of this (begun) transaction
        cursor = fairy.cursor()
        try:
            cursor.execute(self.sql, params)
        except self._dialect.loaded_dbapi.Error as exc:
            cursor.close()
            lost = self._dialect.is_disconnect(exc, fairy.dbapi_connection, cursor)
            if lost:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                self.sql,
                params,
                exc,
                self._dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=self._dialect,
            ) from exc
        return cursor

    def run(self, conn: Connection, **values: Any) -> int:
        """Execute; the number of rows it changed."""
        cursor = self._execute(conn, values)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def rows(self, conn: Connection, **values: Any) -> list[tuple[Any, ...]]:
        cursor = self._execute(conn, values)
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        if not self._convert:
            return [tuple(r) for r in fetched]
        procs = self._result
        return [
            tuple(v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True))
            for r in fetched
        ]

    def one(self, conn: Connection, **values: Any) -> tuple[Any, ...] | None:
        """The first row, or None."""
        found = self.rows(conn, **values)
        return found[0] if found else None


class Statements:
    """Named statements, each built (by `build[name](dialect_name)`) and compiled on first use
    per dialect, then kept for the process."""

    def __init__(self, build: Mapping[str, Callable[[str], sa.Executable]]) -> None:
        self._build = build
        self._cache: dict[tuple[str, str], Prepared] = {}

    def __call__(self, conn: Connection, name: str) -> Prepared:
        key = (conn.dialect.name, name)
        found = self._cache.get(key)
        if found is None:
            statement = self._build[name](conn.dialect.name)
            found = self._cache[key] = Prepared(statement, conn.dialect)
        return found


def insert_ignoring_conflicts(table: sa.Table, dialect_name: str) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` as the dialect writes it (values as bind params)."""
    dialects = {"postgresql": postgresql, "sqlite": sqlite}
    return dialects[dialect_name].insert(table)


__all__ = ["Prepared", "Statements", "insert_ignoring_conflicts"]
