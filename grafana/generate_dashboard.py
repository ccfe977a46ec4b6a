"""Generate the Grafana dashboard grafana/dashboards/convocore-crawler.json.

The JSON is committed; run this after changing a panel and commit both:

    python grafana/generate_dashboard.py          # rewrite the JSON
    python grafana/generate_dashboard.py --check  # exit 1 when the JSON is not current

Writing the dashboard as code keeps every panel to the same rules: a description, a unit,
the `$datasource`, `$workspace_id` and `$job_id` variables, and `$__rate_interval` as the
window of every rate. The queries use the recording rules of prometheus/rules.yml where one
exists, so the dashboard and the alerts agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "convocore-crawler.json"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'workspace_id=~"$workspace_id", job_id=~"$job_id"'
WORKSPACE = 'workspace_id=~"$workspace_id"'

Panel = dict[str, Any]


def named(expr: str) -> str:
    """One series per job, carrying the job's friendly name from the info metric.

    Several exporters serving the same job (an HA pair) collapse into one line.
    """
    return (
        f"max by (workspace_id, job_id, name) (\n"
        f"  {expr}\n"
        f"  * on (instance, job, workspace_id, job_id) group_left (name)\n"
        f"  convocore_crawler_job_info\n"
        f")"
    )


def dashed(ref_id: str) -> dict[str, Any]:
    """A field override drawing query ``ref_id`` as a dashed line without fill (a reference
    line such as a budget, or a second measure beside the first)."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref_id},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
        ],
    }


def target(ref: str, expr: str, legend: str = "", *, instant: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"refId": ref, "datasource": DATASOURCE, "expr": expr}
    if instant:
        result.update({"instant": True, "range": False, "format": "table"})
    else:
        result.update({"range": True, "legendFormat": legend or "__auto"})
    return result


class Layout:
    """Hands out panel ids and grid positions, row after row, 24 columns wide."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_height = 0

    def place(self, panel: Panel, width: int, height: int) -> Panel:
        if self.x + width > 24:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += width
        self.row_height = max(self.row_height, height)
        return panel

    def row(self, title: str) -> Panel:
        if self.x:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        panel = self.place({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x = 0
        self.y += 1
        self.row_height = 0
        return panel


def stat(title: str, description: str, expr: str, unit: str, color: str) -> Panel:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target("A", expr, title)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "decimals": 0,
                "color": {"mode": "fixed", "fixedColor": color},
                "thresholds": {"mode": "absolute", "steps": [{"color": color, "value": None}]},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "value",
            "justifyMode": "auto",
            "orientation": "auto",
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
            "wideLayout": True,
        },
    }


def timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    *,
    min_value: float | None = 0,
    max_value: float | None = None,
    stack: bool = False,
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "legend": {
                "showLegend": True,
                "displayMode": "table",
                "placement": "right",
                "calcs": ["lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def column(name: str, unit: str, **custom: Any) -> dict[str, Any]:
    properties: list[dict[str, Any]] = [{"id": "unit", "value": unit}]
    if custom:
        properties.append({"id": "custom.cellOptions", "value": custom})
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


STATUS_COLORS = {
    "queued": "blue",
    "processing": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "text",
}


def jobs_table() -> Panel:
    """One row per job; each column is one instant query, merged on workspace_id and job_id."""
    per_job = "max by (workspace_id, job_id)"
    columns = [
        # (refId, header, expression)
        ("A", None, f"max by (workspace_id, job_id, name) (convocore_crawler_job_info{{{JOB}}})"),
        (
            "B",
            None,
            f"max by (workspace_id, job_id, status) (convocore_crawler_job_status{{{JOB}}} == 1)",
        ),
        (
            "C",
            "Progress",
            f"{per_job} (workspace_id_job_id:convocore_crawler_job_progress:ratio{{{JOB}}})",
        ),
        ("D", "Scraped pages", f"{per_job} (convocore_crawler_job_scraped_pages{{{JOB}}})"),
        ("E", "Page limit", f"{per_job} (convocore_crawler_job_page_limit{{{JOB}}})"),
        ("F", "Failed pages", f"{per_job} (convocore_crawler_job_failed_pages{{{JOB}}})"),
        (
            "G",
            "Failure ratio",
            f"{per_job} (workspace_id_job_id:convocore_crawler_job_page_failures:ratio{{{JOB}}})",
        ),
        (
            "H",
            "Pages/min",
            f"60 * {per_job} "
            f"(workspace_id_job_id:convocore_crawler_job_scraped_pages:deriv5m{{{JOB}}})",
        ),
        ("I", "Credits/page", f"{per_job} (convocore_crawler_job_credits_per_page{{{JOB}}})"),
        (
            "J",
            "Estimated credits",
            f"{per_job} (convocore_crawler_job_estimated_credits{{{JOB}}})",
        ),
        ("K", "Fetched", f"{per_job} (convocore_crawler_up{{{JOB}}})"),
    ]
    rename = {f"Value #{ref}": header for ref, header, _ in columns if header}
    rename.update(
        {"workspace_id": "Workspace", "job_id": "Job", "name": "Name", "status": "Status"}
    )
    order = ["workspace_id", "job_id", "name", "status"] + [
        f"Value #{ref}" for ref, header, _ in columns if header
    ]
    status_mappings = {
        status: {"color": color, "index": i}
        for i, (status, color) in enumerate(STATUS_COLORS.items())
    }
    overrides = [
        column("Progress", "percentunit", type="gauge", mode="basic"),
        column("Scraped pages", "none"),
        column("Page limit", "none"),
        column("Failed pages", "none"),
        column("Failure ratio", "percentunit", type="color-text"),
        column("Pages/min", "suffix:pages/min"),
        column("Credits/page", "suffix:credits"),
        column("Estimated credits", "suffix:credits"),
        {
            "matcher": {"id": "byName", "options": "Status"},
            "properties": [
                {"id": "mappings", "value": [{"type": "value", "options": status_mappings}]},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
            ],
        },
        {
            "matcher": {"id": "byName", "options": "Fetched"},
            "properties": [
                {"id": "unit", "value": "none"},
                {
                    "id": "mappings",
                    "value": [
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "no", "color": "red", "index": 0},
                                "1": {"text": "yes", "color": "green", "index": 1},
                            },
                        }
                    ],
                },
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
            ],
        },
        {
            "matcher": {"id": "byName", "options": "Failure ratio"},
            "properties": [
                {
                    "id": "thresholds",
                    "value": {
                        "mode": "absolute",
                        "steps": [
                            {"color": "green", "value": None},
                            {"color": "orange", "value": 0.1},
                            {"color": "red", "value": 0.2},
                        ],
                    },
                }
            ],
        },
    ]
    return {
        "type": "table",
        "title": "Jobs",
        "description": (
            "Every crawler job the exporter serves, as of the end of the time range. Progress "
            "is scraped pages over the page limit (a job that finishes before its limit stays "
            "below 100%); failure ratio is failed pages over all pages tried; pages/min is the "
            "scraping speed over the last 5 minutes; estimated credits is what Convocore "
            "expects the job to cost (1,000 credits = 1 USD). Fetched is no when the exporter "
            "could not get the job from the API in its last scrape (see Exporter health)."
        ),
        "datasource": DATASOURCE,
        "targets": [target(ref, expr, instant=True) for ref, _, expr in columns],
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "custom": {
                    "align": "auto",
                    "filterable": True,
                    "inspect": False,
                    "cellOptions": {"type": "auto"},
                },
            },
            "overrides": overrides,
        },
        "options": {"showHeader": True, "cellHeight": "sm", "sortBy": [], "frameIndex": 0},
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {
                        "Time": True,
                        "Value #A": True,
                        "Value #B": True,
                    },
                    "indexByName": {name: i for i, name in enumerate(order)},
                    "renameByName": rename,
                },
            },
        ],
    }


def content_row(layout: Layout) -> list[Panel]:
    """What the scraped pages hold, from the page statistics (workspaces with page_stats)."""
    needs = (
        " Only for workspaces with page_stats: true, whose jobs' pages lists the exporter reads."
    )
    return [
        layout.row("Content"),
        layout.place(
            timeseries(
                "Empty pages",
                "Share of the pages each job lists that are empty: not failed, and no markdown "
                "was extracted (recording rule "
                "workspace_id_job_id:convocore_crawler_job_empty_pages:ratio). A high share "
                "usually means a site rendered with JavaScript; the "
                "ConvocoreCrawlerJobEmptyPages alert fires above 50% once a job lists 20 pages."
                + needs,
                [
                    target(
                        "A",
                        named(
                            f"workspace_id_job_id:convocore_crawler_job_empty_pages:ratio{{{JOB}}}"
                        ),
                        "{{job_id}} {{name}}",
                    )
                ],
                "percentunit",
                max_value=1,
            ),
            8,
            8,
        ),
        layout.place(
            timeseries(
                "Content volume",
                "Characters of markdown (solid) and of HTML (dashed) in the pages each job "
                "lists, summed. Markdown is the text the crawler extracted; HTML that grows "
                "without markdown is pages scraped without content." + needs,
                [
                    target(
                        "A",
                        named(f"convocore_crawler_job_markdown_chars{{{JOB}}}"),
                        "{{job_id}} {{name}} markdown",
                    ),
                    target(
                        "B",
                        named(f"convocore_crawler_job_html_chars{{{JOB}}}"),
                        "{{job_id}} {{name}} HTML",
                    ),
                ],
                "short",
                overrides=[dashed("B")],
            ),
            8,
            8,
        ),
        layout.place(
            timeseries(
                "Pages per minute (scrapedAt)",
                "How fast each job scrapes pages by the pages' own scrapedAt times: pages newly "
                "listed over 15 minutes divided by how far the latest scrapedAt moved (recording "
                "rule workspace_id_job_id:convocore_crawler_job_pages_listed:scraped_rate15m), "
                "so it does not depend on how often the exporter reads the pages. No line while "
                "a job adds no page." + needs,
                [
                    target(
                        "A",
                        named(
                            "60 * workspace_id_job_id:convocore_crawler_job_pages_listed:"
                            f"scraped_rate15m{{{JOB}}}"
                        ),
                        "{{job_id}} {{name}}",
                    )
                ],
                "suffix:pages/min",
            ),
            8,
            8,
        ),
    ]


def panels() -> list[Panel]:
    layout = Layout()
    result: list[Panel] = [layout.row("Jobs")]
    result.append(
        layout.place(
            stat(
                "Active jobs",
                "Queued and processing jobs in the selected workspaces (recording rule "
                "workspace_id:convocore_crawler_jobs_active:sum).",
                f"sum(workspace_id:convocore_crawler_jobs_active:sum{{{WORKSPACE}}})",
                "none",
                "blue",
            ),
            6,
            4,
        )
    )
    result.append(
        layout.place(
            stat(
                "Failed jobs",
                "Jobs of the selection whose status is failed. Each one also raises the "
                "ConvocoreCrawlerJobFailed alert.",
                f"sum(max by (workspace_id, job_id) "
                f'(convocore_crawler_job_status{{status="failed", {JOB}}}))',
                "none",
                "red",
            ),
            6,
            4,
        )
    )
    result.append(
        layout.place(
            stat(
                "Estimated credits of active jobs",
                "What the queued and processing jobs of the selected workspaces are estimated "
                "to cost, in Convocore credits (1,000 credits = 1 USD). The "
                "ConvocoreCrawlerWorkspaceCreditsOverBudget alert compares this, per workspace, "
                "with the budget set in rules.yml.",
                f"sum(workspace_id:convocore_crawler_job_estimated_credits_active:sum"
                f"{{{WORKSPACE}}})",
                "suffix:credits",
                "purple",
            ),
            6,
            4,
        )
    )
    result.append(
        layout.place(
            stat(
                "Jobs not fetched",
                "Jobs of the selection that the exporter could not fetch from the Convocore "
                "API in its last scrape (convocore_crawler_up is 0). Exporter health shows why.",
                f"sum(1 - max by (workspace_id, job_id) (convocore_crawler_up{{{JOB}}}))",
                "none",
                "orange",
            ),
            6,
            4,
        )
    )
    result.append(layout.place(jobs_table(), 24, 10))
    result.append(
        layout.place(
            timeseries(
                "Progress",
                "Scraped pages as a share of each job's page limit (recording rule "
                "workspace_id_job_id:convocore_crawler_job_progress:ratio). A line that stays "
                "flat while the job is processing is a stalled job.",
                [
                    target(
                        "A",
                        named(f"workspace_id_job_id:convocore_crawler_job_progress:ratio{{{JOB}}}"),
                        "{{job_id}} {{name}}",
                    )
                ],
                "percentunit",
                max_value=1,
            ),
            12,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "Pages scraped per minute",
                "How fast each job scrapes pages: the slope of its scraped page count over the "
                "panel's rate interval, in pages per minute. Zero for jobs that are finished, "
                "queued or stalled.",
                [
                    target(
                        "A",
                        named(
                            f"clamp_min(60 * deriv(convocore_crawler_job_scraped_pages{{{JOB}}}"
                            f"[$__rate_interval]), 0)"
                        ),
                        "{{job_id}} {{name}}",
                    )
                ],
                "suffix:pages/min",
            ),
            12,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "Page failure ratio",
                "Failed pages as a share of all pages each job has tried (recording rule "
                "workspace_id_job_id:convocore_crawler_job_page_failures:ratio). The "
                "ConvocoreCrawlerJobHighPageFailureRatio alert fires above 20% once a job has "
                "tried 20 pages.",
                [
                    target(
                        "A",
                        named(
                            f"workspace_id_job_id:convocore_crawler_job_page_failures:ratio"
                            f"{{{JOB}}}"
                        ),
                        "{{job_id}} {{name}}",
                    )
                ],
                "percentunit",
                max_value=1,
            ),
            12,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "Estimated credits of active jobs by workspace",
                "Per workspace, what its queued and processing jobs are estimated to cost in "
                "Convocore credits (solid), and the budget that the "
                "ConvocoreCrawlerWorkspaceCreditsOverBudget alert compares it with (dashed; set "
                "in the convocore-crawler-settings group of rules.yml).",
                [
                    target(
                        "A",
                        f"workspace_id:convocore_crawler_job_estimated_credits_active:sum"
                        f"{{{WORKSPACE}}}",
                        "{{workspace_id}}",
                    ),
                    target(
                        "B",
                        f"workspace_id:convocore_crawler_credit_budget:max{{{WORKSPACE}}}",
                        "{{workspace_id}} budget",
                    ),
                ],
                "suffix:credits",
                overrides=[dashed("B")],
            ),
            12,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "Active jobs by workspace",
                "Queued and processing jobs per workspace (recording rule "
                "workspace_id:convocore_crawler_jobs_active:sum); each job counts once even "
                "when several exporters serve it.",
                [
                    target(
                        "A",
                        f"workspace_id:convocore_crawler_jobs_active:sum{{{WORKSPACE}}}",
                        "{{workspace_id}}",
                    )
                ],
                "none",
            ),
            12,
            8,
        )
    )
    result.extend(content_row(layout))
    result.append(layout.row("Exporter health"))
    result.append(
        layout.place(
            timeseries(
                "Jobs by fetch outcome",
                "Per workspace, how many jobs the exporter fetched from the Convocore API in "
                "each scrape (ok) and, for those it could not, why: unauthorized or forbidden "
                "(the workspace secret), not_found (the job id), rate_limited, timeout, "
                "connection, server_error, deadline (the scrape ran out of time), "
                "invalid_response.",
                [
                    target(
                        "A",
                        "label_replace(sum by (workspace_id) (max by (workspace_id, job_id) "
                        f'(convocore_crawler_up{{{JOB}}})), "reason", "ok", "", "")\n'
                        "or\n"
                        "count by (workspace_id, reason) "
                        "(max by (workspace_id, job_id, reason) "
                        f"(convocore_crawler_error_info{{{JOB}}}))",
                        "{{workspace_id}} {{reason}}",
                    )
                ],
                "none",
                stack=True,
            ),
            12,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "Data age",
                "Time since each job was last fetched successfully from the API. It grows "
                "while the API cannot be reached; the ConvocoreCrawlerDataStale alert fires "
                "past 1 hour.",
                [
                    target(
                        "A",
                        f"min by (workspace_id, job_id) "
                        f"(time() - convocore_crawler_last_success_timestamp_seconds{{{JOB}}})",
                        "{{workspace_id}}/{{job_id}}",
                    )
                ],
                "s",
            ),
            12,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "API requests by status code",
                "HTTP requests the exporter makes to the Convocore API per second, by status "
                "code (error: no answer at all). 429 means Convocore is rate-limiting the "
                "exporter.",
                [
                    target(
                        "A",
                        f"sum by (workspace_id, code) "
                        f"(rate(convocore_crawler_api_requests_total{{{WORKSPACE}}}"
                        f"[$__rate_interval]))",
                        "{{workspace_id}} {{code}}",
                    )
                ],
                "reqps",
                stack=True,
            ),
            8,
            8,
        )
    )
    latency = [
        target(
            ref,
            f"histogram_quantile({q}, sum by (workspace_id, le) "
            f"(rate(convocore_crawler_api_request_duration_seconds_bucket{{{WORKSPACE}}}"
            f"[$__rate_interval])))",
            f"{{{{workspace_id}}}} p{label}",
        )
        for ref, q, label in (("A", "0.5", "50"), ("B", "0.95", "95"), ("C", "0.99", "99"))
    ]
    result.append(
        layout.place(
            timeseries(
                "API request latency",
                "How long the Convocore API takes to answer the exporter: median, 95th and "
                "99th percentile over the panel's rate interval, from the exporter's request "
                "duration histogram.",
                latency,
                "s",
            ),
            8,
            8,
        )
    )
    result.append(
        layout.place(
            timeseries(
                "Scrape duration",
                "How long each exporter took to answer Prometheus's scrape, fetching every "
                "job. It should stay well below the scrape timeout; jobs not fetched in time "
                "show as deadline under Jobs by fetch outcome.",
                [
                    target(
                        "A",
                        "max by (instance) (convocore_crawler_scrape_duration_seconds)",
                        "{{instance}}",
                    )
                ],
                "s",
            ),
            8,
            8,
        )
    )
    return result


def variables() -> list[dict[str, Any]]:
    def label_values(name: str, label: str, query: str) -> dict[str, Any]:
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": DATASOURCE,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "options": [],
            "regex": "",
        }

    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "hide": 0,
            "options": [],
            "refresh": 1,
            "regex": "",
        },
        label_values(
            "workspace_id", "Workspace", "label_values(convocore_crawler_up, workspace_id)"
        ),
        label_values(
            "job_id",
            "Job",
            'label_values(convocore_crawler_up{workspace_id=~"$workspace_id"}, job_id)',
        ),
    ]


def dashboard() -> dict[str, Any]:
    return {
        "uid": "convocore-crawler",
        "title": "Convocore crawler",
        "description": (
            "Convocore web-crawler jobs as served by convocore-crawler-exporter: progress, "
            "speed, failures and credits of each job, and the exporter's own health."
        ),
        "tags": ["convocore", "crawler"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "version": 1,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": variables()},
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the committed JSON is not current"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            sys.stderr.write(f"{OUTPUT} is not current: run python grafana/generate_dashboard.py\n")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
