"""Retention over a simulated year of daily dumps, dump names, and the disk growth projection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from scripts.backups.disk import days_left
from scripts.backups.names import DumpName, parse_dump_name
from scripts.backups.retention import to_keep, to_prune


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 3, 15, tzinfo=UTC)


def _simulate(first: date, last: date, **keep: int) -> tuple[set[datetime], int]:
    """Daily runs from `first` to `last`, pruning after each: what is left, and the most held."""
    held: set[datetime] = set()
    most = 0
    day = first
    while day <= last:
        held.add(_at(day))
        most = max(most, len(held))
        held -= set(to_prune(held, **keep))
        day += timedelta(days=1)
    return held, most


def test_a_year_of_daily_runs_keeps_exactly_the_configured_tiers() -> None:
    held, most = _simulate(date(2026, 1, 1), date(2026, 12, 31), daily=7, weekly=4, monthly=6)
    days = [date(2026, 12, d) for d in range(25, 32)]  # the last 7 days
    weeks = [date(2026, 12, 13), date(2026, 12, 20)]  # Sundays ending ISO weeks 50, 51
    # (weeks 52 and 53 end on Dec 27 and run to Dec 31: both already daily)
    months = [date(2026, m, d) for m, d in ((7, 31), (8, 31), (9, 30), (10, 31), (11, 30))]
    assert held == {_at(d) for d in days + weeks + months}  # December's newest is Dec 31
    assert most <= 7 + 4 + 6 + 1


def test_defaults_hold_at_most_their_sum_every_day_of_the_year() -> None:
    for last in (date(2026, 3, 1), date(2026, 6, 15), date(2026, 9, 30)):
        held, _ = _simulate(date(2026, 1, 1), last, daily=7, weekly=4, monthly=6)
        assert len(held) <= 17
        newest = sorted(held)[-7:]
        assert newest == [_at(last - timedelta(days=i)) for i in range(6, -1, -1)]


def test_other_settings_are_obeyed() -> None:
    held, _ = _simulate(date(2026, 1, 1), date(2026, 12, 31), daily=2, weekly=0, monthly=12)
    expected = (
        {_at(date(2026, 12, 30))}
        | {_at(date(2026, m, 1) + timedelta(days=-1)) for m in range(2, 13)}
        | {_at(date(2026, 12, 31))}
    )
    assert held == expected
    held, _ = _simulate(date(2026, 1, 1), date(2026, 2, 1), daily=0, weekly=0, monthly=0)
    assert held == {_at(date(2026, 2, 1))}  # the newest is never pruned


def test_several_dumps_a_day_keep_the_newest_of_the_day() -> None:
    base = datetime(2026, 5, 5, tzinfo=UTC)
    taken = [base + timedelta(hours=h) for h in (1, 5, 23)]
    assert to_keep(taken, daily=1, weekly=0, monthly=0) == {taken[-1]}


def test_dump_names_round_trip() -> None:
    name = DumpName("chaintape", datetime(2026, 12, 4, 3, 15, 7, tzinfo=UTC), "2.19.3", 15)
    assert name.file_name == "chaintape-chaintape-20261204T031507Z-ts2.19.3-pg15.dump"
    assert parse_dump_name(name.file_name) == name
    assert parse_dump_name(name.file_name + ".sha256") is None
    assert parse_dump_name(name.file_name + ".tmp") is None


def test_days_left_from_growth() -> None:
    gb = 1 << 30
    day = 86400.0
    samples = [(0.0, 10 * gb), (day, 11 * gb), (2 * day, 12 * gb)]
    assert days_left(samples, 5 * gb) == 5.0
    assert days_left(samples[:1], 5 * gb) is None  # one sample: cannot tell
    assert days_left([(0.0, 10 * gb), (day, 9 * gb)], gb) is None  # shrinking
