"""Order books: REST and grouped snapshots, incremental messages, and prev_change_id chains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.models import BookSnapshotRow
from scripts.normalize import books
from scripts.normalize.books import BookChain, BookMessage, parse_book_message, parse_order_book
from scripts.normalize.common import MalformedMessage

RECV = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def data_of(shared_data: Path, stem: str) -> list[Any]:
    out = []
    for ln in (shared_data / f"{stem}.jsonl").read_text().splitlines():
        msg = orjson.loads(ln)
        out.append(msg["result"] if "result" in msg else msg["params"]["data"])
    return out


def at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def cf_ws_stream(shared_data: Path) -> list[BookMessage]:
    """The CF_WS session in receive order: snapshots (lines 2-5), then changes (lines 2-32)."""
    snaps = data_of(shared_data, "ws_book_snapshot")[1:5]
    changes = data_of(shared_data, "ws_book_change")[1:32]
    return [parse_book_message(d) for d in [*snaps, *changes]]


def test_snapshot_message_fields(shared_data: Path) -> None:
    msg = parse_book_message(data_of(shared_data, "ws_book_snapshot")[2])
    assert msg == BookMessage(
        "BTC-25MAR22-30000-C",
        1626993721928,
        "snapshot",
        33195873383,
        None,
        [("new", 0.274, 8.0), ("new", 0.1055, 10.0), ("new", 0.001, 5.0), ("new", 0.0005, 0.2)],
        [("new", 0.316, 8.0)],
    )


def test_every_book_message(shared_data: Path) -> None:
    snaps = [parse_book_message(d) for d in data_of(shared_data, "ws_book_snapshot")]
    assert [m.kind for m in snaps] == ["snapshot"] * 10
    assert snaps[1].bids == [] and len(snaps[1].asks) == 4  # one-sided snapshot
    assert (
        snaps[5].instrument_name == "ETH-PERPETUAL" and snaps[5].prev_change_id is None
    )  # 2019 format
    assert snaps[6].prev_change_id == 20 and snaps[6].asks == []  # LINK: snapshot by `type`
    assert snaps[9].bids[0] == ("new", 2772.65, 2700.0)
    changes = [parse_book_message(d) for d in data_of(shared_data, "ws_book_change")]
    assert [m.kind for m in changes] == ["change"] * 36
    assert changes[0].bids == [("delete", 5041.94, 0.0), ("delete", 5042.34, 0.0)]
    assert (changes[0].change_id, changes[0].prev_change_id) == (297218, 297217)
    assert changes[32].instrument_name == "ETH-PERPETUAL"  # 2019 change without `type`
    assert changes[32].asks == [("change", 219.2, 64903.0), ("change", 219.1, 19343.0)]
    assert changes[33].prev_change_id == 0
    assert changes[35].asks == [("change", 228.58, 91.89)]
    for d in [*data_of(shared_data, "ws_book_snapshot"), *data_of(shared_data, "ws_book_change")]:
        assert books.unknown_fields("book", d) == frozenset()


def test_recorded_chains_are_whole(shared_data: Path) -> None:
    chain = BookChain()
    verdicts = [chain.observe(m) for m in cf_ws_stream(shared_data)]
    assert verdicts == ["snapshot"] * 4 + ["ok"] * 31
    assert chain.last_change_id("BTC-24SEP21-34000-P") == 33195897416
    assert chain.is_synced("BTC-24SEP21-8000-P") and chain.is_synced("BTC-24SEP21-34000-P")
    assert not chain.is_synced("BTC-PERPETUAL")


def test_one_dropped_message_is_one_gap(shared_data: Path) -> None:
    stream = cf_ws_stream(shared_data)
    dropped = stream[4 + 10]  # a BTC-24SEP21-8000-P change in the middle of its chain
    chain = BookChain()
    verdicts = [chain.observe(m) for m in stream if m is not dropped]
    assert verdicts.count("gap") == 1 and verdicts.count("ok") == 29
    assert not chain.is_synced("BTC-24SEP21-8000-P")
    assert chain.is_synced("BTC-24SEP21-34000-P")
    chain.observe(stream[2])  # a new snapshot restarts the chain
    assert chain.is_synced("BTC-24SEP21-8000-P")


def test_prev_change_id_must_equal_never_plus_one() -> None:
    def msg(kind: str, change_id: int, prev: int | None) -> BookMessage:
        return BookMessage("X", 1, kind, change_id, prev, [], [])  # type: ignore[arg-type]

    chain = BookChain()
    assert chain.observe(msg("change", 11, 10)) == "gap"  # no snapshot yet
    assert chain.observe(msg("snapshot", 100, None)) == "snapshot"
    assert chain.observe(msg("change", 101, 100)) == "ok"
    assert chain.observe(msg("change", 102, 100)) == "gap"  # 100 is not the last id (101)
    assert chain.observe(msg("change", 500, 102)) == "ok"  # ids jump: shared across instruments
    assert chain.observe(msg("change", 501, 0)) == "gap"  # prev_change_id 0
    chain.reset()
    assert chain.last_change_id("X") is None


def test_prev_change_id_zero_in_recorded_message(shared_data: Path) -> None:
    msg = parse_book_message(data_of(shared_data, "ws_book_change")[33])
    chain = BookChain()
    chain.observe(msg._replace(kind="snapshot", change_id=0, prev_change_id=None))
    assert chain.observe(msg) == "gap"


def test_rest_order_book_option(shared_data: Path) -> None:
    row = parse_order_book(
        data_of(shared_data, "rest_get_order_book")[2], received_at=RECV, depth=2
    )
    assert row == BookSnapshotRow(
        at_ms(1654247489923),
        "ETH-24JUN22-1600-P",
        24460060432,
        [0.033, 0.0325],
        [226.0, 797.0],
        [0.034, 0.0345],
        [595.0, 779.0],
        0.0336,
        86.54,
        85.74,
        87.07,
        1806.5,
        15009.0,
        RECV,
    )


def test_every_rest_order_book(shared_data: Path) -> None:
    results = data_of(shared_data, "rest_get_order_book")
    rows = [parse_order_book(r, received_at=RECV, depth=10) for r in results]
    assert rows[0].ask_prices == [] and rows[0].bid_prices == [3955.75, 3940.75, 3423.0]
    assert rows[0].mark_iv is None and rows[0].open_interest == 45.27600333464605
    assert rows[1].instrument_name == "BTC-30SEP22" and rows[1].ask_amounts == [
        3000.0,
        29470.0,
        1380.0,
    ]
    assert (
        len(rows[3].bid_prices) == 10
        and rows[3].bid_prices[0] == 87002.5
        and rows[3].ask_prices[-1] == 87021.0
    )
    assert rows[3].change_id == 133112427566
    full = parse_order_book(results[3], received_at=RECV, depth=1000)
    assert len(full.bid_prices) == len(full.ask_prices) == 20
    for r in results:
        assert books.unknown_fields("order_book", r) == frozenset()


def test_grouped_book_notifications(shared_data: Path) -> None:
    rows = [
        parse_order_book(d, received_at=RECV, depth=20)
        for d in data_of(shared_data, "ws_book_grouped")
    ]
    assert (rows[0].instrument_name, rows[0].bid_prices, rows[0].ask_amounts) == (
        "ETH-PERPETUAL",
        [160.0],
        [20.0],
    )
    assert rows[2].bid_prices == [0.011, 0.0105, 0.01] and rows[2].mark_price is None
    assert rows[3].timestamp == at_ms(1769246173071) and len(rows[3].ask_prices) == 10


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"bids": [["new", 1.0]]}, "bids: a level is not [action, price, amount]"),
        ({"asks": [["add", 1.0, 2.0]]}, "asks: unknown action"),
        ({"asks": [[["new"], 1.0, 2.0]]}, "asks: unknown action"),
        ({"asks": [["new", "1.0", 2.0]]}, "asks.price: expected a number"),
        ({"bids": [["new", 1.0, -2.0]]}, "bids.amount: negative"),
        ({"bids": {"new": 1}}, "bids: expected an array"),
        ({"type": "delta"}, "book: unknown type"),
        ({"type": "change", "prev_change_id": None}, "book: change without prev_change_id"),
        ({"change_id": "5"}, "change_id: expected an integer"),
    ],
)
def test_bad_book_messages(shared_data: Path, change: dict[str, Any], reason: str) -> None:
    data = {**data_of(shared_data, "ws_book_snapshot")[0], **change}
    with pytest.raises(MalformedMessage) as info:
        parse_book_message(data)
    assert reason in info.value.reason


def test_bad_order_books(shared_data: Path) -> None:
    base = data_of(shared_data, "rest_get_order_book")[2]
    with pytest.raises(MalformedMessage, match="bids: a level is not"):
        parse_order_book({**base, "bids": [["new", 1.0, 2.0]]}, received_at=RECV, depth=5)
    with pytest.raises(MalformedMessage, match="missing field 'asks'"):
        parse_order_book({k: v for k, v in base.items() if k != "asks"}, received_at=RECV, depth=5)
    with pytest.raises(MalformedMessage, match="mark_iv"):
        parse_order_book({**base, "mark_iv": "86"}, received_at=RECV, depth=5)
    with pytest.raises(ValueError):
        parse_order_book(base, received_at=RECV, depth=0)
