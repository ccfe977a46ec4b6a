"""End to end: the real Prometheus scrapes the exporter's demo with the shipped rules.

The exporter runs with ``--demo`` and Prometheus (the Debian binary) with a configuration
derived from prometheus/prometheus.yml: same rules and alerts, the target swapped for the
exporter's loopback port, and a 1 s scrape and evaluation interval so the test is quick. Every
wait polls with a generous bound; nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from .mixin import (
    ALERTS,
    PROMETHEUS_CONFIG,
    RULES,
    load_dashboard,
    load_yaml,
    panel_queries,
    recorded_names,
    substitute,
)
from .processes import Stack, running_stack
from .tools import require_tool

pytestmark = pytest.mark.prometheus

# Dashboard variables as a user would pick them; the rate interval spans several 1 s scrapes.
VARIABLES = {"workspace_id": "ws-demo", "job_id": ".*", "__rate_interval": "20s"}
RANGE_SECONDS = 30
LEGACY_FAILURE = (
    "Crawl aborted after 30 failed pages: https://legacy.example.com/x-0 answered HTTP 403 "
    "Forbidden (blocked by the site's firewall)"
)


def prometheus_config(exporter_address: str) -> dict[str, Any]:
    """The example configuration, pointed at the test's exporter and sped up."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    config["global"].update(
        {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    )
    assert config["rule_files"] == [RULES.name, ALERTS.name]
    config["rule_files"] = [str(RULES), str(ALERTS)]
    # No Alertmanager in this test: alerts are read from Prometheus's own API.
    del config["alerting"]
    (job,) = config["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["localhost:19417"]}]
    job["static_configs"] = [{"targets": [exporter_address]}]
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e"), prometheus_config) as result:
        yield result


def test_target_is_up(stack: Stack) -> None:
    def healthy_target() -> dict[str, Any] | None:
        (target,) = stack.api("targets", state="active")["activeTargets"]
        return target if target["health"] == "up" else None

    target = stack.wait_for("the exporter target to be up", healthy_target)
    assert target["labels"]["job"] == "convocore-crawler"
    assert target["scrapeUrl"] == f"{stack.exporter_url}/metrics"
    (up,) = stack.query('up{job="convocore-crawler"}')
    assert up["value"][1] == "1"


def value_of(stack: Stack, expr: str) -> float:
    (sample,) = stack.wait_for(expr, lambda: stack.query(expr) or None)
    return float(sample["value"][1])


def test_every_recording_rule_evaluates_and_returns_data(stack: Stack) -> None:
    def evaluated_rules() -> list[dict[str, Any]] | None:
        found = [
            rule for group in stack.api("rules", type="record")["groups"] for rule in group["rules"]
        ]
        return found if all(rule["health"] != "unknown" for rule in found) else None

    rules = stack.wait_for("every recording rule to be evaluated", evaluated_rules)
    assert {rule["name"] for rule in rules} == recorded_names()
    for rule in rules:
        assert rule["health"] == "ok", rule
        assert not rule.get("lastError"), rule
    for name in sorted(recorded_names()):
        stack.wait_for(f"data from {name}", lambda name=name: stack.query(name) or None)


def test_recording_rules_on_the_demo_data(stack: Stack) -> None:
    """Values fixed by the demo: finished jobs do not change, statuses do not either."""
    job = 'workspace_id="ws-demo", job_id="{}"'
    # job-help completed all 120 of its 120 pages; job-legacy failed 30 of 42 pages.
    progress = "workspace_id_job_id:convocore_crawler_job_progress:ratio"
    assert value_of(stack, f"{progress}{{{job.format('job-help')}}}") == 1
    failures = "workspace_id_job_id:convocore_crawler_job_page_failures:ratio"
    assert math.isclose(value_of(stack, f"{failures}{{{job.format('job-legacy')}}}"), 30 / 42)
    # Two jobs processing and one queued.
    assert (
        value_of(stack, 'workspace_id:convocore_crawler_jobs_active:sum{workspace_id="ws-demo"}')
        == 3
    )
    # The active jobs' credits are those of job-docs, job-blog and job-careers.
    active = value_of(
        stack,
        'workspace_id:convocore_crawler_job_estimated_credits_active:sum{workspace_id="ws-demo"}',
    )
    assert active == value_of(
        stack,
        "sum(convocore_crawler_job_estimated_credits"
        '{workspace_id="ws-demo", job_id=~"job-docs|job-blog|job-careers"})',
    )
    assert active > 0
    assert (
        value_of(stack, 'workspace_id:convocore_crawler_credit_budget:max{workspace_id="ws-demo"}')
        == 50000
    )
    # The totals of the demo's six jobs: two processing, one queued, one of each other status.
    by_status = "workspace_id_status:convocore_crawler_workspace_jobs:sum"
    statuses = {
        r["metric"]["status"]: float(r["value"][1])
        for r in stack.wait_for(by_status, lambda: stack.query(by_status) or None)
    }
    assert statuses == {
        "queued": 1,
        "processing": 2,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
    }
    credits = "workspace_id:convocore_crawler_workspace_estimated_credits:sum"
    assert value_of(stack, f'{credits}{{workspace_id="ws-demo"}}') == value_of(
        stack, 'sum(convocore_crawler_job_estimated_credits{workspace_id="ws-demo"})'
    )


def test_every_dashboard_query_parses_and_returns_data(stack: Stack) -> None:
    queries = list(panel_queries(load_dashboard()))
    assert queries
    for query in queries:
        expr = substitute(query.expr, VARIABLES)
        assert "$" not in expr, query

        def data(query: Any = query, expr: str = expr) -> list[Any] | None:
            if query.instant:
                result = stack.query(expr)
            else:
                end = time.time()
                result = stack.api(
                    "query_range",
                    query=expr,
                    start=f"{end - RANGE_SECONDS:.3f}",
                    end=f"{end:.3f}",
                    step="1",
                )["result"]
            return result or None

        stack.wait_for(f"data for {query}", data)


def test_failed_demo_job_raises_the_job_failed_alert(stack: Stack) -> None:
    def job_failed_alerts() -> list[dict[str, Any]] | None:
        alerts = [
            alert
            for alert in stack.api("alerts")["alerts"]
            if alert["labels"]["alertname"] == "ConvocoreCrawlerJobFailed"
        ]
        return alerts or None

    (alert,) = stack.wait_for("the job-failed alert", job_failed_alerts)
    assert alert["state"] in {"pending", "firing"}
    assert alert["labels"]["workspace_id"] == "ws-demo"
    assert alert["labels"]["job_id"] == "job-legacy"
    assert alert["labels"]["severity"] == "warning"
    # The description names the job through the info metric's friendly name, and quotes its
    # failure text.
    assert alert["annotations"]["description"] == (
        f'Job job-legacy (legacy-wiki) in workspace ws-demo has failed: "{LEGACY_FAILURE}". '
        "Resume or re-create the job, or remove it from the exporter's configuration, to clear "
        "this alert."
    )


def test_the_dashboard_agent_and_failure_queries_on_the_demo_data(stack: Stack) -> None:
    """job-docs feeds agent-support and agent-sales; job-blog (processing), job-pricing
    (cancelled) agent-sales; job-help (completed) and job-legacy (failed, through toAgentId
    alone) agent-support; job-careers none. The agents' columns come from the exporter's agent
    totals; every query is evaluated at one moment."""
    dashboard = load_dashboard()
    stack.wait_for(
        "the agent totals of the demo jobs",
        lambda: (
            len(stack.query("workspace_id_agent_id:convocore_crawler_agent_estimated_credits:sum"))
            == 2
            or None
        ),
    )
    at = f"{time.time():.3f}"

    def at_once(expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = stack.api("query", query=expr, time=at)["result"]
        return result

    def table(title: str) -> dict[str, list[dict[str, Any]]]:
        (panel,) = [p for p in dashboard["panels"] if p["title"] == title and p["type"] == "table"]
        return {t["refId"]: at_once(substitute(t["expr"], VARIABLES)) for t in panel["targets"]}

    agents = table("Agents")

    def by_agent(ref: str) -> dict[str, float]:
        return {r["metric"]["agent_id"]: float(r["value"][1]) for r in agents[ref]}

    assert by_agent("A") == {"agent-support": 3, "agent-sales": 3}
    assert by_agent("B") == {"agent-support": 1, "agent-sales": 2}
    assert by_agent("C") == {"agent-support": 1, "agent-sales": 0}
    assert by_agent("D") == {"agent-support": 250 + 120 + 12, "agent-sales": 250 + 1000 + 5}
    failed = table("Why jobs failed")
    assert [r["metric"] for r in failed["A"]] == [
        {"workspace_id": "ws-demo", "job_id": "job-legacy", "name": "legacy-wiki"}
    ]
    assert [r["metric"] for r in failed["B"]] == [
        {"workspace_id": "ws-demo", "job_id": "job-legacy", "result_error": LEGACY_FAILURE}
    ]
    assert [(r["metric"]["job_id"], r["value"][1]) for r in failed["C"]] == [("job-legacy", "30")]


def test_the_demo_help_center_raises_the_empty_pages_alert(stack: Stack) -> None:
    """job-help lists 123 pages, 90 of them empty (its site is rendered with JavaScript)."""
    ratio = "workspace_id_job_id:convocore_crawler_job_empty_pages:ratio"
    assert math.isclose(value_of(stack, f'{ratio}{{job_id="job-help"}}'), 90 / 123)
    assert value_of(stack, f'{ratio}{{job_id="job-blog"}}') == 0

    def empty_pages_alerts() -> list[dict[str, Any]] | None:
        alerts = [
            alert
            for alert in stack.api("alerts")["alerts"]
            if alert["labels"]["alertname"] == "ConvocoreCrawlerJobEmptyPages"
        ]
        return alerts or None

    (alert,) = stack.wait_for("the empty-pages alert", empty_pages_alerts)
    assert alert["state"] in {"pending", "firing"}
    assert alert["labels"]["job_id"] == "job-help"
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["description"].startswith(
        "73.17% of the pages that job job-help (help-center) in workspace ws-demo lists are empty"
    )


def test_promtool_check_metrics_passes_on_live_output(stack: Stack) -> None:
    promtool = require_tool("promtool")
    exposition = requests.get(f"{stack.exporter_url}/metrics", timeout=30)
    assert exposition.status_code == 200
    assert 'convocore_crawler_up{workspace_id="ws-demo",job_id="job-legacy"} 1' in exposition.text
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
