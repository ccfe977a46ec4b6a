"""The mixin rendered with other settings: the alerts, the budget and the dashboard follow them.

tests/data/mixin-custom/settings.json changes the scrape job selector, thresholds, budgets and
`for` durations; alerts_test.yml beside it holds promtool unit tests written for those
settings. They pass on that rendering and fail on the default one exactly where the settings
make the difference.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .mixin import ALERTS, RENDER_SCRIPT, ROOT, RULES, load_yaml
from .tools import require_tool, run

CUSTOM = ROOT / "tests" / "data" / "mixin-custom"
SETTINGS = CUSTOM / "settings.json"
UNIT_TESTS = CUSTOM / "alerts_test.yml"

# Where the default rendering must fail these unit tests: (alert, evaluation time).
DIFFERS_FROM_DEFAULT = {
    # fires under the new job name after 2m; the default waits 5m and matches the old name
    ("ConvocoreCrawlerExporterDown", "2m"),
    ("ConvocoreCrawlerExporterDown", "8m"),
    # `for` 10m instead of 1m
    ("ConvocoreCrawlerJobFailed", "9m"),
    # above 0.5 of 10 pages for 5m, instead of 0.2 of 20 pages for 15m
    ("ConvocoreCrawlerJobHighPageFailureRatio", "6m"),
    ("ConvocoreCrawlerJobHighPageFailureRatio", "20m"),
    # a budget of 1,000 and one of 100,000 for ws-big, instead of 50,000 for all
    ("ConvocoreCrawlerWorkspaceCreditsOverBudget", "4m"),
    ("ConvocoreCrawlerWorkspaceCreditsOverBudget", "10m"),
    # stale after 30 minutes instead of an hour
    ("ConvocoreCrawlerDataStale", "31m"),
}


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mixin rendered with the custom settings, by the documented command."""
    out = tmp_path_factory.mktemp("custom")
    result = run(sys.executable, str(RENDER_SCRIPT), "--config", str(SETTINGS), "--out", str(out))
    assert result.returncode == 0, result.stderr
    shutil.copyfile(UNIT_TESTS, out / UNIT_TESTS.name)
    return out


def alerts_by_name(path: Path) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in load_yaml(path)["groups"] for rule in group["rules"]}


@pytest.mark.integration
def test_settings_change_the_expressions_and_durations(custom: Path) -> None:
    alerts = alerts_by_name(custom / "alerts.yml")
    defaults = alerts_by_name(ALERTS)
    assert alerts["ConvocoreCrawlerExporterDown"]["expr"] == 'up{job="crawlers"} == 0'
    assert defaults["ConvocoreCrawlerExporterDown"]["expr"] == 'up{job=~"convocore-crawler.*"} == 0'
    assert alerts["ConvocoreCrawlerJobFailed"]["for"] == "10m"
    assert alerts["ConvocoreCrawlerDataStale"]["expr"] == (
        "time() - convocore_crawler_last_success_timestamp_seconds > 1800"
    )
    assert alerts["ConvocoreCrawlerJobHighPageFailureRatio"]["expr"] == (
        "workspace_id_job_id:convocore_crawler_job_page_failures:ratio > 0.5\n"
        "and\n"
        "(convocore_crawler_job_scraped_pages + convocore_crawler_job_failed_pages) >= 10\n"
    )
    # What the settings leave alone stays as it is by default.
    for name in ["ConvocoreCrawlerJobStalled", "ConvocoreCrawlerRateLimited"]:
        assert alerts[name] == defaults[name]


@pytest.mark.integration
@pytest.mark.prometheus
def test_promtool_accepts_the_custom_rendering(custom: Path) -> None:
    promtool = require_tool("promtool")
    result = run(promtool, "check", "rules", "rules.yml", "alerts.yml", cwd=custom)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 14 rules found" in result.stdout  # 2 budgets + 12 recording rules
    assert "SUCCESS: 13 rules found" in result.stdout


@pytest.mark.integration
@pytest.mark.prometheus
def test_unit_tests_for_the_settings_pass_on_the_custom_rendering(custom: Path) -> None:
    promtool = require_tool("promtool")
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=custom)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.prometheus
def test_the_same_unit_tests_fail_on_the_default_rendering(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    for path in (RULES, ALERTS, UNIT_TESTS):
        shutil.copyfile(path, tmp_path / path.name)
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    failed = set(re.findall(r"alertname: (\w+), time: (\w+),", output))
    assert failed == DIFFERS_FROM_DEFAULT, output


def test_unit_tests_cover_every_alert_the_settings_touch() -> None:
    tested = {
        check["alertname"]
        for case in load_yaml(UNIT_TESTS)["tests"]
        for check in case["alert_rule_test"]
    }
    assert tested == {name for name, _ in DIFFERS_FROM_DEFAULT}


@pytest.mark.integration
def test_the_prometheusrule_carries_the_same_groups(custom: Path) -> None:
    rule = yaml.safe_load((custom / "prometheusrule.yaml").read_text())
    assert rule["spec"]["groups"] == (
        load_yaml(custom / "rules.yml")["groups"] + load_yaml(custom / "alerts.yml")["groups"]
    )


@pytest.mark.integration
def test_the_dashboard_follows_the_settings(custom: Path) -> None:
    dashboard = json.loads((custom / "convocore-crawler.json").read_text())
    assert dashboard["uid"] == "crawlers"
    assert dashboard["title"] == "Crawlers"
    assert dashboard["tags"] == ["crawl"]
    assert dashboard["refresh"] == "5m"
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    assert panels["Page failure ratio"]["description"].endswith(
        "The ConvocoreCrawlerJobHighPageFailureRatio alert fires above 50% once a job has "
        "tried 10 pages."
    )
    assert panels["Data age"]["description"].endswith(
        "the ConvocoreCrawlerDataStale alert fires past 30 minutes."
    )
    (table,) = [p for p in dashboard["panels"] if p["type"] == "table" and p["title"] == "Jobs"]
    (ratio,) = [
        override["properties"][0]["value"]["steps"]
        for override in table["fieldConfig"]["overrides"]
        if override["matcher"]["options"] == "Failure ratio"
        and override["properties"][0]["id"] == "thresholds"
    ]
    assert ratio == [
        {"color": "green", "value": None},
        {"color": "orange", "value": 0.25},
        {"color": "red", "value": 0.5},
    ]
