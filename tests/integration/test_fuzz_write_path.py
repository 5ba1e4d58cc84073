"""Bad input through the whole parse and write path: mutated real Deribit messages and random
frames go over a real WebSocket into the running collector (its WS client, `parse_frame`, the
router, the normalizers, the writer) and into the real database.

Nothing may crash or stop the collector; every rejection is counted (the router's `Rejects`,
`collector_status.rejected_total`) and kept in `rejected_messages`, traceable to the frame it
came from; the market's valid frames, sent in between, still land exactly. The mutations are
drawn from a seeded RNG (bounded, repeatable, a few seconds); `tests/unit/test_fuzz_parsers.py`
covers the parsers alone with Hypothesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from scripts.config import load_settings
from scripts.deribit.protocol import MalformedFrame, Notification, parse_frame
from scripts.storage.migrate import apply_settings_schema
from tests.support.realtime import (
    assert_trades_exact,
    collector_env,
    db_quotes,
    hour_market,
    query,
    sent_quotes,
    start_collector,
    stop_collector,
    wait_for,
)
from tests.unit.test_fuzz_parsers import REPLACEMENTS

SEED = 20260601
FRAMES = 600
# Notifications the real-time collector subscribes to (and two it never asked for).
SOURCES = (
    "ws_quote",
    "ws_trades",
    "ws_trades_by_kind",
    "ws_ticker_option",
    "ws_markprice_options",
    "ws_instrument_state",
    "ws_book_change",
    "ws_price_index",
)


def load_messages(shared_data: Path) -> list[str]:
    """The recorded notifications, moved to ETH (the collector's currency) so they reach its
    tables instead of being skipped as another currency's."""
    out = []
    for stem in SOURCES:
        for line in (shared_data / f"{stem}.jsonl").read_text().splitlines():
            out.append(line.replace("BTC", "ETH").replace("btc_usd", "eth_usd"))
    return out


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def mutate(rng: random.Random, line: str) -> str:
    """One frame: the message as recorded, structurally mutated, damaged as bytes, or random."""
    kind = rng.random()
    if kind < 0.15:
        return line
    if kind < 0.65:
        msg = orjson.loads(line)
        for _ in range(rng.randint(1, 3)):
            paths = _paths(msg)[1:]
            if not paths:
                break
            path = rng.choice(paths)
            parent = msg
            for key in path[:-1]:
                parent = parent[key]
            if rng.random() < 0.3:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
        # json (not orjson) writes NaN/Infinity and huge ints, as a broken exchange might.
        return json.dumps(msg)
    if kind < 0.9:
        raw = bytearray(line.encode())
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(max(len(raw), 1))
            op = rng.choice(("truncate", "flip", "insert", "delete"))
            if op == "truncate":
                del raw[i:]
            elif op == "flip" and raw:
                raw[i] = rng.randrange(32, 127)
            elif op == "insert":
                raw[i:i] = bytes(rng.randrange(32, 127) for _ in range(rng.randint(1, 8)))
            elif raw:
                del raw[i : i + rng.randint(1, 16)]
        return raw.decode()
    random_frames = [
        "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randint(0, 60))),
        json.dumps(rng.choice(REPLACEMENTS)),
        json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "subscription",
                "params": {
                    "channel": rng.choice(("quote.ETH-X", "trades.option.ETH.100ms", "zz.1", "")),
                    "data": copy.deepcopy(rng.choice(REPLACEMENTS)),
                },
            }
        ),
    ]
    return rng.choice(random_frames)


def kept_forms(text: str) -> set[str]:
    """What `rejected_messages.raw` holds for a rejection that came from frame `text`."""
    forms = {text}
    try:
        frame = parse_frame(text)
    except MalformedFrame:
        return forms
    if isinstance(frame, Notification):
        try:
            forms.add(orjson.dumps({"channel": frame.channel, "data": frame.data}).decode())
        except TypeError:
            forms.add(repr(frame.data))
        if isinstance(frame.data, list):  # a bad markprice element is kept alone
            for item in frame.data:
                with contextlib.suppress(TypeError):
                    forms.add(orjson.dumps({"channel": frame.channel, "data": item}).decode())
    return forms


async def test_mutated_and_random_frames_are_counted_kept_and_valid_ones_land(
    database_url: str,
    tmp_path: Path,
    shared_data: Path,
    fake_hour: Any,
) -> None:
    rng = random.Random(SEED)
    fake = await fake_hour(hour_market(listing_every_s=None))
    settings = load_settings(collector_env(fake, database_url, tmp_path / "spool"))
    await apply_settings_schema(settings)
    run = await start_collector(settings, fake)
    (session,) = list(fake.sessions)
    messages = load_messages(shared_data)

    frames = [mutate(rng, rng.choice(messages)) for _ in range(FRAMES)]
    for i, text in enumerate(frames):
        session.send(text.encode())  # raw, past the fake's bookkeeping: not in its ground truth
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # the market's own frames interleave
    malformed_sent = 0
    for text in frames:
        try:
            parse_frame(text)
        except MalformedFrame:
            malformed_sent += 1
    await asyncio.sleep(1.0)
    rejects = run.collector.rejects
    await wait_for(lambda: rejects.malformed_frames >= malformed_sent, 30, "frames read")
    await asyncio.sleep(1.0)
    cut_ms = int((fake.clock.now() - 10.0) * 1000)
    assert not run.task.done()  # nothing stopped the collector
    ws = run.collector.pool.stats()
    assert ws.callback_errors == 0  # no handler failed other than by a counted rejection
    assert run.collector.writer.status.reconnects == 0  # no frame broke the session either
    assert await stop_collector(run) == 0

    # Counted: every frame `parse_frame` refuses is one malformed frame, and every rejection
    # (malformed frames, refused notifications, rows the database refused) is in the status.
    assert rejects.malformed_frames == malformed_sent > 50
    assert rejects.rejected_messages > 50
    status = run.collector.writer.status
    kept = await query(database_url, "SELECT channel, reason, raw FROM rejected_messages")
    refused_by_db = [k for k in kept if k[1].startswith("database refused row")]
    # Each kind keeps at most MAX_KEPT_PER_KIND_PER_HOUR rows an hour; the rest are counted.
    kept_all = len(kept) + rejects.not_kept
    assert status.rejected_total == rejects.total + len(refused_by_db) == kept_all
    db_status = await query(
        database_url,
        "SELECT rejected_total, details -> 'bad_input' FROM collector_status "
        "WHERE collector_name = 'ws-eth'",
    )
    assert db_status[0][0] == kept_all
    assert db_status[0][1]["malformed_frames"] == rejects.malformed_frames
    assert db_status[0][1]["rejected_messages"] == rejects.rejected_messages
    # Kept: each row is one of the injected frames (as sent, or as the notification it held).
    forms = set().union(*(kept_forms(t) for t in frames))
    untraced = [k for k in kept if k not in refused_by_db and k[2] not in forms]
    assert untraced == []
    by_reason = Counter(k[1].split(":")[0] for k in kept)
    print(
        f"{FRAMES} frames: {rejects.malformed_frames} malformed, {rejects.rejected_messages} "
        f"refused, {len(refused_by_db)} refused by the database; reasons: {dict(by_reason)}"
    )

    # The valid frames landed: the market's quotes exactly, and its trades exactly ...
    start_ms = fake.market.config.start_ms
    stored_quotes = await db_quotes(database_url, cut_ms)
    assert +Counter({k: n for k, n in stored_quotes.items() if k[1] >= start_ms}) == sent_quotes(
        fake, cut_ms
    )
    await assert_trades_exact(
        database_url, fake, run.collector.repair_from_ms or 0, cut_ms, wait_s=5.0
    )
    # ... and so did the recorded ones sent unchanged (quotes keyed by instrument and time).
    stored = {
        (r[0], r[1])
        for r in await query(
            database_url,
            "SELECT instrument_name, (extract(epoch from timestamp) * 1000)::bigint "
            "FROM eth_option_quotes",
        )
    }
    unchanged = [orjson.loads(t) for t in frames if t in messages and t.startswith('{"jsonrpc"')]
    # Unchanged recorded quotes and option tickers: the options' land; the recorded quotes of
    # perpetuals are not options of the chain, so they are refused, never stored.
    unchanged_quotes = {
        (m["params"]["data"]["instrument_name"], m["params"]["data"].get("timestamp"))
        for m in unchanged
        if m["params"]["channel"].startswith(("quote.", "ticker."))
    }
    option_quotes = {
        q
        for q in unchanged_quotes
        if q[0].startswith("ETH-") and q[0].endswith(("-C", "-P")) and q[1]
    }
    other_quotes = {q for q in unchanged_quotes if not q[0].endswith(("-C", "-P"))}
    assert option_quotes and option_quotes <= stored
    assert other_quotes and not (other_quotes & stored)
