"""What the monitoring tests share: the rule, alert and dashboard files, read once."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from exporter.exposition import metrics

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_SD_CONFIG = PROMETHEUS_DIR / "prometheus-sd.yml"
ALERTMANAGER_CONFIG = PROMETHEUS_DIR / "alertmanager.yml"
GRAFANA_DIR = ROOT / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "convocore-crawler.json"
MIXIN_DIR = ROOT / "mixin"
RENDER_SCRIPT = ROOT / "scripts" / "render_mixin.py"

# The credit budget: a constant series set in rules.yml, never served by the exporter.
BUDGET_SERIES = "convocore_crawler_credit_budget"

_RECORDED_NAME = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*[a-zA-Z0-9_]")
_EXPORTER_NAME = re.compile(r"\bconvocore_crawler_[a-z0-9_]+\b")
_RANGE = re.compile(r"\[([^\]]*)\]")


@cache
def renderer() -> ModuleType:
    """scripts/render_mixin.py, which renders the mixin into the files above."""
    spec = importlib.util.spec_from_file_location("render_mixin", RENDER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(path)["groups"] for rule in group["rules"]]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules(RULES) if "record" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in recording_rules()}


def alert_rules() -> list[dict[str, Any]]:
    return rules(ALERTS)


def exporter_metric_names() -> set[str]:
    """Every series name the exporter serves, histogram parts included."""
    names: set[str] = set()
    for definition in metrics.ALL:
        if definition.type == "histogram":
            names.update(definition.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        elif definition.type == "gaugehistogram":
            names.update(definition.name + suffix for suffix in ("_bucket", "_gsum", "_gcount"))
        else:
            names.add(definition.name)
    return names


def known_names() -> set[str]:
    return exporter_metric_names() | recorded_names() | {BUDGET_SERIES}


def metric_names_in(expr: str) -> set[str]:
    """The exporter series and recording rules a PromQL expression reads."""
    recorded = set(_RECORDED_NAME.findall(expr))
    rest = _RECORDED_NAME.sub(" ", expr)
    return recorded | set(_EXPORTER_NAME.findall(rest))


def range_windows(expr: str) -> list[str]:
    return _RANGE.findall(expr)


def load_dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return result


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that show data (rows only group them)."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.panel!r} query {self.ref_id}"


def panel_queries(dashboard: dict[str, Any]) -> Iterator[PanelQuery]:
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            yield PanelQuery(
                panel["title"], target["refId"], target["expr"], bool(target.get("instant"))
            )


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variable interpolation for the variables the dashboard uses."""
    # Longest names first, so $job_id is not taken for a prefix of another name.
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    return expr
