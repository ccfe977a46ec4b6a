"""The landing page at ``/``: the version, the API and the configured targets."""

from __future__ import annotations

import html

from . import __version__
from .config import Config


def landing_page(config: Config) -> bytes:
    rows = []
    for ws in config.workspaces:
        jobs = ", ".join(
            html.escape(job.id + (f" ({job.name})" if job.name else "")) for job in ws.jobs
        )
        if ws.discover:
            jobs = (jobs + "; " if jobs else "") + "discovers the workspace's jobs"
        rows.append(f"<tr><td>{html.escape(ws.id)}</td><td>{jobs}</td></tr>")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Convocore crawler exporter</title></head>
<body>
<h1>Convocore crawler exporter</h1>
<p>Version {html.escape(__version__)}. API: {html.escape(config.api.base_url)}</p>
<ul>
<li><a href="metrics">Metrics</a></li>
<li><a href="sd">Service discovery targets</a></li>
<li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li>
</ul>
<h2>Configured targets</h2>
<table><tr><th>Workspace</th><th>Jobs</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
    return page.encode()
