"""The status line: per-table rates over the interval and totals, lag percentiles of the
interval's samples, and the other counters, from a real WriterStatus."""

from __future__ import annotations

from scripts.status_log import LagSamples, StatusLine, credits_used, percentile
from scripts.storage.status import WriterStatus


def test_status_line_rates_totals_lag_and_counters() -> None:
    st = WriterStatus("ws-btc", "BTC", "test")
    st.set_connected(True)
    st.db_ok = True
    lag = LagSamples()
    calls = {"get_order_book": 10, "get_instruments": 1}
    line = StatusLine("ws-btc", st, rest_calls=[calls], lag=lag, open_gaps=lambda: 2)
    st.note_rows("btc_option_quotes", 600)
    st.note_reconnect()
    st.spool_bytes = 1234
    for ms in range(1, 101):
        lag.add(ms / 1000)
    text = line.render(now=line._prev_at + 60.0)
    assert text.startswith("status ws-btc: btc_option_quotes 10.0 rows/s (600 total)")
    assert "lag p50 0.05 s p99 0.10 s" in text
    assert "reconnects 1; open gaps 2; gaps recorded 0; spool 1,234 B" in text
    assert "REST 11 requests, 15,000 credits used; db ok" in text
    # the next interval: rates over it only, lag samples of it only
    st.note_rows("btc_option_quotes", 30)
    st.db_ok = False
    text = line.render(now=line._prev_at + 30.0)
    assert "btc_option_quotes 1.0 rows/s (630 total)" in text
    assert "lag n/a (no messages)" in text and text.endswith("db down: spooling")


def test_percentile_and_credits() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0
    assert credits_used({"get_instruments": 2, "ticker": 3}) == 2 * 10_000 + 3 * 500
