"""Process lifecycle for entry points: signals to a stop event, a drain deadline, exit codes.

SIGTERM/SIGINT set the stop event; the service stops intake, drains under its deadline and
returns. A second signal cancels at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1


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
