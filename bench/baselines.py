"""This machine's limits for the same rows: raw binary COPY into the collector's tables on one
connection, and the rate a bare websockets + orjson client drains the same fake exchange."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from websockets.asyncio.client import connect

from bench import procstat
from scripts import models
from scripts.storage import copy as copy_sql
from scripts.storage.tables import (
    OPTION_ORDERBOOK_DEPTH,
    OPTION_QUOTES,
    OPTION_TRADES,
    TableSpec,
)

# Baseline rows live far after the benchmark's market time, in chunks dropped afterwards.
BASELINE_EPOCH = datetime(2031, 1, 1, tzinfo=UTC)
COPY_BATCH_ROWS = 5000  # rows per COPY and transaction, like one writer flush
SUBSCRIBE_BATCH = 400


def quote_rows(names: list[str], n: int, seed: int = 7) -> list[tuple]:
    rng = random.Random(seed)
    out: list[tuple] = []
    for i in range(n):
        ts = BASELINE_EPOCH + timedelta(microseconds=i * 25)
        bid = round(rng.uniform(0.001, 0.2), 4)
        out.append(
            models.QuoteRow(
                ts, names[i % len(names)], bid, round(rng.uniform(0.1, 50), 1),
                bid + 0.0005, round(rng.uniform(0.1, 50), 1),
                None, None, 52.3, bid + 0.0002, None, ts,
            )
        )  # fmt: skip
    return out


def trade_rows(names: list[str], n: int, seed: int = 8) -> list[tuple]:
    rng = random.Random(seed)
    out: list[tuple] = []
    for i in range(n):
        ts = BASELINE_EPOCH + timedelta(microseconds=i * 25)
        amount = round(rng.choice((0.1, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0)), 1)
        out.append(
            models.TradeRow(
                ts, names[i % len(names)], str(310_000_000 + i), 100_000 + i,
                round(rng.uniform(0.001, 0.2), 4), amount, amount, rng.choice(("buy", "sell")),
                rng.randint(0, 3), round(rng.uniform(40, 90), 2),
                round(97_000 + rng.uniform(-50, 50), 2), round(rng.uniform(0.001, 0.2), 4),
                None, None, None, None, None, None, ts,
            )
        )  # fmt: skip
    return out


def depth_rows(names: list[str], n: int, seed: int = 9, levels: int = 10) -> list[tuple]:
    """Book snapshots as ORDERBOOK_DEPTH=10 gives them: prices on the tick grid around a mid."""
    rng = random.Random(seed)
    out: list[tuple] = []
    for i in range(n):
        ts = BASELINE_EPOCH + timedelta(milliseconds=i)
        mid = round(rng.uniform(0.002, 0.2), 4)
        bids = [round(max(0.0001, mid - 0.0005 * (k + 1)), 4) for k in range(levels)]
        asks = [round(mid + 0.0005 * (k + 1), 4) for k in range(levels)]
        sizes = [[round(rng.uniform(0.1, 40), 1) for _ in range(levels)] for _ in range(2)]
        out.append(
            models.BookSnapshotRow(
                ts, names[i % len(names)], 40_000_000_000 + i * 7, bids, sizes[0], asks,
                sizes[1], mid, round(rng.uniform(40, 90), 2), round(rng.uniform(40, 90), 2),
                round(rng.uniform(40, 90), 2), round(97_000 + rng.uniform(-50, 50), 2),
                round(rng.uniform(0, 2000), 1), ts,
            )
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class CopyRate:
    rows_s: float
    db_us_per_row: float | None  # the server's CPU (every process), None if not visible


def copy_rate(url: str, spec: TableSpec, currency: str, rows: list[tuple]) -> CopyRate:
    """Rows/s of binary COPY on one connection, the way the writer does it (keyed tables go
    through the staging table and INSERT ... ON CONFLICT), one transaction per batch."""
    table = spec.table_name(currency)
    types = list(spec.sql_types)
    with psycopg.connect(url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()
        conn.commit()
        server = procstat.PostgresCpu.from_backend_pid(int(pid[0]), set()) if pid else None
        cpu0 = server.cpu_s() if server else None
        started = time.perf_counter()
        for i in range(0, len(rows), COPY_BATCH_ROWS):
            batch = rows[i : i + COPY_BATCH_ROWS]
            target = table
            if spec.key:
                conn.execute(copy_sql.create_staging_statement(table))
                target = copy_sql.staging_name(table)
            with conn.cursor() as cur, cur.copy(copy_sql.copy_statement(target, spec.columns)) as c:
                c.set_types(types)
                for row in batch:
                    c.write_row(row)
            if spec.key:
                conn.execute(copy_sql.merge_statement(spec, table))
            conn.commit()
        elapsed = time.perf_counter() - started
        cpu1 = server.cpu_s() if server else None
    db = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / len(rows) * 1e6
    return CopyRate(len(rows) / elapsed, db)


def drop_baseline_rows(url: str, tables: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(
                "SELECT drop_chunks(%s::regclass, newer_than => %s::timestamptz)",
                (table, BASELINE_EPOCH - timedelta(days=1)),
            )


def copy_baselines(url: str, currency: str, names: list[str], n: int) -> dict[str, CopyRate]:
    """Raw COPY rows/s into the quotes, trades and depth tables (drop the rows with
    `drop_baseline_rows` once their size is measured)."""
    return {
        OPTION_QUOTES.table_name(currency): copy_rate(
            url, OPTION_QUOTES, currency, quote_rows(names, n)
        ),
        OPTION_TRADES.table_name(currency): copy_rate(
            url, OPTION_TRADES, currency, trade_rows(names, max(1, n // 2))
        ),
        OPTION_ORDERBOOK_DEPTH.table_name(currency): copy_rate(
            url, OPTION_ORDERBOOK_DEPTH, currency, depth_rows(names, max(1, n // 4))
        ),
    }


async def drain_rate(ws_url: str, channels: list[str], seconds: float) -> float:
    """Messages/s a bare client takes (orjson.loads each) once subscribed to `channels`."""
    async with connect(ws_url, max_size=None, compression=None, ping_interval=None) as ws:
        for i in range(0, len(channels), SUBSCRIBE_BATCH):
            req = {
                "jsonrpc": "2.0",
                "id": i + 1,
                "method": "public/subscribe",
                "params": {"channels": channels[i : i + SUBSCRIBE_BATCH]},
            }
            await ws.send(orjson.dumps(req).decode())
        loads = orjson.loads
        count = 0
        warm_until = time.monotonic() + min(1.0, seconds / 4)
        while time.monotonic() < warm_until:
            loads(await ws.recv(decode=False))
        started = time.monotonic()
        deadline = started + seconds
        while True:
            msg: Any = await ws.recv(decode=False)
            loads(msg)
            count += 1
            if count % 256 == 0 and time.monotonic() >= deadline:
                break
        return count / (time.monotonic() - started)


def run_drain(ws_url: str, channels: list[str], seconds: float) -> float:
    return asyncio.run(drain_rate(ws_url, channels, seconds))
