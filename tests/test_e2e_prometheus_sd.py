"""End to end: the real Prometheus finds every job through /sd and scrapes each via /probe.

Prometheus runs with prometheus/prometheus-sd.yml, its addresses swapped for the test's
loopback ports and its intervals shortened; the exporter runs with ``--demo``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .mixin import PROMETHEUS_SD_CONFIG, load_yaml
from .processes import Stack, running_stack

pytestmark = pytest.mark.prometheus

DEMO_JOBS = {"job-docs", "job-blog", "job-help", "job-legacy", "job-pricing", "job-careers"}


def sd_config(exporter_address: str) -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(PROMETHEUS_SD_CONFIG)
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s"})
    del config["rule_files"]
    del config["alerting"]
    probe, own = config["scrape_configs"]
    assert probe["http_sd_configs"][0]["url"] == "http://localhost:19417/sd"
    probe["http_sd_configs"] = [{"url": f"http://{exporter_address}/sd", "refresh_interval": "1s"}]
    assert own["static_configs"] == [{"targets": ["localhost:19417"]}]
    own["static_configs"] = [{"targets": [exporter_address]}]
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e-sd"), sd_config) as result:
        yield result


def test_every_job_is_a_target_scraped_through_probe(stack: Stack) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = stack.api("targets", state="active")["activeTargets"]
        probes = [t for t in targets if t["labels"]["job"] == "convocore-crawler-probe"]
        if len(probes) == len(DEMO_JOBS) and all(t["health"] == "up" for t in probes):
            return probes
        return None

    probes = stack.wait_for("six healthy /probe targets", all_up)
    assert {t["labels"]["instance"] for t in probes} == {f"ws-demo/{j}" for j in DEMO_JOBS}
    for target in probes:
        job_id = target["labels"]["instance"].split("/")[1]
        assert target["scrapeUrl"] == (
            f"{stack.exporter_url}/probe?job_id={job_id}&workspace_id=ws-demo"
        )

    def per_job_up() -> list[dict[str, Any]] | None:
        found = stack.query('convocore_crawler_up{job="convocore-crawler-probe"}')
        return found if len(found) == len(DEMO_JOBS) else None

    series = stack.wait_for("convocore_crawler_up of every job", per_job_up)
    assert {s["metric"]["job_id"] for s in series} == DEMO_JOBS
    assert {s["metric"]["instance"] for s in series} == {f"ws-demo/{j}" for j in DEMO_JOBS}
    assert all(s["value"][1] == "1" for s in series)
    assert not [s for s in series if "exported_job_id" in s["metric"]]


def test_the_exporter_job_carries_no_job_series(stack: Stack) -> None:
    def own() -> list[dict[str, Any]] | None:
        return (
            stack.query('convocore_crawler_exporter_build_info{job="convocore-crawler-exporter"}')
            or None
        )

    stack.wait_for("the exporter's own metrics", own)
    assert stack.query('convocore_crawler_up{job="convocore-crawler-exporter"}') == []
    failed = stack.wait_for(
        "the failed demo job through /probe",
        lambda: (
            stack.query('convocore_crawler_job_status{status="failed", job_id="job-legacy"}')
            or None
        ),
    )
    assert [s["value"][1] for s in failed] == ["1"]
