"""A writer in its own process, for kill -9 tests: `python -m tests.support.spool_writer
URL SPOOL_DIR COLLECTOR [QUOTES]`.

It adds QUOTES quote rows (tests.support.writer_db.quote(0..QUOTES-1)), then flushes (which
replays the spool first) until the spool is empty and its buffers are written, drains, prints
"done" and exits 0. Small flush sizes make the replay many transactions long, so a test can
kill it mid-replay.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from scripts.logs import setup_logging
from scripts.storage import tables
from scripts.storage.spool import Spool
from scripts.storage.writer import BatchWriter
from tests.support.writer_db import quote


async def main(url: str, spool_dir: str, name: str, quotes: int) -> int:
    spool = Spool(spool_dir, max_bytes=1 << 30, collector_name=name)
    writer = BatchWriter(
        url,
        collector_name=name,
        currency="BTC",
        version="test",
        flush_max_rows=50,
        spool=spool,
        status_file=Path(spool_dir) / f"{name}.status.json",
        retry_max_s=0.5,
    )
    writer.add_many(tables.OPTION_QUOTES, "BTC", (quote(i) for i in range(quotes)))
    while not await writer.flush() or not spool.is_empty or writer.buffered_rows:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await writer.drain()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    setup_logging("INFO")
    args = sys.argv[1:]
    raise SystemExit(
        asyncio.run(main(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else 0))
    )
