"""`python -m bench.export [--rows N] [--days D]`: export throughput against psql.

In a throwaway PostgreSQL + TimescaleDB cluster (the tests' one; CHAINTAPE_PG_BIN picks the
binaries) it writes N synthetic ETH option quotes (default 10 million, binary COPY) over D days,
then, in the same run, exports the same rows twice:
- `psql -c "\\copy (<the exporter's query for each day>) TO STDOUT (FORMAT csv)"`, the baseline;
- `python -m scripts.export eth_option_quotes ... --format parquet`, the exporter, in its own
  process, whose peak resident set (VmHWM) is read from /proc until it exits: once with
  `--jobs 1` (one day at a time) and once with the default `--jobs`;
and prints rows/s and MB/s of each (MB: the CSV the server produced, the same bytes for all)
and the exporter's peak RSS. Targets (the default `--jobs`): exporter >= 1x psql's rate, peak
RSS <= 200 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.quote_data import write_quotes
from scripts.research.catalog import resolve
from scripts.research.export_days import plan_days
from scripts.research.exporter import DEFAULT_JOBS
from scripts.research.query import Filters, select

REPO_ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 6, 1, tzinfo=UTC)
TARGET_RATIO = 1.0
TARGET_RSS_MB = 200.0


def psql_script(url: str, days: int) -> str:
    """One `\\copy` per day, each the exact query the exporter runs for that day."""
    lines = ["SET TIME ZONE 'UTC';"]
    with psycopg.connect(url) as conn:
        rel = resolve(conn, "eth_option_quotes")
        for plan in plan_days(START, START + timedelta(days=days)):
            query, params = select(rel, plan.start, plan.end, Filters())
            text = (
                query.as_string(conn)
                .replace("%s", "{}")
                .format(*(f"'{p.isoformat()}'" for p in params))
            )
            lines.append(f"\\copy ({text}) TO STDOUT (FORMAT csv)")
    return "\n".join(lines) + "\n"


def run_psql(url: str, script: Path) -> tuple[float, int]:
    """(seconds, bytes of CSV) for psql running the script, its output read and discarded."""
    psql = shutil.which("psql") or "psql"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [psql, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(chunk)
    if proc.wait() != 0:
        raise SystemExit("psql failed")
    return time.perf_counter() - started, total


def run_exporter(url: str, out: Path, days: int, jobs: int) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of `python -m scripts.export` in its own process."""
    end = START + timedelta(days=days)
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.export",
            "eth_option_quotes",
            "--start",
            START.isoformat(),
            "--end",
            end.isoformat(),
            "--out",
            str(out),
            "--jobs",
            str(jobs),
        ],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )
    # VmHWM (the peak resident set of this program since its exec) read until it exits; the
    # kernel's ru_maxrss would also count the benchmark's own memory inherited at fork.
    peak_kb = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the exporter failed (exit {proc.returncode})")
    return elapsed, peak_kb / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args(argv)
    from scripts.storage.migrate import apply_schema
    from tests.support.pgcluster import PgCluster  # the repository's throwaway cluster

    cluster = PgCluster()
    work = Path(tempfile.mkdtemp(prefix="chaintape-export-bench-"))
    try:
        url = cluster.create_database("exportbench")
        apply_schema(url, ["ETH"], schedule_policies=False)
        t0 = time.perf_counter()
        write_quotes(url, args.rows, START, args.days)
        gen_s = time.perf_counter() - t0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE eth_option_quotes")
        print(
            f"generated {args.rows:,} quote rows over {args.days} days (binary COPY) "
            f"in {gen_s:.1f} s ({args.rows / gen_s:,.0f} rows/s)"
        )
        script = work / "copy.sql"
        script.write_text(psql_script(url, args.days))
        run_psql(url, script)  # warm the cache so both read from memory
        psql_s, csv_bytes = run_psql(url, script)
        one_s, one_mb = run_exporter(url, work / "one", args.days, 1)
        exp_s, rss_mb = run_exporter(url, work / "out", args.days, DEFAULT_JOBS)
        parquet = sum(p.stat().st_size for p in (work / "out").rglob("*.parquet"))
        mb = csv_bytes / 1e6
        rows = args.rows
        print(f"{'':36}{'seconds':>9}{'rows/s':>13}{'MB/s (CSV)':>12}{'peak RSS':>10}")
        for label, secs, rss in (
            ("psql \\copy ... (FORMAT csv)", psql_s, None),
            ("scripts.export (parquet, --jobs 1)", one_s, one_mb),
            (f"scripts.export (parquet, --jobs {DEFAULT_JOBS})", exp_s, rss_mb),
        ):
            peak = f"{rss:7.0f} MB" if rss is not None else ""
            print(f"{label:36}{secs:9.2f}{rows / secs:13,.0f}{mb / secs:12.1f}{peak:>10}")
        ratio = psql_s / exp_s
        print(
            f"exporter / psql rate: {ratio:.2f}x with --jobs {DEFAULT_JOBS} "
            f"(target >= {TARGET_RATIO:g}x), {psql_s / one_s:.2f}x with --jobs 1"
        )
        print(f"exporter peak RSS: {rss_mb:.0f} MB (target <= {TARGET_RSS_MB:g} MB)")
        print(f"CSV {mb:,.0f} MB -> Parquet (zstd) {parquet / 1e6:,.0f} MB")
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
