"""The SELECT behind an export or a load: a relation's columns for a time window and filters.

Identifiers are composed with psycopg.sql and values are bound parameters: no SQL is built from
user text. Rows come ordered by the time axis so a day's file reads in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from scripts.research.catalog import CatalogError, Relation


@dataclass(frozen=True, slots=True)
class Filters:
    currency: str | None = None  # BTC; applies to tables with a `currency` column
    instrument: str | None = None  # an instrument (or index / gap scope) name


def check_filters(rel: Relation, filters: Filters) -> None:
    """CatalogError when a filter cannot apply to this relation."""
    if filters.currency:
        code = filters.currency.lower()
        per_currency = rel.name.split("_", 1)[0]
        if rel.name.endswith(("_option_quotes", "_option_trades", "_option_orderbook_depth")):
            if per_currency != code:
                raise CatalogError(
                    f"{rel.name} holds {per_currency.upper()} only; --currency "
                    f"{filters.currency.upper()} does not apply (use the view "
                    f"{rel.name.split('_', 1)[1]} to filter by currency)"
                )
        elif not rel.has_currency_column:
            raise CatalogError(f"{rel.name} has no currency column; leave out --currency")
    if filters.instrument and rel.instrument_column is None:
        raise CatalogError(f"{rel.name} has no instrument column; leave out --instrument")


def select(
    rel: Relation,
    start: datetime | None,
    end: datetime | None,
    filters: Filters,
    columns: sql.Composable | None = None,
    *,
    ordered: bool = True,
) -> tuple[sql.Composed, list[Any]]:
    """SELECT <columns> FROM rel WHERE time in [start, end) AND filters ORDER BY time."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    tcol = sql.Identifier(rel.time_column) if rel.time_column else None
    if tcol is not None and start is not None:
        where.append(sql.SQL("{} >= %s").format(tcol))
        params.append(start)
    if tcol is not None and end is not None:
        where.append(sql.SQL("{} < %s").format(tcol))
        params.append(end)
    per_currency_table = rel.name.endswith(
        ("_option_quotes", "_option_trades", "_option_orderbook_depth")
    )
    if filters.currency and rel.has_currency_column and not per_currency_table:
        where.append(sql.SQL("currency = %s"))
        params.append(filters.currency.upper())
    if filters.instrument and rel.instrument_column:
        where.append(sql.SQL("{} = %s").format(sql.Identifier(rel.instrument_column)))
        params.append(filters.instrument)
    cols = columns or sql.SQL(", ").join(sql.Identifier(c) for c in rel.columns)
    query = sql.SQL("SELECT {} FROM {}").format(cols, sql.Identifier(rel.name))
    if where:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    if ordered:  # time first, then every column: ties come out the same way on every run
        rest = [sql.Identifier(c) for c in rel.columns if c != rel.time_column]
        order = [tcol, *rest] if tcol is not None else rest
        query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
    return query, params
