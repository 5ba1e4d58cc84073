"""The printed table (and `--json`): every figure of issue 7, "n/a (why)" where it could not be
measured. `figures()` is the complete list, in order; the test checks it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.run import (
    CURRENCY,
    LAG_RATE,
    PRODUCTION_SNAPSHOT_INTERVAL_S,
    TABLES,
    Results,
)
from bench.steps import StepResult
from bench.storage import MONTH_DAYS, per_day_bytes

SIZING_CURRENCIES = 2  # BTC + ETH; the market model gives both the same chain
QUOTES, TRADES, DEPTH = TABLES
SHORT = {QUOTES: "quotes", TRADES: "trades", DEPTH: "depth"}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | None
    unit: str
    target: str = ""
    note: str = ""  # why the value is missing, or how it was obtained
    required: bool = True  # False: only exists in some runs (e.g. when the collector fell behind)

    @property
    def finite(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @property
    def verdict(self) -> str:
        """ "met" or "missed" against `target` ("<= 12", ">= 40,000"); "n/a" when the figure
        could not be measured here (the note says why); "" when it has no target."""
        if not self.target:
            return ""
        if not self.finite:
            return "n/a"
        op, bound_text = self.target.split(maxsplit=1)
        bound = float(bound_text.replace(",", ""))
        assert self.value is not None
        met = self.value >= bound if op == ">=" else self.value <= bound
        return "met" if met else "missed"


def missed(figs: list[Figure]) -> list[Figure]:
    """The figures that have a target and did not meet it (`benchmark --check` fails on them)."""
    return [f for f in figs if f.verdict == "missed"]


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def sustained(res: Results) -> tuple[float, StepResult] | None:
    """The highest offered rate the collector kept up with."""
    ok = [(r, s) for r, s in res.steps if not s.behind]
    return ok[-1] if ok else None


def saturated(res: Results) -> tuple[float, StepResult] | None:
    behind = [(r, s) for r, s in res.steps if s.behind]
    return behind[0] if behind else None


def at_rate(res: Results, rate: float) -> StepResult | None:
    return next((s for r, s in res.steps if r == rate), None)


def figures(res: Results) -> list[Figure]:
    out: list[Figure] = []
    add = out.append
    no_collector = "collector not measured" if not res.steps else ""
    best = sustained(res)
    sat = saturated(res)
    best_step = best[1] if best else None
    why_best = no_collector or ("" if best else "behind at every offered rate")
    top = f" at {best[0]:,.0f} offered" if best else ""
    add(
        Figure(
            "sustained_msgs_s",
            "sustained messages/s" + top,
            # behind at every offered rate: nothing was sustained (a miss, not a gap)
            _v(best_step, "committed_msgs_s") if best_step or not res.steps else 0.0,
            "msg/s",
            ">= 40,000",
            why_best,
        )
    )
    add(
        Figure(
            "sustained_rows_s",
            "sustained rows/s (all tables)",
            best_step.total_rows_s if best_step else None,
            "row/s",
            "",
            why_best,
        )
    )
    for table in TABLES:
        add(
            Figure(
                f"sustained_rows_s.{SHORT[table]}",
                f"  rows/s {table}",
                best_step.rows_s.get(table, 0.0) if best_step else None,
                "row/s",
                "",
                why_best,
            )
        )
    if sat:
        add(
            Figure(
                "saturated_msgs_s",
                f"committed messages/s when behind ({sat[0]:,.0f} offered)",
                sat[1].committed_msgs_s,
                "msg/s",
                "",
                "; ".join(sat[1].reasons),
            )
        )
    else:
        add(
            Figure(
                "saturated_msgs_s",
                "committed messages/s when behind",
                None,
                "msg/s",
                "",
                no_collector or "did not fall behind up to the highest offered rate",
                required=False,
            )
        )
    add(
        Figure(
            "collector_us_per_msg",
            "collector CPU per message" + top,
            _v(best_step, "collector_us_per_msg"),
            "us",
            "<= 12",
            why_best,
        )
    )
    add(
        Figure(
            "db_us_per_row",
            "database CPU per row" + top,
            _v(best_step, "db_us_per_row"),
            "us",
            "<= 6",
            why_best or _db_note(res),
        )
    )
    rss = res.peak_rss_bytes / 1e6 if res.peak_rss_bytes else None
    add(
        Figure(
            "peak_rss_mb",
            f"collector peak RSS ({res.meta.get('options', '?')} options)",
            rss,
            "MB",
            "<= 150",
            no_collector,
        )
    )
    lag_rate = float(res.meta.get("lag_rate", LAG_RATE))
    lag5 = at_rate(res, lag_rate)
    why5 = no_collector or ("" if lag5 else f"fell behind below {lag_rate:,.0f} msg/s")
    for q, target in (("p50", ""), ("p99", "<= 0.5"), ("max", "")):
        add(
            Figure(
                f"lag_fixed.{q}",
                f"lag {q} at {lag_rate:,.0f} msg/s",
                lag5.lag[f"{q}_s"] if lag5 else None,
                "s",
                target,
                why5,
            )
        )
    for q in ("p50", "p99", "max"):
        add(
            Figure(
                f"lag_sustained.{q}",
                f"lag {q}" + top,
                best_step.lag[f"{q}_s"] if best_step else None,
                "s",
                "",
                why_best,
            )
        )
    for table in TABLES:
        rate = res.copy.get(table)
        why_copy = "" if res.copy else "failed"
        add(
            Figure(
                f"copy_rows_s.{SHORT[table]}",
                f"raw binary COPY rows/s {table}",
                rate.rows_s if rate else None,
                "row/s",
                "",
                why_copy,
            )
        )
        add(
            Figure(
                f"copy_db_us_per_row.{SHORT[table]}",
                "  database CPU per row of that COPY",
                rate.db_us_per_row if rate else None,
                "us",
                "",
                why_copy or ("" if rate and rate.db_us_per_row is not None else _db_note(res)),
            )
        )
    add(
        Figure(
            "drain_msgs_s",
            "bare websockets+orjson client drains",
            res.drain_msgs_s,
            "msg/s",
            "",
            "" if res.drain_msgs_s else "failed",
        )
    )
    msgs = _v(best_step, "committed_msgs_s")
    add(
        Figure(
            "ratio_drain",
            "collector messages/s / bare client",
            _ratio(msgs, res.drain_msgs_s),
            "x",
            "",
            why_best,
        )
    )
    quotes_rows = best_step.rows_s.get(QUOTES) if best_step else None
    add(
        Figure(
            "ratio_copy",
            "collector quote rows/s / raw COPY",
            _ratio(quotes_rows, res.copy[QUOTES].rows_s if QUOTES in res.copy else None),
            "x",
            "",
            why_best,
        )
    )
    out.extend(_storage_figures(res))
    return out


def _storage_figures(res: Results) -> list[Figure]:
    out = []
    by_table = {s.table: s for s in res.storage}
    mix_rows = res.mix.get("rows_s", {})
    options = res.meta.get("options") or 0
    total_day: float | None = 0.0
    for table in TABLES:
        s = by_table.get(table)
        name = SHORT[table]
        why = "" if s else "storage not measured"
        before = s.bytes_per_row if s else None
        after = s.compressed_bytes_per_row if s else None
        note_after = (s.note if s and after is None else why) or ""
        target = "<= 20" if table == QUOTES else ""
        out.append(
            Figure(
                f"bytes_per_row.{name}",
                f"{table} bytes/row uncompressed",
                before,
                "B",
                "",
                why or (s.note if s and before is None else s.basis if s else ""),
            )
        )
        out.append(
            Figure(
                f"compressed_bytes_per_row.{name}",
                f"{table} bytes/row compressed",
                after,
                "B",
                target,
                note_after,
            )
        )
        out.append(
            Figure(
                f"compression_ratio.{name}",
                f"{table} compression ratio",
                s.ratio if s else None,
                "x",
                "",
                note_after,
            )
        )
        if table == DEPTH:
            rate = options / PRODUCTION_SNAPSHOT_INTERVAL_S if options else None
            how = f"{options} options every {PRODUCTION_SNAPSHOT_INTERVAL_S:.0f} s"
        else:
            rate = mix_rows.get(table) if mix_rows else None
            model = f"market model alone, {res.meta.get('book_rate_hz')} book changes/s"
            how = f"measured, {model}" if rate is not None else "mix not measured"
        per_row = after if after is not None else before
        day = None
        if rate is not None and per_row is not None:
            day = per_day_bytes(rate, per_row, SIZING_CURRENCIES)
        basis = "compressed" if after is not None else "uncompressed"
        out.append(
            Figure(
                f"rows_per_s.{name}",
                f"{table} rows/s per currency (sizing mix)",
                rate,
                "row/s",
                "",
                how,
            )
        )
        out.append(
            Figure(
                f"gb_per_day.{name}",
                f"{name}: BTC+ETH per day ({basis})",
                day / 1e9 if day is not None else None,
                "GB",
                "",
                "",
            )
        )
        out.append(
            Figure(
                f"gb_per_month.{name}",
                f"{name}: BTC+ETH per {MONTH_DAYS}-day month",
                day * MONTH_DAYS / 1e9 if day is not None else None,
                "GB",
                "",
                "",
            )
        )
        total_day = None if day is None or total_day is None else total_day + day
    out.append(
        Figure(
            "gb_per_day.total",
            "total BTC+ETH per day",
            total_day / 1e9 if total_day is not None else None,
            "GB",
            "",
            "",
        )
    )
    out.append(
        Figure(
            "gb_per_month.total",
            f"total BTC+ETH per {MONTH_DAYS}-day month",
            total_day * MONTH_DAYS / 1e9 if total_day is not None else None,
            "GB",
        )
    )
    quotes = by_table.get(QUOTES)
    per_row = None
    if quotes is not None:
        per_row = quotes.compressed_bytes_per_row or quotes.bytes_per_row
    out.append(
        Figure(
            "gb_per_month.per_100_quotes_s",
            f"per 100 quote rows/s, one currency, per {MONTH_DAYS}-day month",
            per_day_bytes(100.0, per_row, 1) * MONTH_DAYS / 1e9 if per_row else None,
            "GB",
            "",
            "scale to your market's quote rate",
        )
    )
    return out


def _v(step: StepResult | None, attr: str) -> float | None:
    return _finite(getattr(step, attr)) if step is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _db_note(res: Results) -> str:
    return next((m for m in res.missing if m.startswith("database CPU")), "")


def _fmt(x: float | None, unit: str) -> str:
    if x is None or not math.isfinite(x):
        return ""
    if unit in ("s", "x"):
        return f"{x:,.3f}" if unit == "s" else f"{x:,.2f}"
    if unit == "GB" and abs(x) < 10:
        return f"{x:,.3f}"
    if unit in ("us", "B", "MB", "GB") or abs(x) < 100:
        return f"{x:,.1f}"
    return f"{x:,.0f}"


def render_steps(res: Results) -> list[str]:
    head = (f"{'offered':>9} {'sent':>9} {'committed':>9} {'quotes/s':>9} {'trades/s':>8} "
            f"{'depth/s':>7} {'coll us':>7} {'db us':>6} {'lag p50':>7} {'p99':>6} {'max':>6}  "
            "status")  # fmt: skip
    lines = ["Ramp (msgs/s offered as extra quotes on top of the market model):", head]
    for rate, s in res.steps:
        status = "ok" if not s.behind else "BEHIND: " + "; ".join(s.reasons)
        cells = [
            _fmt(rate, ""), _fmt(s.sent_msgs_s, ""), _fmt(s.committed_msgs_s, ""),
            _fmt(s.rows_s.get(QUOTES, 0.0), ""), _fmt(s.rows_s.get(TRADES, 0.0), ""),
            _fmt(s.rows_s.get(DEPTH, 0.0), ""), _fmt(s.collector_us_per_msg, "us"),
            _fmt(s.db_us_per_row, "us"), _fmt(s.lag["p50_s"], "s"), _fmt(s.lag["p99_s"], "s"),
            _fmt(s.lag["max_s"], "s"),
        ]  # fmt: skip
        widths = (9, 9, 9, 9, 8, 7, 7, 6, 7, 6, 6)
        lines.append(
            " ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + "  " + status
        )
    if not res.steps:
        lines.append("  (no steps: the collector was not measured)")
    return lines


def render_text(res: Results) -> str:
    m = res.meta
    lines = [
        f"chaintape benchmark ({'quick' if m.get('quick') else 'full'}): {CURRENCY} full chain of "
        f"{m.get('options', '?')} options, {m.get('cpus', '?')} CPUs, TimescaleDB "
        f"{m.get('edition', '?')} edition, FLUSH_INTERVAL_MS={m.get('flush_interval_ms')}, "
        f"{m.get('elapsed_s', 0):.0f} s, load average {m.get('loadavg_start')} at start, "
        f"{m.get('loadavg_end')} at end"
        + ("" if m.get("quote_ivs", True) else ", WITHOUT the quote IVs (--without-ivs)"),
        "",
        *render_steps(res),
        "",
        f"{'figure':<58} {'value':>12} {'unit':<6} {'target':<10} {'verdict':<7} note",
    ]
    figs = figures(res)
    for f in figs:
        value = _fmt(f.value, f.unit) if f.finite else "n/a"
        lines.append(
            f"{f.label:<58} {value:>12} {f.unit:<6} {f.target:<10} {f.verdict:<7} {f.note}".rstrip()
        )
    targeted = [f for f in figs if f.target]
    bad = missed(figs)
    lines += [
        "",
        f"targets: {sum(f.verdict == 'met' for f in targeted)} met, {len(bad)} missed, "
        f"{sum(f.verdict == 'n/a' for f in targeted)} not measured here"
        + (f" (missed: {', '.join(f.key for f in bad)})" if bad else ""),
    ]
    if res.missing:
        lines += ["", "Could not measure:", *(f"  - {m}" for m in res.missing)]
    return "\n".join(lines)


def to_json(res: Results) -> dict[str, Any]:
    return {
        "meta": res.meta,
        "mix": res.mix,
        "steps": [
            {"target_msgs_s": rate, **{k: v for k, v in vars(s).items()}} for rate, s in res.steps
        ],
        "figures": [
            {
                "key": f.key,
                "label": f.label,
                "value": f.value if f.finite else None,
                "unit": f.unit,
                "target": f.target,
                "verdict": f.verdict,
                "note": f.note,
                "required": f.required,
            }
            for f in figures(res)
        ],
        "missing": res.missing,
    }
