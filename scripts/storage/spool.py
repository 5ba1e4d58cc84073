"""A bounded on-disk spool of row batches for when the database cannot take them.

Layout: `<directory>/<collector_name>/seg-<id>.spool`, append-only segment files of frames

    magic b"CTSP" | payload length u32 | batch_seq u64 | crc32 u32 | payload

where crc32 covers length, seq and payload, and the payload is a pickle of
`(table name template, currency, [row tuples])`. Segment ids are nanosecond timestamps that never
repeat, so an offset recorded for a segment (see below) can never be mistaken for another's.

Guarantees:
- `append` returns True only after the whole frame went to the file in one `write(2)`: the batch
  then survives the process being killed (kill -9) at any later point. A frame is fsynced when
  its segment is sealed (rotation, `seal`, `close`); an OS crash or power loss can lose the
  frames written since the last seal, and a frame cut short that way is detected (length/crc),
  counted in `torn_frames` and skipped.
- `append` returns False when the spool is full (or the disk is): the caller records the lost
  window in `data_gaps`. Nothing is dropped silently here.
- Exactly-once replay is the caller's half: each group of batches handed to `replay`'s writer
  must commit together with `spool_offsets(collector, segment, last_batch_seq)`, and batches
  whose seq is at or below the committed offset are skipped. A segment is deleted only after
  all its batches were committed.
- One process per spool: an exclusive `flock` on `<directory>/<collector>/.lock` (released by the
  kernel when the process dies).

Pickle is used for speed and fidelity (datetimes, None, float lists); the spool directory is
the collector's own, never input from elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

MAGIC = b"CTSP"
_HEADER = struct.Struct(">4sIQI")  # magic, payload length, batch_seq, crc32
HEADER_SIZE = _HEADER.size
MAX_FRAME_PAYLOAD = 1 << 30
SEGMENT_GLOB = "seg-*.spool"


class SpoolBatch(NamedTuple):
    """One table's rows, as spooled: the table's name template, its currency, plain tuples."""

    table: str
    currency: str | None
    rows: list[tuple]


class SpoolLockedError(RuntimeError):
    """Another live process holds this collector's spool."""


def encode_frame(seq: int, batch: SpoolBatch) -> bytes:
    payload = pickle.dumps(
        (batch.table, batch.currency, [tuple(r) for r in batch.rows]), protocol=5
    )
    head = struct.pack(">IQ", len(payload), seq)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return _HEADER.pack(MAGIC, len(payload), seq, crc) + payload


def read_frames(data: bytes) -> tuple[list[tuple[int, SpoolBatch]], int]:
    """Frames decoded from a segment's bytes, and the number of trailing bytes not decodable."""
    out: list[tuple[int, SpoolBatch]] = []
    pos = 0
    while pos < len(data):
        frame = _decode_at(data, pos)
        if frame is None:
            return out, len(data) - pos
        seq, batch, pos = frame
        out.append((seq, batch))
    return out, 0


def _decode_at(data: bytes, pos: int) -> tuple[int, SpoolBatch, int] | None:
    if len(data) - pos < HEADER_SIZE:
        return None
    magic, length, seq, crc = _HEADER.unpack_from(data, pos)
    end = pos + HEADER_SIZE + length
    if magic != MAGIC or length > MAX_FRAME_PAYLOAD or end > len(data):
        return None
    payload = data[pos + HEADER_SIZE : end]
    if zlib.crc32(payload, zlib.crc32(struct.pack(">IQ", length, seq))) != crc:
        return None
    table, currency, rows = pickle.loads(payload)
    return seq, SpoolBatch(table, currency, rows), end


def _segment_id(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])


class Spool:
    """Append-only segments of framed batches under `directory/collector_name`."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int,
        collector_name: str,
        segment_max_bytes: int | None = None,
    ) -> None:
        self.dir = Path(directory) / collector_name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_max_bytes = segment_max_bytes or max(1 << 20, min(64 << 20, max_bytes // 16))
        self.torn_frames = 0
        self.torn_bytes = 0
        self.frames_appended = 0
        self.full = False
        self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLockedError(f"spool {self.dir} is in use by another process") from None
        self._sizes: dict[int, int] = {
            _segment_id(p): p.stat().st_size for p in self.dir.glob(SEGMENT_GLOB)
        }
        self._active: int | None = None
        self._active_fd: int | None = None
        self._next_seq = 1
        if self._sizes:
            log.info(
                "spool %s holds %d segment(s), %d bytes from an earlier run",
                self.dir,
                len(self._sizes),
                self.bytes_used,
            )

    # ---- state ---------------------------------------------------------------------------
    @property
    def bytes_used(self) -> int:
        return sum(self._sizes.values())

    @property
    def is_empty(self) -> bool:
        return not any(self._sizes.values())

    def segments(self) -> list[int]:
        """Sealed segments, oldest first (the one being appended to is not among them)."""
        return sorted(s for s in self._sizes if s != self._active)

    def segment_path(self, segment: int) -> Path:
        return self.dir / f"seg-{segment:020d}.spool"

    # ---- writing -------------------------------------------------------------------------
    def append(self, batch: SpoolBatch) -> bool:
        """Appends one batch; False when the spool (or the disk) is full. Never raises on full."""
        if self.full:
            return False
        frame = encode_frame(self._next_seq, batch)
        if self.bytes_used + len(frame) > self.max_bytes:
            self._set_full(f"{self.bytes_used} of {self.max_bytes} bytes used")
            return False
        if self._active is not None and self._sizes[self._active] + len(frame) > (
            self.segment_max_bytes
        ):
            self.seal()
        if self._active_fd is None:
            self._open_segment()
        assert self._active is not None and self._active_fd is not None
        try:
            written = os.write(self._active_fd, frame)
        except OSError as exc:
            self._truncate_active()
            self._set_full(f"write failed: {exc}")
            return False
        if written != len(frame):  # disk full mid-frame: undo the partial frame
            self._truncate_active()
            self._set_full(f"short write ({written} of {len(frame)} bytes)")
            return False
        self._sizes[self._active] += len(frame)
        self._next_seq += 1
        self.frames_appended += 1
        return True

    def _set_full(self, why: str) -> None:
        # Full stays full until a segment is removed, so what is refused is one contiguous
        # window per table (the caller records it in data_gaps), never a sprinkling of rows.
        self.full = True
        log.error("spool %s is full (%s): refusing batches until it is replayed", self.dir, why)

    def _open_segment(self) -> None:
        seg = max([time.time_ns(), *(s + 1 for s in self._sizes)])
        path = self.segment_path(seg)
        self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._active = seg
        self._sizes[seg] = 0
        self._next_seq = 1
        self._fsync_dir()

    def _truncate_active(self) -> None:
        if self._active_fd is not None and self._active is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._active_fd, self._sizes[self._active])

    def seal(self) -> None:
        """Fsyncs and closes the segment being appended to; the next append starts a new one."""
        if self._active_fd is None:
            return
        try:
            os.fsync(self._active_fd)
        finally:
            os.close(self._active_fd)
            self._active_fd = None
            seg, self._active = self._active, None
            if seg is not None and self._sizes.get(seg) == 0:
                self._remove(seg)

    def close(self) -> None:
        self.seal()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ---- reading -------------------------------------------------------------------------
    def read_segment(self, segment: int) -> Iterator[tuple[int, SpoolBatch]]:
        """(batch_seq, batch) of a sealed segment in order; a torn or corrupt tail is skipped."""
        data = self.segment_path(segment).read_bytes()
        pos = 0
        while pos < len(data):
            frame = _decode_at(data, pos)
            if frame is None:
                self.torn_frames += 1
                self.torn_bytes += len(data) - pos
                log.error(
                    "spool segment %s: %d bytes at offset %d are a torn or corrupt frame "
                    "(its rows were never acknowledged): skipped",
                    segment,
                    len(data) - pos,
                    pos,
                )
                return
            seq, batch, pos = frame
            yield seq, batch

    def remove_segment(self, segment: int) -> None:
        if segment == self._active:
            raise ValueError("cannot remove the segment being appended to")
        self._remove(segment)

    def _remove(self, segment: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.segment_path(segment).unlink()
        self._sizes.pop(segment, None)
        self.full = False

    async def replay(
        self,
        write_group: Callable[[int, list[tuple[int, SpoolBatch]]], Awaitable[None]],
        *,
        committed: Mapping[int, int],
        segment_done: Callable[[int], Awaitable[None]] | None = None,
        group_rows: int = 20_000,
    ) -> int:
        """Replays every sealed segment in order; returns the number of batches handed over.

        `write_group(segment, [(seq, batch), ...])` must commit the batches and
        `spool_offsets(segment) = last seq` in one transaction. Batches with seq <= `committed`
        for their segment are skipped. A segment is removed after its last group committed,
        then `segment_done(segment)` runs (to delete its offset row).
        """
        handed = 0
        for segment in self.segments():
            done_seq = committed.get(segment, 0)
            group: list[tuple[int, SpoolBatch]] = []
            rows = 0
            for seq, batch in self.read_segment(segment):
                if seq <= done_seq:
                    continue
                group.append((seq, batch))
                rows += len(batch.rows)
                if rows >= group_rows:
                    await write_group(segment, group)
                    handed += len(group)
                    group, rows = [], 0
            if group:
                await write_group(segment, group)
                handed += len(group)
            self.remove_segment(segment)
            if segment_done is not None:
                await segment_done(segment)
        return handed


def split_rows(rows: Sequence[tuple], size: int) -> Iterator[list[tuple]]:
    """`rows` in chunks of at most `size`, so one frame stays small."""
    for start in range(0, len(rows), max(1, size)):
        yield list(rows[start : start + size])
