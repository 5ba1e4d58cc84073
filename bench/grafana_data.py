"""A synthetic month of one currency's full option chain at the sizing mix, for the Grafana
benchmark: the rows the dashboards read, written with binary COPY in time order.

Per day (the README's sizing mix): 5,788,800 quotes (67/s), 172,800 trades (2/s, 3% block
trades), about 230,400 book snapshots (800 options every 300 s), 19,200 greeks rows (hourly),
7,200 perpetual and futures 1-minute bars (5 instruments), 2,880 index and DVOL values, 24
funding rows. Options: weekly expiries, 40 strikes each, calls and puts, listed 10 weeks before
expiry: about 800 live at any time, some expiring and some listed every week.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from scripts import models
from scripts.storage import copy as copy_sql
from scripts.storage.tables import (
    FUNDING_RATES,
    FUTURES_OHLCV,
    INDEX_PRICES,
    INSTRUMENTS,
    OPTION_ORDERBOOK_DEPTH,
    OPTION_QUOTES,
    OPTION_TRADES,
    OPTIONS_GREEKS,
    PERPETUALS_OHLCV,
    TableSpec,
)

QUOTES_PER_S = 67
TRADES_PER_S = 2
SNAPSHOT_EVERY_S = 300
STRIKES = 40
LISTED_WEEKS = 10
SPOT = 100_000.0
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    strike: float
    kind: str  # 'call' or 'put'
    expiry: datetime
    created: datetime


def weekly_expiries(start: datetime, end: datetime) -> list[datetime]:
    first = (start - timedelta(days=start.weekday() - 4 + 7)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    out, t = [], first
    while t < end + timedelta(weeks=LISTED_WEEKS):
        out.append(t)
        t += timedelta(weeks=1)
    return out


def chain(cur: str, start: datetime, end: datetime) -> list[Option]:
    options = []
    for expiry in weekly_expiries(start, end):
        tag = f"{expiry.day}{expiry.strftime('%b').upper()}{expiry.strftime('%y')}"
        for k in range(STRIKES):
            strike = SPOT * (0.6 + 0.02 * k)
            for kind, letter in (("call", "C"), ("put", "P")):
                options.append(
                    Option(
                        f"{cur}-{tag}-{int(strike)}-{letter}",
                        strike,
                        kind,
                        expiry,
                        expiry - timedelta(weeks=LISTED_WEEKS),
                    )
                )
    return options


def live(options: list[Option], at: datetime) -> list[Option]:
    return [o for o in options if o.created <= at < o.expiry]


def _iv(o: Option, at: datetime) -> float:
    moneyness = math.log(o.strike / SPOT)
    days = max((o.expiry - at).total_seconds() / DAY_S, 0.1)
    return 45 + 60 * moneyness * moneyness + 5 / math.sqrt(days)


def _delta(o: Option, at: datetime) -> float:
    t = max((o.expiry - at).total_seconds() / DAY_S / 365, 1e-4)
    d1 = math.log(SPOT / o.strike) / (_iv(o, at) / 100 * math.sqrt(t))
    nd = 0.5 * (1 + math.erf(d1 / math.sqrt(2)))
    return nd if o.kind == "call" else nd - 1


def _copy(conn: psycopg.Connection, spec: TableSpec, cur: str, rows: Iterator[tuple]) -> int:
    n = 0
    with (
        conn.cursor() as c,
        c.copy(copy_sql.copy_statement(spec.table_name(cur), spec.columns)) as cp,
    ):
        cp.set_types(list(spec.sql_types))
        for row in rows:
            cp.write_row(row)
            n += 1
    conn.commit()
    return n


def day_rows(
    conn: psycopg.Connection, cur: str, options: list[Option], day: datetime, seed: int
) -> dict[str, int]:
    """Writes one day of every table; returns rows per table."""
    rng = random.Random(seed)
    alive = live(options, day + timedelta(hours=12)) or live(options, day)
    counts: dict[str, int] = {}

    def ts_stream(per_s: int) -> list[datetime]:
        n = per_s * DAY_S
        return [day + timedelta(seconds=s) for s in sorted(rng.random() * DAY_S for _ in range(n))]

    def quotes() -> Iterator[tuple]:
        for ts in ts_stream(QUOTES_PER_S):
            o = alive[int(rng.random() * len(alive))]
            iv = _iv(o, ts)
            mark = max(0.0005, abs(_delta(o, ts)) * 0.05)
            yield models.QuoteRow(ts, o.name, mark * 0.97, 10.0, mark * 1.03, 12.0,
                                  None, None, iv, mark, None, ts)  # fmt: skip

    def trades() -> Iterator[tuple]:
        for i, ts in enumerate(ts_stream(TRADES_PER_S)):
            o = alive[int(rng.random() * len(alive))]
            block = f"BLOCK-{seed}-{i}" if rng.random() < 0.03 else None
            yield models.TradeRow(
                ts, o.name, f"{seed}-{i}", i, 0.01, 1.0, 1.0, rng.choice(("buy", "sell")),
                0, _iv(o, ts), SPOT, 0.01, None, block, 2 if block else None, None, None,
                None, ts,
            )  # fmt: skip

    def depth() -> Iterator[tuple]:
        for s in range(0, DAY_S, SNAPSHOT_EVERY_S):
            ts = day + timedelta(seconds=s)
            for o in alive:
                px = [0.01 - 0.0005 * j for j in range(10)]
                yield models.BookSnapshotRow(
                    ts, o.name, s, px, [1.0] * 10, [p + 0.001 for p in px], [1.0] * 10,
                    0.0105, _iv(o, ts), None, None, SPOT, 100.0, ts,
                )  # fmt: skip

    def greeks() -> Iterator[tuple]:
        for h in range(24):
            ts = day + timedelta(hours=h)
            for o in alive:
                yield models.GreeksRow(
                    ts, o.name, cur, _delta(o, ts), 0.0001, 10.0, -5.0, 1.0, _iv(o, ts),
                    None, None, 0.01, SPOT, f"{cur}-PERPETUAL", SPOT, 100 + rng.random() * 50,
                    0.0, 0.0099, 0.0101, ts, ts,
                )  # fmt: skip

    futures = [
        f"{cur}-{(day + timedelta(weeks=w)).strftime('%d%b%y').upper()}" for w in (1, 4, 13, 26)
    ]

    def bars(names: list[str]) -> Iterator[tuple]:
        for m in range(1440):
            ts = day + timedelta(minutes=m)
            for name in names:
                p = SPOT * (1 + 0.001 * math.sin(m / 100))
                yield models.OhlcvRow(ts, name, cur, "1", p, p * 1.001, p * 0.999, p, 12.5, 0.0, ts)

    def indices() -> Iterator[tuple]:
        for m in range(1440):
            ts = day + timedelta(minutes=m)
            yield models.IndexPriceRow(ts, f"{cur.lower()}_usd", cur, "price", SPOT, ts)
            yield models.IndexPriceRow(ts, f"{cur.lower()}dvol_usdc", cur, "dvol", 50.0, ts)

    def funding() -> Iterator[tuple]:
        for h in range(24):
            ts = day + timedelta(hours=h)
            yield models.FundingRow(ts, f"{cur}-PERPETUAL", cur, 0.0001, 0.00001, SPOT, SPOT, ts)

    counts["quotes"] = _copy(conn, OPTION_QUOTES, cur, quotes())
    counts["trades"] = _copy(conn, OPTION_TRADES, cur, trades())
    counts["depth"] = _copy(conn, OPTION_ORDERBOOK_DEPTH, cur, depth())
    counts["greeks"] = _copy(conn, OPTIONS_GREEKS, cur, greeks())
    counts["perpetual bars"] = _copy(conn, PERPETUALS_OHLCV, cur, bars([f"{cur}-PERPETUAL"]))
    counts["futures bars"] = _copy(conn, FUTURES_OHLCV, cur, bars(futures))
    counts["index"] = _copy(conn, INDEX_PRICES, cur, indices())
    counts["funding"] = _copy(conn, FUNDING_RATES, cur, funding())
    return counts


def instruments(conn: psycopg.Connection, cur: str, options: list[Option], end: datetime) -> None:
    rows = [
        models.InstrumentRow(
            o.name,
            cur,
            "option",
            o.kind,
            o.strike,
            o.expiry,
            o.created,
            1.0,
            0.0001,
            0.1,
            cur,
            cur,
            "USD",
            "USD",
            "week",
            "reversed",
            f"{cur.lower()}_usd",
            i,
            o.expiry > end,
            end,
        )
        for i, o in enumerate(options)
    ]
    perp = models.InstrumentRow(
        f"{cur}-PERPETUAL", cur, "future", None, None, datetime(3000, 1, 1, tzinfo=UTC),
        datetime(2018, 1, 1, tzinfo=UTC), 10.0, 0.5, 10.0, cur, cur, "USD", "USD",
        "perpetual", "reversed", f"{cur.lower()}_usd", 10**6, True, end,
    )  # fmt: skip
    _copy(conn, INSTRUMENTS, cur, iter([*rows, perp]))


def future_instruments(conn: psycopg.Connection, cur: str, start: datetime, end: datetime) -> None:
    rows: list[tuple] = []
    day = start
    seen = set()
    while day < end:
        for w in (1, 4, 13, 26):
            expiry = (day + timedelta(weeks=w)).replace(hour=8, minute=0, second=0, microsecond=0)
            name = f"{cur}-{(day + timedelta(weeks=w)).strftime('%d%b%y').upper()}"
            if name in seen:
                continue
            seen.add(name)
            rows.append(
                models.InstrumentRow(
                    name,
                    cur,
                    "future",
                    None,
                    None,
                    expiry,
                    start,
                    10.0,
                    0.5,
                    10.0,
                    cur,
                    cur,
                    "USD",
                    "USD",
                    "month",
                    "reversed",
                    f"{cur.lower()}_usd",
                    2 * 10**6 + len(rows),
                    expiry > end,
                    end,
                )
            )
        day += timedelta(days=1)
    _copy(conn, INSTRUMENTS, cur, iter(rows))
