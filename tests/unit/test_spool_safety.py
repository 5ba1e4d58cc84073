"""Issue 11 scenario 13: the spool cannot run code and is private to the collector's user."""

from __future__ import annotations

import os
import pickle
import stat
import struct
import zlib
from pathlib import Path

from scripts.storage.spool import Spool, SpoolBatch
from tests.support.writer_db import quote


class _Planted:
    """What someone able to write SPOOL_DIR could plant: unpickling it calls os.mkdir."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _frame(magic: bytes, seq: int, payload: bytes) -> bytes:
    head = struct.pack(">IQ", len(payload), seq)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return struct.pack(">4sIQI", magic, len(payload), seq, crc) + payload


def _plant(tmp_path: Path, data: bytes) -> None:
    seg = tmp_path / "c" / f"seg-{1:020d}.spool"
    seg.parent.mkdir(parents=True, exist_ok=True)
    seg.write_bytes(data)


def _read_all(spool: Spool) -> list[SpoolBatch]:
    return [b for s in spool.segments() for _, b in spool.read_segment(s)]


def test_a_planted_pickle_frame_is_refused_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(_Planted(marker))
    _plant(tmp_path, _frame(b"CTSP", 1, payload) + _frame(b"CTS2", 2, payload))
    spool = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    batches = _read_all(spool)
    assert not marker.exists(), "reading the spool ran code planted in it"
    assert batches == [] and spool.torn_frames == 1


def test_spooled_rows_round_trip_through_the_safe_format(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    rows = [tuple(quote(i)) for i in range(5)]
    assert spool.append(SpoolBatch("{cur}_option_quotes", "BTC", rows, 42))
    spool.seal()
    assert _read_all(spool) == [SpoolBatch("{cur}_option_quotes", "BTC", rows, 42)]


def test_spool_directory_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        (tmp_path / "c").mkdir(mode=0o755)  # as an earlier version left it
        spool = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
        assert spool.append(SpoolBatch("{cur}_option_quotes", "BTC", [tuple(quote(1))]))
        spool.seal()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    files = list((tmp_path / "c").iterdir())
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]
