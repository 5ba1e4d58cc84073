"""Rows out of PostgreSQL as Arrow record batches, in constant memory.

The ADBC PostgreSQL driver (`adbc-driver-postgresql`) runs the SELECT as
`COPY (...) TO STDOUT (FORMAT binary)` and decodes the binary tuples into Arrow arrays in C++,
a batch of about BATCH_BYTES at a time: the server formats no float as text and nothing parses
text on our side, so the values are the stored bits. It maps timestamptz to UTC microsecond
timestamps, float8 to float64, float8[] to lists of float64, int2/4/8, bool and text to their
Arrow types; a column of any other type is read as its text (`::text`, in the session settings
of `session_utc`), which is what the catalog promises for it. Each batch is given exactly the
relation's schema.

The driver opens its own connection, to the database `conn` is connected to, with the same
parameters and password. Query values are bound by psycopg into the SQL text: ADBC streams
through COPY only for a statement without bind parameters.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql
import psycopg
import pyarrow as pa
from psycopg import ClientCursor, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts.logs import mask_secrets
from scripts.research.catalog import Relation

BATCH_BYTES = 4 << 20  # the driver's batch size hint: memory per batch, not per day
PREFETCH_BATCHES = 2
APPLICATION_NAME = "chaintape-export"
# What session_utc sets, for the columns read as text (a timestamp, an interval).
SESSION = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=1 -c IntervalStyle=iso_8601"
# SQL types the driver decodes into the catalog's Arrow type; others are read as text.
BINARY_TYPES = frozenset(
    {
        "timestamp with time zone",
        "double precision",
        "real",
        "bigint",
        "integer",
        "smallint",
        "boolean",
        "text",
        "double precision[]",
    }
)


class ReadFailed(Exception):
    """The rows could not be read; the message is the driver's, with secrets masked."""


class ArrowSource:
    """Reads queries as Arrow batches over one ADBC connection, opened at the first read.

    Used as a context manager (or closed) by whoever reads several queries, such as one export
    day after another: connecting costs a round trip and the driver's type catalogue.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._handles: list[Any] = []  # the driver's database and connection, once opened
        self._secret = conn.info.password or ""

    def __enter__(self) -> ArrowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._handles:
            self._handles.pop().close()

    def _connection(self) -> Any:
        if not self._handles:
            dsn = self._conn.info.dsn
            theirs = str(conninfo_to_dict(dsn).get("options") or "")
            options = f"{theirs} {SESSION}".strip()
            dsn = make_conninfo(
                dsn,
                password=self._conn.info.password,
                application_name=APPLICATION_NAME,
                options=options,
            )
            database = self._guard(lambda: adbc_driver_postgresql.connect(dsn))
            self._handles.append(database)
            self._handles.append(self._guard(lambda: adbc_driver_manager.AdbcConnection(database)))
        return self._handles[-1]

    def _guard(self, call: Any) -> Any:
        try:
            return call()
        except (adbc_driver_manager.Error, pa.ArrowException, OSError) as exc:
            text = str(exc).strip()
            line = next((ln for ln in text.splitlines() if ln.strip()), type(exc).__name__)
            raise ReadFailed(mask_secrets(line, [self._secret])) from None

    def batches(
        self, rel: Relation, query: sql.Composed, params: list[Any]
    ) -> Iterator[tuple[pa.RecordBatch, int]]:
        """(batch, Arrow bytes read so far) for the rows of `query`, whose columns are rel's."""
        text = ClientCursor(self._conn).mogrify(binary_query(rel, query), params)
        conn = self._connection()
        finished = False
        try:
            with adbc_driver_manager.AdbcStatement(conn) as stmt:
                stmt.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
                stmt.set_sql_query(text)
                handle, _ = self._guard(stmt.execute_query)
                with pa.RecordBatchReader.from_stream(handle) as reader:
                    ahead = Prefetch(reader)
                    try:
                        read = 0
                        while (batch := self._guard(ahead.next)) is not None:
                            read += batch.nbytes
                            yield to_schema(batch, rel.schema), read
                        finished = True
                    finally:
                        ahead.close()
        finally:
            if not finished:  # a COPY left midway: the next query gets a fresh connection
                self.close()


class ArrowSources:
    """One ArrowSource per psycopg connection (per lane of a parallel export), closed together."""

    def __init__(self) -> None:
        # id(conn) -> (conn, its source): holding conn keeps its id from being reused
        self._by_conn: dict[int, tuple[psycopg.Connection, ArrowSource]] = {}
        self._lock = threading.Lock()

    def of(self, conn: psycopg.Connection) -> ArrowSource:
        with self._lock:
            held = self._by_conn.get(id(conn))
            if held is None:
                held = self._by_conn[id(conn)] = (conn, ArrowSource(conn))
            return held[1]

    def close(self) -> None:
        with self._lock:
            for _conn, source in self._by_conn.values():
                source.close()
            self._by_conn.clear()


class Prefetch:
    """Reads the next batches in a thread while the caller writes the previous ones.

    The driver decodes with the GIL released, so reading overlaps compressing and writing, and
    the server keeps sending meanwhile. At most PREFETCH_BATCHES wait in the queue.
    """

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._reader = reader
        self._queue: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(
            PREFETCH_BATCHES
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arrow-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in self._reader:
                if not self._put(batch):
                    return
            self._put(None)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._put(exc)

    def _put(self, item: pa.RecordBatch | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> pa.RecordBatch | None:
        """The next batch, None at the end; raises what the reading thread raised."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stops the thread (after the batch it is reading) and waits for it."""
        self._stop.set()
        self._thread.join()


def binary_query(rel: Relation, query: sql.Composed) -> sql.Composed:
    """`query` with every column the driver cannot decode to the catalog's type read as text."""
    if all(t in BINARY_TYPES for t in rel.sql_types):
        return query
    cols = sql.SQL(", ").join(
        sql.Identifier(c)
        if t in BINARY_TYPES
        else sql.SQL("{}::text AS {}").format(sql.Identifier(c), sql.Identifier(c))
        for c, t in zip(rel.columns, rel.sql_types, strict=True)
    )
    # PostgreSQL does not flatten a subquery with ORDER BY: its rows come out in its order.
    return sql.SQL("SELECT {} FROM ({}) AS q").format(cols, query)


def to_schema(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with exactly `schema` (the driver adds its own field metadata); values as read."""
    if batch.schema.equals(schema, check_metadata=True):
        return batch
    arrays = [
        col if col.type.equals(f.type) else col.cast(f.type)
        for col, f in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def record_batches(
    conn: psycopg.Connection, rel: Relation, query: sql.Composed, params: list[Any]
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """(batch, Arrow bytes read so far) for one query, over a connection of its own."""
    with ArrowSource(conn) as source:
        yield from source.batches(rel, query, params)


@contextlib.contextmanager
def connection_like(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Another autocommit connection to `conn`'s database, as the same user, in `session_utc`."""
    with psycopg.connect(
        conn.info.dsn, password=conn.info.password, connect_timeout=10, autocommit=True
    ) as other:
        session_utc(other)
        yield other


def session_utc(conn: psycopg.Connection) -> None:
    """Text output (CSV, Tardis) prints timestamps in UTC with an offset, floats exactly."""
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
