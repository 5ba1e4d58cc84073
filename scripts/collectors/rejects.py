"""Bad input bookkeeping: count it, log it once per kind, keep it in `rejected_messages`.

A frame that is not valid JSON-RPC, a message whose content cannot become a row, or a field
nobody expected: none of them stops the collector, none of them is silent. Each rejection
is counted in the writer's status (`rejected_total`), logged the first time its kind appears
on its channel family (then only counted, see `OncePerKey`), and kept as a
`RejectedMessageRow` (the raw text cut to 8 kB) for inspection. Unknown fields are only
counted (per kind and field) and logged once: the row is still written.

Bounds, so bad input cannot grow memory or the database without limit: a reason's kind has its
numbers and quoted values replaced ("ts: N ms is out of range"), at most `MAX_COUNTER_KEYS`
kinds and unknown fields get a counter of their own (the rest count under "other"), and at most
`MAX_KEPT_PER_KIND_PER_HOUR` messages of one kind are kept in `rejected_messages` per hour
(the rest only counted, in `not_kept`). `rejected_messages` itself keeps 30 days
(`scripts.storage.housekeeping`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from scripts.deribit.channels import channel_family
from scripts.logs import OncePerKey
from scripts.models import RejectedMessageRow
from scripts.storage.tables import REJECTED_MESSAGES
from scripts.storage.writer import BatchWriter

log = logging.getLogger(__name__)

RAW_MAX_BYTES = 8 * 1024
MAX_COUNTER_KEYS = 100
MAX_KEPT_PER_KIND_PER_HOUR = 100
OTHER = "other"
_VALUES_RE = re.compile(r"'[^']*'|\"[^\"]*\"|-?\d[\d.eE+:-]*")
# The channel of a frame that did not parse, if its first bytes survived (a truncated frame).
_CHANNEL_RE = re.compile(rb'"channel"\s*:\s*"([^"\\]{1,200})"')


def channel_of_raw(raw: bytes | str) -> str | None:
    """The `params.channel` of a frame too broken to parse, when it can still be read."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    m = _CHANNEL_RE.search(data[:4096])
    return m.group(1).decode("utf-8", "replace") if m else None


def _truncate(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= RAW_MAX_BYTES:
        return text
    return data[:RAW_MAX_BYTES].decode("utf-8", "ignore")


class Rejects:
    """Where a collector reports bad input."""

    def __init__(self, writer: BatchWriter, collector: str) -> None:
        self.writer = writer
        self.collector = collector
        self.by_reason: Counter[str] = Counter()
        self.malformed_frames = 0  # frames that were not JSON-RPC at all
        self.rejected_messages = 0  # notifications (or parts) whose content was refused
        self.unknown_field_messages = 0  # messages with at least one field nobody expected
        self.unknown_fields: Counter[tuple[str, str]] = Counter()
        self.not_kept = 0  # rejections counted but not kept (over the hourly cap of their kind)
        self._kept: Counter[str] = Counter()  # kept this hour, per kind
        self._kept_hour: datetime | None = None
        self._once = OncePerKey(log)

    @property
    def total(self) -> int:
        return self.malformed_frames + self.rejected_messages

    def malformed_frame(self, raw: bytes | str, reason: str, received_at: datetime) -> None:
        """A frame `protocol.parse_frame` refused."""
        self.malformed_frames += 1
        channel = channel_of_raw(raw)
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        self._keep(channel, f"malformed frame: {reason}", text, received_at)

    def rejected(self, channel: str | None, reason: str, data: Any, received_at: datetime) -> None:
        """A notification (or one element of it) whose content cannot become a row."""
        self.rejected_messages += 1
        try:
            text = orjson.dumps({"channel": channel, "data": data}).decode()
        except TypeError:
            text = repr(data)
        self._keep(channel, reason, text, received_at)

    def rest_reply(
        self, method: str, params: dict[str, Any], reason: str, raw: Any, received_at: datetime
    ) -> None:
        """A REST reply that was not the shape of its method (`DeribitRestClient.on_malformed`)."""
        data = {"params": params, "result": raw}
        self.rejected(f"public/{method}", f"malformed reply: {reason}", data, received_at)

    def unknown(self, kind: str, fields: Iterable[str], channel: str) -> None:
        """Fields of a `kind` of message that the parser does not know (the row is kept)."""
        self.unknown_field_messages += 1
        for name in fields:
            key = (kind, name[:100])
            if key not in self.unknown_fields and len(self.unknown_fields) >= MAX_COUNTER_KEYS:
                key = (kind, OTHER)
            self.unknown_fields[key] += 1
            self._once.warning(
                f"unknown:{key[0]}:{key[1]}",
                "unexpected field %r in a %s message on %s: kept the row, ignored the field",
                name,
                kind,
                channel,
            )

    def _keep(self, channel: str | None, reason: str, text: str, received_at: datetime) -> None:
        kind = self._kind(reason)
        family = channel_family(channel) if channel else "unknown channel"
        self.by_reason[kind] += 1
        self.writer.status.note_rejected()
        self._once.warning(
            f"{family}:{kind}", "rejected a message on %s (%s): %s", channel or "?", family, reason
        )
        hour = received_at.replace(minute=0, second=0, microsecond=0)
        if hour != self._kept_hour:
            self._kept_hour, self._kept = hour, Counter()
        if self._kept[kind] >= MAX_KEPT_PER_KIND_PER_HOUR:
            self.not_kept += 1
            return
        self._kept[kind] += 1
        self.writer.add(
            REJECTED_MESSAGES,
            None,
            RejectedMessageRow(received_at, self.collector, channel, reason, _truncate(text)),
        )

    def _kind(self, reason: str) -> str:
        # "trades[3]: ts: 17 ms ..." and "trades[7]: ts: 99 ms ..." are the same kind of problem.
        kind = _VALUES_RE.sub("N", re.sub(r"\[\d+\]", "[]", reason))[:200]
        if kind not in self.by_reason and len(self.by_reason) >= MAX_COUNTER_KEYS:
            return OTHER
        return kind

    def counters(self) -> dict[str, Any]:
        """For `collector_status.details`."""
        return {
            "malformed_frames": self.malformed_frames,
            "rejected_messages": self.rejected_messages,
            "unknown_field_messages": self.unknown_field_messages,
            "unknown_fields": {f"{k}.{f}": n for (k, f), n in self.unknown_fields.items()},
            "rejected_by_reason": dict(self.by_reason),
            "rejected_not_kept": self.not_kept,
        }
