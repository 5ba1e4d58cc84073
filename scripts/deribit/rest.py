"""The HTTP client for Deribit's public methods, metered by the process's credit limiter.

Every call first takes its credits from the shared `LimiterSet` (so the exchange never has to
answer 10028), then GETs `{base_url}/public/<method>?<params>`. Failures are classified once,
outside the retry loop (shared/docs/deribit-protocol.md §4.3): network errors, HTTP 5xx, HTTP
429, 10028 and Deribit's temporary codes are retried with a capped, jittered exponential
backoff (the `backoff` library, wall time: it is about the transport); argument, auth and
"not found" errors fail at once with a `DeribitRestError` naming the method and params.
Calls are counted per method for the "REST calls per simulated hour" report.

Replies go through the same tolerant parsing as WebSocket frames: a body that is not JSON-RPC,
or a `result` that is not the shape the method returns (`null`, a string where a list belongs),
raises `MalformedReply` (a `DeribitRestError`, which every caller already handles by trying
again at its next round) after being counted in `malformed` and handed to `on_malformed`
(collectors keep it in `rejected_messages`). Elements inside a well-shaped result are the
parsers' to check, per element.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import backoff
import orjson

from scripts import retry
from scripts.clock import Clock
from scripts.deribit.limiter import LimiterSet
from scripts.deribit.protocol import TOO_MANY_REQUESTS, classify_error

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
RETRY_BASE_S = 0.5
RETRY_CAP_S = 30.0


class DeribitRestError(Exception):
    """A call that failed for good: the exchange refused it, or retries ran out."""

    def __init__(
        self, method: str, params: dict[str, Any], code: int | None, message: str, data: Any = None
    ) -> None:
        self.method = method
        self.params = params
        self.code = code
        self.message = message
        self.data = data
        where = f"public/{method}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
        detail = f"error {code} {message}" if code is not None else message
        super().__init__(f"{where}: {detail}" + (f" {data!r}" if data is not None else ""))


class MalformedReply(DeribitRestError):
    """A reply that is not the shape its method returns: counted, kept, tried again later."""


# (method, params, reason, the raw result or body, received_at)
OnMalformed = Callable[[str, dict[str, Any], str, Any, datetime], None]
R = TypeVar("R", dict, list, int)


class _Retryable(Exception):
    """A failure worth another try (internal to the retry loop)."""

    def __init__(self, reason: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.data = data


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_retryable_code(code: int) -> bool:
    """True when a Deribit error code means "try again later" (10028 and the temporary ones)."""
    return code == TOO_MANY_REQUESTS or classify_error(code).retryable


class DeribitRestClient:
    """Public REST methods of one host (the main API or the history host)."""

    def __init__(
        self,
        base_url: str,
        *,
        limiter: LimiterSet,
        clock: Clock,
        session: aiohttp.ClientSession | None = None,
        max_retries: int = 6,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.clock = clock
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.errors_by_code: Counter[int] = Counter()
        self.malformed: Counter[str] = Counter()
        self.on_malformed: OnMalformed | None = None
        self._attempt = backoff.on_exception(
            retry.delays,
            _Retryable,
            max_tries=max_retries,
            base_s=retry_base_s,
            cap_s=retry_cap_s,
            jitter=backoff.full_jitter,
            on_backoff=self._on_backoff,
            on_giveup=self._on_giveup,
            raise_on_giveup=True,
        )(self._attempt_once)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> DeribitRestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # -- the call --------------------------------------------------------------------------
    async def call_envelope(self, method: str, **params: Any) -> dict[str, Any]:
        """The whole JSON-RPC reply of `public/<method>` (with `usIn`/`usOut`)."""
        query = {k: _query_value(v) for k, v in params.items() if v is not None}
        try:
            return await self._attempt(method, query)
        except _Retryable as exc:
            raise DeribitRestError(
                method, query, exc.code, f"gave up after retries: {exc.reason}", exc.data
            ) from None

    async def call(self, method: str, **params: Any) -> Any:
        """The `result` of `public/<method>`; None-valued params are left out."""
        return (await self.call_envelope(method, **params)).get("result")

    async def _attempt_once(self, method: str, query: dict[str, str]) -> dict[str, Any]:
        limiter, cost = self.limiter.for_method(method)
        await limiter.acquire(cost)
        self.calls[method] += 1
        url = f"{self.base_url}/public/{method}"
        try:
            async with self._http().get(url, params=query, timeout=self._timeout) as resp:
                status = resp.status
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _Retryable(f"network error: {type(exc).__name__}: {exc}") from None
        try:
            reply = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            reply = None
        if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
            err = reply["error"]
            code = err.get("code")
            message = str(err.get("message", ""))
            if isinstance(code, int):
                self.errors_by_code[code] += 1
                if code == TOO_MANY_REQUESTS:
                    limiter.drain()  # the exchange's bucket is empty: let ours refill too
                if is_retryable_code(code):
                    raise _Retryable(f"error {code} {message}", code, err.get("data"))
            raise DeribitRestError(
                method, query, code if isinstance(code, int) else None, message, err.get("data")
            )
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status != 200:
            text = body[:200].decode("utf-8", "replace")
            raise DeribitRestError(method, query, None, f"unexpected HTTP {status} reply: {text!r}")
        if not isinstance(reply, dict) or "result" not in reply:
            raw = body[:8192].decode("utf-8", "replace")
            reason = f"unexpected HTTP {status} reply: {raw[:200]!r}"
            raise self._malformed(method, query, reason, raw)
        return reply

    def _malformed(
        self, method: str, query: dict[str, Any], reason: str, raw: Any
    ) -> MalformedReply:
        self.malformed[method] += 1
        if self.on_malformed is not None:
            at = self.clock.utc_now()
            try:
                self.on_malformed(method, query, reason, raw, at)
            except Exception:  # the keeper's bug must not hide the reply's
                log.exception("public/%s: on_malformed failed", method)
        return MalformedReply(method, query, None, f"malformed reply: {reason}")

    async def call_dict(self, method: str, **params: Any) -> dict[str, Any]:
        """The `result` of `public/<method>`, which must be an object (else MalformedReply)."""
        return await self._typed(dict, method, **params)

    async def _typed(self, shape: type[R], method: str, **params: Any) -> R:
        """The `result` of `public/<method>`, which must be a `shape` (else MalformedReply)."""
        result = await self.call(method, **params)
        if isinstance(result, shape) and not isinstance(result, bool):
            return result
        query = {k: _query_value(v) for k, v in params.items() if v is not None}
        reason = f"result is {type(result).__name__}, expected {shape.__name__}"
        raise self._malformed(method, query, reason, result)

    def _on_backoff(self, details: Any) -> None:
        method = details["args"][0]
        self.retries[method] += 1
        log.warning(
            "public/%s: %s; retry %d in %.1fs",
            method,
            details.get("exception"),
            details["tries"],
            details.get("wait", 0.0),
        )

    def _on_giveup(self, details: Any) -> None:
        log.error(
            "public/%s: giving up after %d tries: %s",
            details["args"][0],
            details["tries"],
            details.get("exception"),
        )

    # -- Deribit's methods -----------------------------------------------------------------
    async def get_time(self) -> int:
        return await self._typed(int, "get_time")

    async def get_instruments(
        self, currency: str, kind: str | None = None, expired: bool = False
    ) -> list[dict[str, Any]]:
        return await self._typed(
            list,
            "get_instruments",
            currency=currency,
            kind=kind,
            expired=expired,
        )

    async def get_tradingview_chart_data(
        self, instrument_name: str, start_timestamp: int, end_timestamp: int, resolution: str = "1"
    ) -> dict[str, Any]:
        return await self._typed(
            dict,
            "get_tradingview_chart_data",
            instrument_name=instrument_name,
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            resolution=resolution,
        )

    async def get_funding_rate_history(
        self, instrument_name: str, start_timestamp: int, end_timestamp: int
    ) -> list[dict[str, Any]]:
        return await self._typed(
            list,
            "get_funding_rate_history",
            instrument_name=instrument_name,
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
        )

    async def get_last_trades_by_currency_and_time(
        self,
        currency: str,
        start_timestamp: int,
        end_timestamp: int,
        *,
        kind: str | None = None,
        count: int | None = None,
        sorting: str | None = None,
    ) -> dict[str, Any]:
        return await self._typed(
            dict,
            "get_last_trades_by_currency_and_time",
            currency=currency,
            kind=kind,
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            count=count,
            sorting=sorting,
        )

    async def get_last_trades_by_instrument(
        self,
        instrument_name: str,
        *,
        start_seq: int | None = None,
        end_seq: int | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        count: int | None = None,
        sorting: str | None = None,
    ) -> dict[str, Any]:
        return await self._typed(
            dict,
            "get_last_trades_by_instrument",
            instrument_name=instrument_name,
            start_seq=start_seq,
            end_seq=end_seq,
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            count=count,
            sorting=sorting,
        )

    async def ticker(self, instrument_name: str) -> dict[str, Any]:
        return await self._typed(dict, "ticker", instrument_name=instrument_name)

    async def get_order_book(
        self, instrument_name: str, depth: int | None = None
    ) -> dict[str, Any]:
        return await self._typed(
            dict, "get_order_book", instrument_name=instrument_name, depth=depth
        )

    async def get_book_summary_by_currency(
        self, currency: str, kind: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._typed(list, "get_book_summary_by_currency", currency=currency, kind=kind)

    async def get_volatility_index_data(
        self, currency: str, start_timestamp: int, end_timestamp: int, resolution: str = "60"
    ) -> dict[str, Any]:
        return await self._typed(
            dict,
            "get_volatility_index_data",
            currency=currency,
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            resolution=resolution,
        )

    async def get_index_price(self, index_name: str) -> dict[str, Any]:
        """The result plus `_server_time_ms` (the reply's `usOut`), since the result has no time."""
        envelope = await self.call_envelope("get_index_price", index_name=index_name)
        raw = envelope.get("result")
        if not isinstance(raw, dict):
            reason = f"result is {type(raw).__name__}, expected dict"
            raise self._malformed("get_index_price", {"index_name": index_name}, reason, raw)
        result = dict(raw)
        us_out = envelope.get("usOut")
        if isinstance(us_out, int):
            result["_server_time_ms"] = us_out // 1000
        return result
