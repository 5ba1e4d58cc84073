"""Process lifecycle for every entry point: signals to a stop event, one TaskGroup, the drain
deadline, exit codes.

`run_service(main)` runs `main(stop)` under asyncio: SIGTERM/SIGINT set `stop`; a second signal
cancels at once. Inside, a service calls `supervise`: its intake tasks, side tasks and writer
run in one `asyncio.TaskGroup`; when `stop` is set (or an intake task ends or fails) intake
stops, then the writer drains within the drain deadline, then the exit code is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1

T = TypeVar("T")
Job = Callable[[asyncio.Event], Coroutine[Any, Any, object]]


class Drainable(Protocol):
    async def flush_until(self, stop: asyncio.Event) -> None: ...
    async def drain(self, deadline_s: float | None = None, *, to_database: bool = True) -> None: ...


def run_service(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Runs `main(stop_event)` under asyncio with signal handling; returns its exit code."""

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()
        signals_seen = 0

        def on_signal(signum: int) -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen == 1:
                log.info("received %s: stopping intake and draining", signal.Signals(signum).name)
                stop.set()
            elif task is not None:
                log.warning("second signal: cancelling without waiting for the drain")
                task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await main(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(runner())
    except asyncio.CancelledError:
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


async def supervise(
    name: str,
    stop: asyncio.Event,
    intake: Sequence[tuple[str, Job]],
    *,
    writer: Drainable | None = None,
    run_writer: bool = True,
    drain_deadline_s: float | None = None,
    side: Sequence[Job] = (),
    grace_s: float | None = None,
    expected: tuple[type[Exception], ...] = (),
) -> int:
    """Runs a service until `stop`; returns its exit code.

    `intake` jobs get `stop`; the first to end sets it, one that fails is logged and makes the
    exit code 1. After `stop`, intake still running gets `grace_s` (None: no limit), then is
    cancelled. Then the writer (flushing meanwhile when `run_writer`) drains within
    `drain_deadline_s`. `side` jobs (status lines, health) end on `stop` by themselves.
    `expected` failures are logged in one line, without a traceback.
    """
    code = EXIT_OK
    writer_stop = asyncio.Event()

    def failed() -> None:
        nonlocal code
        code = EXIT_FAILURE
        stop.set()

    def guarded(label: str, job: Job) -> Job:
        async def run(stop: asyncio.Event) -> None:
            try:
                await job(stop)
            except expected as exc:
                log.error("%s: %s", name, exc)
                failed()
            except Exception:
                log.exception("%s: %s failed", name, label)
                failed()
            finally:
                stop.set()  # one intake job ending ends the service

        return run

    async def run_intake() -> None:
        try:
            jobs = [(label, guarded(label, job)) for label, job in intake]
            await run_tasks(stop, jobs, grace_s=grace_s)
        finally:
            writer_stop.set()  # intake has stopped: drain

    async def run_writer_task(w: Drainable) -> None:
        if run_writer:
            try:
                await w.flush_until(writer_stop)
            except Exception:
                log.exception("%s: the writer failed", name)
            if not writer_stop.is_set():
                log.error("%s: the writer stopped unexpectedly; stopping", name)
                failed()
                await writer_stop.wait()
        else:
            await writer_stop.wait()
        await w.drain(drain_deadline_s)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_intake(), name=f"{name}-intake")
        if writer is not None:
            tg.create_task(run_writer_task(writer), name=f"{name}-writer")
        for job in side:
            tg.create_task(job(stop))
    return code


async def run_tasks(
    stop: asyncio.Event,
    jobs: Sequence[tuple[str, Job]],
    *,
    grace_s: float | None = None,
    group: Callable[[asyncio.TaskGroup], None] | None = None,
) -> None:
    """Runs `jobs` (each given `stop`) in one TaskGroup until `stop` is set or one of them ends;
    then the rest get `grace_s` to finish (None: as long as they take) and are cancelled.

    A job that fails cancels the others and raises (as an ExceptionGroup). `group` receives the
    TaskGroup, for jobs started later (sockets opened while running).
    """
    ended = asyncio.Event()

    async def watched(job: Job) -> None:
        try:
            await job(stop)
        finally:
            ended.set()

    async def relay_stop() -> None:
        await stop.wait()
        ended.set()

    async with asyncio.TaskGroup() as tg:
        if group is not None:
            group(tg)
        tasks = [tg.create_task(watched(job), name=label) for label, job in jobs]
        relay = tg.create_task(relay_stop())
        await ended.wait()
        relay.cancel()
        if grace_s is not None:
            await wait_all(tasks, grace_s)


async def wait_all(tasks: Sequence[asyncio.Task[Any]], limit_s: float) -> None:
    """Waits up to `limit_s` for `tasks`, then cancels those still running."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()


async def until_stopped(stop: asyncio.Event, work: Awaitable[T]) -> tuple[bool, T | None]:
    """Awaits `work` unless `stop` is set first (then `work` is cancelled): (finished, result).

    An exception of `work` is raised as is (not in an ExceptionGroup)."""
    outcome: dict[str, Any] = {}

    async def run() -> None:
        try:
            outcome["value"] = await work
        except Exception as exc:
            outcome["error"] = exc

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(run())

        async def cancel_on_stop() -> None:
            await stop.wait()
            task.cancel()

        watcher = tg.create_task(cancel_on_stop())
        task.add_done_callback(lambda _: watcher.cancel())
    if "error" in outcome:
        raise outcome["error"]
    if task.cancelled():
        return False, None
    return True, outcome["value"]


@dataclass(frozen=True, slots=True)
class Finished:
    """How the first of `first_finished`'s works ended: its position, and its value or error."""

    index: int
    value: Any = None
    error: Exception | None = None


async def first_finished(*works: Coroutine[Any, Any, Any]) -> Finished:
    """Runs `works` together in one TaskGroup; the first to return or raise cancels the others
    and its outcome is returned (an exception included, not raised). The others' outcomes,
    errors of their cancellation included, are dropped: they were cut short."""
    outcome: list[Finished] = []
    tasks: list[asyncio.Task[None]] = []

    async def run(index: int, work: Coroutine[Any, Any, Any]) -> None:
        try:
            result = Finished(index, value=await work)
        except Exception as exc:
            result = Finished(index, error=exc)
        if not outcome:
            outcome.append(result)
            for task in tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async with asyncio.TaskGroup() as tg:
        tasks += [tg.create_task(run(i, w)) for i, w in enumerate(works)]
    return outcome[0]


async def wait_any(events: Iterable[asyncio.Event], limit_s: float) -> None:
    """Returns once one of `events` is set, or after `limit_s`."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s), asyncio.TaskGroup() as tg:
            waits = [tg.create_task(e.wait()) for e in events]
            for w in waits:
                w.add_done_callback(lambda _: [x.cancel() for x in waits])
