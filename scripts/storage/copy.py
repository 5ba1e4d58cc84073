"""SQL statements the writer runs, built from the table registry.

Values never enter SQL text: rows travel by binary COPY and parameters; table and column names
are composed with `psycopg.sql.Identifier`. Tables with a natural key are written through a
session temp staging table and `INSERT ... SELECT ... ON CONFLICT`, so one duplicate row never
makes a whole batch fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from scripts.storage.tables import DATA_GAPS, TableSpec

STAGING_PREFIX = "_stage_"
Batch = tuple[TableSpec, str | None, list[tuple]]  # one table's rows: spec, currency, rows
MAX_IDENTIFIER_LEN = 63


def _cols(columns: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def staging_name(table: str) -> str:
    """The session temp table that stages rows for `table`."""
    return (STAGING_PREFIX + table)[:MAX_IDENTIFIER_LEN]


def copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    """`COPY table (cols) FROM STDIN (FORMAT BINARY)`."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), _cols(columns)
    )


def create_staging_statement(table: str) -> sql.Composed:
    """A temp table shaped like `table`, emptied at every commit, one per session."""
    return sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    ).format(sql.Identifier(staging_name(table)), sql.Identifier(table))


def merge_statement(spec: TableSpec, table: str) -> sql.Composed:
    """`INSERT INTO table SELECT ... FROM staging ON CONFLICT (key) DO ...` for a keyed table."""
    if not spec.key:
        raise ValueError(f"{spec.name_template} has no natural key: write it with plain COPY")
    cols = _cols(spec.columns)
    target = sql.Identifier(table)
    head = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
        target, cols, cols, sql.Identifier(staging_name(table)), _cols(spec.key)
    )
    if spec.on_conflict != "update":
        return head + sql.SQL("DO NOTHING")
    if spec.name_template == DATA_GAPS.name_template:
        # A gap seen again only grows, and once repaired stays repaired.
        action = sql.SQL(
            "DO UPDATE SET gap_end = GREATEST(t.gap_end, EXCLUDED.gap_end), "
            "repaired = EXCLUDED.repaired OR t.repaired"
        )
        return head + action
    others = [c for c in spec.columns if c not in spec.key]
    if not others:
        return head + sql.SQL("DO NOTHING")
    sets = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in others
    )
    return head + sql.SQL("DO UPDATE SET ") + sets


def dedupe_for_update(spec: TableSpec, rows: Sequence[tuple]) -> list[tuple]:
    """Rows with one row per key, as `ON CONFLICT DO UPDATE` requires within one statement.

    The last row of a key wins (it is the newest); for `data_gaps` the rows of a key merge the
    way the statement merges them with a stored row (latest end, repaired if any says so).
    """
    idx = [spec.columns.index(k) for k in spec.key]
    merged: dict[tuple, tuple] = {}
    gaps = spec.name_template == DATA_GAPS.name_template
    end_i = spec.columns.index("gap_end") if gaps else -1
    rep_i = spec.columns.index("repaired") if gaps else -1
    for row in rows:
        k = tuple(row[i] for i in idx)
        old = merged.get(k)
        if gaps and old is not None:
            end: datetime = max(old[end_i], row[end_i])
            rep = bool(old[rep_i]) or bool(row[rep_i])
            new = list(row)
            new[end_i], new[rep_i] = end, rep
            merged[k] = tuple(new)
        else:
            merged.pop(k, None)  # keeps insertion order = order of the last occurrence
            merged[k] = tuple(row)
    return list(merged.values())


def upsert_offset_statement() -> sql.SQL:
    """Records how far a segment was replayed (parameters: name, segment, seq, rows_done):
    frames up to `seq`, and the first `rows_done` rows of the next, are in. Never moves back."""
    return sql.SQL(
        "INSERT INTO spool_offsets (collector_name, segment, last_batch_seq, rows_done, "
        "updated_at) VALUES (%s, %s, %s, %s, now()) ON CONFLICT (collector_name, segment) DO "
        "UPDATE SET (last_batch_seq, rows_done, updated_at) = (EXCLUDED.last_batch_seq, "
        "EXCLUDED.rows_done, now()) WHERE (spool_offsets.last_batch_seq, spool_offsets.rows_done)"
        " < (EXCLUDED.last_batch_seq, EXCLUDED.rows_done)"
    )


def select_offsets_statement() -> sql.SQL:
    return sql.SQL(
        "SELECT segment, last_batch_seq, rows_done FROM spool_offsets WHERE collector_name = %s"
    )


def delete_offset_statement() -> sql.SQL:
    return sql.SQL("DELETE FROM spool_offsets WHERE collector_name = %s AND segment = %s")


def insert_batch_id_statement() -> sql.SQL:
    """The first statement of every writer transaction (parameters: name, batch id)."""
    return sql.SQL("INSERT INTO writer_batches (collector_name, batch_id) VALUES (%s, %s)")


def claim_batch_ids_statement() -> sql.SQL:
    """Claims spooled batch ids for replay; waits for a transaction still holding one."""
    return sql.SQL(
        "INSERT INTO writer_batches (collector_name, batch_id, replayed) "
        "SELECT %s, unnest(%s::int8[]), true ON CONFLICT DO NOTHING"
    )


def committed_batch_ids_statement() -> sql.SQL:
    """Of the given ids, those whose original transaction committed (parameters: name, ids)."""
    return sql.SQL(
        "SELECT batch_id FROM writer_batches WHERE collector_name = %s "
        "AND batch_id = ANY(%s::int8[]) AND NOT replayed"
    )


async def write_rows(
    conn: AsyncConnection[Any], spec: TableSpec, table: str, rows: Sequence[tuple]
) -> tuple[int, int]:
    """Writes rows to `table` in the caller's transaction; returns (rows written, ignored).

    Keyless tables take a binary COPY straight in; keyed tables take it into the session's
    staging table, then one INSERT ... ON CONFLICT moves the rows over. Call it at most once
    per table per transaction (the staging table empties at commit).
    """
    if not spec.key:
        await _copy(conn, table, spec, rows)
        return len(rows), 0
    to_write = dedupe_for_update(spec, rows) if spec.on_conflict == "update" else rows
    await conn.execute(create_staging_statement(table))
    await _copy(conn, staging_name(table), spec, to_write)
    cur = await conn.execute(merge_statement(spec, table))
    written = max(cur.rowcount, 0)
    return written, len(rows) - written


async def _copy(
    conn: AsyncConnection[Any], table: str, spec: TableSpec, rows: Sequence[tuple]
) -> None:
    async with conn.cursor() as cur, cur.copy(copy_statement(table, spec.columns)) as copy:
        copy.set_types(list(spec.sql_types))
        # The rows are encoded by psycopg's binary formatter (C) in a plain loop, and sent a
        # buffer (~32 kB) at a time: `await copy.write_row(row)` per row costs a coroutine
        # round per row, more than encoding it.
        encode = copy.formatter.write_row
        for row in rows:
            data = encode(row)
            if data:
                await copy.write(data)


def merge_batches(batches: Sequence[Batch]) -> list[Batch]:
    """One batch per table, rows in arrival order (a table is written once per transaction)."""
    merged: dict[tuple[str, str | None], Batch] = {}
    for spec, currency, rows in batches:
        key = (spec.name_template, currency)
        if key in merged:
            merged[key][2].extend(rows)
        else:
            merged[key] = (spec, currency, list(rows))
    return list(merged.values())


def split_batches(part: list[Batch]) -> list[list[Batch]] | None:
    """Halves of a failed write, to find the row the database refuses; None for a single row."""
    if len(part) > 1:
        return [[b] for b in part]
    spec, currency, rows = part[0]
    if len(rows) > 1:
        mid = len(rows) // 2
        return [[(spec, currency, rows[:mid])], [(spec, currency, rows[mid:])]]
    return None
