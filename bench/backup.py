"""`python -m bench.backup [--gb 1.0]`: backup and restore time and size per GB.

Fills a throwaway PostgreSQL + TimescaleDB cluster (CHAINTAPE_PG_BIN picks the install; needs
the repository's tests/ on the path) or an empty scratch database given by DATABASE_URL with
about `--gb` GB of synthetic option quotes and trades written by binary COPY, then takes a
dump as the backup service does (manifest in the same snapshot), restores it into a new
database with Timescale's sequence and compares them, and prints seconds and bytes per GB of
database, the dump's size ratio and the WAL the restore wrote. Run it from the repository root.
`--compress` compresses every chunk first (full edition): the figures are then per GB of
compressed database, as a NAS running the timescale image has.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from scripts.backups.dump import take_dump
from scripts.backups.manifest import read_manifest
from scripts.backups.restore import restore_dump
from scripts.config import load_settings_or_exit
from scripts.storage.migrate import apply_schema
from scripts.storage.tables import OPTION_QUOTES, OPTION_TRADES

GB = 1 << 30
BATCH = 200_000


@contextlib.contextmanager
def database(url: str | None) -> Iterator[tuple[str, str]]:
    """(database URL, maintenance URL): the given one, or a throwaway cluster's."""
    if url:
        yield url, url.rsplit("/", 1)[0] + "/postgres"
        return
    from tests.support.pgcluster import PgCluster  # the repository's test cluster

    cluster = PgCluster()
    try:
        yield cluster.create_database("backup_bench"), cluster.url()
    finally:
        cluster.destroy()


def _size(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return int(row[0])


def fill(url: str, target_bytes: int) -> int:
    """Quotes and trades by binary COPY until the database has grown by `target_bytes`."""
    rng = random.Random(7)
    names = [
        f"BTC-{d}DEC26-{k * 1000}-{cp}" for d in range(1, 11) for k in range(60, 100) for cp in "CP"
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        base = _size(conn)
        n = 0
        while _size(conn) - base < target_bytes:
            with conn.cursor().copy(_copy_sql("btc_option_quotes", OPTION_QUOTES.columns)) as copy:
                copy.set_types(list(OPTION_QUOTES.sql_types))
                for i in range(n, n + BATCH):
                    ts = start + timedelta(milliseconds=i * 15)
                    bid = round(rng.uniform(0.001, 0.2), 4)
                    copy.write_row(
                        (
                            ts,
                            names[i % len(names)],
                            bid,
                            rng.randint(1, 50) / 10,
                            bid + 0.0005,
                            rng.randint(1, 50) / 10,
                            None,
                            None,
                            rng.uniform(40, 90),
                            bid + 0.0002,
                            rng.uniform(90000, 110000),
                            ts,
                        )
                    )
            trades = BATCH // 50
            with conn.cursor().copy(_copy_sql("btc_option_trades", OPTION_TRADES.columns)) as copy:
                copy.set_types(list(OPTION_TRADES.sql_types))
                for i in range(n // 50, n // 50 + trades):
                    ts = start + timedelta(milliseconds=i * 750)
                    copy.write_row(
                        (
                            ts,
                            names[i % len(names)],
                            f"T{i}",
                            i,
                            rng.uniform(0.001, 0.2),
                            1.0,
                            1.0,
                            rng.choice(("buy", "sell")),
                            1,
                            rng.uniform(40, 90),
                            100000.0,
                            0.05,
                            None,
                            None,
                            None,
                            None,
                            None,
                            None,
                            ts,
                        )
                    )
            n += BATCH
        conn.execute("ANALYZE")
        return _size(conn)


def compress_all(url: str) -> int:
    """Compresses every chunk of the filled tables; the database's size afterwards."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("btc_option_quotes", "btc_option_trades"):
            conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%s) c",
                (table,),
            )
        conn.execute("VACUUM ANALYZE")
        return _size(conn)


def _copy_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__)
    p.add_argument("--gb", type=float, default=1.0, help="database size to generate (GB)")
    p.add_argument(
        "--compress",
        action="store_true",
        help="compress every chunk before the dump (full TimescaleDB edition only)",
    )
    args = p.parse_args(argv)
    url_in = load_settings_or_exit(need_currency="any", need_database=False).database_url
    with database(url_in or None) as (url, _admin), tempfile.TemporaryDirectory() as tmp:
        apply_schema(url, ["btc"], schedule_policies=False)
        t0 = time.monotonic()
        db_bytes = fill(url, int(args.gb * GB))
        fill_s = time.monotonic() - t0
        if args.compress:
            raw_bytes = db_bytes
            db_bytes = compress_all(url)
            print(f"compressed: {raw_bytes / GB:.2f} GB -> {db_bytes / GB:.2f} GB")
        with psycopg.connect(url) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            t0 = time.monotonic()
            manifest = read_manifest(conn)
            manifest_s = time.monotonic() - t0
        rows = sum(t.rows for t in manifest.values())
        dump = take_dump(url, Path(tmp), margin_mb=0)
        target = url.rsplit("/", 1)[0] + "/backup_bench_restored"
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
            assert row is not None
            lsn0 = row[0]
        result = restore_dump(dump.path, target, force=True)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn0,)
            ).fetchone()
            assert row is not None
            wal = int(row[0])
        per_gb = GB / db_bytes
        ok = "agrees row for row" if not result.differences else f"DIFFERS: {result.differences}"
        lines = [
            f"database: {db_bytes / GB:.2f} GB, {rows:,} rows (binary COPY, {fill_s:.0f} s)",
            f"dump: {dump.size_bytes / GB:.3f} GB ({dump.size_bytes / db_bytes:.2f} of the "
            f"database), {dump.duration_s:.1f} s incl. the manifest's {manifest_s:.1f} s",
            f"restore: {result.duration_s:.1f} s incl. comparison; WAL {wal / GB:.2f} GB; {ok}",
            "per GB of database:",
            f"  dump size        {dump.size_bytes * per_gb / GB:.3f} GB",
            f"  backup time      {dump.duration_s * per_gb:.0f} s",
            f"  manifest time    {manifest_s * per_gb:.0f} s (part of the backup time)",
            f"  restore time     {result.duration_s * per_gb:.0f} s (the restore test: same)",
            f"  restore WAL      {wal * per_gb / GB:.2f} GB",
        ]
        print("\n".join(lines))
    return 0 if not result.differences else 1


if __name__ == "__main__":
    sys.exit(main())
