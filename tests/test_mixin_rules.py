"""The recording rules and alerts: valid for promtool, unit-tested, and complete."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .mixin import (
    ALERTS,
    BUDGET_SERIES,
    PROMETHEUS_CONFIG,
    PROMETHEUS_SD_CONFIG,
    ROOT,
    RULE_TESTS,
    RULES,
    alert_rules,
    exporter_metric_names,
    known_names,
    load_yaml,
    metric_names_in,
    recorded_names,
    recording_rules,
)
from .tools import require_tool, run

# level:metric:operations, the level naming the labels the result is kept by.
RECORDING_NAME = re.compile(
    r"^(workspace_id_job_id|workspace_id|workspace_id_status|workspace_id_agent_id"
    r"|workspace_id_agent_id_status):convocore_crawler_[a-z0-9_]+:[a-z0-9_]+$"
)

EXPECTED_ALERTS = {
    "ConvocoreCrawlerJobFailed",
    "ConvocoreCrawlerFailedJobsPastHorizon",
    "ConvocoreCrawlerJobStalled",
    "ConvocoreCrawlerJobHighPageFailureRatio",
    "ConvocoreCrawlerJobEmptyPages",
    "ConvocoreCrawlerWorkspaceCreditsOverBudget",
    "ConvocoreCrawlerJobQueuedTooLong",
    "ConvocoreCrawlerAPIUnreachable",
    "ConvocoreCrawlerDiscoveryFailing",
    "ConvocoreCrawlerRateLimited",
    "ConvocoreCrawlerDataStale",
    "ConvocoreCrawlerExporterDown",
    "ConvocoreCrawlerConfigReloadFailed",
}


def unit_tests() -> list[dict[str, Any]]:
    return [case for path in RULE_TESTS for case in load_yaml(path)["tests"]]


@pytest.mark.prometheus
def test_promtool_check_rules_passes_without_findings() -> None:
    promtool = require_tool("promtool")
    result = run(promtool, "check", "rules", str(RULES), str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    # rules.yml (1 budget + 12 recording rules) and alerts.yml (13 alerts)
    assert result.stdout.count("SUCCESS: 13 rules found") == 2
    assert "duplicate" not in (result.stdout + result.stderr).lower()


@pytest.mark.prometheus
def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    assert len(RULE_TESTS) == 2
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


@pytest.mark.prometheus
def test_promtool_unit_tests_fail_on_a_wrong_value(tmp_path: Path) -> None:
    """The unit tests compare exact values: one wrong expectation makes promtool fail."""
    promtool = require_tool("promtool")
    source = next(path for path in RULE_TESTS if path.name == "rules_test.yml")
    text = source.read_text(encoding="utf-8")
    assert text.count("value: 3500\n") == 1
    broken = yaml.safe_load(text.replace("value: 3500\n", "value: 3501\n"))
    broken["rule_files"] = [str(RULES)]
    copy = tmp_path / "broken_test.yml"
    copy.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run(promtool, "test", "rules", str(copy))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert 'workspace_id="ws-a"} 3.501E+03' in output
    assert 'workspace_id="ws-a"} 3.5E+03' in output


def test_every_listed_alert_exists_with_severity_summary_and_templated_description() -> None:
    alerts = alert_rules()
    assert {rule["alert"] for rule in alerts} == EXPECTED_ALERTS
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description"}, rule["alert"]
        assert annotations["summary"].strip(), rule["alert"]
        assert "{{ $labels." in annotations["description"], rule["alert"]


def test_recording_rules_follow_the_naming_convention() -> None:
    names = [rule["record"] for rule in recording_rules()]
    assert BUDGET_SERIES in names
    for name in names:
        if name != BUDGET_SERIES:
            assert RECORDING_NAME.match(name), name


def test_rules_read_only_exporter_metrics_and_other_rules() -> None:
    known = known_names() | {"up"}
    for rule in recording_rules() + alert_rules():
        used = metric_names_in(rule["expr"])
        if rule.get("alert") == "ConvocoreCrawlerExporterDown":
            assert used == set()  # reads Prometheus's own `up`
            assert rule["expr"].startswith("up{")
            continue
        if rule.get("record") == BUDGET_SERIES:
            assert used == set()  # a constant
            continue
        assert used, rule
        assert used <= known, used - known


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in unit_tests():
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    assert firing == EXPECTED_ALERTS
    assert silent == EXPECTED_ALERTS


def test_every_recording_rule_has_its_value_tested() -> None:
    tested: set[str] = set()
    for case in unit_tests():
        for check in case.get("promql_expr_test", []):
            assert check["exp_samples"], check["expr"]
            tested.update(metric_names_in(check["expr"]))
    assert recorded_names() <= tested


def test_unit_tests_feed_only_series_the_exporter_serves() -> None:
    """Input series are exporter metrics, the budget a user sets, or Prometheus's `up`."""
    allowed = exporter_metric_names() | {BUDGET_SERIES, "up"}
    for case in unit_tests():
        names = {series["series"].split("{", 1)[0] for series in case["input_series"]}
        assert names <= allowed, names - allowed


def shipped_scrape_jobs() -> list[str]:
    """The Prometheus job name of every way this repository scrapes the exporter."""
    names = [
        job["job_name"]
        for path in (
            PROMETHEUS_CONFIG,
            PROMETHEUS_SD_CONFIG,
            ROOT / "deploy/compose/prometheus.yml",
        )
        for job in load_yaml(path)["scrape_configs"]
    ]
    # The Prometheus Operator names a ServiceMonitor's job after the Service.
    for service in sorted((ROOT / "deploy" / "kubernetes").rglob("service.yaml")):
        names.append(load_yaml(service)["metadata"]["name"])
    return names


@pytest.mark.prometheus
def test_exporter_down_by_default_covers_every_shipped_scrape_job(tmp_path: Path) -> None:
    """With the default exporterSelector the alert fires for each scrape job the examples and
    manifests define, and not for another exporter's job."""
    promtool = require_tool("promtool")
    jobs = shipped_scrape_jobs()
    assert sorted(set(jobs)) == [
        "convocore-crawler",
        "convocore-crawler-exporter",
        "convocore-crawler-exporter-shard",
        "convocore-crawler-probe",
    ]
    others = ["node", "crawler", "my-convocore-crawler"]
    expected = [
        {
            "exp_labels": {"severity": "critical", "instance": f"{job}:1", "job": job},
            "exp_annotations": {
                "summary": "Prometheus cannot scrape the Convocore crawler exporter.",
                "description": f"Prometheus has failed to scrape {job}:1 (scrape job {job}) "
                "for 5 minutes; no crawler job is being watched there.",
            },
        }
        for job in sorted(set(jobs))
    ]
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'up{{instance="{job}:1",job="{job}"}}', "values": "0x10"}
                    for job in sorted(set(jobs)) + others
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "ConvocoreCrawlerExporterDown",
                        "exp_alerts": expected,
                    }
                ],
            }
        ],
    }
    path = tmp_path / "selector_test.yml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    result = run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
