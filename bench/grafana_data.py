"""A synthetic month of one currency's full option chain at the sizing mix, for the Grafana
benchmark: the rows the dashboards read, written with binary COPY in time order. Quotes,
trades and book snapshots are generated as numpy columns and encoded by grafana_copy (a day in
seconds, not minutes); the small tables go row by row.

Per day (the README's sizing mix): 5,788,800 quotes (67/s), 172,800 trades (2/s, 3% block
trades), about 230,400 book snapshots (800 options every 300 s), 19,200 greeks rows (hourly),
7,200 perpetual and futures 1-minute bars (5 instruments), 2,880 index and DVOL values, 24
funding rows. Options: weekly expiries, 40 strikes each, calls and puts, listed 10 weeks before
expiry: about 800 live at any time, some expiring and some listed every week.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.copy import QueuedLibpqWriter

from bench import grafana_copy as bc
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


def _erf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Abramowitz and Stegun 7.1.26 (error below 1.5e-7): numpy has no erf."""
    t = 1 / (1 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                + t * 1.061405429))))  # fmt: skip
    return np.sign(x) * (1 - poly * np.exp(-x * x))


@dataclass(frozen=True, slots=True)
class Alive:
    """The options live on one day, as arrays: the synthetic IV smile and the delta of every
    table the day writes."""

    names: npt.NDArray[np.bytes_]
    strike: npt.NDArray[np.float64]
    call: npt.NDArray[np.bool_]
    expiry_s: npt.NDArray[np.float64]

    @classmethod
    def of(cls, options: list[Option]) -> Alive:
        return cls(
            np.array([o.name.encode() for o in options]),
            np.array([o.strike for o in options]),
            np.array([o.kind == "call" for o in options]),
            np.array([o.expiry.timestamp() for o in options]),
        )

    def iv(self, i: npt.NDArray[np.int64], ts_s: npt.NDArray[np.float64]) -> npt.NDArray:
        moneyness = np.log(self.strike[i] / SPOT)
        days = np.maximum((self.expiry_s[i] - ts_s) / DAY_S, 0.1)
        return 45 + 60 * moneyness * moneyness + 5 / np.sqrt(days)

    def delta(
        self, i: npt.NDArray[np.int64], ts_s: npt.NDArray[np.float64], iv: npt.NDArray
    ) -> npt.NDArray:
        t = np.maximum((self.expiry_s[i] - ts_s) / DAY_S / 365, 1e-4)
        d1 = np.log(SPOT / self.strike[i]) / (iv / 100 * np.sqrt(t))
        nd = 0.5 * (1 + _erf(d1 / math.sqrt(2)))
        return np.where(self.call[i], nd, nd - 1)


def _us(ts_s: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.round(ts_s * 1e6).astype(np.int64)


def quote_blocks(
    alive: Alive, day: datetime, rng: np.random.Generator
) -> Iterator[tuple[int, bytes]]:
    """A day of quotes at QUOTES_PER_S, uniform in time and over live options, in time order,
    an hour per block: (rows, COPY bytes)."""
    day_s = day.timestamp()
    per_hour = rng.multinomial(QUOTES_PER_S * DAY_S, [1 / 24] * 24)
    for h, n in enumerate(per_hour):
        ts_s = day_s + 3600 * (h + np.sort(rng.random(n)))
        i = rng.integers(0, len(alive.names), n)
        iv = alive.iv(i, ts_s)
        mark = np.maximum(0.0005, np.abs(alive.delta(i, ts_s, iv)) * 0.05)
        ts = bc.timestamps(_us(ts_s))
        none = bc.nulls(n)
        yield int(n), bc.rows([
            ts, bc.text(alive.names[i]), bc.fixed(mark * 0.97, ">f8"),
            bc.fixed(np.full(n, 10.0), ">f8"), bc.fixed(mark * 1.03, ">f8"),
            bc.fixed(np.full(n, 12.0), ">f8"), none, none, bc.fixed(iv, ">f8"),
            bc.fixed(mark, ">f8"), none, ts,
        ])  # fmt: skip


def trade_rows(alive: Alive, day: datetime, rng: np.random.Generator, seed: int) -> bytes:
    """A day of trades at TRADES_PER_S, 3% of them block trades."""
    n = TRADES_PER_S * DAY_S
    ts_s = day.timestamp() + DAY_S * np.sort(rng.random(n))
    i = rng.integers(0, len(alive.names), n)
    block = rng.random(n) < 0.03
    seq = np.arange(n)
    ids = np.array([f"{seed}-{k}".encode() for k in range(n)])
    block_ids = np.array([f"BLOCK-{seed}-{k}".encode() for k in range(n)])
    ts = bc.timestamps(_us(ts_s))
    none = bc.nulls(n)
    return bc.rows([
        ts, bc.text(alive.names[i]), bc.text(ids), bc.fixed(seq, ">i8"),
        bc.fixed(np.full(n, 0.01), ">f8"), bc.fixed(np.ones(n), ">f8"),
        bc.fixed(np.ones(n), ">f8"),
        bc.text(np.where(rng.random(n) < 0.5, b"buy", b"sell")), bc.fixed(np.zeros(n), ">i2"),
        bc.fixed(alive.iv(i, ts_s), ">f8"), bc.fixed(np.full(n, SPOT), ">f8"),
        bc.fixed(np.full(n, 0.01), ">f8"), none, bc.text(block_ids, null=~block),
        bc.fixed(np.full(n, 2), ">i4", null=~block), none, none, none, ts,
    ])  # fmt: skip


def depth_rows(alive: Alive, day: datetime) -> tuple[int, bytes]:
    """A 10-level snapshot of every live option every SNAPSHOT_EVERY_S."""
    k = len(alive.names)
    offsets = np.arange(0, DAY_S, SNAPSHOT_EVERY_S)
    n = len(offsets) * k
    ts_s = day.timestamp() + np.repeat(offsets.astype(np.float64), k)
    i = np.tile(np.arange(k), len(offsets))
    px = np.broadcast_to(0.01 - 0.0005 * np.arange(10), (n, 10))
    ones = bc.float8_arrays(np.ones((n, 10)))
    ts = bc.timestamps(_us(ts_s))
    none = bc.nulls(n)
    return n, bc.rows([
        ts, bc.text(alive.names[i]), bc.fixed(np.repeat(offsets, k), ">i8"),
        bc.float8_arrays(px), ones, bc.float8_arrays(px + 0.001), ones,
        bc.fixed(np.full(n, 0.0105), ">f8"), bc.fixed(alive.iv(i, ts_s), ">f8"), none, none,
        bc.fixed(np.full(n, SPOT), ">f8"), bc.fixed(np.full(n, 100.0), ">f8"), ts,
    ])  # fmt: skip


def _copy_blocks(
    conn: psycopg.Connection, spec: TableSpec, cur: str, blocks: Iterable[tuple[int, bytes]]
) -> int:
    """Binary COPY of prebuilt rows; a writer thread sends while the next block is built."""
    n = 0
    with conn.cursor() as c:
        stmt = copy_sql.copy_statement(spec.table_name(cur), spec.columns)
        with c.copy(stmt, writer=QueuedLibpqWriter(c)) as cp:
            cp.write(bc.SIGNATURE)
            for count, data in blocks:
                cp.write(data)
                n += count
            cp.write(bc.TRAILER)
    conn.commit()
    return n


def day_rows(
    conn: psycopg.Connection, cur: str, options: list[Option], day: datetime, seed: int
) -> dict[str, int]:
    """Writes one day of every table; returns rows per table."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    alive_list = live(options, day + timedelta(hours=12)) or live(options, day)
    alive = Alive.of(alive_list)
    counts: dict[str, int] = {}
    counts["quotes"] = _copy_blocks(conn, OPTION_QUOTES, cur, quote_blocks(alive, day, nrng))
    trades = trade_rows(alive, day, nrng, seed)
    counts["trades"] = _copy_blocks(conn, OPTION_TRADES, cur, [(TRADES_PER_S * DAY_S, trades)])
    counts["depth"] = _copy_blocks(conn, OPTION_ORDERBOOK_DEPTH, cur, [depth_rows(alive, day)])

    def greeks() -> Iterator[tuple]:
        every = np.arange(len(alive_list))
        for h in range(24):
            ts = day + timedelta(hours=h)
            ivs = alive.iv(every, np.full(len(every), ts.timestamp()))
            deltas = alive.delta(every, np.full(len(every), ts.timestamp()), ivs)
            for o, iv, delta in zip(alive_list, ivs.tolist(), deltas.tolist(), strict=True):
                yield models.GreeksRow(
                    ts, o.name, cur, delta, 0.0001, 10.0, -5.0, 1.0, iv,
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
