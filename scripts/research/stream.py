"""Rows out of PostgreSQL as Arrow record batches, in constant memory.

The server writes the rows as CSV (`COPY (SELECT ...) TO STDOUT (FORMAT csv)`, the format psql's
`\\copy` uses) and Arrow's streaming CSV reader parses them in C++, a block at a time, into the
relation's exact types: the Python loop only moves blocks of bytes. PostgreSQL prints float8 in
the shortest form that reads back to the same bit pattern (extra_float_digits = 1, its default),
so values survive the trip exactly. Arrays arrive as `{1.5,2}` text and are turned into lists.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import ClientCursor, sql

from scripts.research.catalog import Relation
from scripts.research.psql_pipe import CopyFailed, PsqlReader, psql_binary

BLOCK_BYTES = 2 << 20  # Arrow parses this much CSV per batch: memory per batch, not per day
PUMP_BLOCK_BYTES = 1 << 20
PUMP_QUEUE = 4


class CopyReader(io.RawIOBase):
    """A read-only file over a running `COPY ... TO STDOUT`, for Arrow's CSV reader.

    The server sends one message per row; a thread gathers them into blocks of about
    PUMP_BLOCK_BYTES while the caller's thread parses and writes the previous blocks (Arrow
    releases the GIL), so reading, parsing and writing overlap. At most PUMP_QUEUE blocks wait.
    """

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy = copy
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(PUMP_QUEUE)
        self._stop = threading.Event()
        self._pending = memoryview(b"")
        self._eof = False
        self.bytes_read = 0
        self._thread = threading.Thread(target=self._pump, name="copy-pump", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            parts: list[bytes] = []
            size = 0
            while not self._stop.is_set():
                chunk = self._copy.read()
                if not chunk:
                    break
                parts.append(bytes(chunk))
                size += len(chunk)
                if size >= PUMP_BLOCK_BYTES:
                    self._put(b"".join(parts))
                    parts, size = [], 0
            if parts:
                self._put(b"".join(parts))
            self._put(None)
        except BaseException as exc:  # handed to the reading thread, raised there
            self._put(exc)

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._eof:
                return 0
            item = self._queue.get()
            if item is None:
                self._eof = True
                return 0
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            self._pending = memoryview(item)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_read += n
        return n

    def close(self) -> None:
        """Stops the pump (an early exit) and waits for it: the connection is free after."""
        self._stop.set()
        self._thread.join()
        super().close()


def csv_types(rel: Relation) -> dict[str, pa.DataType]:
    """Types the CSV reader parses into: lists arrive as text and are converted afterwards."""
    schema = rel.schema
    return {f.name: (pa.string() if pa.types.is_list(f.type) else f.type) for f in schema}


def to_lists(text: pa.Array) -> pa.Array:
    """PostgreSQL float8[] text (`{1.5,2}`, `{}`, NULL) to list<float64>."""
    inner = pc.utf8_slice_codeunits(text, 1, -1)
    parts = pc.split_pattern(inner, ",")
    empty = pc.equal(inner, "")
    empty_list = pa.scalar([], type=pa.list_(pa.string()))
    parts = pc.if_else(empty, empty_list, parts)
    return parts.cast(pa.list_(pa.float64()))


def finish_batch(batch: pa.RecordBatch, rel: Relation) -> pa.RecordBatch:
    if not rel.list_columns:
        return batch
    arrays = [
        to_lists(batch.column(i)) if name in rel.list_columns else batch.column(i)
        for i, name in enumerate(batch.schema.names)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=rel.schema)


def record_batches(
    conn: psycopg.Connection,
    rel: Relation,
    query: sql.Composed,
    params: list[Any],
    *,
    via: str = "auto",
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """(batch, CSV bytes read so far) for the rows of `query`, whose columns are rel's.

    via: "psql" reads the rows through psql (scripts/research/psql_pipe.py), "pump" through
    psycopg, "auto" psql when it is installed. Both give the same bytes.
    """
    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
    psql = psql_binary() if via in ("auto", "psql") else None
    if via == "psql" and psql is None:
        raise CopyFailed("psql is not installed")
    if psql is not None:
        text = ClientCursor(conn).mogrify(copy_sql, params)  # values quoted by psycopg
        reader: CopyReader | PsqlReader = PsqlReader(psql, conn, text)
        try:
            yield from _parse(reader, rel)
        finally:
            reader.close()
        return
    with conn.cursor() as cur, cur.copy(copy_sql, params) as copy:
        reader = CopyReader(copy)
        try:
            yield from _parse(reader, rel)
        finally:
            reader.close()


def _parse(reader: Any, rel: Relation) -> Iterator[tuple[pa.RecordBatch, int]]:
    source = io.BufferedReader(reader, buffer_size=1 << 20)
    if not source.peek(1):  # no rows: Arrow refuses an empty CSV
        return
    stream = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(
            column_names=list(rel.columns), block_size=BLOCK_BYTES, use_threads=False
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=rel.multiline_text),
        convert_options=pacsv.ConvertOptions(
            column_types=csv_types(rel),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    for batch in stream:
        yield finish_batch(batch, rel), reader.bytes_read


def session_utc(conn: psycopg.Connection) -> None:
    """Timestamps print in UTC with an offset Arrow parses; floats print exactly."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET DateStyle = 'ISO, YMD'")
    conn.execute("SET extra_float_digits = 1")
    conn.execute("SET IntervalStyle = 'iso_8601'")


def copy_out(
    conn: psycopg.Connection,
    copy_sql: sql.Composed,
    params: list[Any],
    write: Any,
    on_chunk: Any,
) -> int:
    """Runs a `COPY ... TO STDOUT`, handing each chunk to `write`; returns the rows copied."""
    with conn.cursor() as cur:
        with cur.copy(copy_sql, params) as copy:
            for chunk in copy:
                write(chunk)
                on_chunk(len(chunk))
        return max(cur.rowcount, 0)  # the rows COPY reported
