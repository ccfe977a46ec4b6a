"""The docs: the reference tables are generated from the code and kept current, what they
claim is true, and every relative link and anchor resolves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from exporter import docs
from exporter.config import API_KEYS, WORKSPACE_KEYS
from exporter.exposition import metrics
from exporter.reloader import Reloader

from . import mdlinks
from .fakeapi import TOKEN, Fault, full_job
from .support import config_yaml
from .tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
HOMEPAGE = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
# Directories whose Markdown is not ours: installed tools, caches, builds.
NOT_OURS = {".git", ".venv", ".tools", "node_modules", "build", "dist", ".pytest_cache"}


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.md")
        if not NOT_OURS & set(path.relative_to(ROOT).parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
    )


@pytest.mark.parametrize("name", sorted(docs.FILES))
def test_generated_sections_are_current(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert docs.render(text, docs.FILES[name], name) == text, "run: python -m exporter.docs"


def test_the_generator_rewrites_a_stale_table_and_check_fails_on_one(tmp_path):
    for name in docs.FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"))
    assert docs.main(["--check", "--root", str(tmp_path)]) == 0
    metrics_doc = tmp_path / "docs" / "metrics.md"
    fresh = metrics_doc.read_text()
    metrics_doc.write_text(fresh.replace("| `convocore_crawler_up` |", "| `convocore_up` |"))
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert docs.main(["--root", str(tmp_path)]) == 0
    assert metrics_doc.read_text() == fresh


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("convocore-crawler-exporter --demo")
    assert commands[1] == "scripts/test"
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec ./scripts/test")


def test_the_readme_is_a_front_door():
    # About 150 to 200 lines: the rest lives under docs/, and the README links every page.
    assert len(README.splitlines()) <= 200
    for page in sorted(DOCS.glob("*.md")):
        assert f"{HOMEPAGE}/blob/main/docs/{page.name}" in README, page.name


@pytest.mark.integration
def test_the_readme_minimal_config_passes_config_check(tmp_path):
    block = README.split("## A minimal config", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    (tmp_path / "config.yaml").write_text(block)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CONVOCORE_TOKEN": TOKEN},
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "OK\n", "")
    config = yaml.safe_load(block)
    assert config["workspaces"][0]["jobs"][1] == {"id": "job-def", "name": "docs-site"}


def test_the_readme_sample_series_are_real_metrics():
    block = README.split("## What you get", 1)[1].split("```text\n", 1)[1].split("```")[0]
    names = {line.split("{", 1)[0] for line in block.splitlines()}
    defined = {d.name: d for d in metrics.ALL}
    assert names <= set(defined)
    for line in block.splitlines():
        name, rest = line.split("{", 1)
        labels = dict(re.findall(r'(\w+)="([^"]*)"', rest.split("}", 1)[0]))
        assert tuple(labels) == tuple(defined[name].labels), line


def test_every_config_key_is_documented():
    table = set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", doc("configuration.md"), re.MULTILINE))
    expected = {f"api.{k}" for k in API_KEYS} | {f"workspaces[].{k}" for k in WORKSPACE_KEYS}
    assert expected <= table
    example = (ROOT / "exporter" / "config.example.yaml").read_text()
    for key in API_KEYS | WORKSPACE_KEYS:
        assert f"{key}:" in example, key


def test_the_example_config_at_the_top_is_the_packaged_one():
    # The one at the top of the repository is for readers of the source; the packaged one is
    # what --config.example prints. They must not drift.
    packaged = (ROOT / "exporter" / "config.example.yaml").read_bytes()
    assert (ROOT / "config.example.yaml").read_bytes() == packaged


def test_every_failure_reason_has_advice():
    advice = doc("troubleshooting.md").split("What to do:", 1)[1].split("\n## ", 1)[0]
    for reason in metrics.REASONS:
        assert f"**{reason}**" in advice, reason


def test_the_layout_table_names_every_module():
    # The development guide's layout table, so a new module cannot go unexplained.
    section = doc("development.md").split("## Layout", 1)[1].split("\n## ", 1)[0]
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


def test_every_relative_link_and_anchor_resolves():
    files = markdown_files()
    assert {"README.md", "CHANGELOG.md", "bench/README.md", "docs/configuration.md"} <= {
        f.relative_to(ROOT).as_posix() for f in files
    }
    assert mdlinks.problems(files, ROOT, HOMEPAGE) == []


def test_the_link_check_finds_a_broken_link_and_a_broken_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# A page\n\n## Some `code`: here\n\n## Some `code`: here\n\n```sh\n# not a heading\n"
        "[not a link](nowhere.md)\n```\n"
    )
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#some-code-here) [ok](docs/a.md#some-code-here-1) [ok](#readme)\n"
        "# Readme\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#not-a-heading) [code](#not-a-heading)\n"
        "`[in a code span](nowhere.md)` [outside](../../etc/passwd)\n"
        f"[ref]: {HOMEPAGE}/blob/main/docs/a.md#a-page\n"
        f"[ref2]: {HOMEPAGE}/tree/main/docs/missing\n"
        "[ext]: https://example.com/nowhere.md\n"
    )
    files = [tmp_path / "README.md", tmp_path / "docs" / "a.md"]
    assert mdlinks.problems(files, tmp_path, HOMEPAGE) == [
        "README.md:3: docs/b.md: no such file",
        "README.md:3: docs/a.md#not-a-heading: no heading with this anchor",
        "README.md:3: #not-a-heading: no heading with this anchor",
        "README.md:4: ../../etc/passwd: outside the repository",
        f"README.md:6: {HOMEPAGE}/tree/main/docs/missing: no such file",
    ]


def test_the_exporter_serves_only_documented_metrics(fake, start_exporter):
    done = full_job(
        "a", "w", webhookFinalizedAt="2026-11-02T00:00:00Z", resultError="robots.txt says no"
    )
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
def test_the_metrics_page_tells_finished_ok_from_failed_in_promql(tmp_path):
    """Both expressions of the metrics page's line select the job that finished ok, and neither the
    failed one (done and failed both 1), the cancelled one nor the running one."""
    promtool = require_tool("promtool")
    line = next(
        line for line in doc("metrics.md").splitlines() if line.startswith("A failed job reports")
    )
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
