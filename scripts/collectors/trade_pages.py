"""Trades of one currency's options read through REST, page by page: the real-time collector's
repairs (realtime/trade_repair.py) and the backfill (backfill/job.py) use the same pager.

Windows are paged on the last timestamp (`get_last_trades_by_currency_and_time`, sorting asc).
A page of PAGE_COUNT trades that all share the millisecond it started from cannot be paged by
time: that millisecond is read with `get_last_trades_by_currency` bounded to it and paged by
`start_id`. Instrument holes are paged by `trade_seq` (`get_last_trades_by_instrument`). Each
page's raw trades go to the caller (`pages`) or to a sink that stores them and says how many the
stream had missed (`read_window`, `read_seqs`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
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

    async def _page(
        self, client: DeribitRestClient, method: str, extra: dict[str, Any], **params: Any
    ) -> tuple[Any, bool]:
        """One page of up to PAGE_COUNT trades, oldest first: (its raw trades, more to come)."""
        result = await client.call_dict(method, **params, count=PAGE_COUNT, sorting="asc", **extra)
        self.rest_pages += 1
        return result.get("trades") or [], bool(result.get("has_more"))

    async def pages(
        self, client: DeribitRestClient, extra: dict[str, Any], start: int, end_ms: int
    ) -> AsyncGenerator[Any, None]:
        """Every raw page of option trades in [start, end_ms], oldest first, each yielded
        before the next is asked for (the caller stores it, and may save where it got to).
        Pages overlap by the millisecond they start at: callers drop trades they have."""
        for _ in range(MAX_PAGES_PER_WINDOW):
            raw, more = await self._page(
                client,
                "get_last_trades_by_currency_and_time",
                extra,
                currency=self.api_currency,
                kind="option",
                start_timestamp=start,
                end_timestamp=end_ms,
            )
            yield raw
            trades = trade_dicts(raw)
            # (Elements without an integer timestamp were refused by the caller; page past them.)
            stamps = [t["timestamp"] for t in trades if type(t.get("timestamp")) is int]
            if not more or not stamps:
                return
            last_ms = max(stamps)
            if last_ms <= start:
                if len(trades) < PAGE_COUNT:  # "more" yet nothing past `start`: say so
                    raise ValueError(f"a page with more to come did not move past {start}")
                async for page in self._millisecond(client, extra, start, trades):
                    yield page
                last_ms = start + 1  # that millisecond is read whole
            start = last_ms

    async def _millisecond(
        self, client: DeribitRestClient, extra: dict[str, Any], ms: int, page: list[Any]
    ) -> AsyncGenerator[Any, None]:
        """The pages of one millisecond by `start_id` (more than a page share it)."""
        for _ in range(MAX_PAGES_PER_WINDOW):
            last_id = str(page[-1].get("trade_id"))
            raw, more = await self._page(
                client,
                "get_last_trades_by_currency",
                extra,
                currency=self.api_currency,
                kind="option",
                start_id=last_id,
                start_timestamp=ms,
                end_timestamp=ms,
            )
            self.id_pages += 1
            yield raw
            page = trade_dicts(raw)
            if not more or not page:
                return
            if str(page[-1].get("trade_id")) == last_id:
                raise ValueError(f"paging by start_id did not move past {last_id}")
        raise ValueError(f"more than {MAX_PAGES_PER_WINDOW} pages in the millisecond {ms}")

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
        async with contextlib.aclosing(self.pages(client, extra, start, end_ms)) as pages:
            async for raw in pages:
                recovered += sink(raw)  # refuses bad elements one by one
        return recovered

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
            raw, more = await self._page(
                client,
                "get_last_trades_by_instrument",
                extra,
                instrument_name=instrument_name,
                start_seq=start_seq,
                end_seq=end_seq,
            )
            recovered += sink(raw)
            trades = trade_dicts(raw)
            seqs = [t["trade_seq"] for t in trades if isinstance(t.get("trade_seq"), int)]
            if not more or not seqs:
                break
            start_seq = max(seqs) + 1
        return recovered


def trade_dicts(items: Any) -> list[dict[str, Any]]:
    """The elements of a trades page that can be paged on (bad ones were refused already)."""
    return [t for t in items if isinstance(t, dict)] if isinstance(items, list) else []
