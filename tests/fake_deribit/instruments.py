"""Instruments of the fake market: per-currency contract specs, names, expiry dates, and the
`get_instruments` element of each (shared/docs/deribit-protocol.md §5).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fake_deribit.pricing import decimals_of

PERPETUAL_EXPIRY_MS = 32_503_708_800_000  # year 3000, as Deribit sends it
DAY_MS = 86_400_000
EXPIRY_HOUR_UTC = 8
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class CurrencySetup:
    """Contract specs of one currency's book (inverse BTC/ETH, USDC-linear altcoins)."""

    code: str
    api_currency: str
    prefix: str  # instrument names start with it: "BTC-", "SOL_USDC-"
    index_name: str
    linear: bool
    has_dvol: bool
    has_futures: bool
    spot: float
    dvol: float
    index_digits: int
    trade_id_prefix: str  # "" for BTC (bare numbers), "ETH-", "SOL_USDC-"
    trade_id_base: int
    option_tick: float
    option_tick_steps: tuple[tuple[float, float], ...]
    option_contract_size: float
    option_min_amount: float
    perp_tick: float
    perp_contract_size: float
    perp_min_amount: float
    future_tick: float

    @property
    def quote_currency(self) -> str:
        return "USDC" if self.linear else "USD"

    @property
    def settlement_currency(self) -> str:
        return "USDC" if self.linear else self.code

    @property
    def instrument_type(self) -> str:
        return "linear" if self.linear else "reversed"


SETUPS: dict[str, CurrencySetup] = {
    "BTC": CurrencySetup(
        "BTC",
        "BTC",
        "BTC-",
        "btc_usd",
        False,
        True,
        True,
        100_000.0,
        50.0,
        2,
        "",
        400_000_000,
        0.0001,
        ((0.005, 0.0005),),
        1.0,
        0.1,
        0.5,
        10.0,
        10.0,
        2.5,
    ),
    "ETH": CurrencySetup(
        "ETH",
        "ETH",
        "ETH-",
        "eth_usd",
        False,
        True,
        True,
        3_500.0,
        65.0,
        2,
        "ETH-",
        280_000_000,
        0.0001,
        ((0.005, 0.0005),),
        1.0,
        1.0,
        0.05,
        1.0,
        1.0,
        0.25,
    ),
    "SOL": CurrencySetup(
        "SOL",
        "USDC",
        "SOL_USDC-",
        "sol_usdc",
        True,
        False,
        False,
        150.0,
        80.0,
        4,
        "SOL_USDC-",
        1_000,
        0.01,
        ((5.0, 0.05),),
        10.0,
        10.0,
        0.01,
        0.1,
        0.1,
        0.01,
    ),
}


def expiry_code(ms: int) -> str:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{d.day}{_MONTHS[d.month - 1]}{d.year % 100:02d}"


def strike_text(strike: float) -> str:
    if strike == int(strike):
        return str(int(strike))
    return f"{strike:.10f}".rstrip("0").replace(".", "d")


def at_expiry_hour(day: datetime) -> int:
    return int(
        day.replace(hour=EXPIRY_HOUR_UTC, minute=0, second=0, microsecond=0).timestamp() * 1000
    )


def _last_friday(year: int, month: int) -> datetime:
    last = calendar.monthrange(year, month)[1]
    d = datetime(year, month, last, tzinfo=UTC)
    return d - timedelta(days=(d.weekday() - 4) % 7)


def settlement_period(expiry_ms: int) -> str:
    d = datetime.fromtimestamp(expiry_ms / 1000, UTC)
    if d.weekday() != 4:
        return "day"
    return "month" if _last_friday(d.year, d.month).day == d.day else "week"


def expiry_schedule(after_ms: int, count: int) -> list[int]:
    """The next `count` option expiries after `after_ms` at 08:00 UTC: 3 dailies, then Friday
    weeklies, then month-end Fridays (§5.4)."""
    start = datetime.fromtimestamp(after_ms / 1000, UTC)
    days: set[int] = set()
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    for k in range(0, 4):
        days.add(at_expiry_hour(day + timedelta(days=k)))
    for k in range(0, 35):
        d = day + timedelta(days=k)
        if d.weekday() == 4:
            days.add(at_expiry_hour(d))
    y, m = start.year, start.month
    for _ in range(max(count, 12)):
        days.add(at_expiry_hour(_last_friday(y, m)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return sorted(t for t in days if t > after_ms)[:count]


def nice_step(raw: float) -> float:
    """Round a strike spacing to 1, 2, 2.5 or 5 times a power of ten."""
    power = 10.0 ** (len(str(int(raw))) - 1) if raw >= 1 else 10.0 ** -decimals_of(round(raw, 6))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= mult * power * 1.2:
            return mult * power
    return 10.0 * power


class Instrument:
    """One instrument and its mutable market state (book, trades, stats, price cache)."""

    __slots__ = (
        "asks",
        "bids",
        "book_ts",
        "change_id",
        "contract_size",
        "creation_ms",
        "cur",
        "expired",
        "expiry_ms",
        "group",
        "hourly",
        "info",
        "instrument_id",
        "is_call",
        "is_perp",
        "kind",
        "last_price",
        "min_amount",
        "name",
        "open_interest",
        "px",
        "px_sec",
        "settle",
        "stats_cache",
        "strike",
        "tick",
        "tick_digits",
        "tick_steps",
        "trade_seq",
        "underlying",
    )

    def __init__(
        self,
        cur: CurrencySetup,
        kind: str,
        expiry_ms: int,
        creation_ms: int,
        instrument_id: int,
        strike: float = 0.0,
        is_call: bool = False,
    ) -> None:
        self.cur = cur
        self.kind = kind
        self.expiry_ms = expiry_ms
        self.creation_ms = creation_ms
        self.instrument_id = instrument_id
        self.strike = strike
        self.is_call = is_call
        self.is_perp = kind == "future" and expiry_ms == PERPETUAL_EXPIRY_MS
        if kind == "option":
            side = "C" if is_call else "P"
            self.name = f"{cur.prefix}{expiry_code(expiry_ms)}-{strike_text(strike)}-{side}"
            self.tick, self.tick_steps = cur.option_tick, cur.option_tick_steps
            self.contract_size, self.min_amount = cur.option_contract_size, cur.option_min_amount
        elif self.is_perp:
            self.name = f"{cur.prefix}PERPETUAL"
            self.tick, self.tick_steps = cur.perp_tick, ()
            self.contract_size, self.min_amount = cur.perp_contract_size, cur.perp_min_amount
        else:
            self.name = f"{cur.prefix}{expiry_code(expiry_ms)}"
            self.tick, self.tick_steps = cur.future_tick, ()
            self.contract_size, self.min_amount = cur.perp_contract_size, cur.perp_min_amount
        self.tick_digits = max(
            [decimals_of(self.tick)] + [decimals_of(t) for _, t in self.tick_steps]
        )
        self.group = cur.api_currency
        self.expired = False
        self.bids: list[list[float]] = []
        self.asks: list[list[float]] = []
        self.book_ts = creation_ms
        self.change_id = 0
        self.trade_seq = 0
        self.last_price: float | None = None
        self.open_interest = 0.0
        self.hourly: dict[int, list[float]] = {}  # hour -> [volume, volume_usd, high, low, first]
        self.px_sec = -1
        self.px: tuple[float, ...] = ()
        self.settle: tuple[int, float] = (-1, 0.0)  # (08:00 of the day, mark then)
        # (hour, trade_seq, the ticker's stats object): valid until a trade or a new hour
        self.stats_cache: tuple[int, int, dict[str, Any]] = (-1, -1, {})
        self.underlying = "index_price"  # options: the future or SYN. name they are priced on
        self.info = self.build_info()

    def tick_at(self, price: float) -> float:
        tick = self.tick
        for above, step in self.tick_steps:
            if price > above:
                tick = step
        return tick

    def alive_at(self, ms: int) -> bool:
        return self.creation_ms <= ms < self.expiry_ms

    def build_info(self) -> dict[str, Any]:
        """The `get_instruments` element (DOCS26 field set, plus `state` and `rfq`)."""
        cur = self.cur
        option = self.kind == "option"
        info: dict[str, Any] = {
            "tick_size": self.tick,
            "tick_size_steps": [{"above_price": a, "tick_size": t} for a, t in self.tick_steps],
            "taker_commission": 0.0003 if option else 0.0005,
            "settlement_period": "perpetual" if self.is_perp else settlement_period(self.expiry_ms),
            "settlement_currency": cur.settlement_currency,
            "rfq": False,
            "quote_currency": (cur.settlement_currency if option else cur.quote_currency),
            "price_index": cur.index_name,
            "min_trade_amount": self.min_amount,
            "maker_commission": 0.0003 if option else 0.0,
            "kind": self.kind,
            "is_active": not self.expired,
            "state": "closed" if self.expired else "open",
            "instrument_name": self.name,
            "instrument_id": self.instrument_id,
            "instrument_type": cur.instrument_type,
            "expiration_timestamp": self.expiry_ms,
            "creation_timestamp": self.creation_ms,
            "counter_currency": cur.quote_currency,
            "contract_size": self.contract_size,
            "block_trade_tick_size": 0.0001 if option else 0.01,
            "block_trade_min_trade_amount": 25 if option else 200_000,
            "block_trade_commission": 0.00015 if option else 0.00025,
            "base_currency": cur.code,
        }
        if option:
            info["strike"] = self.strike
            info["option_type"] = "call" if self.is_call else "put"
        else:
            info["max_leverage"] = 50 if not cur.linear else 25
            info["max_liquidation_commission"] = 0.0075
            info["future_type"] = cur.instrument_type
        return info

    def mark_expired(self) -> None:
        self.expired = True
        self.info = self.build_info()  # a new dict: events already sent keep the old one
