"""Fault switches for the fake exchange; all of them may be changed while it runs.

Transport faults (drops, refused upgrades) run on wall time; data faults (malformed
frames, skipped book changes, random 10028) draw from one seeded RNG so a run repeats.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

MALFORMED_KINDS = ("truncated", "wrong_type", "extra_fields", "nan_literal", "missing_data")
REST_MALFORMED_KINDS = ("null_result", "wrong_type", "null_element", "missing_key", "bad_value")


def _first_list(value: Any) -> list[Any] | None:
    """The result itself when a list, else the first list among a dict result's values."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return next((v for v in value.values() if isinstance(v, list)), None)
    return None


def _first_dict(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    items = _first_list(value)
    return next((v for v in items or () if isinstance(v, dict)), None)


def _malform(kind: str, result: Any, rng: random.Random) -> Any:
    """A copy of `result` broken in one way (what a real reply was seen or could be sent as)."""
    result = orjson.loads(orjson.dumps(result))
    if kind == "null_result":
        return None
    if kind == "wrong_type":
        return "unexpected" if not isinstance(result, str) else 42
    if kind == "null_element":
        items = _first_list(result)
        if items is None:
            return None
        items.insert(rng.randrange(len(items) + 1), None)
        return result
    target = _first_dict(result)
    if not target:
        return [None]
    key = rng.choice(sorted(target))
    if kind == "missing_key":
        del target[key]
    else:  # bad_value
        target[key] = rng.choice(["x", None, -1, [], {"a": 1}, "NaN"])
    return result


@dataclass
class Faults:
    """What to break. Defaults break nothing."""

    drop_after_messages: int | None = None  # abort each session after it got N notifications
    drop_every_s: float | None = None  # abort every connection every N wall seconds
    stall: bool = False  # send no notifications, keep answering RPC and heartbeats
    malformed_rate: float = 0.0  # fraction of notifications replaced by a malformed frame
    skip_book_change: set[str] | int = field(default_factory=set)  # instruments, or a count
    random_10028_rate: float = 0.0  # fraction of requests answered with 10028 (session ends)
    refuse_connections_until: float | None = None  # wall time; upgrades refused until then
    refuse_status: int = 503  # HTTP status of a refused upgrade (503 or 429)
    rest_malformed_rate: float = 0.0  # fraction of HTTP results replaced by a malformed one
    seed: int = 0
    future_trade_ms: int | None = None  # the next option trade is sent this far in the future
    refuse_channels: set[str] = field(default_factory=set)  # left out of subscribe acks

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def refusing(self) -> bool:
        until = self.refuse_connections_until
        return until is not None and time.time() < until

    def take_book_skip(self, instrument: str) -> bool:
        """True if this book change must be dropped (consumes the switch)."""
        skip = self.skip_book_change
        if isinstance(skip, int):
            if skip > 0:
                self.skip_book_change = skip - 1
                return True
            return False
        if instrument in skip:
            skip.discard(instrument)
            return True
        return False

    def take_future_trade(self, instrument: str) -> int | None:
        """The offset to add to this option trade's timestamp on the wire (consumes it)."""
        off = self.future_trade_ms
        if off is None or not instrument.endswith(("-C", "-P")):
            return None
        self.future_trade_ms = None
        return off

    def roll_malformed(self) -> str | None:
        """The kind of malformed frame to send instead of the next notification, or None."""
        if self.malformed_rate <= 0.0 or self.rng.random() >= self.malformed_rate:
            return None
        return self.rng.choice(MALFORMED_KINDS)

    def malform_rest_result(self, result: Any) -> tuple[str, Any] | None:
        """(kind, a malformed stand-in for an HTTP `result`), or None to send it unchanged."""
        if self.rest_malformed_rate <= 0.0 or self.rng.random() >= self.rest_malformed_rate:
            return None
        kind = self.rng.choice(REST_MALFORMED_KINDS)
        return kind, _malform(kind, result, self.rng)

    def roll_10028(self) -> bool:
        return self.random_10028_rate > 0.0 and self.rng.random() < self.random_10028_rate


def _stringify_first_number(data: Any) -> Any:
    """A copy of `data` with the first numeric field (price if present) turned into a string."""
    if isinstance(data, list):
        return [_stringify_first_number(data[0]), *data[1:]] if data else ["bad"]
    if isinstance(data, dict):
        out = dict(data)
        key = (
            "price"
            if "price" in out
            else next(
                (
                    k
                    for k, v in out.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                ),
                None,
            )
        )
        if key is None:
            out["timestamp"] = "not-a-number"
        else:
            out[key] = str(out[key])
        return out
    return str(data)


def malformed_frame(kind: str, channel: str, data: Any) -> bytes:
    """A notification frame for `channel` broken in the way `kind` names."""
    if kind == "truncated":
        whole = orjson.dumps(_envelope(channel, data))
        return whole[: max(1, len(whole) // 2)]
    if kind == "wrong_type":
        return orjson.dumps(_envelope(channel, _stringify_first_number(data)))
    if kind == "extra_fields":
        env = _envelope(channel, data)
        env["params"]["unexpected_field"] = {"x": 1}
        if isinstance(data, dict):
            env["params"]["data"] = {**data, "zz_unknown": [1, "two", None]}
        return orjson.dumps(env)
    if kind == "nan_literal":
        body = orjson.dumps(_envelope(channel, {"__nan__": 0}))
        return body.replace(b'{"__nan__":0}', b'{"price":NaN,"timestamp":NaN}')
    if kind == "missing_data":
        return orjson.dumps(
            {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel}}
        )
    raise ValueError(f"unknown malformed kind {kind!r}; known: {', '.join(MALFORMED_KINDS)}")


def _envelope(channel: str, data: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": data},
    }
