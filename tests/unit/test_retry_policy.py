"""The one retry policy (scripts/retry.py), and its users: the same delays everywhere."""

from __future__ import annotations

import random
import socket
from itertools import islice

import backoff
import pytest

from scripts import retry
from scripts.clock import Clock
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.rest import DeribitRestClient, DeribitRestError
from scripts.deribit.ws_retry import REFUSED_RETRY_BASE_S, REFUSED_RETRY_CAP_S, RefusedRetry
from scripts.storage.pool import RetrySchedule


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    got = [retry.capped_delay(n, base_s=0.5, cap_s=30.0) for n in range(9)]
    assert got == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert retry.capped_delay(10_000, base_s=0.5, cap_s=30.0) == 30.0  # no overflow
    assert retry.capped_delay(-1, base_s=0.5, cap_s=30.0) == 0.5


@pytest.mark.parametrize(("jitter", "low"), [("full", 0.0), ("half", 0.5)])
def test_jitter_stays_within_its_share_of_the_delay(jitter: retry.Jitter, low: float) -> None:
    rng = random.Random(7)
    for attempt in range(12):
        full = retry.capped_delay(attempt, base_s=1.0, cap_s=60.0)
        waits = [
            retry.backoff_delay(attempt, base_s=1.0, cap_s=60.0, rng=rng, jitter=jitter)
            for _ in range(200)
        ]
        assert all(low * full <= w <= full for w in waits)
        assert max(waits) - min(waits) > 0.2 * full * (1 - low)  # jittered, not constant


def test_the_backoff_library_gets_the_same_delays_as_its_own_expo() -> None:
    ours = retry.delays(base_s=0.5, cap_s=30.0)
    theirs = backoff.expo(factor=0.5, max_value=30.0)
    ours.send(None)
    theirs.send(None)
    assert list(islice(ours, 12)) == list(islice(theirs, 12))


async def test_the_rest_client_retries_a_network_error_with_the_policy_then_gives_up() -> None:
    # A loopback port nobody listens on: every attempt is a connection refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = Clock()
    limiters = LimiterSet.build(clock, requests_per_s=1000, burst=1000)
    async with DeribitRestClient(
        f"http://127.0.0.1:{port}/api/v2", limiter=limiters, clock=clock, max_retries=4,
        retry_base_s=0.001, retry_cap_s=0.002,
    ) as rest:  # fmt: skip
        with pytest.raises(DeribitRestError, match="network error"):
            await rest.call("get_time")
    assert rest.calls["get_time"] == 4 and rest.retries["get_time"] == 3  # tries = max_retries


def test_the_database_schedule_is_never_immediate_and_resets_on_success() -> None:
    schedule = RetrySchedule(base_s=0.5, max_s=30.0)
    assert schedule.failed() is True and not schedule.due()
    for _ in range(10):
        assert schedule.failed() is False
    assert schedule.failures == 11 and schedule.down
    assert schedule.recovered() is not None
    assert schedule.failures == 0 and not schedule.down and schedule.due()


def test_refused_channels_wait_at_least_the_base_and_at_most_the_cap() -> None:
    refused = RefusedRetry(random.Random(3))
    delays = [refused.refused() for _ in range(12)]
    assert all(REFUSED_RETRY_BASE_S <= d <= REFUSED_RETRY_CAP_S for d in delays)
    refused.reset()
    assert refused.rounds == 0 and not refused.due()
