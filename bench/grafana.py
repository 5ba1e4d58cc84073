"""`python -m bench.grafana [--days 30]`: how fast the dashboards' panels are on a
month of one currency's full option chain.

Starts a throwaway PostgreSQL + TimescaleDB cluster (CHAINTAPE_PG_BIN picks the install, as for
`python -m bench`; WAL and checkpoints tuned for a bulk load), migrates it with the read-only
Grafana role, and loads `--days` of synthetic data ending now at the sizing mix
(bench/grafana_data.py: rows per day are printed) with binary COPY, a day at a time. On the
full edition, while the next day loads, the continuous aggregates are refreshed up to the
loaded day and its chunks older than `--compress-after` (the policies' 2 days) are compressed,
as the policies would have done; the aggregates' own chunks are compressed after their
policies' intervals at the end. The state measured is a month-old install's. Then, as the
read-only role, it runs every variable and panel query of every dashboard over its default
range and over the last 30 days, and prints each one's time (the best of 3 runs, and the
first). Targets on our 2-core machine, full edition: default range < 1 s, 30 days < 3 s per panel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench import grafana_data
from scripts.grafana.build import BUILDERS, DASHBOARD_DIR
from scripts.grafana.runner import default_range, load, panel_queries, resolve_variables
from scripts.storage.migrate import apply_schema

ROLE = "grafana_bench"
PASSWORD = "grafana-bench-password"
AGGREGATES = ("option_quotes_1m", "option_quotes_1h", "option_trades_1m", "option_trades_1h")
BENCH_SETTINGS = (
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "30min"),
    ("maintenance_work_mem", "1GB"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.grafana", description=__doc__)
    p.add_argument("--days", type=int, default=30, help="days of data to load (default 30)")
    p.add_argument("--currency", default="BTC")
    p.add_argument("--runs", type=int, default=3, help="runs per query (best is reported)")
    p.add_argument(
        "--compress-after",
        default="2 days",
        help="compress chunks older than this before measuring (the policies' 2 days; with "
        "fewer days loaded, a shorter one shows a month's mostly compressed state)",
    )
    return p.parse_args(argv)


def tune(cluster: Any) -> None:
    """Bench cluster only: room for a month's load (fewer checkpoints, no WAL for new chunks)."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        for name, value in BENCH_SETTINGS:
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    cluster.stop()
    cluster.start()


class Storage:
    """What the policies do while a month is recorded, on a second connection while the next
    day loads: refresh the aggregates up to a loaded day's end, then compress the chunks that
    are complete and older than `compress_after` (full edition; nothing on Apache)."""

    def __init__(self, url: str, cur: str, end: datetime, compress_after: str) -> None:
        self.cur, self.end, self.compress_after = cur, end, compress_after
        self.conn = psycopg.connect(url, autocommit=True)
        row = self.conn.execute("SELECT chaintape_full_edition()").fetchone()
        self.full = bool(row and row[0])
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: list[Future[None]] = []
        self.seconds = 0.0

    def day_loaded(self, day_end: datetime) -> None:
        if self.full:
            self.pending.append(self.pool.submit(self._catch_up, day_end))

    def _catch_up(self, day_end: datetime) -> None:
        t0 = time.perf_counter()
        for agg in AGGREGATES:
            self.conn.execute(
                "CALL refresh_continuous_aggregate(%s, NULL, %s)", (f"{self.cur}_{agg}", day_end)
            )
        self.conn.execute(
            "SELECT count(compress_chunk(c, true)) FROM timescaledb_information.hypertables h,"
            " show_chunks(format('%%I.%%I', h.hypertable_schema, h.hypertable_name)::regclass,"
            " older_than => least(%s, %s - %s::interval)) c WHERE h.compression_enabled"
            " AND h.hypertable_schema = 'public'",
            (day_end, self.end, self.compress_after),
        )
        self.seconds += time.perf_counter() - t0

    def wait(self) -> None:
        for f in self.pending:
            f.result()
        self.pending.clear()

    def close(self) -> None:
        self.wait()
        self.pool.shutdown()
        self.conn.close()


def load_data(url: str, cur: str, days: int, compress_after: str) -> tuple[datetime, datetime]:
    """Loads `days` ending now, day by day, refreshing and compressing as it goes.

    The quote index is dropped for the load and rebuilt at the end (the same definition): by
    then only the chunks left uncompressed have rows, and a sorted build costs a fraction of
    maintaining it row by row.
    """
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(days=days)
    options = grafana_data.chain(cur, start, end)
    quotes = f"{cur.lower()}_option_quotes"
    storage = Storage(url, cur.lower(), end, compress_after)
    with psycopg.connect(url) as conn:
        grafana_data.instruments(conn, cur, options, end)
        grafana_data.future_instruments(conn, cur, start, end)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = %s",
            (quotes,),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.commit()
        day, n = start, 0
        while day < end:
            t0 = time.perf_counter()
            counts = grafana_data.day_rows(conn, cur, options, day, seed=n)
            if n == 0:
                print("rows per day: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            day += timedelta(days=1)
            n += 1
            storage.wait()  # at most one day behind: bounded disk
            storage.day_loaded(day)
            print(f"  loaded {day - timedelta(days=1):%Y-%m-%d} in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        storage.close()
        print(f"  refreshing and compressing while loading: {storage.seconds:.0f} s")
        t0 = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition.encode())
        conn.commit()
        print(f"  rebuilt the quote index in {time.perf_counter() - t0:.0f} s")
    return start, end


def finish_storage(url: str, cur: str, compress_after: str) -> str:
    """Full edition: the last refresh and compression, as the policies would; the edition."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT chaintape_full_edition()").fetchone()
        full = bool(row and row[0])
        if full:
            for agg in AGGREGATES:
                t0 = time.perf_counter()
                conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (f"{cur}_{agg}",))
                print(f"  refreshed {cur}_{agg} in {time.perf_counter() - t0:.0f} s", flush=True)
            t0 = time.perf_counter()
            conn.execute(
                "SELECT count(compress_chunk(c, true)) FROM timescaledb_information.hypertables h,"
                " show_chunks(format('%%I.%%I', h.hypertable_schema, h.hypertable_name)::regclass,"
                " older_than => %s::interval) c WHERE h.compression_enabled"
                " AND h.hypertable_schema = 'public'",
                (compress_after,),
            )
            for agg in AGGREGATES:  # after their own policies' intervals (7 or 30 days)
                conn.execute(
                    "SELECT count(compress_chunk(c, true)) FROM show_chunks(%s::regclass,"
                    " older_than => coalesce((SELECT (j.config->>'compress_after')::interval"
                    " FROM timescaledb_information.jobs j WHERE j.hypertable_name = %s"
                    " AND j.proc_name = 'policy_compression'), %s::interval)) c",
                    (f"{cur}_{agg}", f"{cur}_{agg}", compress_after),
                )
            print(
                f"  compressed chunks older than {compress_after} in "
                f"{time.perf_counter() - t0:.0f} s"
            )
        conn.execute("VACUUM ANALYZE")
        print(f"\n{'table':<36} {'size MB':>9} {'before compr. MB':>17} {'after MB':>9}")
        total_mb = 0.0
        for name, total, before, after in conn.execute(
            "SELECT * FROM chaintape_table_sizes() ORDER BY total_bytes DESC"
        ):
            mb = [f"{v / 1e6:.1f}" if v is not None else "n/a" for v in (total, before, after)]
            total_mb += (total or 0) / 1e6
            print(f"{name:<36} {mb[0]:>9} {mb[1]:>17} {mb[2]:>9}")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        print(f"all tables {total_mb:,.0f} MB; database {(size[0] if size else 0) / 1e6:,.0f} MB")
        return "timescale (full)" if full else "apache"


def time_query(conn: psycopg.Connection, sql: str, runs: int) -> tuple[float, float, int]:
    times, rows = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = len(conn.execute(sql.encode()).fetchall())
        times.append(time.perf_counter() - t0)
    return times[0], min(times), rows


def measure(url: str, end: datetime, runs: int) -> list[dict[str, Any]]:
    results = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name in BUILDERS:
            board = load(DASHBOARD_DIR / name)
            ranges = {
                "default": default_range(board, end),
                "30 days": (end - timedelta(days=30), end),
            }
            for label, (start, stop) in ranges.items():
                values, var_sqls = resolve_variables(conn, board, start, stop)
                for i, sql in enumerate(var_sqls):
                    first, best, rows = time_query(conn, sql, runs)
                    title = f"variable {board['templating']['list'][i]['name']}"
                    results.append(dict(board=board["title"], panel=title, range=label,
                                        first=first, best=best, rows=rows))  # fmt: skip
                for q in panel_queries(board, values, start, stop):
                    first, best, rows = time_query(conn, q.sql, runs)
                    title = q.title.replace("$expiry", str(q.repeat_value or ""))
                    results.append(dict(board=board["title"], panel=title, range=label,
                                        first=first, best=best, rows=rows))  # fmt: skip
    return results


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"\n{'dashboard':<36} {'panel':<46} {'range':<8} {'best s':>7} {'first s':>8} {'rows':>7}"
    )
    for r in results:
        print(
            f"{r['board']:<36} {r['panel'][:46]:<46} {r['range']:<8} {r['best']:>7.3f} "
            f"{r['first']:>8.3f} {r['rows']:>7}"
        )
    for label, target in (("default", 1.0), ("30 days", 3.0)):
        best = [r["best"] for r in results if r["range"] == label]
        slow = [r for r in results if r["range"] == label and r["best"] >= target]
        print(
            f"{label}: {len(best)} queries, median {statistics.median(best):.3f} s, max "
            f"{max(best):.3f} s, over {target:.0f} s: {len(slow)}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tests.support.pgcluster import PgCluster  # the repository's throwaway cluster

    cluster = PgCluster()
    try:
        tune(cluster)
        url = cluster.create_database(prefix="grafana_bench")
        apply_schema(url, [args.currency], grafana_user=ROLE, grafana_password=PASSWORD,
                     schedule_policies=False)  # fmt: skip
        cur = args.currency.lower()
        t0 = time.perf_counter()
        _, end = load_data(url, args.currency.upper(), args.days, args.compress_after)
        print(f"loaded {args.days} day(s) in {time.perf_counter() - t0:.0f} s")
        edition = finish_storage(url, cur, args.compress_after)
        print(f"TimescaleDB edition: {edition}")
        ro_url = cluster.url(url.rsplit("/", 1)[1], user=ROLE, password=PASSWORD)
        report(measure(ro_url, end, args.runs))
    finally:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            cluster.destroy()
            del conn
    return 0


if __name__ == "__main__":
    sys.exit(main())
