"""The data-quality report as one self-contained HTML file: tables and inline SVG plots
(matplotlib), no script, stylesheet or font from the network.

A day is "complete" when every hour has quotes for at least COMPLETE_SHARE of the options quoted
that day, no gap overlapping it is left unrepaired, and option bars agree with the trades.
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

from scripts.research.report_data import CurrencyReport, ReportData

COMPLETE_SHARE = 0.95
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.ok{background:#d9f2d9}.bad{background:#f8d7d7}
.note{color:#666;font-size:12px}figure{margin:8px 0}
"""


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _table(df: pd.DataFrame, *, index_name: str = "day") -> str:
    if df.empty:
        return '<p class="note">no rows</p>'
    head = f'<th class="l">{html.escape(index_name)}</th>' + "".join(
        f"<th>{html.escape(str(c))}</th>" for c in df.columns
    )
    body = []
    for idx, row in df.iterrows():
        label = idx.strftime("%Y-%m-%d") if isinstance(idx, pd.Timestamp) else str(idx)
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in row)
        body.append(f'<tr><td class="l">{html.escape(label)}</td>{cells}</tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape(str(value))


def _coverage_plot(cov: pd.DataFrame, currency: str) -> str:
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(cov) + 1.2))
    im = ax.imshow(cov.to_numpy(), aspect="auto", vmin=0, vmax=1, cmap="RdYlGn")
    ax.set_yticks(range(len(cov)), [d.strftime("%Y-%m-%d") for d in cov.index])
    ax.set_xticks(range(24), [str(h) for h in range(24)])
    ax.set_xlabel("hour (UTC)")
    ax.set_title(f"{currency}: share of the day's options with quotes, per hour")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _svg(fig)


def _rows_plot(per_hour: pd.DataFrame, currency: str) -> str:
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for col in per_hour.columns:
        ax.plot(per_hour.index, per_hour[col], label=col, linewidth=1)
    ax.set_yscale("symlog")
    ax.set_title(f"{currency}: rows per hour")
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return _svg(fig)


def _gaps_plot(gaps: pd.DataFrame, start: datetime, end: datetime, currency: str) -> str:
    fig, ax = plt.subplots(figsize=(10, 0.3 * max(len(gaps), 1) + 1.5))
    labels = []
    lo_all, hi_all = pd.Timestamp(start), pd.Timestamp(end)
    starts = pd.to_datetime(gaps["gap_start"], utc=True)
    ends = pd.to_datetime(gaps["gap_end"], utc=True)
    for i in range(len(gaps)):
        lo = max(starts.iloc[i], lo_all)
        hi = hi_all if pd.isna(ends.iloc[i]) else min(ends.iloc[i], hi_all)
        color = "#4a9" if bool(gaps["repaired"].iloc[i]) else "#d44"
        width = max((hi - lo).total_seconds() / 86400, 0.0)
        ax.barh(i, width, left=mdates.date2num(lo), color=color)
        labels.append(f"{gaps['table_name'].iloc[i]} {gaps['scope'].iloc[i]}"[:40])
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlim(mdates.date2num(pd.Timestamp(start)), mdates.date2num(pd.Timestamp(end)))
    ax.xaxis_date()
    ax.set_title(f"{currency}: gaps (red open, green repaired)")
    fig.autofmt_xdate()
    return _svg(fig)


def day_verdicts(rep: CurrencyReport) -> pd.DataFrame:
    days = sorted(set(rep.rows_per_day.index) | set(rep.coverage.index))
    out = []
    for day in days:
        hours_ok = (
            int((rep.coverage.loc[day] >= COMPLETE_SHARE).sum()) if day in rep.coverage.index else 0
        )
        day_end = day + pd.Timedelta(days=1)
        g = rep.gaps
        open_gaps = 0
        repaired = 0
        if not g.empty:
            ends = pd.to_datetime(g["gap_end"], utc=True).fillna(
                pd.Timestamp.max.tz_localize("UTC")
            )
            overlap = (pd.to_datetime(g["gap_start"], utc=True) < day_end) & (ends > day)
            open_gaps = int((overlap & ~g["repaired"].astype(bool)).sum())
            repaired = int((overlap & g["repaired"].astype(bool)).sum())
        mismatched = 0
        if not rep.volume_check.empty and day in rep.volume_check.index:
            mismatched = int(rep.volume_check.loc[day, "mismatched"])
        complete = hours_ok == 24 and open_gaps == 0 and mismatched == 0
        out.append(
            {
                "day": day,
                "hours with quotes": hours_ok,
                "open gaps": open_gaps,
                "repaired gaps": repaired,
                "bar/trade mismatched minutes": mismatched,
                "complete": "yes" if complete else "no",
            }
        )
    return pd.DataFrame(out).set_index("day") if out else pd.DataFrame()


def render(data: ReportData) -> str:
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>chaintape data quality</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>chaintape data-quality report</h1>",
        f"<p>{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC, made {made}. "
        f"A day is complete when every hour has quotes for at least {COMPLETE_SHARE:.0%} of the "
        "options quoted that day, no gap over it is open, and option bars agree with trades.</p>",
    ]
    for rep in data.currencies:
        verdicts = day_verdicts(rep)
        parts.append(f"<h2 id='{rep.currency}'>{rep.currency}</h2>")
        if not verdicts.empty:
            rows = []
            for day, v in verdicts.iterrows():
                cls = "ok" if v["complete"] == "yes" else "bad"
                cells = "".join(f"<td>{_fmt(x)}</td>" for x in v.iloc[:-1])
                rows.append(
                    f"<tr><td class='l'>{day:%Y-%m-%d}</td>{cells}"
                    f"<td class='{cls}'>{v['complete']}</td></tr>"
                )
            head = "".join(f"<th>{html.escape(c)}</th>" for c in verdicts.columns)
            parts.append(f"<table><tr><th class='l'>day</th>{head}</tr>{''.join(rows)}</table>")
        per_table = rep.rows_per_day.T
        per_table.columns = [pd.Timestamp(d).strftime("%Y-%m-%d") for d in per_table.columns]
        parts.append("<h3>Rows per table and day</h3>" + _table(per_table, index_name="table"))
        if not rep.coverage.empty:
            parts.append("<h3>Quote coverage per hour</h3><figure>")
            parts.append(_coverage_plot(rep.coverage, rep.currency) + "</figure>")
        if not rep.rows_per_hour.empty:
            parts.append("<h3>Rows per hour</h3><figure>")
            parts.append(_rows_plot(rep.rows_per_hour, rep.currency) + "</figure>")
        n_open = int((~rep.gaps["repaired"].astype(bool)).sum()) if not rep.gaps.empty else 0
        parts.append(f"<h3>Gaps</h3><p>{len(rep.gaps)} overlapping the range, {n_open} open.</p>")
        if not rep.gaps.empty:
            parts.append(
                "<figure>" + _gaps_plot(rep.gaps, data.start, data.end, rep.currency) + "</figure>"
            )
            shown = rep.gaps.assign(repaired=rep.gaps["repaired"].map({True: "yes", False: "no"}))
            parts.append(_table(shown.set_index("table_name"), index_name="table"))
        parts.append("<h3>options_ohlcv against trades</h3>" + _table(rep.volume_check))
    parts.append("<h2>Rejected messages</h2>")
    rej = data.rejected_per_day
    parts.append(_table(rej.set_index("day") if not rej.empty else rej))
    # Marks the page rendered once loaded: a headless browser's test reads it back.
    parts.append(
        "<script>window.addEventListener('load',function(){"
        "document.documentElement.setAttribute('data-rendered','ok');});</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
