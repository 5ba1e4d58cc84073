"""The fake exchange tells its market which payloads have subscribers, over real sockets."""

from __future__ import annotations

from tests.support.ws_client import PERP, RawClient, running, wait_for


async def test_market_demand_follows_subscriptions_and_tickers_restart_fresh() -> None:
    async with running(speed=20.0) as fake:
        market = fake.market
        assert not market.demand.everything and market.demand.keys == {}
        ticker, index = f"ticker.{PERP}.100ms", "deribit_price_index.btc_usd"
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [ticker, index]})
        assert market.demand.wants("ticker", PERP) and market.demand.wants("index", "btc_usd")
        await client.read_until(lambda: len(client.on(ticker)) >= 3 and len(client.on(index)) >= 3)
        await client.call("public/unsubscribe", {"channels": [ticker, index]})
        assert market.demand.keys == {}
        # Nobody listens: the market goes on without building tickers.
        left_at = market.now_ms
        await wait_for(lambda: market.now_ms > left_at + 5_000, within=15.0)
        inc = f"incremental_ticker.{PERP}"
        resubscribed_at = market.now_ms
        await client.call("public/subscribe", {"channels": [inc]})
        await client.read_until(lambda: len(client.on(inc)) >= 2)
        first, second = client.on(inc)[:2]
        # The snapshot is a fresh ticker, not the one last built before the gap.
        assert first["type"] == "snapshot" and first["timestamp"] >= resubscribed_at - 1000
        assert second["type"] == "change" and second["timestamp"] > first["timestamp"]
        assert fake.stats.pump_errors == 0
        await client.close()
    await wait_for(lambda: fake.router.subscribers == {}, within=5.0)
    assert market.demand.keys == {}
