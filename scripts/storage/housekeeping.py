"""What a writer prunes now and then: resolved batch ids and old `rejected_messages`.

Batch ids (`writer_batches`) are needed only while rows of an unknown COMMIT may still be
spooled, so they are pruned only when the writer's spool is empty. `rejected_messages` keeps
`REJECTED_KEEP_DAYS` of bad input (before its newest row) for inspection; older rows go.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

HOUSEKEEPING_INTERVAL_S = 600.0
BATCH_ID_KEEP = "1 day"
REJECTED_KEEP_DAYS = 30


async def prune(conn: AsyncConnection[Any], collector_name: str, *, spool_empty: bool) -> None:
    """Deletes what has outlived its use, in the caller's transaction."""
    if spool_empty:
        await conn.execute(
            "DELETE FROM writer_batches WHERE collector_name = %s "
            "AND created_at < now() - %s::interval",
            (collector_name, BATCH_ID_KEEP),
        )
    # Relative to the newest row, not now(): a simulated clock (tests, replays) stamps rows
    # in the past, and a wrong host clock must not empty the table.
    await conn.execute(
        "DELETE FROM rejected_messages WHERE received_at < "
        "(SELECT max(received_at) FROM rejected_messages) - make_interval(days => %s)",
        (REJECTED_KEEP_DAYS,),
    )


async def probe(conn: AsyncConnection[Any]) -> None:
    """A cheap round trip: is the database there?"""
    await conn.execute("SELECT 1")
