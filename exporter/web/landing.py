"""The landing page (``/``): what this exporter is, its endpoints and the jobs it exports.

Self-contained HTML (inline CSS, no external assets: the page works offline and behind
strict content-security policies). Everything that comes from the config or the API is
HTML-escaped. The table shows what the last scrapes saw, from memory: rendering the page
never calls the API.
"""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ..version import build_info

if TYPE_CHECKING:
    from ..collect import Exporter, TargetView

MAX_ROWS = 500

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
main{padding:1rem 1.5rem;max-width:72rem}
.banner{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6rem .9rem;
margin:0 0 1rem}
.banner code{white-space:nowrap}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#eaeef2}
td.up{color:#1a7f37;font-weight:600}td.down{color:#cf222e;font-weight:600}
code{font-size:.9em}a{color:#0969da}
.meta{color:#57606a;font-size:.9rem}
.jobs{overflow-x:auto}
.why{color:#57606a;font-size:.85rem;overflow-wrap:anywhere}
"""


def _when(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "never"
    moment = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    age = max(0, int(now - timestamp))
    return f"{moment} ({age}s ago)"


def _row(view: TargetView, now: float) -> str:
    query = escape(urlencode({"workspace_id": view.workspace_id, "job_id": view.job_id}))
    if view.up:
        up = '<td class="up">up</td>'
    elif view.reason is not None:
        up = f'<td class="down">down: {escape(view.reason)}</td>'
    else:
        up = "<td>not scraped yet</td>"
    failure = "" if view.failure is None else f'<br><span class="why">{escape(view.failure)}</span>'
    return (
        f"<tr><td>{escape(view.workspace_id)}</td><td>{escape(view.job_id)}</td>"
        f"<td>{escape(view.name)}</td><td>{escape(view.status or '')}{failure}</td>{up}"
        f"<td>{escape(_when(view.last_success, now))}</td>"
        f'<td><a href="probe?{query}">probe</a> '
        f'<a href="probe?{query}&amp;debug=true">debug report</a></td></tr>'
    )


def landing_page(exporter: Exporter, telemetry_path: str, demo: bool) -> bytes:
    info = build_info()
    config = exporter.config
    views = exporter.overview()
    now = time.time()
    rows = "\n".join(_row(view, now) for view in views[:MAX_ROWS])
    more = len(views) - MAX_ROWS
    if more > 0:
        rows += f'\n<tr><td colspan="7">and {more} more</td></tr>'
    if not views:
        rows = '<tr><td colspan="7">No jobs exported yet.</td></tr>'
    banner = (
        '<p class="banner"><strong>Demo mode.</strong> These jobs come from a simulated '
        "Convocore API inside this process, not from an account. To export real jobs, "
        "write a config with <code>--config.example&nbsp;&gt;&nbsp;config.yaml</code> and "
        "start the exporter with <code>--config.file</code>.</p>"
        if demo
        else ""
    )
    metrics_href = escape(telemetry_path.lstrip("/"), quote=True)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Convocore crawler exporter</title>
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
<h2>Targets ({len(views)})</h2>
<p class="meta">As the last scrapes saw them; this page calls no API. A job's debug report
probes it once and tells what was asked upstream and why it is up or down.</p>
<div class="jobs"><table>
<tr><th>Workspace</th><th>Job</th><th>Name</th><th>Status</th><th>Up</th>
<th>Last success</th><th></th></tr>
{rows}
</table></div>
</main>
</body></html>
"""
    return page.encode()
