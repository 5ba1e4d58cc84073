"""Per-instrument state stays flat over a year of daily listings and expiries (issue 11,
scenario 10): the real collector objects (chain, router, trade watch, socket pool) are fed a
simulated year, and the sizes of their per-instrument maps are measured, not guessed.

No socket is opened and no database is touched: the collector's own callbacks are driven
with plain messages on a clock the test sets, which is where this state lives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts.collectors.realtime.collector import OptionsRealtimeCollector
from scripts.config import load_settings
from scripts.deribit import channels as ch
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient
from scripts.storage.writer import BatchWriter
from tests.support.trades import FrozenClock

DAY_S = 86_400.0
LISTED_PER_DAY = 8
LIFE_DAYS = 7
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def option_name(expiry: datetime, strike: int) -> str:
    return f"ETH-{expiry.day}{MONTHS[expiry.month - 1]}{expiry.year % 100}-{strike}-C"


def creation(name: str, expiry: datetime, now_ms: int) -> dict[str, Any]:
    return {
        "instrument_name": name,
        "kind": "option",
        "option_type": "call",
        "strike": float(name.split("-")[2]),
        "expiration_timestamp": int(expiry.timestamp() * 1000),
        "creation_timestamp": now_ms,
        "contract_size": 1.0,
        "tick_size": 0.0005,
        "min_trade_amount": 1.0,
        "settlement_currency": "ETH",
        "base_currency": "ETH",
        "quote_currency": "ETH",
        "counter_currency": "USD",
        "settlement_period": "day",
        "instrument_type": "reversed",
        "price_index": "eth_usd",
        "instrument_id": abs(hash(name)) % 10_000_000,
        "is_active": True,
    }


def sizes(c: OptionsRealtimeCollector) -> dict[str, int]:
    """Every per-instrument map of the collector's long-lived objects."""
    return {
        "watch.seqs": len(c.watch.seqs),
        "watch.last_seq": len(c.watch.last_seq),
        "router.marks": len(c.router.marks),
        "router.handlers": len(c.router._handlers),
        "chain.live": len(c.chain.live),
        "chain.gone": len(c.chain.gone),
        "chain.listed_at": len(c.chain.listed_at),
        "pool.owner": len(c.pool.owner),
        "sockets.wanted": sum(len(s.wanted) for s in c.pool.clients),
    }


def test_a_year_of_daily_listings_and_expiries_keeps_per_instrument_state_flat(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(START.timestamp())
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://unused@127.0.0.1:9/x",
            "CURRENCY": "ETH",
            "DERIBIT_WS_URL": "ws://127.0.0.1:9/ws/api/v2",
            "DERIBIT_REST_URL": "http://127.0.0.1:9",
            "SPOOL_DIR": str(tmp_path / "spool"),
        }
    )
    writer = BatchWriter(
        "postgresql://unused", collector_name="ws-eth", currency="ETH", version="t"
    )
    rest = DeribitRestClient(
        "http://127.0.0.1:9",
        limiter=LimiterSet.build(clock, requests_per_s=5, burst=5),
        clock=clock,
    )
    c = OptionsRealtimeCollector(
        settings, writer=writer, rest=rest, clock=clock, client_version="t"
    )
    c.pool.add_channels(c.fixed_channels)
    route = c.router.on_notification
    creations = ch.instrument_creation_channel("option", "ETH")
    states = ch.instrument_state_channel("option", "ETH")
    trades = c.trade_channel
    markprice = c.fixed_channels[1]
    seq: dict[str, int] = {}
    trade_id = 0
    history: list[dict[str, int]] = []
    for day in range(365):
        clock.t = (START + timedelta(days=day)).timestamp()
        now_ms = int(clock.t * 1000)
        recv = datetime.fromtimestamp(clock.t, UTC)
        expiry = (START + timedelta(days=day + LIFE_DAYS)).replace(hour=8)
        for k in range(LISTED_PER_DAY):
            name = option_name(expiry, 1000 + 100 * k)
            route(creations, creation(name, expiry, now_ms), recv)
            route(states, {"instrument_name": name, "state": "started", "timestamp": now_ms}, recv)
        live = list(c.chain.live)
        points = [
            {"instrument_name": n, "mark_price": 0.01, "iv": 0.5, "timestamp": now_ms} for n in live
        ]
        route(markprice, points, recv)
        batch = []
        for n in live:
            route(
                ch.quote_channel(n),
                {
                    "instrument_name": n,
                    "timestamp": now_ms + 1,
                    "best_bid_price": 0.01,
                    "best_bid_amount": 1.0,
                    "best_ask_price": 0.02,
                    "best_ask_amount": 1.0,
                },
                recv,
            )
            seq[n] = seq.get(n, 0) + 1
            trade_id += 1
            batch.append(
                {
                    "trade_id": str(trade_id),
                    "instrument_name": n,
                    "timestamp": now_ms + 2,
                    "trade_seq": seq[n],
                    "price": 0.01,
                    "amount": 1.0,
                    "direction": "buy",
                    "tick_direction": 0,
                    "index_price": 3000.0,
                    "mark_price": 0.01,
                    "iv": 50.0,
                }
            )
        route(trades, batch, recv)
        # The day goes by; the chain's expiry check runs as its loop would after 08:00.
        clock.t = (START + timedelta(days=day + 1)).replace(hour=8, minute=1).timestamp()
        c.chain._drop_expired()
        for n in [n for n in seq if n not in c.chain.live]:
            route(
                states,
                {"instrument_name": n, "state": "settled", "timestamp": int(clock.t * 1000)},
                recv,
            )
        seq = {n: s for n, s in seq.items() if n in c.chain.live}
        writer._take_buffers()  # (the rows would have gone to the database)
        history.append(sizes(c))
    assert history[-1]["chain.live"] == LISTED_PER_DAY * (LIFE_DAYS - 1)  # (after 08:00)
    settled = history[29]  # a month in: every map holds its steady-state set
    grown = {k: (settled[k], v) for k, v in history[-1].items() if v > settled[k]}
    assert grown == {}, f"per-instrument state grew from day 30 to day 365: {grown}"
