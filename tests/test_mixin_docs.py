"""docs/alerting.md agrees with the mixin: its tables with the settings, the alerts and the
rules, and its commands and jsonnet examples run as written."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .mixin import (
    BUDGET_SERIES,
    MIXIN_DIR,
    RENDER_SCRIPT,
    ROOT,
    alert_rules,
    recorded_names,
    renderer,
)

DOC = (ROOT / "docs" / "alerting.md").read_text(encoding="utf-8")
REPOSITORY = "github.com/convocore-crawler-exporter/convocore-crawler-exporter"


def section(title: str) -> str:
    return DOC.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def test_settings_table_lists_every_setting_with_its_default() -> None:
    rows = table_rows(section("Settings"))
    documented = {row[0].strip("`"): json.loads(row[1].strip("`")) for row in rows}
    assert documented == renderer().defaults()


def shown(key: str, value: Any) -> str:
    """A default as the alerts table shows it."""
    if key == "exporterSelector":
        return f"`{value}`"
    return value if isinstance(value, str) else json.dumps(value)


def test_alerts_table_names_every_alert_its_severity_and_settings() -> None:
    rows = table_rows(section("The alerts"))
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in alert_rules()}
    assert {row[0].strip("`"): row[1] for row in rows} == severities
    defaults = renderer().defaults()
    mentioned: set[str] = set()
    for row in rows:
        for key in re.findall(r"`(\w+)` \(", row[3]):
            assert f"`{key}` ({shown(key, defaults[key])})" in row[3], row[0]
            mentioned.add(key)
    assert mentioned == {key for key in defaults if not key.startswith("dashboard")}


def test_recording_rules_table_names_every_rule() -> None:
    rows = table_rows(section("Recording rules"))
    assert {row[0].strip("`") for row in rows} == recorded_names() - {BUDGET_SERIES}


def documented_command(text: str, out: Path) -> list[str]:
    """The render command of a ```sh block, run against this checkout, writing into out."""
    (block,) = [b for b in code_blocks(text, "sh") if "scripts/render_mixin.py --out" in b]
    command = block.split("\n", 1)[1] if block.startswith("pip install") else block
    args = shlex.split(command.replace("\\\n", " "))
    assert args[:3] == ["python", "scripts/render_mixin.py", "--out"]
    return [sys.executable, str(RENDER_SCRIPT), "--out", str(out), *args[4:]]


@pytest.mark.integration
def test_the_command_without_jsonnet_renders_with_the_settings(tmp_path: Path) -> None:
    out = tmp_path / "my-monitoring"
    command = documented_command(section("Your own settings without jsonnet"), out)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "alerts.yml",
        "convocore-crawler.json",
        "prometheusrule.yaml",
        "rules.yml",
    ]
    alerts = {
        rule["alert"]: rule
        for group in yaml.safe_load((out / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert alerts["ConvocoreCrawlerExporterDown"]["expr"] == 'up{job="crawler"} == 0'
    assert alerts["ConvocoreCrawlerJobFailed"]["for"] == "10m"
    assert "ratio > 0.3\n" in alerts["ConvocoreCrawlerJobHighPageFailureRatio"]["expr"]


@pytest.mark.integration
def test_the_budget_example_shows_what_its_command_renders(tmp_path: Path) -> None:
    text = section("Setting the credit budget")
    out = tmp_path / "my-rules"
    result = subprocess.run(
        documented_command(text, out), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    (shown_yaml,) = code_blocks(text, "yaml")
    assert shown_yaml in (out / "rules.yml").read_text()


def jb_vendor(tmp_path: Path) -> Path:
    """A vendor directory laid out as `jb install` of the mixin lays it out."""
    vendor = tmp_path / "vendor"
    target = vendor / REPOSITORY / "mixin"
    target.parent.mkdir(parents=True)
    target.symlink_to(MIXIN_DIR, target_is_directory=True)
    return vendor


@pytest.mark.slow
def test_the_jsonnet_bundler_example_renders_the_mixin_with_its_settings(tmp_path: Path) -> None:
    """The settings file and the three jsonnet commands of the docs, evaluated as the jsonnet
    command line would (-J vendor; -S: the string as is; -m: one JSON file per field)."""
    import _jsonnet

    text = section("With jsonnet-bundler")
    (settings,) = code_blocks(text, "jsonnet")
    assert f"(import '{REPOSITORY}/mixin/mixin.libsonnet')" in settings
    (tmp_path / "crawler.libsonnet").write_text(settings)
    vendor = jb_vendor(tmp_path)
    (commands,) = [b for b in code_blocks(text, "sh") if "jsonnet -J vendor" in b]
    files: dict[str, Any] = {}
    for line in commands.splitlines():
        args = shlex.split(line)
        assert args[:3] == ["jsonnet", "-J", "vendor"], line
        expression = args[args.index("-e") + 1]
        value = json.loads(
            _jsonnet.evaluate_snippet(str(tmp_path / "-e"), expression, jpathdir=[str(vendor)])
        )
        if "-S" in args:
            assert args[-2] == ">", line
            files[args[-1]] = yaml.safe_load(value)
        else:
            directory = args[args.index("-m") + 1]
            files.update({f"{directory}/{name}": content for name, content in value.items()})
    assert sorted(files) == ["alerts.yml", "dashboards/convocore-crawler.json", "rules.yml"]
    expected = renderer().evaluate({"exporterSelector": 'job="crawler"', "creditBudget": 20000})
    assert files["alerts.yml"] == expected["alerts"]
    assert files["rules.yml"] == expected["rules"]
    assert (
        files["dashboards/convocore-crawler.json"]
        == (expected["dashboards"]["convocore-crawler.json"])
    )


def test_the_kube_prometheus_example_imports_the_mixin_as_jb_installs_it() -> None:
    (example,) = code_blocks(section("With kube-prometheus"), "jsonnet")
    assert f"(import '{REPOSITORY}/mixin/mixin.libsonnet')" in example
    assert "kube-prometheus/lib/mixin.libsonnet" in example


def test_the_readme_points_here() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # A full URL, as every link of the README to the docs (PyPI shows the README too).
    homepage = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    assert f"[alerting]: {homepage}/blob/main/docs/alerting.md" in readme.splitlines()
    assert "[alerts and dashboards][alerting]" in readme
    assert "scripts/render_mixin.py" in readme
