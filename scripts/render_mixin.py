#!/usr/bin/env python3
"""Render the monitoring mixin (mixin/) into rule files, a dashboard and a PrometheusRule.

The mixin is the one source of the alerts, the recording rules and the Grafana dashboard.
This script evaluates it with the `jsonnet` package (pip install jsonnet pyyaml) and writes:

    alerts.yml              Prometheus alerting rules
    rules.yml               Prometheus recording rules (and the credit budget settings)
    convocore-crawler.json  the Grafana dashboard
    prometheusrule.yaml     both rule files as one PrometheusRule (Prometheus Operator)

Usage:

    python scripts/render_mixin.py            # rewrite the repository's files (default settings)
    python scripts/render_mixin.py --check    # exit 1 when one differs from what mixin/ renders
    python scripts/render_mixin.py --out DIR --set exporterSelector='job="crawler"'
    python scripts/render_mixin.py --out DIR --config my-settings.json

`--set KEY=VALUE` (repeatable) sets one setting of mixin/config.libsonnet; VALUE is read as JSON
when it is JSON (20000, 0.3, null, ["a","b"]) and as a string otherwise (15m, job="crawler").
`workspaceCreditBudgets.ws-123=20000` sets one entry of an object. `--config FILE` reads
settings from a JSON or jsonnet file holding an object; `--set` applies on top of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

try:
    import _jsonnet
except ImportError:  # reported when rendering: the script's --help works without it
    _jsonnet = None

ROOT = Path(__file__).resolve().parent.parent
MIXIN = ROOT / "mixin"

# Where each rendered file lives in the repository.
COMMITTED = {
    "alerts.yml": Path("prometheus/alerts.yml"),
    "rules.yml": Path("prometheus/rules.yml"),
    "convocore-crawler.json": Path("grafana/dashboards/convocore-crawler.json"),
    "prometheusrule.yaml": Path("deploy/kubernetes/common/prometheusrule.yaml"),
}

GENERATED = (
    "# Rendered from the monitoring mixin (mixin/) by scripts/render_mixin.py: do not edit.\n"
    "# docs/alerting.md describes each rule and how to render them with your own settings.\n"
)
HEADERS = {
    "alerts.yml": "# Alerts for the Convocore crawler exporter. Needs rules.yml loaded too.\n",
    "rules.yml": (
        "# Recording rules for the Convocore crawler exporter, shared by the alerts (alerts.yml)\n"
        "# and the Grafana dashboard, and the credit budget of each workspace.\n"
    ),
    "prometheusrule.yaml": (
        "# The recording rules and alerts for the Prometheus Operator.\n"
        "#\n"
        "# A Prometheus resource picks PrometheusRules by label (kube-prometheus-stack:\n"
        "# release: <its Helm release name>); add that label with kustomize if yours needs one.\n"
    ),
}

_SNIPPET = """
local mixin = (import 'mixin.libsonnet') + { _config+:: std.parseJson(std.extVar('settings')) };
{
  alerts: mixin.prometheusAlerts,
  rules: mixin.prometheusRules,
  dashboards: mixin.grafanaDashboards,
}
"""

# The order in which people read a rule's and a group's keys (jsonnet sorts them).
_KEY_ORDER = ["name", "interval", "limit", "record", "alert", "expr", "for", "keep_firing_for"]
_KEY_ORDER += ["labels", "annotations", "summary", "description", "rules"]


class SettingsError(Exception):
    """Settings the mixin cannot be rendered with; str() is what the user reads."""


def _evaluate(snippet: str, settings: dict[str, Any]) -> Any:
    if _jsonnet is None:
        raise SettingsError("rendering needs the jsonnet package: pip install jsonnet")
    try:
        text = _jsonnet.evaluate_snippet(
            str(MIXIN / "render.jsonnet"),
            snippet,
            jpathdir=[str(MIXIN)],
            ext_vars={"settings": json.dumps(settings)},
        )
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise SettingsError(first.removeprefix("RUNTIME ERROR: ")) from None
    return json.loads(text)


def defaults() -> dict[str, Any]:
    """The settings of mixin/config.libsonnet."""
    result: dict[str, Any] = _evaluate("(import 'mixin.libsonnet')._config", {})
    return result


def evaluate(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The mixin's alerts, rules and dashboards (by file name), as jsonnet evaluates them."""
    result: dict[str, Any] = _evaluate(_SNIPPET, settings or {})
    return result


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (_KEY_ORDER.index(k) if k in _KEY_ORDER else 99, k))
        return {key: _ordered(value[key]) for key in keys}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Block style, list items indented under their key; expressions as `|`, long text as `>-`."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else ">" if len(value) > 80 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _yaml(document: Any) -> str:
    text = yaml.dump(_ordered(document), Dumper=_Dumper, sort_keys=False, width=100)
    # A blank line between groups and between rules, as one would write them.
    lines: list[str] = []
    for line in text.splitlines():
        item = line.lstrip().startswith(("- name: ", "- alert: ", "- record: "))
        if item and lines and not lines[-1].endswith(":"):
            lines.append("")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _settings_line(settings: dict[str, Any]) -> str:
    if not settings:
        return ""
    return "# Settings: " + json.dumps(settings, sort_keys=True) + "\n"


def render(settings: dict[str, Any] | None = None) -> dict[str, str]:
    """File name -> text of every rendered file, with the given settings over the defaults."""
    settings = settings or {}
    rendered = evaluate(settings)
    head = _settings_line(settings)
    files = {
        "alerts.yml": HEADERS["alerts.yml"] + GENERATED + head + _yaml(rendered["alerts"]),
        "rules.yml": HEADERS["rules.yml"] + GENERATED + head + _yaml(rendered["rules"]),
    }
    for name, dashboard in rendered["dashboards"].items():
        files[name] = json.dumps(dashboard, indent=2) + "\n"
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "convocore-crawler-exporter",
            "labels": {"app.kubernetes.io/name": "convocore-crawler-exporter"},
        },
        "spec": {"groups": rendered["rules"]["groups"] + rendered["alerts"]["groups"]},
    }
    files["prometheusrule.yaml"] = (
        HEADERS["prometheusrule.yaml"] + "#\n" + GENERATED + head + _yaml(manifest)
    )
    return files


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_set(item: str) -> tuple[list[str], Any]:
    """`KEY=VALUE` or `KEY.SUBKEY=VALUE` -> the key path and the value (JSON, else a string)."""
    key, sep, text = item.partition("=")
    path = key.strip().split(".", 1)
    if not sep or not all(path):
        raise SettingsError(f"--set {item!r}: expected KEY=VALUE, for example creditBudget=20000")
    return path, _value(text)


def load_settings(config: Path | None = None, sets: Sequence[str] = ()) -> dict[str, Any]:
    """The settings of a --config file with the --set items applied on top, all checked to be
    settings the mixin has (a misspelt one would otherwise change nothing, silently)."""
    settings: dict[str, Any] = {}
    if config is not None:
        try:
            loaded = _evaluate(f"import {json.dumps(str(config.resolve()))}", {})
        except SettingsError as error:
            raise SettingsError(f"{config}: {error}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{config}: expected an object of settings, got {loaded!r}")
        settings.update(loaded)
    for item in sets:
        path, value = parse_set(item)
        if len(path) == 1:
            settings[path[0]] = value
        else:
            inner = settings.get(path[0])
            settings[path[0]] = {**(inner if isinstance(inner, dict) else {}), path[1]: value}
    known = defaults()
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)}; the settings are: {', '.join(known)}"
        )
    return settings


def stale(root: Path = ROOT) -> list[Path]:
    """The committed files under root that differ from what the mixin renders by default."""
    return [
        path
        for name, text in render().items()
        if not (root / (path := COMMITTED[name])).is_file()
        or (root / path).read_text(encoding="utf-8") != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Settings: mixin/config.libsonnet. Guide: docs/alerting.md.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a committed file is not current"
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the files into DIR")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="settings: a JSON or jsonnet object"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="one setting (repeatable)"
    )
    args = parser.parse_args(argv)
    if (args.config or args.set) and args.out is None:
        parser.error("--config and --set need --out DIR: the repository's files use the defaults")
    if args.check and args.out is not None:
        parser.error("--check compares the repository's files; it takes no --out")
    try:
        if args.check:
            outdated = stale()
            for path in outdated:
                print(f"{path} is not what mixin/ renders: run python scripts/render_mixin.py")
            return 1 if outdated else 0
        files = render(load_settings(args.config, args.set))
    except SettingsError as error:
        print(f"render_mixin: {error}", file=sys.stderr)
        return 2
    for name, text in files.items():
        target = args.out / name if args.out is not None else ROOT / COMMITTED[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if args.out is not None:
            print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
