"""Trade repair's windows, pure: what a window is, how windows merge, when the history host
must be asked (trade_repair.py). No I/O, no clock reading: times come in as arguments."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from scripts.models import GapRow


def gap_key(gap: GapRow) -> tuple[str, str, datetime, str]:
    """A `data_gaps` row's natural key (table_name, scope, gap_start, reason)."""
    return (gap.table_name, gap.scope, gap.gap_start, gap.reason)


class Window(NamedTuple):
    start_ms: int
    end_ms: int
    reason: str
    always_record: bool  # a disconnect or restart: recorded even if nothing was missing


HISTORY_LAG_MS = 60_000  # the history host has a trade ~5 s after it (§13.3): a margin
EXPIRY_HOUR_MS = 8 * 3_600_000  # Deribit's options and futures expire at 08:00 UTC
DAY_MS = 86_400_000


def expiry_between(start_ms: int, now_ms: int) -> bool:
    """True when an 08:00 UTC lies in [start_ms, now_ms]."""
    first = -((EXPIRY_HOUR_MS - start_ms) // DAY_MS) * DAY_MS + EXPIRY_HOUR_MS
    return first <= now_ms


def merge_windows(windows: list[Window]) -> list[Window]:
    """Overlapping or touching windows as one (the first reason and any always_record kept)."""
    out: list[Window] = []
    for w in sorted(windows):
        if out and w.start_ms <= out[-1].end_ms + 1:
            last = out[-1]
            reason = last.reason if w.reason in last.reason else f"{last.reason}; {w.reason}"
            out[-1] = Window(
                last.start_ms,
                max(last.end_ms, w.end_ms),
                reason[:500],
                last.always_record or w.always_record,
            )
        else:
            out.append(w)
    return out
