"""The example Prometheus, Alertmanager and Grafana provisioning files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .mixin import (
    ALERTMANAGER_CONFIG,
    GRAFANA_DIR,
    PROMETHEUS_CONFIG,
    PROMETHEUS_SD_CONFIG,
    alert_rules,
    load_yaml,
)
from .tools import require_tool, run


@pytest.mark.prometheus
@pytest.mark.parametrize("config", [PROMETHEUS_CONFIG, PROMETHEUS_SD_CONFIG], ids=lambda p: p.name)
def test_promtool_check_config_passes(config: Path) -> None:
    promtool = require_tool("promtool")
    result = run(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout
    # rules.yml (1 budget + 12 recording rules) and alerts.yml (13 alerts)
    assert result.stdout.count("SUCCESS: 13 rules found") == 2


@pytest.mark.parametrize("config", [PROMETHEUS_CONFIG, PROMETHEUS_SD_CONFIG], ids=lambda p: p.name)
def test_prometheus_examples_load_the_rules_and_send_alerts_to_alertmanager(config: Path) -> None:
    loaded = load_yaml(config)
    assert loaded["rule_files"] == ["rules.yml", "alerts.yml"]
    assert loaded["alerting"]["alertmanagers"] == [
        {"static_configs": [{"targets": ["localhost:9093"]}]}
    ]


def test_plain_example_scrapes_the_exporter_on_its_default_port() -> None:
    (job,) = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
    assert job["job_name"] == "convocore-crawler"
    assert job["static_configs"] == [{"targets": ["localhost:19417"]}]
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_sd_example_probes_each_discovered_job() -> None:
    probe, own = load_yaml(PROMETHEUS_SD_CONFIG)["scrape_configs"]
    assert probe["metrics_path"] == "/probe"
    assert probe["http_sd_configs"] == [
        {"url": "http://localhost:19417/sd", "refresh_interval": "5m"}
    ]
    # Targets share the exporter's address, so each is named after its job.
    assert probe["relabel_configs"] == [
        {
            "source_labels": ["__param_workspace_id", "__param_job_id"],
            "separator": "/",
            "target_label": "instance",
        }
    ]
    text = PROMETHEUS_SD_CONFIG.read_text(encoding="utf-8")
    assert "#   action: hashmod" in text
    assert own["static_configs"] == [{"targets": ["localhost:19417"]}]
    assert own.get("metrics_path", "/metrics") == "/metrics"


@pytest.mark.prometheus
def test_amtool_check_config_passes() -> None:
    amtool = require_tool("amtool")
    result = run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert " - 2 receivers" in result.stdout


@pytest.mark.prometheus
@pytest.mark.parametrize("alert", alert_rules(), ids=lambda rule: rule["alert"])
def test_alertmanager_routes_each_alert_by_severity(alert: dict[str, Any]) -> None:
    amtool = require_tool("amtool")
    severity = alert["labels"]["severity"]
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"alertname={alert['alert']}",
        f"severity={severity}",
        "workspace_id=ws-a",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = {"critical": "pager", "warning": "warnings"}[severity]
    assert result.stdout.strip() == expected


def test_grafana_datasource_provisioning() -> None:
    loaded = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    assert loaded["apiVersion"] == 1
    (source,) = loaded["datasources"]
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    assert source["url"] == "http://localhost:9090"
    # Same as the scrape interval of the example prometheus.yml, for $__rate_interval.
    assert (
        source["jsonData"]["timeInterval"]
        == load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    )


def test_grafana_dashboard_provisioning() -> None:
    loaded = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    assert loaded["apiVersion"] == 1
    (provider,) = loaded["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
