"""`CurrencyPoller._read`: how the funding and index pollers skip a failed REST read."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from scripts.clock import SimClock
from scripts.collectors.rest.catalog import CurrencyPoller
from scripts.deribit.rest import DeribitRestError
from scripts.normalize.common import MalformedMessage


def _poller() -> CurrencyPoller:
    # `_read` touches neither the REST client, the sink nor the pool.
    unused = cast(Any, None)
    clock = SimClock.starting_now(0.0, 1.0)
    return CurrencyPoller(unused, unused, unused, clock, (), logger=logging.getLogger("t.poller"))


async def _returns(value: object) -> object:
    return value


async def _raises(exc: Exception) -> object:
    raise exc


async def test_a_successful_read_is_returned() -> None:
    poller = _poller()
    assert await poller._read(_returns([1, 2]), "DVOL", "btc_usd") == [1, 2]
    assert poller.rejected == 0


async def test_a_rest_error_is_skipped_logged_once_and_not_counted_as_rejected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    poller = _poller()
    exc = DeribitRestError("get_index_price", {"index_name": "btc_usd"}, 10028, "too_many")
    caplog.set_level(logging.WARNING, logger="t.poller")
    for _ in range(3):
        assert await poller._read(_raises(exc), "DVOL", "btc_usd") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"DVOL btc_usd: {exc} (further ones counted, not logged)"
    ]
    assert poller._once.counts == {"dvol:10028": 3}
    assert poller.rejected == 0


async def test_a_malformed_reply_is_skipped_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    poller = _poller()
    caplog.set_level(logging.WARNING, logger="t.poller")
    for _ in range(2):
        bad = MalformedMessage("price: not a number")
        assert await poller._read(_raises(bad), "funding", "BTC-PERPETUAL") is None
    assert [r.getMessage() for r in caplog.records] == [
        "funding BTC-PERPETUAL: bad reply: price: not a number (further ones counted, not logged)"
    ]
    assert poller._once.counts == {"funding-bad": 2}
    assert poller.rejected == 2


async def test_other_errors_are_not_swallowed() -> None:
    with pytest.raises(RuntimeError):
        await _poller()._read(_raises(RuntimeError("bug")), "index", "btc_usd")
