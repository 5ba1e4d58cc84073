"""Replay mode: the real recorded Deribit messages in shared/data/deribit/ served as is.

Each `ws_*.jsonl` notification goes, byte for byte, to sessions subscribed to its channel
(or to the same channel at another interval, with only `params.channel` rewritten), in file
order, right after the subscribe ack. `rest_*.jsonl` answer the REST methods they record.
Lines that are not notifications (heartbeats, acks) are counted in `skipped`, not served.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.fake_deribit.errors import RpcError

_INTERVALS = frozenset({"raw", "100ms", "agg2"})
_INTERVAL_HEADS = frozenset({"ticker", "trades", "book", "perpetual"})
_STR_PARAMS = ("instrument_name", "index_name", "currency")


def channel_base(channel: str) -> str:
    """The channel without its interval (`ticker.X.100ms` → `ticker.X`), else itself."""
    head, _, rest = channel.partition(".")
    if head in _INTERVAL_HEADS:
        stem, _, last = rest.rpartition(".")
        if last in _INTERVALS and stem:
            return f"{head}.{stem}"
    return channel


def parse_line(line: bytes) -> Any:
    """orjson, falling back to the stdlib for what it refuses (NaN literals)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


@dataclass(frozen=True)
class Recorded:
    """One recorded notification: its channel, the exact bytes, and the parsed data."""

    source: str  # file:line
    channel: str
    base: str
    frame: bytes
    data: Any

    def on_channel(self, channel: str) -> bytes:
        """The frame as sent on `channel`: verbatim, or with only the channel name rewritten."""
        if channel == self.channel:
            return self.frame
        pattern = rb'("channel"\s*:\s*")' + re.escape(self.channel.encode()) + rb'"'
        return re.sub(pattern, lambda m: m.group(1) + channel.encode() + b'"', self.frame, count=1)


@dataclass
class ReplayCorpus:
    notifications: list[Recorded] = field(default_factory=list)
    rest: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)  # file → lines not served

    @classmethod
    def load(cls, directory: Path) -> ReplayCorpus:
        if not directory.is_dir():
            raise FileNotFoundError(f"replay directory {directory} does not exist")
        corpus = cls()
        for path in sorted(directory.glob("ws_*.jsonl")):
            for n, line in _lines(path):
                msg = parse_line(line)
                params = msg.get("params") if isinstance(msg, dict) else None
                channel = params.get("channel") if isinstance(params, dict) else None
                if (
                    not isinstance(params, dict)
                    or msg.get("method") != "subscription"
                    or not isinstance(channel, str)
                ):
                    corpus.skipped[path.name] += 1
                    continue
                corpus.notifications.append(
                    Recorded(
                        f"{path.name}:{n}", channel, channel_base(channel), line, params.get("data")
                    )
                )
        for path in sorted(directory.glob("rest_*.jsonl")):
            method = "public/" + path.stem.removeprefix("rest_")
            for _, line in _lines(path):
                msg = parse_line(line)
                if isinstance(msg, dict) and ("result" in msg or "error" in msg):
                    corpus.rest.setdefault(method, []).append(msg)
                else:
                    corpus.skipped[path.name] += 1
        return corpus

    @property
    def channels(self) -> set[str]:
        return {rec.channel for rec in self.notifications}

    def frames_for(self, channels: Iterable[str]) -> Iterator[tuple[str, bytes, Any]]:
        """(channel, frame, data) for newly subscribed `channels`, in file order."""
        by_base: dict[str, list[str]] = {}
        for channel in channels:
            by_base.setdefault(channel_base(channel), []).append(channel)
        for rec in self.notifications:
            for channel in by_base.get(rec.base, ()):
                yield channel, rec.on_channel(channel), rec.data

    def all_frames(self) -> Iterator[tuple[str, bytes, Any]]:
        for rec in self.notifications:
            yield rec.channel, rec.frame, rec.data

    def rest_result(self, method: str, params: dict[str, Any]) -> Any:
        recorded = self.rest.get(method)
        if not recorded:
            raise RpcError(
                -32601, "Method not found", {"reason": f"no recording of {method} to replay"}
            )
        if method == "public/get_instruments":
            return _instruments(recorded, params)
        wanted = [str(params[k]) for k in _STR_PARAMS if isinstance(params.get(k), str)]
        chosen = recorded[0]
        for msg in recorded:
            text = orjson.dumps(msg.get("result")).decode()
            if wanted and all(f'"{w}"' in text for w in wanted):
                chosen = msg
                break
        if "error" in chosen:
            err = chosen["error"]
            raise RpcError(int(err.get("code", 11094)), err.get("message"), err.get("data"))
        return chosen["result"]


def _instruments(recorded: list[dict[str, Any]], params: dict[str, Any]) -> list[Any]:
    """The union of every recorded instrument, filtered by `currency` and `kind`."""
    currency = params.get("currency")
    kind = params.get("kind")
    seen: dict[str, Any] = {}
    for msg in recorded:
        for inst in msg.get("result") or []:
            if not isinstance(inst, dict) or "instrument_name" not in inst:
                continue
            if currency not in (None, "any") and currency not in (
                inst.get("settlement_currency"),
                inst.get("base_currency") if not inst.get("settlement_currency") else None,
            ):
                continue
            if kind not in (None, "any") and inst.get("kind") != kind:
                continue
            seen.setdefault(inst["instrument_name"], inst)
    return list(seen.values())


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield n, line
