"""Real recorded Deribit frames through the collector's router and the real writer: the rows
their content implies land in the database, field by field, units included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from scripts.collectors.realtime.router import MessageRouter
from scripts.collectors.realtime.trade_repair import TradeWatch
from scripts.collectors.rejects import Rejects
from scripts.currencies import currency_spec
from scripts.deribit.protocol import Notification, parse_frame
from scripts.storage.migrate import apply_schema
from scripts.storage.writer import BatchWriter

# After every recorded frame: a frame is received after its exchange timestamp (a timestamp
# more than a minute after received_at is refused, scripts/normalize/future.py).
RECEIVED = datetime(2026, 12, 1, 3, 4, 5, tzinfo=UTC)


def frames(shared_data: Path, name: str) -> list[Notification]:
    out = []
    for line in (shared_data / name).read_text().splitlines():
        frame = parse_frame(line)
        assert isinstance(frame, Notification)
        out.append(frame)
    return out


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


async def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await (await conn.execute(sql)).fetchall()


@pytest.mark.parametrize("code", ["BTC", "ETH"])
async def test_recorded_tickers_trades_and_marks_land_as_rows(
    database_url: str, shared_data: Path, code: str
) -> None:
    apply_schema(database_url, [code])
    spec = currency_spec(code)
    writer = BatchWriter(
        database_url, collector_name=f"ws-{code.lower()}", currency=code, version="t"
    )
    router = MessageRouter(spec, writer=writer, rejects=Rejects(writer, "t"), watch=TradeWatch())
    tickers = [f for f in frames(shared_data, "ws_ticker_option.jsonl")]
    trades = frames(shared_data, "ws_trades_by_kind.jsonl") + frames(shared_data, "ws_trades.jsonl")
    marks = frames(shared_data, "ws_markprice_options.jsonl")
    for f in [*marks, *tickers, *trades]:
        router.on_notification(f.channel, f.data, RECEIVED)
    assert await writer.flush()
    await writer.drain(5)
    t = code.lower()

    # Markprice IV is a fraction on the wire and percent in chaintape.
    if code == "BTC":
        assert router.marks["BTC-2JUN21-37000-P"] == (90.0, 0.0333, 1622470378005)

    # Ticker frames: one quote row each, IVs in percent as sent, empty sides NULL.
    ours = [f.data for f in tickers if f.data["instrument_name"].startswith(f"{code}-")]
    keys = ("best_bid_price", "best_bid_amount", "best_ask_price", "best_ask_amount")
    mine = [d for d in ours if all(k in d for k in keys)]
    # A frame without its best bid/ask fields cannot be a quote row: refused and kept.
    refused = router.rejects.by_reason
    incomplete = [f for f in tickers if not all(k in f.data for k in keys)]
    assert sum(n for r, n in refused.items() if r.startswith("ticker")) == len(incomplete)
    got = await rows(
        database_url,
        f"SELECT timestamp, instrument_name, best_bid_price, best_bid_amount, best_ask_price, "
        f"best_ask_amount, bid_iv, ask_iv, mark_iv, mark_price, underlying_price, received_at "
        f"FROM {t}_option_quotes ORDER BY timestamp, instrument_name",
    )
    want = []
    for d in mine:
        bid = (d["best_bid_price"], d["best_bid_amount"]) if d["best_bid_amount"] else (None, None)
        ask = (d["best_ask_price"], d["best_ask_amount"]) if d["best_ask_amount"] else (None, None)
        want.append(
            (
                ms(d["timestamp"]),
                d["instrument_name"],
                *bid,
                *ask,
                None if bid[0] is None else d.get("bid_iv"),
                None if ask[0] is None else d.get("ask_iv"),
                d.get("mark_iv"),
                d.get("mark_price"),
                d.get("underlying_price"),
                RECEIVED,
            )
        )
    assert len(mine) > 0
    assert sorted(got, key=lambda r: (r[0], r[1])) == sorted(want, key=lambda r: (r[0], r[1]))
    assert all(r[0].tzinfo is not None and r[0].utcoffset().total_seconds() == 0 for r in got)

    # Trades: every recorded option trade of the currency, field by field; the recorded
    # perpetual and future trades are refused (they are not options).
    recorded = {}
    not_options = 0
    for f in trades:
        for tr in f.data:
            # A combo trade is stored as its legs, each a trade of its own instrument.
            for leg in tr.get("legs") or [tr]:
                name = leg["instrument_name"]
                if not name.startswith(f"{code}-") or "price" not in leg:
                    continue
                if name.endswith(("-C", "-P")):
                    recorded[leg["trade_id"]] = leg
                else:
                    not_options += 1
    got_trades = await rows(
        database_url,
        f"SELECT trade_id, timestamp, instrument_name, trade_seq, price, amount, direction, "
        f"tick_direction, iv, index_price, mark_price FROM {t}_option_trades",
    )
    assert {r[0] for r in got_trades} == set(recorded)
    for r in got_trades:
        tr = recorded[r[0]]
        assert r[1:] == (
            ms(tr["timestamp"]),
            tr["instrument_name"],
            tr.get("trade_seq"),
            tr["price"],
            tr["amount"],
            tr["direction"],
            tr.get("tick_direction"),
            tr.get("iv"),
            tr.get("index_price"),
            tr.get("mark_price"),
        )
    refused_not_options = sum(n for r, n in refused.items() if "not an option" in r)
    assert refused_not_options == not_options
    if code == "BTC":
        assert not_options > 0  # the recordings hold BTC perpetual and future trades
        one = [r for r in got_trades if r[0] == "48079289"]
        assert one and one[0][8] == 47.58 and one[0][1] == ms(1590484589306)
    raw = orjson.dumps(router.rows_by_family)
    assert raw  # counters are JSON-serialisable for collector_status
