"""Fault switches of the fake Deribit, each doing what it says, over real sockets."""

from __future__ import annotations

import time

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.fake_deribit.faults import MALFORMED_KINDS, Faults
from tests.fake_deribit.limits import Limits
from tests.support.ws_client import PERP, RawClient, closed_code, running


async def test_drop_after_messages_cuts_the_socket() -> None:
    async with running(speed=10.0, faults=Faults(drop_after_messages=5)) as fake:
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [f"book.{PERP}.100ms"]})
        code, _ = await closed_code(client)
        assert code is None  # no close frame: an abrupt drop
        assert len(client.notifications) == 5
        assert fake.stats.dropped_connections == 1


async def test_drop_every_s_drops_all_connections() -> None:
    async with running(faults=Faults(drop_every_s=0.3)) as fake:
        clients = [await RawClient.connect(fake.ws_url) for _ in range(2)]
        for client in clients:
            code, _ = await closed_code(client)
            assert code is None
        assert fake.stats.dropped_connections >= 2


async def test_stall_stops_data_but_not_rpc_or_heartbeats() -> None:
    async with running(speed=10.0) as fake:
        channel = f"book.{PERP}.100ms"
        client = await RawClient.connect(fake.ws_url)
        client.answer_heartbeats = True
        await client.call("public/subscribe", {"channels": [channel]})
        await client.read_until(lambda: len(client.on(channel)) >= 2)
        fake.faults.stall = True
        await client.read_for(0.2)  # frames already queued may still arrive
        stalled_at = len(client.notifications)
        await client.call("public/set_heartbeat", {"interval": 10})
        await client.read_for(1.0)
        assert len(client.notifications) == stalled_at
        assert len(client.heartbeats) >= 2
        assert (await client.call("public/get_time"))["result"] > 0
        fake.faults.stall = False
        await client.read_until(lambda: len(client.notifications) > stalled_at)
        await client.close()


async def test_malformed_frames_are_sent_and_recorded() -> None:
    faults = Faults(malformed_rate=0.5, seed=3)
    async with running(speed=10.0, faults=faults) as fake:
        client = await RawClient.connect(fake.ws_url)
        await client.call("public/subscribe", {"channels": [f"book.{PERP}.100ms", f"quote.{PERP}"]})
        await client.read_until(lambda: len(fake.malformed) >= 40, within=30)
        await client.read_for(0.3)
        bad = [m for m in fake.malformed if m.conn_id == 1]
        assert {m.kind for m in bad} == set(MALFORMED_KINDS)
        received = set(client.raw)
        assert all(m.frame.decode() in received for m in bad[:30])
        bad_frames = {m.frame.decode() for m in bad}
        assert set(client.unparsable) <= bad_frames and client.unparsable
        assert sum(fake.stats.malformed_sent.values()) == len(fake.malformed)
        # Ground truth lists only the good frames.
        good = len(fake.truth.sent_on("", conn_id=1))
        assert good + len(bad) == fake.stats.notifications_sent
        await client.close()


async def test_random_10028_ends_the_session() -> None:
    async with running(faults=Faults(random_10028_rate=1.0)) as fake:
        client = await RawClient.connect(fake.ws_url)
        reply = await client.call("public/get_time")
        assert reply["error"]["code"] == 10028
        await closed_code(client)
        fake.faults.random_10028_rate = 0.0
        again = await RawClient.connect(fake.ws_url)
        assert "result" in await again.call("public/get_time")
        await again.close()


async def test_refused_connections_until_a_wall_time() -> None:
    async with running(faults=Faults(refuse_connections_until=time.time() + 60)) as fake:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(fake.ws_url, open_timeout=10)
        assert info.value.response.status_code == 503
        fake.faults.refuse_connections_until = time.time() - 1
        client = await RawClient.connect(fake.ws_url)
        assert "result" in await client.call("public/test")
        await client.close()
        assert fake.stats.refused == 1


async def test_limits_are_configurable() -> None:
    limits = Limits(credits_max=1_000, credits_per_request=500, max_connections_per_ip=1)
    async with running(speed=0.001, limits=limits) as fake:
        client = await RawClient.connect(fake.ws_url)
        with pytest.raises(InvalidStatus):
            await websockets.connect(fake.ws_url, open_timeout=10)
        assert "result" in await client.call("public/test")
        assert "result" in await client.call("public/test")
        assert (await client.call("public/test"))["error"]["code"] == 10028
