"""The Grafana dashboard against Grafana's published schema, compiled by TypeScript.

Grafana publishes its dashboard model as TypeScript types (npm package @grafana/schema, the
version pinned in tests/js/package-lock.json). The dashboard JSON is written into a .ts file as
object literals, each assigned to its schema type, and `tsc --noEmit --strict` compiles it:

- the whole dashboard as a ``Dashboard``;
- every panel (rows and the panels inside collapsed rows too) as a ``Panel`` whose
  ``options`` and ``fieldConfig.defaults.custom`` are the panel plugin's own types
  (stat, table, timeseries panelcfg) and whose targets are ``DataQuery`` plus the
  Prometheus query fields;
- every template variable as a ``VariableModel``.

TypeScript checks excess properties only on object literals, which is why the JSON is inlined
rather than imported: an unknown or misspelled field, or a value of the wrong type, fails.
Grafana's string enums are widened to their values (`Wire<T>`), since JSON holds the values.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .mixin import load_dashboard
from .tools import NODE_TOOLS, require_node_tools

PANELCFG = "@grafana/schema/dist/esm/raw/composable/{0}/panelcfg/x/{1}PanelCfg_types.gen"

# Panel type -> (import alias, module, whether the plugin defines a FieldConfig type).
PANEL_TYPES = {
    "stat": ("stat", PANELCFG.format("stat", "Stat"), False),
    "table": ("table", PANELCFG.format("table", "Table"), True),
    "timeseries": ("timeseries", PANELCFG.format("timeseries", "TimeSeries"), True),
}

PRELUDE = """\
import type {{
  Dashboard, DataQuery, FieldConfig, FieldConfigSource, Panel, RowPanel, VariableModel,
}} from "@grafana/schema";
{imports}

// JSON carries an enum's value, never its name: `${{E}}` turns a string enum into the union
// of its values; numeric enums already accept number literals.
type Wire<T> = T extends string
  ? `${{T}}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Wire<U>>
      : T extends object
        ? {{ [K in keyof T]: Wire<T[K]> }}
        : T;

// The Prometheus data source's query model (Grafana's prometheus dataquery schema) on top of
// the common DataQuery.
interface PrometheusQuery extends DataQuery {{
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  exemplar?: boolean;
  format?: "time_series" | "table" | "heatmap";
  editorMode?: "code" | "builder";
  interval?: string;
  intervalFactor?: number;
}}

// A panel whose options and custom field config are exactly its plugin's types: the generic
// Panel types both as open records.
type PluginPanel<Options, Custom> = Wire<
  Omit<Panel, "options" | "fieldConfig" | "targets"> & {{
    options?: Options;
    targets?: PrometheusQuery[];
    fieldConfig?: Omit<FieldConfigSource, "defaults"> & {{
      defaults: Omit<FieldConfig, "custom"> & {{ custom?: Custom }};
    }};
  }}
>;
"""


def literal(value: Any) -> str:
    return json.dumps(value, indent=2)


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def typescript_for(dashboard: dict[str, Any]) -> str:
    used = sorted({p["type"] for p in all_panels(dashboard["panels"])} - {"row"})
    unknown = [t for t in used if t not in PANEL_TYPES]
    assert unknown == [], f"no schema type mapped for panel type(s) {unknown}"
    imports = "\n".join(
        f'import type * as {PANEL_TYPES[t][0]} from "{PANEL_TYPES[t][1]}";' for t in used
    )
    out = [PRELUDE.format(imports=imports)]
    out.append(f"export const dashboard: Wire<Dashboard> = {literal(dashboard)};\n")
    for index, panel in enumerate(all_panels(dashboard["panels"])):
        if panel["type"] == "row":
            kind = "Wire<RowPanel>"
        else:
            alias, _, has_field_config = PANEL_TYPES[panel["type"]]
            custom = f"{alias}.FieldConfig" if has_field_config else "Record<string, never>"
            kind = f"PluginPanel<{alias}.Options, {custom}>"
        out.append(f"export const panel{index}: {kind} = {literal(panel)};\n")
    for index, variable in enumerate(dashboard["templating"]["list"]):
        out.append(f"export const variable{index}: Wire<VariableModel> = {literal(variable)};\n")
    return "\n".join(out)


TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "ES2022",
        "module": "preserve",
        "moduleResolution": "bundler",
        "types": [],
        # Grafana's own .d.ts files are not this test's business; ours are all checked.
        "skipLibCheck": True,
    },
    "files": ["dashboard.ts"],
}


def tsc(dashboard: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    modules = require_node_tools()
    # Inside tests/js, so that module resolution finds its node_modules.
    with tempfile.TemporaryDirectory(prefix=".check-", dir=NODE_TOOLS) as directory:
        work = Path(directory)
        (work / "tsconfig.json").write_text(json.dumps(TSCONFIG))
        (work / "dashboard.ts").write_text(typescript_for(dashboard))
        return subprocess.run(
            ["node", str(modules / "typescript" / "bin" / "tsc"), "--project", str(work)],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if ": error TS" in line]


@pytest.mark.integration
def test_dashboard_matches_grafanas_schema() -> None:
    result = tsc(load_dashboard())
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.integration
def test_schema_check_refuses_a_misspelled_and_a_mistyped_field() -> None:
    broken = copy.deepcopy(load_dashboard())
    panels = list(all_panels(broken["panels"]))
    timeseries = next(p for p in panels if p["type"] == "timeseries")
    timeseries["gridPoss"] = timeseries.pop("gridPos")
    stat = next(p for p in panels if p["type"] == "stat")
    stat["options"]["colorMode"] = "rainbow"
    broken["templating"]["list"][0]["refresh"] = "sometimes"
    timeseries["targets"][0]["legendFromat"] = timeseries["targets"][0].pop("legendFormat")
    result = tsc(broken)
    assert result.returncode != 0
    found = "\n".join(errors(result))
    assert "'\"gridPoss\"' does not exist in type" in found
    assert "'\"rainbow\"' is not assignable to type" in found
    assert "'\"legendFromat\"' does not exist in type" in found
    assert "Type 'string' is not assignable to type 'VariableRefresh | undefined'" in found


@pytest.mark.integration
@pytest.mark.parametrize("panel_type", sorted(PANEL_TYPES))
def test_schema_check_knows_each_panel_plugins_options(panel_type: str) -> None:
    broken = copy.deepcopy(load_dashboard())
    panel = next(p for p in all_panels(broken["panels"]) if p["type"] == panel_type)
    panel["options"]["notAnOption"] = True
    result = tsc(broken)
    assert result.returncode != 0
    assert any("'\"notAnOption\"' does not exist in type" in e for e in errors(result)), errors(
        result
    )
