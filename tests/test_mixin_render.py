"""The monitoring mixin (mixin/) is the one source of the rule files, the dashboard and the
PrometheusRule: the committed files are exactly what scripts/render_mixin.py renders, and the
script answers bad settings clearly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from .mixin import MIXIN_DIR, RENDER_SCRIPT, ROOT, renderer


@cache
def rendered() -> dict[str, str]:
    result: dict[str, str] = renderer().render()
    return result


def run_script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RENDER_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_the_mixin_renders_the_four_committed_files() -> None:
    assert set(rendered()) == set(renderer().COMMITTED)
    assert {str(p) for p in renderer().COMMITTED.values()} == {
        "prometheus/alerts.yml",
        "prometheus/rules.yml",
        "grafana/dashboards/convocore-crawler.json",
        "deploy/kubernetes/common/prometheusrule.yaml",
    }


@pytest.mark.parametrize("name", sorted(renderer().COMMITTED))
def test_committed_file_is_byte_identical_to_what_the_mixin_renders(name: str) -> None:
    path = renderer().COMMITTED[name]
    committed = (ROOT / path).read_text(encoding="utf-8")
    assert committed == rendered()[name], f"{path}: run python scripts/render_mixin.py"


@pytest.mark.integration
def test_check_passes_on_the_repository() -> None:
    result = run_script("--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_names_each_file_that_drifted(tmp_path: Path) -> None:
    stale = renderer().stale
    for path in renderer().COMMITTED.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, tmp_path / path)
    assert stale(tmp_path) == []
    alerts = tmp_path / "prometheus" / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("for: 1m\n", "for: 2m\n", 1))
    (tmp_path / "grafana" / "dashboards" / "convocore-crawler.json").unlink()
    assert stale(tmp_path) == [
        Path("prometheus/alerts.yml"),
        Path("grafana/dashboards/convocore-crawler.json"),
    ]


def test_rendered_files_hold_exactly_what_jsonnet_evaluates() -> None:
    """The YAML and JSON formatting (folded text, literal expressions) loses nothing."""
    evaluated = renderer().evaluate()
    files = rendered()
    assert yaml.safe_load(files["alerts.yml"]) == evaluated["alerts"]
    assert yaml.safe_load(files["rules.yml"]) == evaluated["rules"]
    assert (
        json.loads(files["convocore-crawler.json"])
        == (evaluated["dashboards"]["convocore-crawler.json"])
    )
    rule = yaml.safe_load(files["prometheusrule.yaml"])
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == evaluated["rules"]["groups"] + evaluated["alerts"]["groups"]


def test_rules_read_in_the_usual_key_order_with_expressions_as_blocks() -> None:
    text = rendered()["alerts.yml"]
    start = text.index("      - alert: ConvocoreCrawlerJobStalled\n")
    block = text[start : text.index("\n\n", start)].splitlines()
    keys = [
        line.strip().split(":")[0]
        for line in block
        if line.startswith("        ") and ":" in line and not line.startswith("         ")
    ]
    assert keys == ["expr", "labels", "annotations"]
    assert block[1] == "        expr: |"
    assert "          description: >-" in block
    assert text.startswith("# Alerts for the Convocore crawler exporter. Needs rules.yml")
    assert "\n# Settings:" not in text  # the repository's files use the defaults


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("creditBudget=20000", (["creditBudget"], 20000)),
        ("pageFailureRatio=0.35", (["pageFailureRatio"], 0.35)),
        ("creditBudget=null", (["creditBudget"], None)),
        ("jobFailedFor=15m", (["jobFailedFor"], "15m")),
        ('exporterSelector=job="crawler"', (["exporterSelector"], 'job="crawler"')),
        ('dashboardTags=["a", "b"]', (["dashboardTags"], ["a", "b"])),
        ("workspaceCreditBudgets.ws-1=500", (["workspaceCreditBudgets", "ws-1"], 500)),
        ("dashboardTitle=", (["dashboardTitle"], "")),
    ],
)
def test_set_reads_json_else_a_string(item: str, expected: tuple[list[str], Any]) -> None:
    assert renderer().parse_set(item) == expected


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "creditBudgt=1"],
            "render_mixin: unknown setting(s) creditBudgt; the settings are: ",
        ),
        (
            ["--set", "jobFailedFor=10"],
            "render_mixin: convocore-crawler mixin: _config.jobFailedFor: expected a duration "
            "such as 90s, 15m or 1h30m (units w, d, h, m, s), got 10",
        ),
        (
            ["--set", "jobStalledAfter=30m1h"],
            "_config.jobStalledAfter: expected a duration such as 90s, 15m or 1h30m",
        ),
        (
            ["--set", "pageFailureRatio=1.5"],
            "render_mixin: convocore-crawler mixin: _config.pageFailureRatio: expected a number "
            "from 0 to 1, got 1.5",
        ),
        (
            ["--set", "workspaceCreditBudgets.ws-1=lots"],
            "_config.workspaceCreditBudgets: expected an object of numbers of at least 0 by "
            'workspace id, got {"ws-1":"lots"}',
        ),
        (
            ["--set", "exporterSelector="],
            '_config.exporterSelector: expected a non-empty string, got ""',
        ),
        (["--set", "creditBudget"], "--set 'creditBudget': expected KEY=VALUE"),
    ],
)
def test_bad_settings_get_a_clear_answer_and_write_nothing(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_script(*args, "--out", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.integration
def test_unknown_setting_lists_every_setting(tmp_path: Path) -> None:
    result = run_script("--set", "creditBudgt=1", "--out", str(tmp_path))
    listed = result.stderr.split("the settings are: ", 1)[1].strip().split(", ")
    assert listed == sorted(renderer().defaults())
    assert "creditBudget" in listed


@pytest.mark.integration
def test_settings_without_out_are_refused_and_the_repository_untouched() -> None:
    before = {p: (ROOT / p).read_bytes() for p in renderer().COMMITTED.values()}
    result = run_script("--set", "creditBudget=1")
    assert result.returncode == 2
    assert "--config and --set need --out DIR" in result.stderr
    assert {p: (ROOT / p).read_bytes() for p in before} == before


@pytest.mark.integration
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected an object of settings, got [1, 2]"),
        ("{creditBudget:", "STATIC ERROR"),
    ],
)
def test_a_bad_config_file_is_named(content: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "settings.jsonnet"
    config.write_text(content)
    result = run_script("--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"render_mixin: {config}: ")
    assert message in result.stderr


@pytest.mark.integration
def test_out_writes_every_file_and_names_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"creditBudget": 20000, "workspaceCreditBudgets": {"ws-1": 5}}))
    out = tmp_path / "out"
    result = run_script(
        "--config", str(config), "--set", "workspaceCreditBudgets.ws-2=7", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    names = ["alerts.yml", "rules.yml", "convocore-crawler.json", "prometheusrule.yaml"]
    assert result.stdout.splitlines() == [str(out / name) for name in names]
    settings = (
        '# Settings: {"creditBudget": 20000, "workspaceCreditBudgets": {"ws-1": 5, "ws-2": 7}}\n'
    )
    for name in ["alerts.yml", "rules.yml", "prometheusrule.yaml"]:
        assert settings in (out / name).read_text(), name
    (settings_group, _) = yaml.safe_load((out / "rules.yml").read_text())["groups"]
    assert settings_group == {
        "name": "convocore-crawler-settings",
        "rules": [
            {"record": "convocore_crawler_credit_budget", "expr": "vector(20000)"},
            {
                "record": "convocore_crawler_credit_budget",
                "expr": "vector(5)",
                "labels": {"workspace_id": "ws-1"},
            },
            {
                "record": "convocore_crawler_credit_budget",
                "expr": "vector(7)",
                "labels": {"workspace_id": "ws-2"},
            },
        ],
    }


def test_no_default_budget_and_none_of_its_own_leaves_the_settings_group_out() -> None:
    groups = renderer().evaluate({"creditBudget": None})["rules"]["groups"]
    assert [group["name"] for group in groups] == ["convocore-crawler.rules"]


# The jsonnet side: what jsonnet-bundler and kube-prometheus users import ------------------


def evaluate(snippet: str) -> Any:
    import _jsonnet

    return json.loads(
        _jsonnet.evaluate_snippet("snippet.jsonnet", snippet, jpathdir=[str(MIXIN_DIR)])
    )


def test_mixin_has_only_hidden_fields_in_the_monitoring_mixins_layout() -> None:
    assert evaluate("import 'mixin.libsonnet'") == {}
    assert evaluate("std.objectFieldsAll(import 'mixin.libsonnet')") == [
        "_config",
        "grafanaDashboards",
        "prometheusAlerts",
        "prometheusRules",
    ]
    for part in ["config.libsonnet", "alerts", "rules", "dashboards", "jsonnetfile.json"]:
        assert (MIXIN_DIR / part).exists(), part
    bundle = json.loads((MIXIN_DIR / "jsonnetfile.json").read_text())
    assert bundle == {"version": 1, "dependencies": [], "legacyImports": True}


def test_mixin_imports_only_its_own_files() -> None:
    """Plain jsonnet, no vendored libraries: every import is a file inside mixin/."""
    import re

    sources = list(MIXIN_DIR.rglob("*.libsonnet"))
    assert len(sources) >= 6
    for source in sources:
        for target in re.findall(r"import '([^']+)'", source.read_text()):
            resolved = (source.parent / target).resolve()
            assert resolved.is_file(), (source, target)
            assert resolved.is_relative_to(MIXIN_DIR), (source, target)


def test_config_overrides_follow_jsonnet_inheritance() -> None:
    expr = evaluate(
        "local m = (import 'mixin.libsonnet') + { _config+:: { exporterSelector: 'job=\"x\"' } };"
        "[r.expr for r in m.prometheusAlerts.groups[0].rules"
        " if r.alert == 'ConvocoreCrawlerExporterDown']"
    )
    assert expr == ['up{job="x"} == 0']
