"""The spool's frame format and segment handling, on real files (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.storage.spool import (
    HEADER_SIZE,
    Spool,
    SpoolBatch,
    SpoolLockedError,
    encode_frame,
    read_frames,
)
from tests.support.writer_db import book, quote


def _batch(start: int, n: int = 3) -> SpoolBatch:
    return SpoolBatch(
        "{cur}_option_quotes", "BTC", [tuple(quote(i)) for i in range(start, start + n)]
    )


def test_frame_round_trips_rows_exactly() -> None:
    batch = SpoolBatch("{cur}_option_orderbook_depth", "ETH", [tuple(book(1)), tuple(book(2))])
    frames, leftover = read_frames(encode_frame(7, batch) + encode_frame(8, _batch(0)))
    assert leftover == 0
    assert frames == [(7, batch), (8, _batch(0))]


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 5, -1])
def test_truncated_frame_is_not_decoded(cut: int) -> None:
    good = encode_frame(1, _batch(0))
    torn = encode_frame(2, _batch(10))[:cut]
    frames, leftover = read_frames(good + torn)
    assert [seq for seq, _ in frames] == [1]
    assert leftover == len(torn)


def test_flipped_bit_fails_the_crc() -> None:
    data = bytearray(encode_frame(1, _batch(0)))
    data[-3] ^= 0x10
    frames, leftover = read_frames(bytes(data))
    assert frames == [] and leftover == len(data)


def _replay_all(spool: Spool) -> list[tuple[int, int, SpoolBatch]]:
    """What a replay reads: every sealed segment in order, each removed once read."""
    seen: list[tuple[int, int, SpoolBatch]] = []
    for segment in spool.segments():
        seen.extend((segment, seq, b) for seq, b in spool.read_segment(segment))
        spool.remove_segment(segment)
    return seen


def test_segments_rotate_and_replay_in_append_order(tmp_path: Path) -> None:
    frame_len = len(encode_frame(1, _batch(0)))
    spool = Spool(
        tmp_path, max_bytes=1 << 20, collector_name="c", segment_max_bytes=int(frame_len * 3.5)
    )
    batches = [_batch(i * 3) for i in range(10)]
    assert all(spool.append(b) for b in batches)
    spool.seal()
    assert len(spool.segments()) == 4  # 3 + 3 + 3 + 1
    assert spool.bytes_used == sum(len(encode_frame(1, b)) for b in batches)
    seen = _replay_all(spool)
    assert [b for _, _, b in seen] == batches
    assert spool.is_empty and spool.bytes_used == 0 and not list((tmp_path / "c").glob("seg-*"))


def test_full_spool_refuses_until_a_segment_is_replayed(tmp_path: Path) -> None:
    frame_len = len(encode_frame(1, _batch(0)))
    spool = Spool(tmp_path, max_bytes=frame_len * 2 + 10, collector_name="c")
    assert spool.append(_batch(0)) and spool.append(_batch(3))
    assert not spool.append(_batch(6))
    assert spool.full
    spool.seal()
    _replay_all(spool)
    assert not spool.full and spool.append(_batch(9))


def test_torn_tail_left_by_a_crash_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    spool.append(_batch(0))
    spool.append(_batch(3))
    spool.close()
    (path,) = (tmp_path / "c").glob("seg-*.spool")
    with path.open("ab") as f:
        f.write(encode_frame(3, _batch(6))[:40])
    reopened = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    seen = _replay_all(reopened)
    assert [b for _, _, b in seen] == [_batch(0), _batch(3)]
    assert reopened.torn_frames == 1 and reopened.torn_bytes == 40


def test_a_reopened_spool_never_appends_to_an_old_segment(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    first.append(_batch(0))
    first.close()
    second = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    old = second.segments()
    second.append(_batch(3))
    second.seal()
    assert len(second.segments()) == 2 and second.segments()[0] == old[0]
    assert second.segments()[1] > old[0]


def test_one_process_per_spool(tmp_path: Path) -> None:
    held = Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    with pytest.raises(SpoolLockedError):
        Spool(tmp_path, max_bytes=1 << 20, collector_name="c")
    held.close()
    Spool(tmp_path, max_bytes=1 << 20, collector_name="c").close()
