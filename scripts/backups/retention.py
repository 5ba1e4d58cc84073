"""Pure: which dumps to keep, by count per tier (grandfather-father-son).

The daily tier keeps the newest dump of each of the last `daily` days that have a dump, the
weekly tier the newest of each of the last `weekly` ISO weeks, the monthly tier the newest of
each of the last `monthly` calendar months (all in UTC). A dump kept by any tier stays; the
others are pruned. Only successful dumps are passed in, and pruning runs after a success, so a
failing backup never eats into the good ones.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime


def _newest_per_period(
    taken: list[datetime], count: int, period: Callable[[datetime], Hashable]
) -> set[datetime]:
    kept: set[datetime] = set()
    seen: set[Hashable] = set()
    for t in taken:  # newest first
        key = period(t)
        if key in seen:
            continue
        if len(seen) == count:
            break
        seen.add(key)
        kept.add(t)
    return kept


def to_keep(taken: Iterable[datetime], *, daily: int, weekly: int, monthly: int) -> set[datetime]:
    """The times (of `taken`) whose dumps stay."""
    ordered = sorted({t.astimezone(UTC) for t in taken}, reverse=True)
    if not ordered:
        return set()
    return (
        {ordered[0]}
        | (  # the newest always stays, whatever the settings
            _newest_per_period(ordered, daily, lambda t: t.date())
            | _newest_per_period(ordered, weekly, lambda t: t.isocalendar()[:2])
            | _newest_per_period(ordered, monthly, lambda t: (t.year, t.month))
        )
    )


def to_prune(taken: Iterable[datetime], *, daily: int, weekly: int, monthly: int) -> list[datetime]:
    """The times (of `taken`) whose dumps go, oldest first."""
    times = sorted({t.astimezone(UTC) for t in taken})
    keep = to_keep(times, daily=daily, weekly=weekly, monthly=monthly)
    return [t for t in times if t not in keep]
