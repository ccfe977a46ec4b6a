"""The Grafana dashboard (rendered from mixin/): complete, and made of valid queries."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .mixin import (
    known_names,
    load_dashboard,
    metric_names_in,
    panel_queries,
    range_windows,
    substitute,
)
from .tools import require_tool

# Queries for the offline parse check; any valid values do.
OFFLINE_VARIABLES = {"workspace_id": ".*", "job_id": ".*", "__rate_interval": "1m"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def test_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "workspace_id", "job_id"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["workspace_id"]["query"]["query"] == (
        "label_values(convocore_crawler_up, workspace_id)"
    )
    assert variables["job_id"]["query"]["query"] == (
        'label_values(convocore_crawler_up{workspace_id=~"$workspace_id"}, job_id)'
    )
    for name in ("workspace_id", "job_id"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variable["multi"] is True
        assert variable["includeAll"] is True
        assert variable["allValue"] == ".*"


def test_panels(dashboard: dict[str, Any]) -> None:
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert titles == [
        "Jobs",
        "Active jobs",
        "Failed jobs",
        "All jobs",
        "Estimated credits",
        "Estimated credits of active jobs",
        "Jobs not fetched",
        "Jobs",
        "Why jobs failed",
        "Progress",
        "Pages scraped per minute",
        "Page failure ratio",
        "Estimated credits of active jobs by workspace",
        "Active jobs by workspace",
        "Jobs by status",
        "Agents",
        "Agents",
        "Active jobs by agent",
        "Estimated credits by agent",
        "Content",
        "Empty pages",
        "Content volume",
        "Pages per minute (scrapedAt)",
        "Exporter health",
        "Jobs by fetch outcome",
        "Data age",
        "API requests by status code",
        "API request latency",
        "Scrape duration",
    ]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


def test_every_panel_has_a_description_a_unit_and_the_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            assert not panel.get("targets")
            continue
        assert len(panel["description"]) > 40, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def table_panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [p for p in dashboard["panels"] if p["type"] == "table" and p["title"] == title]
    assert all(target["instant"] and target["format"] == "table" for target in found["targets"])
    return found


def shown_columns(table: dict[str, Any]) -> list[str]:
    """The table's columns as Grafana shows them: merged, ordered, hidden, renamed."""
    assert [t["id"] for t in table["transformations"]] == ["merge", "organize"]
    organize = table["transformations"][1]["options"]
    return [
        organize["renameByName"].get(name, name)
        for name in sorted(organize["indexByName"], key=organize["indexByName"].get)
        if not organize["excludeByName"].get(name)
    ]


def test_overview_table_columns(dashboard: dict[str, Any]) -> None:
    table = table_panel(dashboard, "Jobs")
    assert shown_columns(table) == [
        "Workspace",
        "Job",
        "Name",
        "Status",
        "Progress",
        "Scraped pages",
        "Page limit",
        "Failed pages",
        "Failure ratio",
        "Pages/min",
        "Credits/page",
        "Estimated credits",
        "Fetched",
    ]
    units = {
        override["matcher"]["options"]: prop["value"]
        for override in table["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "unit"
    }
    assert units["Progress"] == "percentunit"
    assert units["Failure ratio"] == "percentunit"
    assert units["Estimated credits"] == "suffix:credits"


def test_failed_jobs_table_shows_the_failure_text(dashboard: dict[str, Any]) -> None:
    table = table_panel(dashboard, "Why jobs failed")
    assert shown_columns(table) == ["Workspace", "Job", "Name", "Failure text", "Failed pages"]
    failed = 'and on (workspace_id, job_id) (convocore_crawler_job_status{status="failed", '
    for target in table["targets"]:
        assert failed in target["expr"], target["refId"]
    assert table["targets"][1]["expr"].startswith(
        "max by (workspace_id, job_id, result_error) (convocore_crawler_job_failure_info{"
    )


def test_agents_table_breaks_the_jobs_down_by_agent(dashboard: dict[str, Any]) -> None:
    table = table_panel(dashboard, "Agents")
    assert shown_columns(table) == [
        "Agent",
        "Jobs",
        "Active jobs",
        "Failed jobs",
        "Estimated credits",
    ]
    # From the agent totals (every listed job), not joins over per-job series.
    for target in table["targets"]:
        assert target["expr"].startswith("sum by (agent_id) (")
        assert ":convocore_crawler_agent_" in target["expr"]
        assert "group_right" not in target["expr"] and "job_id" not in target["expr"]


def test_queries_read_only_known_metrics_and_recording_rules(dashboard: dict[str, Any]) -> None:
    known = known_names()
    used: set[str] = set()
    for query in panel_queries(dashboard):
        names = metric_names_in(query.expr)
        assert names, query
        assert names <= known, (str(query), names - known)
        used |= names
    # The dashboard shows every recording rule except the budget settings themselves.
    assert {
        "workspace_id_job_id:convocore_crawler_job_progress:ratio",
        "workspace_id_job_id:convocore_crawler_job_page_failures:ratio",
        "workspace_id_job_id:convocore_crawler_job_scraped_pages:deriv5m",
        "workspace_id:convocore_crawler_jobs_active:sum",
        "workspace_id:convocore_crawler_job_estimated_credits_active:sum",
        "workspace_id:convocore_crawler_credit_budget:max",
        "workspace_id_status:convocore_crawler_workspace_jobs:sum",
        "workspace_id:convocore_crawler_workspace_estimated_credits:sum",
        "workspace_id_agent_id_status:convocore_crawler_agent_jobs:sum",
        "workspace_id_agent_id:convocore_crawler_agent_estimated_credits:sum",
        "workspace_id_job_id:convocore_crawler_job_empty_pages:ratio",
        "workspace_id_job_id:convocore_crawler_job_pages_listed:scraped_rate15m",
    } <= used


def test_every_range_window_is_the_rate_interval(dashboard: dict[str, Any]) -> None:
    windows = 0
    for query in panel_queries(dashboard):
        for window in range_windows(query.expr):
            assert window == "$__rate_interval", query
            windows += 1
        if re.search(r"\b(rate|irate|increase|deriv)\(", query.expr):
            assert "[$__rate_interval]" in query.expr, query
    assert windows == 5


def test_queries_filter_on_the_variables(dashboard: dict[str, Any]) -> None:
    for query in panel_queries(dashboard):
        if query.panel == "Scrape duration":
            continue  # the exporter's own, not per workspace
        assert 'workspace_id=~"$workspace_id"' in query.expr, query


@pytest.mark.prometheus
def test_every_query_parses(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as a recording rule."""
    promtool = require_tool("promtool")
    queries = list(panel_queries(dashboard))
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard_query_{i}",
                        "expr": substitute(q.expr, OFFLINE_VARIABLES),
                    }
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout
