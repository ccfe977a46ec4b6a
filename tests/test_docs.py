"""The README's reference sections are generated from the code and kept current."""

from __future__ import annotations

import re
from pathlib import Path

from exporter import docs, metrics
from exporter.config import API_KEYS, WORKSPACE_KEYS
from exporter.reloader import Reloader

from .conftest import config_yaml
from .fakeapi import Fault, full_job

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


def test_the_exporter_serves_only_documented_metrics(fake, start_exporter):
    done = full_job("a", "w", webhookFinalizedAt="2026-11-02T00:00:00Z")
    fake.set_jobs("w", {"a": done, "b": full_job("b", "w"), "c": full_job("c", "w")})
    fake.fail(fake.job_path("w", "b"), Fault(500, "x"))
    fake.fail(fake.pages_path("w", "c"), Fault(500, "x"))  # pages error, truncation on a
    config = config_yaml(
        fake.base_url,
        "  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [a, b, c]\n    max_jobs: 5\n"
        "    page_stats: true\n    page_stats_max_pages: 30\n",
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
    # Everything but discovery-free extras is present in this scrape.
    assert defined - served == set()
