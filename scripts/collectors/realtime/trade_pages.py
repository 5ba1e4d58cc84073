"""Trades of one currency's options read back through REST, page by page (trade_repair.py).

Windows are paged on the last timestamp (`get_last_trades_by_currency_and_time`, sorting asc).
A page of PAGE_COUNT trades that all share the millisecond it started from cannot be paged by
time: that millisecond is read with `get_last_trades_by_currency` bounded to it and paged by
`start_id`. Instrument holes are paged by `trade_seq` (`get_last_trades_by_instrument`). Each
page's raw trades go to a sink that stores them and says how many the stream had missed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scripts.deribit.rest import DeribitRestClient

PAGE_COUNT = 1000
MAX_PAGES_PER_WINDOW = 10_000

PageSink = Callable[[Any], int]  # a page's raw trades -> how many were new


class TradePager:
    """Pages trades for one API currency, counting the pages it reads."""

    def __init__(self, api_currency: str) -> None:
        self.api_currency = api_currency
        self.rest_pages = 0
        self.id_pages = 0  # pages read by start_id (a millisecond holding over 1000 trades)

    async def read_window(
        self,
        client: DeribitRestClient,
        extra: dict[str, Any],
        start: int,
        end_ms: int,
        sink: PageSink,
    ) -> int:
        """Reads [start, end_ms] from one host; returns the sink's count of missed trades."""
        recovered = 0
        for _ in range(MAX_PAGES_PER_WINDOW):
            result = await client.call_dict(
                "get_last_trades_by_currency_and_time",
                currency=self.api_currency,
                kind="option",
                start_timestamp=start,
                end_timestamp=end_ms,
                count=PAGE_COUNT,
                sorting="asc",
                **extra,
            )
            self.rest_pages += 1
            raw = result.get("trades") or []
            recovered += sink(raw)  # refuses bad elements one by one
            trades = _dicts(raw)
            if not result.get("has_more") or not trades:
                break
            last_ms = max(int(t.get("timestamp", start)) for t in trades)
            if last_ms <= start and len(trades) >= PAGE_COUNT:
                recovered += await self._read_millisecond(client, extra, start, trades, sink)
                last_ms = start + 1  # that millisecond is read whole
            start = max(start, last_ms)
        return recovered

    async def _read_millisecond(
        self,
        client: DeribitRestClient,
        extra: dict[str, Any],
        ms: int,
        page: list[Any],
        sink: PageSink,
    ) -> int:
        """Reads every trade of one millisecond by `start_id` (more than a page share it)."""
        recovered = 0
        for _ in range(MAX_PAGES_PER_WINDOW):
            last_id = str(page[-1].get("trade_id"))
            result = await client.call_dict(
                "get_last_trades_by_currency",
                currency=self.api_currency,
                kind="option",
                start_id=last_id,
                start_timestamp=ms,
                end_timestamp=ms,
                count=PAGE_COUNT,
                sorting="asc",
                **extra,
            )
            self.rest_pages += 1
            self.id_pages += 1
            raw: Any = (result.get("trades") or []) if isinstance(result, dict) else None
            fresh = sink(raw)
            page = _dicts(raw)
            recovered += fresh
            if not result.get("has_more") or not page:
                return recovered
            if str(page[-1].get("trade_id")) == last_id:
                raise ValueError(f"paging by start_id did not move past {last_id}")
        raise ValueError(f"more than {MAX_PAGES_PER_WINDOW} pages in the millisecond {ms}")

    async def read_seqs(
        self,
        client: DeribitRestClient,
        extra: dict[str, Any],
        instrument_name: str,
        start_seq: int,
        end_seq: int,
        sink: PageSink,
    ) -> int:
        """Reads trade_seq [start_seq, end_seq] of one instrument; returns the sink's count."""
        recovered = 0
        while start_seq <= end_seq:
            result = await client.call_dict(
                "get_last_trades_by_instrument",
                instrument_name=instrument_name,
                start_seq=start_seq,
                end_seq=end_seq,
                count=PAGE_COUNT,
                sorting="asc",
                **extra,
            )
            self.rest_pages += 1
            raw = result.get("trades") or []
            recovered += sink(raw)
            trades = _dicts(raw)
            seqs = [t["trade_seq"] for t in trades if isinstance(t.get("trade_seq"), int)]
            if not result.get("has_more") or not seqs:
                break
            start_seq = max(seqs) + 1
        return recovered


def _dicts(items: Any) -> list[dict[str, Any]]:
    """The elements of a trades page that can be paged on (bad ones were refused already)."""
    return [t for t in items if isinstance(t, dict)] if isinstance(items, list) else []
