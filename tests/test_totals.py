"""Workspace and agent totals: exact over every job the workspace's listing holds (those past
include_finished_for included) and its configured jobs, each job once, whatever the shard,
the reload or the listing's health."""

from __future__ import annotations

import time
from typing import Any

import pytest

from exporter.collect import shard_of
from exporter.collect.totals import total
from exporter.config import parse_config
from exporter.convocore.model import JobTally

from .conftest import Series, value
from .fakeapi import TOKEN, Fault, envelope, full_job
from .support import Clock, config_yaml, discovering

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"
STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
NOW_MS = int(time.time() * 1000)
OLD_MS = NOW_MS - 30 * 86_400_000  # a month ago: past the default include_finished_for


def job(job_id: str, status: str, agents: list[str] | None, credits: float | None, **over: Any):
    fields: dict[str, Any] = {
        "status": status,
        "done": status in ("completed", "failed"),
        "failed": status == "failed",
        "isCancelled": status == "cancelled",
        "toAgentIds": agents,
        "toAgentId": None,
        "estimatedCredits": credits,
        "ts": NOW_MS,
    }
    fields.update(over)
    return full_job(job_id, WS, **fields)


def workspace_jobs() -> dict[str, dict[str, Any]]:
    """Every status, agents shared between jobs, and three jobs past the horizon."""
    return {
        "a": job("a", "queued", ["agent-A"], 10, scrapedPagesNum=0, failedPagesNum=0),
        "b": job(
            "b", "processing", ["agent-A", "agent-B"], 20, scrapedPagesNum=5, failedPagesNum=1
        ),
        "c": job("c", "completed", ["agent-B"], 30, scrapedPagesNum=30, failedPagesNum=2),
        "d": job(
            "d",
            "failed",
            ["agent-A", "agent-B"],
            40,
            scrapedPagesNum=4,
            failedPagesNum=6,
            ts=OLD_MS,
        ),
        # toAgentIds missing: toAgentId names the agent.
        "e": job(
            "e",
            "cancelled",
            None,
            50,
            toAgentId="agent-C",
            scrapedPagesNum=7,
            failedPagesNum=0,
            ts=OLD_MS,
        ),
        "f": job("f", "completed", [], None, scrapedPagesNum=100, failedPagesNum=0, ts=OLD_MS),
    }


def workspace_totals(series: Series, ws: str = WS) -> dict[str, Any]:
    jobs = {s: value(series, P + "workspace_jobs", workspace_id=ws, status=s) for s in STATUSES}
    return {
        "jobs": jobs,
        "credits": value(series, P + "workspace_estimated_credits", workspace_id=ws),
        "scraped": value(series, P + "workspace_scraped_pages", workspace_id=ws),
        "failed": value(series, P + "workspace_failed_pages", workspace_id=ws),
    }


def agent_totals(series: Series, ws: str = WS) -> dict[str, tuple[dict[str, float], float]]:
    agents = {dict(k[1])["agent_id"] for k in series if k[0] == P + "agent_estimated_credits"}
    return {
        agent: (
            {
                s: value(series, P + "agent_jobs", workspace_id=ws, agent_id=agent, status=s)
                for s in STATUSES
            },
            value(series, P + "agent_estimated_credits", workspace_id=ws, agent_id=agent),
        )
        for agent in agents
    }


def settle(running, done, seconds: float = 10.0) -> Series:
    """Scrapes until ``done(series)`` (a background listing ended); fails when it never does."""
    end = time.monotonic() + seconds
    while not done(series := running.scrape()):
        assert time.monotonic() < end, "never settled"
        time.sleep(0.05)
    return series


def counts(**given: int) -> dict[str, float]:
    return {s: float(given.get(s, 0)) for s in STATUSES}


def exported(series: Series) -> set[str]:
    return {dict(k[1])["job_id"] for k in series if k[0] == P + "up"}


def test_totals_cover_every_status_shared_agents_and_jobs_past_the_horizon(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    running = start_exporter(discovering(fake, WS))
    series = running.scrape()
    # Per job: only what is live or finished within include_finished_for (7d by default).
    assert exported(series) == {"a", "b", "c"}
    assert running.exporter.memory().listed_jobs == {WS: 3}
    # In total: every listed job.
    assert workspace_totals(series) == {
        "jobs": counts(queued=1, processing=1, completed=2, failed=1, cancelled=1),
        "credits": 150.0,
        "scraped": 146.0,
        "failed": 9.0,
    }
    assert agent_totals(series) == {
        "agent-A": (counts(queued=1, processing=1, failed=1), 70.0),
        "agent-B": (counts(processing=1, completed=1, failed=1), 90.0),
        "agent-C": (counts(cancelled=1), 50.0),
    }
    # The landing page's view: the same numbers, from memory.
    (mine,) = running.exporter.totals().values()
    assert mine.workspace_id == WS
    assert dict(mine.jobs) == {
        s: int(n)
        for s, n in counts(queued=1, processing=1, completed=2, failed=1, cancelled=1).items()
    }
    assert (mine.estimated_credits, mine.scraped_pages, mine.failed_pages) == (150, 146, 9)
    assert mine.agents["agent-C"].estimated_credits == 50


def test_a_job_that_changes_status_moves_between_the_totals(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, api="  min_refresh_interval: 10s\n"), clock=clock
    )
    running.scrape()
    jobs = workspace_jobs()
    jobs["b"] = job("b", "failed", ["agent-A", "agent-B"], 25, scrapedPagesNum=9, failedPagesNum=3)
    fake.set_jobs(WS, jobs)
    clock.now += 10  # a refresh re-reads the page of the active job
    series = running.scrape()
    totals = workspace_totals(series)
    assert totals["jobs"] == counts(queued=1, completed=2, failed=2, cancelled=1)
    assert (totals["credits"], totals["scraped"], totals["failed"]) == (155.0, 150.0, 11.0)
    assert agent_totals(series)["agent-A"] == (counts(queued=1, failed=2), 75.0)


def test_a_job_deleted_upstream_leaves_the_totals(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    clock = Clock()
    running = start_exporter(discovering(fake, WS), clock=clock)
    running.scrape()
    jobs = workspace_jobs()
    del jobs["d"]  # past the horizon: known to the totals alone
    del jobs["c"]
    fake.set_jobs(WS, jobs)
    clock.now += 600  # discover_interval: the next full listing, in the background
    series = settle(running, lambda s: workspace_totals(s)["jobs"]["failed"] == 0)
    assert workspace_totals(series) == {
        "jobs": counts(queued=1, processing=1, completed=1, cancelled=1),
        "credits": 80.0,
        "scraped": 112.0,
        "failed": 1.0,
    }
    assert set(agent_totals(series)) == {"agent-A", "agent-B", "agent-C"}
    assert agent_totals(series)["agent-B"] == (counts(processing=1), 20.0)


def test_a_configured_job_that_is_also_listed_counts_once_with_its_get_job_data(
    fake, start_exporter
):
    fake.set_jobs(WS, workspace_jobs())
    running = start_exporter(discovering(fake, WS, "    jobs: [b, d]\n"))
    series = running.scrape()
    assert exported(series) == {"a", "b", "c", "d"}  # a configured job never ages out
    assert workspace_totals(series)["jobs"] == counts(
        queued=1, processing=1, completed=2, failed=1, cancelled=1
    )
    assert workspace_totals(series)["credits"] == 150.0
    # The get-job answer is preferred to the list item: served from the job's own endpoint.
    answer = job("b", "processing", ["agent-A", "agent-B"], 21)
    fake.fail(fake.job_path(WS, "b"), Fault(body=envelope(answer)))
    series = running.scrape()
    assert value(series, P + "job_estimated_credits", workspace_id=WS, job_id="b") == 21
    assert workspace_totals(series)["credits"] == 151.0


def test_a_workspace_without_discovery_totals_its_configured_jobs(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    config = config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [a, d, e]\n"
    )
    series = start_exporter(config).scrape()
    assert workspace_totals(series) == {
        "jobs": counts(queued=1, failed=1, cancelled=1),
        "credits": 100.0,
        "scraped": 11.0,
        "failed": 6.0,
    }


def test_a_configured_job_read_again_moves_its_totals_and_unchanged_ones_keep_them(
    fake, start_exporter
):
    fake.set_jobs(WS, workspace_jobs())
    config = config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [a, b, d]\n"
    )
    running = start_exporter(config)
    first = workspace_totals(running.scrape())
    assert first["jobs"] == counts(queued=1, processing=1, failed=1)
    assert workspace_totals(running.scrape()) == first  # read again, the same data
    jobs = workspace_jobs()
    jobs["a"] = job("a", "processing", ["agent-A"], 12, scrapedPagesNum=3, failedPagesNum=1)
    fake.set_jobs(WS, jobs)
    series = running.scrape()
    assert workspace_totals(series) == {
        "jobs": counts(processing=2, failed=1),
        "credits": 72.0,
        "scraped": 12.0,
        "failed": 8.0,
    }
    assert agent_totals(series)["agent-A"] == (counts(processing=2, failed=1), 72.0)


def test_a_reload_that_changes_the_horizon_keeps_the_totals_exact(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    running = start_exporter(discovering(fake, WS, "    include_finished_for: forever\n"))
    before = running.scrape()
    assert exported(before) == set("abcdef")
    for horizon in ("1h", "60d", "'0'"):
        config = running.exporter.config
        text = discovering(fake, WS, f"    include_finished_for: {horizon}\n")
        running.exporter.set_config(parse_config(text, "t.yml", {"CONVOCORE_TOKEN": TOKEN}))
        assert running.exporter.config is not config
        after = running.scrape()
        assert workspace_totals(after) == workspace_totals(before)
        assert agent_totals(after) == agent_totals(before)


def test_two_shards_totals_add_up_to_the_workspace(fake, start_exporter):
    jobs = workspace_jobs()
    for i in range(40):
        status = STATUSES[i % 5]
        jobs[f"x{i}"] = job(f"x{i}", status, [f"agent-{i % 3}"], i, scrapedPagesNum=i, ts=OLD_MS)
    fake.set_jobs(WS, jobs)
    whole = workspace_totals(start_exporter(discovering(fake, WS, "    jobs: [b]\n")).scrape())
    shards = [
        start_exporter(discovering(fake, WS, "    jobs: [b]\n"), shard=n, total_shards=2).scrape()
        for n in (0, 1)
    ]
    parts = [workspace_totals(s) for s in shards]
    # Each shard counts its own jobs only, and together they count each job once.
    owned = [sum(1 for j in jobs if shard_of(WS, j, 2) == n) for n in (0, 1)]
    assert [sum(p["jobs"].values()) for p in parts] == owned
    assert {s: parts[0]["jobs"][s] + parts[1]["jobs"][s] for s in STATUSES} == whole["jobs"]
    for key in ("credits", "scraped", "failed"):
        assert parts[0][key] + parts[1][key] == whole[key]


def test_a_failed_listing_keeps_the_last_totals(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    clock = Clock()
    running = start_exporter(discovering(fake, WS), clock=clock)
    good = running.scrape()
    fake.fail(LIST, Fault(status=500))
    clock.now += 600
    series = settle(running, lambda s: value(s, P + "discovery_up", workspace_id=WS) == 0)
    assert workspace_totals(series) == workspace_totals(good)
    assert agent_totals(series) == agent_totals(good)


def test_totals_are_absent_until_the_first_listing_completes(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    fake.fail(LIST, Fault(status=500))
    series = start_exporter(discovering(fake, WS)).scrape()
    assert value(series, P + "discovery_up", workspace_id=WS) == 0
    assert not [k for k in series if k[0].startswith(P + "workspace_")]


def test_the_exporters_own_scrape_serves_the_totals_too(fake, start_exporter):
    fake.set_jobs(WS, workspace_jobs())
    running = start_exporter(discovering(fake, WS))
    running.scrape()
    own = running.scrape("/metrics", params={"jobs": "false"})
    assert not exported(own)
    assert workspace_totals(own)["jobs"] == counts(
        queued=1, processing=1, completed=2, failed=1, cancelled=1
    )


def test_total_counts_each_tally_and_keeps_every_status():
    tallies = [
        JobTally("failed", 1.5, 2, None, ("x", "y")),
        JobTally("failed", None, None, 4, ("y",)),
        JobTally("queued"),
    ]
    result = total("w", tallies)
    assert dict(result.jobs) == {
        "queued": 1,
        "processing": 0,
        "completed": 0,
        "failed": 2,
        "cancelled": 0,
    }
    assert (result.estimated_credits, result.scraped_pages, result.failed_pages) == (1.5, 2, 4)
    assert dict(result.agents["y"].jobs)["failed"] == 2
    assert result.agents["x"].estimated_credits == 1.5
    assert total("w", []).agents == {}


@pytest.mark.parametrize("horizon", ["forever", "7d"])
def test_memory_keeps_a_job_past_the_horizon_as_its_tally_alone(fake, start_exporter, horizon):
    fake.set_jobs(WS, workspace_jobs())
    running = start_exporter(discovering(fake, WS, f"    include_finished_for: {horizon}\n"))
    running.scrape()
    assert running.exporter.memory().listed_jobs == {WS: 6 if horizon == "forever" else 3}
