"""The landing page (``/``): what this exporter is, its endpoints, and each workspace's totals
and jobs (status, progress, failed pages, credits, last success) as the last reads saw them.

Self-contained HTML (inline CSS, no external assets, no script: the page works offline and
behind strict content-security policies). Everything that comes from the config or the API is
HTML-escaped. Rendering the page never calls the API: it shows what is in memory, which the
first read at start-up fills within seconds. It reloads itself (``<meta http-equiv=refresh>``)
every :data:`REFRESH_SECONDS` unless ``?refresh=0``; below a phone's width each job row
becomes a card.
"""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ..version import build_info

if TYPE_CHECKING:
    from ..collect import Exporter, TargetView, WorkspaceTotals

MAX_ROWS = 500
# The page reloads itself this often: the data under it changes when a scrape reads the API
# (Prometheus's usual interval is 15 s to 1 min, and api.min_refresh_interval holds jobs
# longer), so a faster reload would show nothing new; a slower one would leave a wall screen
# behind by more than a scrape.
REFRESH_SECONDS = 30
MIN_REFRESH_SECONDS = 5
MAX_REFRESH_SECONDS = 3600
CREDITS_PER_USD = 1000  # Convocore bills 1,000 credits as 1 USD
STATUS_ORDER = ("processing", "queued", "completed", "failed", "cancelled")
COLUMNS = 8
NONE = "\u2014"  # a value the API has not given (yet): never an empty cell, which a card folds

# Browsers ask every page's origin for /favicon.ico; without an answer each page (the debug
# report too) logs a failed request in the browser's console. The header's orange square.
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#e6522c"/></svg>\n'
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa;line-height:1.45}
header{background:#e6522c;color:#fff;padding:.8rem 1.5rem}
header h1{margin:0;font-size:1.3rem;font-weight:600}
main{padding:1rem 1.5rem;max-width:80rem}
.banner{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6rem .9rem;
margin:0 0 1rem}
.banner code{white-space:nowrap}
code{font-size:.9em}a{color:#0969da}
.meta{color:#57606a;font-size:.9rem}
h3{margin:1.4rem 0 .5rem;font-size:1.1rem}
.totals{display:flex;flex-wrap:wrap;gap:.6rem;margin:0 0 .6rem}
.total{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.4rem .8rem}
.total .label{display:block;color:#57606a;font-size:.8rem}
.total .value{font-size:1.15rem;font-weight:600}
.cover{color:#57606a;font-size:.8rem;margin:0 0 .4rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.35rem .55rem;text-align:left;vertical-align:top;
overflow-wrap:break-word}
td.up,td.down,td.reading,td.num{white-space:nowrap}
th{background:#eaeef2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.up{color:#1a7f37;font-weight:600}td.down{color:#cf222e;font-weight:600}
td.reading,.never{color:#57606a;font-style:italic}
.name{font-weight:600}.id{color:#57606a}td.job{min-width:9rem}
.st{display:inline-block;border-radius:1rem;padding:0 .55rem;font-size:.85rem;font-weight:600;
background:#eaeef2;color:#57606a}
.st-processing{background:#ddf4ff;color:#0550ae}.st-queued{background:#fff8c5;color:#7d4e00}
.st-completed{background:#dafbe1;color:#116329}.st-failed{background:#ffebe9;color:#a40e26}
progress{width:7rem;height:.7rem;vertical-align:middle;appearance:none;border:0;
border-radius:.35rem;background:#eaeef2;overflow:hidden}
progress::-webkit-progress-bar{background:#eaeef2}
progress::-webkit-progress-value{background:#2da44e}
progress::-moz-progress-bar{background:#2da44e}
.pages{white-space:nowrap;font-variant-numeric:tabular-nums}
.when{color:#57606a;font-size:.8rem}
.why{color:#57606a;font-size:.85rem;overflow-wrap:anywhere}
.links a{white-space:nowrap}
@media (max-width:48rem){
main{padding:.8rem}
table.jobs,table.jobs tbody,table.jobs tr,table.jobs td{display:block}
table.jobs thead{display:none}
table.jobs{background:none}
table.jobs tr{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:0 0 .7rem;
padding:.45rem .7rem}
table.jobs td{border:0;padding:.15rem 0 .15rem 7.2rem;position:relative;text-align:left;
white-space:normal;overflow-wrap:anywhere}
table.jobs td::before{content:attr(data-label);position:absolute;left:0;width:6.8rem;
color:#57606a;font-size:.85rem;font-weight:400;font-style:normal}
table.jobs td.job{padding-left:0;border-bottom:1px solid #eaeef2;margin-bottom:.25rem}
table.jobs td.job::before{content:none}
progress{width:5.5rem}
}
"""


def refresh_seconds(values: list[str]) -> int:
    """The ``refresh`` query parameter (its last value) as seconds between reloads: 0 turns
    them off, a number of seconds is held to 5 to 3600, anything else means the default."""
    if not values or not values[-1].isdigit() or len(values[-1]) > 6:
        return REFRESH_SECONDS
    seconds = int(values[-1])
    if seconds == 0:
        return 0
    return min(MAX_REFRESH_SECONDS, max(MIN_REFRESH_SECONDS, seconds))


TOTALS_COVER = "over every job listed or configured, each once"
"""What the workspace totals on the page cover: they are the exact totals ``/metrics`` serves
(every job a workspace lists, those past ``include_finished_for`` included, and its configured
jobs), read from memory."""


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:,.2f}"


def _plain(value: float) -> str:
    """A number as an HTML attribute reads it: no grouping, no exponent for a whole one."""
    return str(int(value)) if value == int(value) else repr(value)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds}s ago"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def _when(view: TargetView, now: float) -> str:
    if not view.read:
        return '<span class="never">reading...</span>'
    if view.last_success is None:
        return '<span class="never">never</span>'
    moment = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(view.last_success))
    return f'{_ago(now - view.last_success)}<br><span class="when">{moment}</span>'


def _status(view: TargetView) -> str:
    if view.status is None:
        return '<span class="never">reading...</span>' if not view.read else "unknown"
    badge = f'<span class="st st-{escape(view.status, quote=True)}">{escape(view.status)}</span>'
    if view.failure is None:
        return badge
    return f'{badge}<br><span class="why">{escape(view.failure)}</span>'


def _up(view: TargetView) -> str:
    if view.up:
        return '<td class="up" data-label="Up">up</td>'
    if view.reason is not None:
        return f'<td class="down" data-label="Up">down: {escape(view.reason)}</td>'
    if not view.read:
        return '<td class="reading" data-label="Up">reading...</td>'
    return '<td data-label="Up">unknown</td>'


def _progress(view: TargetView) -> str:
    """Scraped pages of the page limit (of the max pages when there is none): a bar and
    ``40 / 250``."""
    scraped = view.scraped_pages
    if scraped is None:
        return NONE
    cap = view.page_limit if view.page_limit is not None else view.max_pages
    if cap is None or cap <= 0:
        return f'<span class="pages">{_number(scraped)}</span>'
    percent = min(100, round(100 * scraped / cap))
    return (
        f'<progress value="{_plain(min(scraped, cap))}" max="{_plain(cap)}" title="{percent}%">'
        f"</progress> "
        f'<span class="pages">{_number(scraped)} / {_number(cap)}</span>'
    )


def _row(view: TargetView, now: float) -> str:
    query = escape(urlencode({"workspace_id": view.workspace_id, "job_id": view.job_id}))
    name = f'<span class="name">{escape(view.name)}</span><br>' if view.name else ""
    failed = NONE if view.failed_pages is None else _number(view.failed_pages)
    credits = NONE if view.estimated_credits is None else _number(view.estimated_credits)
    return (
        f'<tr><td class="job" data-label="Job">{name}<code class="id">{escape(view.job_id)}'
        f'</code></td><td data-label="Status">{_status(view)}</td>{_up(view)}'
        f'<td data-label="Progress">{_progress(view)}</td>'
        f'<td class="num" data-label="Failed pages">{failed}</td>'
        f'<td class="num" data-label="Credits">{credits}</td>'
        f'<td data-label="Last success">{_when(view, now)}</td>'
        f'<td class="links" data-label="Links"><a href="probe?{query}">probe</a> '
        f'<a href="probe?{query}&amp;debug=true">debug report</a></td></tr>'
    )


def _totals(totals: WorkspaceTotals | None, views: list[TargetView], cover: str) -> str:
    counts = totals.jobs if totals is not None else {}
    shown = [f"{counts[s]} {s}" for s in (*STATUS_ORDER, *counts) if counts.get(s)]
    unknown = sum(1 for v in views if v.read and v.status is None)
    reading = sum(1 for v in views if not v.read and v.status is None)
    if unknown:
        shown.append(f"{unknown} unknown")
    if reading:
        shown.append(f"{reading} reading...")
    by_status = ", ".join(dict.fromkeys(shown)) or "none"
    credits = totals.estimated_credits if totals is not None else 0.0
    scraped = totals.scraped_pages if totals is not None else 0.0
    failed = totals.failed_pages if totals is not None else 0.0
    usd = credits / CREDITS_PER_USD

    def card(label: str, value: str, detail: str) -> str:
        return (
            f'<div class="total"><span class="label">{label}</span>'
            f'<span class="value">{value}</span> <span class="meta">{detail}</span></div>'
        )

    return (
        '<div class="totals">'
        + card("Jobs", f"{len(views)}", escape(by_status))
        + card("Scraped pages", _number(scraped), f"{_number(failed)} failed")
        + card("Estimated credits", _number(credits), f"about US${usd:,.2f}")
        + f'</div>\n<p class="cover">Totals {escape(cover)}.</p>'
    )


def _workspaces(exporter: Exporter, views: list[TargetView], now: float) -> str:
    totals, cover = exporter.totals(), TOTALS_COVER
    by_workspace: dict[str, list[TargetView]] = {ws.id: [] for ws in exporter.config.workspaces}
    for view in views:
        by_workspace.setdefault(view.workspace_id, []).append(view)
    budget = MAX_ROWS
    sections: list[str] = []
    for ws_id, jobs in by_workspace.items():
        shown = jobs[: max(0, budget)]
        budget -= len(shown)
        rows = [_row(view, now) for view in shown]
        if len(jobs) > len(shown):
            rows.append(f'<tr><td colspan="{COLUMNS}">and {len(jobs) - len(shown)} more</td></tr>')
        if not jobs:
            rows.append(f'<tr><td colspan="{COLUMNS}">No jobs exported yet.</td></tr>')
        sections.append(
            f"<section><h3>Workspace <code>{escape(ws_id)}</code></h3>\n"
            f"{_totals(totals.get(ws_id), jobs, cover)}\n"
            '<table class="jobs"><thead><tr><th>Job</th><th>Status</th><th>Up</th>'
            "<th>Progress (pages)</th><th>Failed pages</th><th>Estimated credits</th>"
            "<th>Last success</th><th>Links</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody></table></section>"
        )
    return "\n".join(sections)


def _refresh_note(refresh: int) -> tuple[str, str]:
    """The ``<meta>`` that reloads the page, and the sentence that says so."""
    if refresh == 0:
        return "", (
            f'This page does not reload itself (<a href="./">reload every {REFRESH_SECONDS} s</a>).'
        )
    return (
        f'<meta http-equiv="refresh" content="{refresh}">\n',
        f'This page reloads itself every {refresh} s (<a href="?refresh=0">stop</a>).',
    )


def landing_page(
    exporter: Exporter, telemetry_path: str, demo: bool, refresh: int = REFRESH_SECONDS
) -> bytes:
    info = build_info()
    config = exporter.config
    views = exporter.overview()
    now = time.time()
    banner = (
        '<p class="banner"><strong>Demo mode.</strong> These jobs come from a simulated '
        "Convocore API inside this process, not from an account. To export real jobs, "
        "write a config with <code>--config.example&nbsp;&gt;&nbsp;config.yaml</code> and "
        "start the exporter with <code>--config.file</code>.</p>"
        if demo
        else ""
    )
    metrics_href = escape(telemetry_path.lstrip("/"), quote=True)
    meta_refresh, refresh_note = _refresh_note(refresh)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta_refresh}<title>Convocore crawler exporter</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>Convocore crawler exporter</h1></header>
<main>
{banner}
<p class="meta">Version {escape(info.version)} (revision {escape(info.revision)}, built
{escape(info.build_date)}), Python {escape(info.python_version)}.
API: <code>{escape(config.api.base_url)}</code></p>
<ul>
<li><a href="{metrics_href}">Metrics</a></li>
<li><a href="sd">Service discovery targets</a> (for <code>/probe</code> scrapes)</li>
<li><a href="-/healthy">Health</a> and <a href="-/ready">readiness</a></li>
</ul>
<h2>Jobs ({len(views)})</h2>
<p class="meta">As the exporter last read them (at start-up, then on each scrape); this page
calls no API. {refresh_note} A job's debug report probes it once and tells what was asked
upstream and why it is up or down.</p>
{_workspaces(exporter, views, now)}
</main>
</body></html>
"""
    return page.encode()
