"""The README's reference sections are generated from the code and kept current."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from exporter import docs
from exporter.config import API_KEYS, WORKSPACE_KEYS
from exporter.exposition import metrics
from exporter.reloader import Reloader

from .conftest import config_yaml
from .fakeapi import Fault, full_job
from .tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_generated_sections_are_current():
    assert docs.render(README) == README, "run: python -m exporter.docs"


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("convocore-crawler-exporter --demo")
    assert commands[1] == "scripts/test"
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec ./scripts/test")


def test_every_config_key_is_documented():
    table = {m for m in re.findall(r"^\| `([a-z_.\[\]]+)` \|", README, re.MULTILINE)}
    expected = {f"api.{k}" for k in API_KEYS} | {f"workspaces[].{k}" for k in WORKSPACE_KEYS}
    assert expected <= table
    example = (ROOT / "config.example.yaml").read_text()
    for key in API_KEYS | WORKSPACE_KEYS:
        assert f"{key}:" in example, key


def test_the_layout_table_names_every_module():
    # The development section's layout table, so a new module cannot go unexplained.
    section = README.split("### Layout", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"`(exporter/[\w/]+(?:\.py)?)`", section))
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "exporter").rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    covered = {
        m for m in modules if m in named or any(d.endswith("/") and m.startswith(d) for d in named)
    }
    assert modules - covered == set()
    assert {n for n in named if n.endswith(".py")} - modules == set()


def test_the_exporter_serves_only_documented_metrics(fake, start_exporter):
    done = full_job("a", "w", webhookFinalizedAt="2026-11-02T00:00:00Z")
    fake.set_jobs("w", {"a": done, "b": full_job("b", "w"), "c": full_job("c", "w")})
    fake.set_jobs("d", {})
    fake.fail(fake.job_path("w", "b"), Fault(500, "x"))
    fake.fail(fake.pages_path("w", "c"), Fault(500, "x"))  # pages error, truncation on a
    fake.fail("/v3/workspaces/d/crawler/jobs", Fault(404, "x"))  # a failing listing
    config = config_yaml(
        fake.base_url,
        "  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [a, b, c]\n    max_jobs: 5\n"
        "    page_stats: true\n    page_stats_max_pages: 30\n"
        "  - id: d\n    token: ${CONVOCORE_TOKEN}\n    discover: true\n",
    )
    running = start_exporter(config)
    Reloader(running.exporter, None)  # as the command line wires it: it owns the reload gauges
    series = running.scrape()
    served = {name for name, _ in series if name.startswith("convocore_crawler_")}
    defined = set()
    for d in metrics.ALL:
        if d.type == "histogram":
            defined |= {d.name + s for s in ("_bucket", "_count", "_sum")}
        elif d.type == "gaugehistogram":
            defined |= {d.name + s for s in ("_bucket", "_gcount", "_gsum")}
        else:
            defined.add(d.name)
    assert served <= defined
    # Everything is present in this scrape.
    assert defined - served == set()


@pytest.mark.prometheus
def test_the_readme_tells_finished_ok_from_failed_in_promql(tmp_path):
    """Both expressions of the README's line select the job that finished ok, and neither the
    failed one (done and failed both 1), the cancelled one nor the running one."""
    promtool = require_tool("promtool")
    line = next(line for line in README.splitlines() if line.startswith("A failed job reports"))
    expressions = [e for e in re.findall(r"`([^`]+)`", line) if "==" in e]
    assert len(expressions) == 2
    flags = {  # job: (done, failed, cancelled, status)
        "ok": (1, 0, 0, "completed"),
        "failed": (1, 1, 0, "failed"),
        "cancelled": (1, 0, 1, "cancelled"),
        "running": (0, 0, 0, "processing"),
    }
    series = []
    for job, (done, failed, cancelled, status) in flags.items():
        labels = f'workspace_id="w",job_id="{job}"'
        series += [
            {"series": f"convocore_crawler_job_done{{{labels}}}", "values": f"{done}"},
            {"series": f"convocore_crawler_job_failed{{{labels}}}", "values": f"{failed}"},
            {"series": f"convocore_crawler_job_cancelled{{{labels}}}", "values": f"{cancelled}"},
            {
                "series": f'convocore_crawler_job_status{{{labels},status="{status}"}}',
                "values": "1",
            },
        ]
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": expressions[0],
                    "eval_time": "0m",
                    "exp_samples": [
                        {
                            "labels": 'convocore_crawler_job_status{workspace_id="w",'
                            'job_id="ok",status="completed"}',
                            "value": 1,
                        }
                    ],
                },
                {
                    "expr": expressions[1],
                    "eval_time": "0m",
                    "exp_samples": [
                        {
                            "labels": 'convocore_crawler_job_done{workspace_id="w",job_id="ok"}',
                            "value": 1,
                        }
                    ],
                },
            ],
        }
    ]
    (tmp_path / "rules.yml").write_text("groups: []\n", encoding="utf-8")
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "tests": tests}), encoding="utf-8"
    )
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_failed_job_is_done_and_failed_and_the_help_says_so(fake, start_exporter):
    """The raw flags are kept: the API reports done on a failed job, and both HELP texts say so."""
    fake.set_jobs("w", {"f": full_job("f", "w", status="failed", done=True, failed=True)})
    running = start_exporter(
        config_yaml(fake.base_url, "  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [f]\n")
    )
    text = running.get().text
    for line in (
        "# HELP convocore_crawler_job_done 1 when the job reports done, else 0. The raw flag: "
        "a failed job reports done too.",
        "# HELP convocore_crawler_job_failed 1 when the job reports failed, else 0. A failed job "
        "also reports done (job_done 1).",
        'convocore_crawler_job_done{workspace_id="w",job_id="f"} 1',
        'convocore_crawler_job_failed{workspace_id="w",job_id="f"} 1',
        'convocore_crawler_job_status{workspace_id="w",job_id="f",status="failed"} 1',
        'convocore_crawler_job_status{workspace_id="w",job_id="f",status="completed"} 0',
    ):
        assert line in text.splitlines(), line
