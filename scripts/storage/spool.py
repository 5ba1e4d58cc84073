"""A bounded on-disk spool of row batches for when the database cannot take them.

Layout: `<directory>/<collector_name>/seg-<id>.spool`, append-only segment files of frames

    magic b"CTS2" | payload length u32 | batch_seq u64 | crc32 u32 | payload

where crc32 covers length, seq and payload, and the payload is MessagePack of
`[table name template, currency, batch id, [row lists]]` (datetimes as MessagePack timestamps).
MessagePack decodes to plain values only: a file planted in the spool directory can at worst be
refused, never run code (the old pickle format could). Segment ids are nanosecond timestamps
that never repeat, so an offset recorded for a segment can never be mistaken for another's.

Guarantees:
- `append_many` returns how many of the batches, from the first, are durable: written and
  fsynced (a rotation fsyncs the segment it closes). Those survive a kill -9 and a power loss.
  The rest were cut off the file again and are the caller's to account for (memory, or a
  `data_gaps` row): an error at open, write, fsync or rotation (ENOSPC, EIO) never loses a row
  silently and never raises.
- After such an error the spool refuses batches ("full") until a segment is removed, or for
  `IO_ERROR_RETRY_S` when the cause was an I/O error (the disk may have been freed).
- Exactly-once replay is the caller's half: each part handed to `replay`'s writer must commit
  together with `spool_offsets(collector, segment, last_batch_seq, rows_done)`; what is at or
  below the committed offset is skipped. A segment is deleted only after all of it committed.
- One process per spool: an exclusive `flock` on `<directory>/<collector>/.lock` (released by the
  kernel when the process dies). The directory is 0700 and its files 0600.

OS calls go through `SpoolIO`, the seam where tests inject ENOSPC/EIO at the exact call.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

log = logging.getLogger(__name__)

MAGIC = b"CTS2"
LEGACY_MAGIC = b"CTSP"  # pickled frames of earlier versions: refused, never unpickled
_HEADER = struct.Struct(">4sIQI")  # magic, payload length, batch_seq, crc32
HEADER_SIZE = _HEADER.size
MAX_FRAME_PAYLOAD = 1 << 30
SEGMENT_GLOB = "seg-*.spool"
DIR_MODE = 0o700
FILE_MODE = 0o600
IO_ERROR_RETRY_S = 30.0


class SpoolIO:
    """The OS calls the spool makes; tests subclass it to fail one call with ENOSPC or EIO."""

    def open(self, path: Path, flags: int, mode: int) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)


class SpoolBatch(NamedTuple):
    """One table's rows, as spooled: the table's name template, its currency, plain tuples.

    `batch_id` is the writer transaction the rows were in when its outcome became unknown
    (0: never sent); replay looks it up before writing them again.
    """

    table: str
    currency: str | None
    rows: list[tuple]
    batch_id: int = 0


class SpoolLockedError(RuntimeError):
    """Another live process holds this collector's spool."""


def encode_frame(seq: int, batch: SpoolBatch) -> bytes:
    payload = msgpack.packb(
        [batch.table, batch.currency, batch.batch_id, batch.rows], datetime=True
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
    batch = _decode_payload(payload)
    return None if batch is None else (seq, batch, end)


def _decode_payload(payload: bytes) -> SpoolBatch | None:
    """The batch of a frame, or None when the payload is not the shape the writer spools."""
    try:
        value: Any = msgpack.unpackb(payload, timestamp=3, strict_map_key=True)
    except (ValueError, msgpack.UnpackException):
        return None
    if not (isinstance(value, list) and len(value) == 4):
        return None
    table, currency, batch_id, rows = value
    if not (
        isinstance(table, str)
        and (currency is None or isinstance(currency, str))
        and isinstance(batch_id, int)
        and isinstance(rows, list)
        and all(isinstance(r, list) for r in rows)
    ):
        return None
    return SpoolBatch(table, currency, [tuple(r) for r in rows], batch_id)


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
        io: SpoolIO | None = None,
    ) -> None:
        self.io = io or SpoolIO()
        self.dir = Path(directory) / collector_name
        self.dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(self.dir, DIR_MODE)  # also a directory an earlier version made 0755
        self.max_bytes = max_bytes
        self.segment_max_bytes = segment_max_bytes or max(1 << 20, min(64 << 20, max_bytes // 16))
        self.torn_frames = 0
        self.torn_bytes = 0
        self.frames_appended = 0
        self.full = False
        self._full_until: float | None = None  # an I/O error: try the disk again after this
        self.io_errors = 0
        self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLockedError(f"spool {self.dir} is in use by another process") from None
        for p in self.dir.iterdir():
            with contextlib.suppress(OSError):
                os.chmod(p, FILE_MODE)
        self._sizes: dict[int, int] = {
            _segment_id(p): p.stat().st_size for p in self.dir.glob(SEGMENT_GLOB)
        }
        self._active: int | None = None
        self._active_fd: int | None = None
        self._synced = 0  # bytes of the active segment known to be on disk
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
        """Appends one batch durably; False when it was refused (full, or an I/O error)."""
        return self.append_many([batch]) == 1

    def append_many(self, batches: Sequence[SpoolBatch]) -> int:
        """Appends batches and fsyncs them; returns how many, from the first, are durable.

        Never raises on a full or failing disk: what is not durable was cut off the file again.
        """
        if self.full and not self._retry_due():
            return 0
        durable = 0  # batches[:durable] are fsynced
        pending = 0  # written to the active segment after them, not yet fsynced
        try:
            for batch in batches:
                frame = encode_frame(self._next_seq, batch)
                if self.bytes_used + len(frame) > self.max_bytes:
                    self._set_full(f"{self.bytes_used} of {self.max_bytes} bytes used")
                    break
                if self._active is not None and self._sizes[self._active] + len(frame) > (
                    self.segment_max_bytes
                ):
                    self._seal_active()  # fsyncs: what was pending is durable
                    durable, pending = durable + pending, 0
                if self._active_fd is None:
                    self._open_segment()
                self._write_frame(frame)
                pending += 1
            if pending:
                assert self._active_fd is not None
                self.io.fsync(self._active_fd)
                self._synced = self._sizes[self._active or 0]
                durable, pending = durable + pending, 0
        except OSError as exc:
            self.io_errors += 1
            self._undo_unsynced()
            self._set_full(f"{errno.errorcode.get(exc.errno or 0, 'error')}: {exc}", io=True)
        return durable

    def _write_frame(self, frame: bytes) -> None:
        assert self._active is not None and self._active_fd is not None
        written = self.io.write(self._active_fd, frame)
        if written != len(frame):  # disk full mid-frame
            self._sizes[self._active] += written
            raise OSError(errno.ENOSPC, f"short write ({written} of {len(frame)} bytes)")
        self._sizes[self._active] += len(frame)
        self._next_seq += 1
        self.frames_appended += 1

    def _undo_unsynced(self) -> None:
        """Cuts what was written since the last fsync off the active segment and closes it.

        Those frames are handed back to the caller as not spooled; after a failed fsync the
        kernel may have dropped their pages, so they must not also be replayed from the file.
        """
        seg, fd = self._active, self._active_fd
        if seg is None or fd is None:
            return
        self._active, self._active_fd = None, None
        try:
            self.io.ftruncate(fd, self._synced)
            self._sizes[seg] = self._synced
        except OSError:
            # Cannot cut it: the file may hold frames the caller also accounts for. Remove the
            # whole segment's unsynced part by deleting the file when nothing in it is synced.
            if self._synced == 0:
                self._remove(seg)
            else:
                log.error("spool segment %s: could not cut unsynced frames off", seg)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._sizes.get(seg) == 0:
            self._remove(seg)

    def _retry_due(self) -> bool:
        if self._full_until is None or time.monotonic() < self._full_until:
            return False
        self.full, self._full_until = False, None
        return True

    def _set_full(self, why: str, *, io: bool = False) -> None:
        # Full stays full until a segment is removed (or, after an I/O error, for a while), so
        # what is refused is one contiguous window per table, never a sprinkling of rows.
        self.full = True
        self._full_until = time.monotonic() + IO_ERROR_RETRY_S if io else None
        log.error("spool %s is full (%s): refusing batches until it is replayed", self.dir, why)

    def _open_segment(self) -> None:
        seg = max([time.time_ns(), *(s + 1 for s in self._sizes)])
        path = self.segment_path(seg)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self._active_fd = self.io.open(path, flags, FILE_MODE)
        self._active = seg
        self._sizes[seg] = 0
        self._synced = 0
        self._next_seq = 1
        self._fsync_dir()

    def seal(self) -> None:
        """Fsyncs and closes the segment being appended to; the next append starts a new one.

        Raises OSError when the fsync fails (the unsynced frames were cut off first).
        """
        try:
            self._seal_active()
        except OSError:
            self.io_errors += 1
            self._undo_unsynced()
            raise

    def _seal_active(self) -> None:
        if self._active_fd is None:
            return
        fd = self._active_fd
        self.io.fsync(fd)
        self._active_fd = None
        os.close(fd)
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
            self.io.fsync(fd)
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
                if data[pos : pos + 4] == LEGACY_MAGIC:
                    log.error(
                        "spool segment %s was written by an earlier version (pickle), which is "
                        "never loaded: %d bytes skipped; replay it with that version first",
                        segment,
                        len(data) - pos,
                    )
                    return
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
        self.full, self._full_until = False, None


def split_rows(rows: Sequence[tuple], size: int) -> Iterator[list[tuple]]:
    """`rows` in chunks of at most `size`, so one frame stays small."""
    for start in range(0, len(rows), max(1, size)):
        yield list(rows[start : start + size])
