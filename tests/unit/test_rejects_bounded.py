"""Issue 11 scenario 13: what bad input can add to counters and to `rejected_messages` is capped.

A bad value repeated in every message, or a value that differs in every message, must neither
grow the status counters without bound nor flood `rejected_messages`; every rejection is still
counted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from scripts.collectors.rejects import (
    MAX_COUNTER_KEYS,
    MAX_KEPT_PER_KIND_PER_HOUR,
    Rejects,
)
from scripts.storage.writer import BatchWriter

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
N = 10_000


def _rejects() -> tuple[BatchWriter, Rejects]:
    writer = BatchWriter(
        "postgresql://nobody@127.0.0.1:1/none",
        collector_name="ws-btc",
        currency="BTC",
        version="test",
        max_buffered_rows=10 * N,
    )
    return writer, Rejects(writer, "ws-btc")


def test_a_value_that_differs_in_every_message_adds_one_counter_key() -> None:
    writer, rejects = _rejects()
    for i in range(N):
        reason = f"timestamp: {1_700_000_000_000 + i * 7919} ms is out of range"
        rejects.rejected("quote.BTC-28MAR25-80000-C", reason, {"timestamp": i}, T)
    assert rejects.rejected_messages == N  # every one counted
    assert sum(rejects.by_reason.values()) == N
    assert len(rejects.by_reason) == 1, list(rejects.by_reason)[:5]
    assert writer.status.rejected_total == N
    kept = writer.buffered_rows
    assert 0 < kept <= MAX_KEPT_PER_KIND_PER_HOUR
    assert rejects.not_kept == N - kept


def test_unknown_field_names_and_reason_kinds_are_capped() -> None:
    _, rejects = _rejects()
    for i in range(N):
        rejects.unknown("quote", [f"field_{i:x}_{'z' * (i % 5)}"], "quote.BTC-X")
        rejects.rejected("quote.BTC-X", f"{chr(97 + i % 26) * (1 + i % 300)}: bad", None, T)
    assert rejects.unknown_field_messages == N and rejects.rejected_messages == N
    assert len(rejects.unknown_fields) <= MAX_COUNTER_KEYS + 1
    assert sum(rejects.unknown_fields.values()) == N
    assert len(rejects.by_reason) <= MAX_COUNTER_KEYS + 1
    assert sum(rejects.by_reason.values()) == N
    assert len(rejects._once.counts) <= 2 * MAX_COUNTER_KEYS + 2
