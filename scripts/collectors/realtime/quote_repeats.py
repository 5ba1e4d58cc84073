"""Quotes the exchange sends again: never stored twice.

Deribit answers every (re)subscribe with the current quote at once, stamped with the time of
its last change (deribit-protocol.md section 13; the fake exchange does the same). After a
reconnect or a restart with no change in between, that frame repeats a stored row exactly. A
quote is a repeat when its instrument, exchange timestamp and book values (best bid/ask price
and amount) equal the last one seen for the instrument. Marks, forwards and bid/ask IVs are
attached here (IVs at flush, from the forward), not sent, so they are left out of the
comparison: a stored row has IVs that a freshly received repeat does not have yet.

The last quote per option is remembered for the run and, at start, read from the database
(one index probe per option), so the first frame after a restart is recognised too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scripts.models import QuoteRow

Key = tuple[Any, ...]


def quote_key(row: QuoteRow | tuple[Any, ...]) -> Key:
    """timestamp, best bid price/amount, best ask price/amount."""
    return (row[0], row[2], row[3], row[4], row[5])


class QuoteRepeats:
    """The last quote per instrument; `seen(row)` is True for a repeat of it."""

    def __init__(self) -> None:
        self.last: dict[str, Key] = {}
        self.repeats = 0

    def seen(self, row: QuoteRow) -> bool:
        # `quote_key`, spelled out: this runs once per quote message.
        key = (row[0], row[2], row[3], row[4], row[5])
        name = row[1]
        last = self.last
        if last.get(name) == key:
            self.repeats += 1
            return True
        last[name] = key
        return False

    def forget(self, names: Iterable[str]) -> None:
        """Drops expired or delisted instruments."""
        for name in names:
            self.last.pop(name, None)

    async def load(self, database_url: str, table: str, names: list[str]) -> None:
        """Reads the newest stored quote of each of `names` (after a restart)."""
        if not names:
            return
        from scripts.storage.queries import newest_quotes

        for name, *values in await newest_quotes(database_url, table, names):
            self.last.setdefault(name, tuple(values))
