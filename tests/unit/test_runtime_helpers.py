"""scripts/runtime.py's small task helpers: the first of several works to end ends the others
(a socket's reader and control loop), a work cut short by a stop, a wait for any event."""

from __future__ import annotations

import asyncio

import pytest

from scripts.runtime import first_finished, until_stopped, wait_any


async def _forever(cancelled: list[str], name: str) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append(name)
        raise


async def _after(delay_s: float, value: object) -> object:
    await asyncio.sleep(delay_s)
    return value


async def test_the_first_to_return_gives_its_value_and_cancels_the_others() -> None:
    cancelled: list[str] = []
    first = await first_finished(_forever(cancelled, "reader"), _after(0.01, "stopped"))
    assert (first.index, first.value, first.error) == (1, "stopped", None)
    assert cancelled == ["reader"]


async def test_the_first_to_raise_gives_its_error_not_an_exception_group() -> None:
    cancelled: list[str] = []

    async def broken() -> None:
        await asyncio.sleep(0.01)
        raise ConnectionResetError("peer reset")

    first = await first_finished(broken(), _forever(cancelled, "control"))
    assert first.index == 0 and isinstance(first.error, ConnectionResetError)
    assert cancelled == ["control"]


async def test_an_error_of_a_work_cut_short_is_dropped() -> None:
    async def fails_when_cancelled() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    first = await first_finished(fails_when_cancelled(), _after(0.01, 7))
    assert (first.index, first.value) == (1, 7)


async def test_cancelling_the_caller_cancels_every_work() -> None:
    cancelled: list[str] = []
    task = asyncio.create_task(first_finished(_forever(cancelled, "a"), _forever(cancelled, "b")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["a", "b"]


async def test_until_stopped_cancels_the_work_when_stop_comes_first() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await until_stopped(stop, asyncio.sleep(10)) == (False, None)
    assert await until_stopped(asyncio.Event(), _after(0.0, "done")) == (True, "done")


async def test_wait_any_returns_at_the_first_event_or_the_limit() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, b.set)
    await asyncio.wait_for(wait_any([a, b], limit_s=10), 5)
    await wait_any([asyncio.Event()], limit_s=0.01)  # the limit: returns, raises nothing
