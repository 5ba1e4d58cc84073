"""Full TimescaleDB edition: compressed chunks and continuous aggregates restore row for row,
and the restore test's scratch copy runs none of the restored policies. Skipped, saying why,
on the Apache edition CI has (run with CHAINTAPE_PG_BIN pointing at a full-edition build)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from scripts.backups.jobs import run_backup, run_restore_test
from scripts.backups.restore import restore_dump
from tests.support.backups import backup_settings, fill, table_rows
from tests.support.pgcluster import PgCluster


def _compressed_chunks(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = %s AND is_compressed",
            (table,),
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_compressed_chunks_and_continuous_aggregates_restore_row_for_row(
    full_edition: None, database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    fill(database_url, rows=6000)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT compress_chunk(c) FROM show_chunks('btc_option_quotes',"
            " older_than => interval '1 day') c"
        )
        conn.execute("CALL refresh_continuous_aggregate('btc_option_trade_bars_1h', NULL, NULL)")
    compressed = _compressed_chunks(database_url, "btc_option_quotes")
    assert compressed > 0
    outcome = run_backup(backup_settings(database_url, tmp_path / "b"))
    assert outcome.success, outcome.error
    dump = tmp_path / "b" / str(outcome.file_name)
    target = pg_cluster.url("full_restored")
    try:
        result = restore_dump(dump, target)
        assert result.differences == []
        assert result.manifest["btc_option_trade_bars_1h"].rows > 0
        for table in ("btc_option_quotes", "btc_option_trades", "btc_option_trade_bars_1h"):
            assert table_rows(target, table) == table_rows(database_url, table), table
        assert _compressed_chunks(target, "btc_option_quotes") == compressed
    finally:
        pg_cluster.drop_database(target)
    test = run_restore_test(backup_settings(database_url, tmp_path / "b"))
    assert test.success, test.error
    assert test.details["tables"] == len(result.manifest)
