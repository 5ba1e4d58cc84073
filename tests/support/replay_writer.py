"""A writer process that replays a spool the test filled, under the real runtime (SIGTERM ->
stop -> drain): `python -m tests.support.replay_writer URL SPOOL_DIR COLLECTOR DRAIN_DEADLINE_S`.
"""

from __future__ import annotations

import asyncio
import sys

from scripts.logs import setup_logging
from scripts.runtime import run_service
from scripts.storage.spool import Spool
from scripts.storage.writer import BatchWriter


def main(url: str, spool_dir: str, name: str, deadline_s: float) -> int:
    async def service(stop: asyncio.Event) -> int:
        spool = Spool(spool_dir, max_bytes=1 << 32, collector_name=name)
        writer = BatchWriter(
            url,
            collector_name=name,
            currency="BTC",
            version="test",
            spool=spool,
            drain_deadline_s=deadline_s,
        )
        print("started", flush=True)
        await writer.run(stop)
        return 0

    return run_service(service)


if __name__ == "__main__":
    setup_logging("INFO")
    a = sys.argv[1:]
    raise SystemExit(main(a[0], a[1], a[2], float(a[3])))
