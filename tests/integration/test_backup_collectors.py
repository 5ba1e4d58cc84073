"""A dump taken while the real-time collector records the fake exchange's ETH chain restores
row for row: the manifest is read in the dump's own snapshot, so rows written during the dump
are neither expected nor found."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scripts.backups.jobs import run_backup, run_restore_test
from scripts.backups.restore import restore_dump
from scripts.config import load_settings
from scripts.storage.migrate import apply_settings_schema
from tests.support.backups import backup_settings, count, table_rows
from tests.support.pgcluster import PgCluster
from tests.support.realtime import (
    SPEED,
    collector_env,
    hour_market,
    sim_fakes,
    start_collector,
    stop_collector,
)

RECORDED = ("eth_option_quotes", "eth_option_trades", "eth_option_orderbook_depth", "instruments")


async def test_dump_during_collection_restores_row_for_row(
    database_url: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    async with sim_fakes(SPEED) as make:
        fake = await make(hour_market())
        settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
        await apply_settings_schema(settings)
        run = await start_collector(settings, fake)
        try:
            await asyncio.sleep(8)  # about 16 market minutes
            outcome = await asyncio.to_thread(
                run_backup, backup_settings(database_url, tmp_path / "b")
            )
            await asyncio.sleep(3)  # the collector keeps writing after the snapshot
        finally:
            assert await stop_collector(run) == 0
    assert outcome.success, outcome.error
    dump = tmp_path / "b" / str(outcome.file_name)
    target = pg_cluster.url("from_collectors")
    try:
        result = restore_dump(dump, target)
        assert result.differences == []
        for table in ("eth_option_quotes", "eth_option_trades"):
            restored, source = set(table_rows(target, table)), set(table_rows(database_url, table))
            assert restored, table
            assert restored <= source, table  # nothing invented
            assert result.manifest[table].rows == len(restored)
        assert count(database_url, "eth_option_quotes") > result.manifest["eth_option_quotes"].rows
        print(
            "[backup] restored rows:",
            {t: result.manifest[t].rows for t in RECORDED},
            f"dump {dump.stat().st_size} bytes",
        )
    finally:
        pg_cluster.drop_database(target)
    test = run_restore_test(backup_settings(database_url, tmp_path / "b"))
    assert test.success, test.error
