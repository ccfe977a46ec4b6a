"""Workspaces with long crawl histories: discovery off the scrape's deadline, page-numbered
listings read concurrently, the cadence of full listings and refreshes, and the page cap.

Time for the cadence is the exporter's injected clock, moved by the tests; the request
counts are exact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from exporter.collect import shard_of

from .conftest import value
from .fakeapi import full_job
from .support import Clock, config_yaml, discovering, wait_for

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"


def history(count: int, active: range | tuple[int, ...] = ()) -> dict[str, dict[str, Any]]:
    """``count`` jobs listed in this order (newest first); those in ``active`` are running,
    the others completed now (within the default include_finished_for)."""
    jobs = {}
    now = int(time.time() * 1000)
    for i in range(count):
        job_id = f"job-{i:05d}"
        if i in active:
            jobs[job_id] = full_job(job_id, WS, scrapedPagesNum=i)
        else:
            jobs[job_id] = full_job(
                job_id, WS, status="completed", done=True, scrapedPagesNum=i, ts=now
            )
    return jobs


def exported(series) -> set[str]:
    return {dict(k[1])["job_id"] for k in series if k[0] == P + "up" and series[k] == 1}


def settled(running) -> bool:
    return running.exporter.memory().fetches_in_flight == 0


def counts(fake) -> list[str]:
    queries = fake.queries(LIST)
    fake.log.clear()
    return queries


@pytest.mark.parametrize("pagination", ["cursor", "cursor-beside"])
def test_a_listing_longer_than_the_deadline_completes_across_scrapes(
    fake, start_exporter, captured_logs, pagination
):
    fake.api.pagination = pagination
    fake.set_jobs(WS, history(450, active=range(450)))
    fake.latency = 0.3  # 5 answers one after another: 1.5 s, three times the deadline
    config = discovering(fake, WS, "    jobs: [job-00007]\n")
    running = start_exporter(config)
    header = {"X-Prometheus-Scrape-Timeout-Seconds": "1"}  # a 0.5 s deadline
    series = running.scrape(headers=header)
    # The configured job is exported as usual; the discovered ones once the listing is whole.
    assert exported(series) == {"job-00007"}
    assert value(series, P + "discovery_up", workspace_id=WS) == 0
    reason = {"workspace_id": WS, "reason": "listing_in_progress"}
    assert value(series, P + "discovery_error_info", **reason) == 1
    series = running.scrape(headers=header)  # shares the walk, does not wait for it
    assert exported(series) == {"job-00007"}
    assert value(series, P + "discovery_error_info", **reason) == 1
    assert wait_for(lambda: settled(running), 20)
    series = running.scrape(headers=header)
    assert exported(series) == {f"job-{i:05d}" for i in range(450)}
    assert value(series, P + "discovery_up", workspace_id=WS) == 1
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-00449") == 449
    # One walk, never abandoned nor restarted: page 1, then the four cursors.
    assert fake.queries(LIST)[:5] == ["page=1&limit=100"] + [
        f"cursor={n}&limit=100" for n in (100, 200, 300, 400)
    ]
    lines = [line for line in captured_logs if "first job listing" in line]
    assert [line.split("msg=", 1)[1].split('"')[1] for line in lines] == [
        "first job listing under way; its jobs are exported once it is complete",
        "first job listing complete",
    ]
    assert "jobs=450" in lines[1]
    assert value(series, P + "api_errors_total", workspace_id=WS, reason="deadline") is None


def test_page_numbered_listings_are_read_concurrently(fake, start_exporter):
    fake.set_jobs(WS, history(1000, active=range(10)))
    fake.latency = 0.2
    running = start_exporter(discovering(fake, WS, api="  max_concurrency: 8\n"))
    series = running.scrape()
    assert len(exported(series)) == 1000
    queries = fake.queries(LIST)
    assert queries[0] == "page=1&limit=100"
    assert sorted(queries) == sorted(f"page={n}&limit=100" for n in range(1, 11))
    # Half of max_concurrency, leaving the other half to the scrape's get-job requests.
    assert fake.peak == 4


@pytest.mark.parametrize(
    ("pagination", "refresh"),
    [
        ("page", ["page=1&limit=100"]),
        # A cursor list is read from its head while an answer holds an active job.
        ("cursor", ["page=1&limit=100", "cursor=100&limit=100"]),
    ],
)
def test_full_listings_every_discover_interval_refreshes_in_between(
    fake, start_exporter, pagination, refresh
):
    fake.api.pagination = pagination
    fake.set_jobs(WS, history(500, active=range(50)))
    clock = Clock()
    config = discovering(
        fake, WS, "    discover_interval: 10m\n", api="  min_refresh_interval: 10s\n"
    )
    running = start_exporter(config, clock=clock)
    series = running.scrape()
    assert len(counts(fake)) == 5
    assert len(exported(series)) == 500
    running.scrape()
    assert counts(fake) == []  # nothing due: finished and fresh jobs cost nothing
    for _ in range(3):
        clock.now += 10
        running.scrape()
        assert counts(fake) == refresh
    clock.now += 570  # 600 s after the full listing: the next runs in the background
    series = running.scrape()
    assert len(exported(series)) == 500  # served from the last listing meanwhile
    assert wait_for(lambda: settled(running), 20)
    assert len(counts(fake)) == 5
    series = running.scrape()
    assert counts(fake) == []
    assert len(exported(series)) == 500
    assert fake.count(fake.job_path(WS, "job-00000")) == 0


@pytest.mark.parametrize(
    ("pagination", "first", "then"),
    [
        # The total grew: the new last page is read too (a list that puts the oldest first).
        ("page", ["page=1&limit=100", "page=4&limit=100"], ["page=1&limit=100"]),
        # A cursor list reads on past an answer holding an active or a new job.
        ("cursor", ["page=1&limit=100", "cursor=100&limit=100"], None),
        ("cursor-beside", ["page=1&limit=100", "cursor=100&limit=100"], None),
    ],
)
def test_a_new_job_at_the_head_shows_before_the_next_full_listing(
    fake, start_exporter, pagination, first, then
):
    fake.api.pagination = pagination
    jobs = history(300)
    fake.set_jobs(WS, jobs)
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, api="  min_refresh_interval: 10s\n"), clock=clock
    )
    assert len(exported(running.scrape())) == 300
    counts(fake)
    fake.set_jobs(WS, {"job-new": full_job("job-new", WS, scrapedPagesNum=3), **jobs})
    clock.now += 10
    series = running.scrape()
    assert counts(fake) == first
    assert len(exported(series)) == 301
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-new") == 3
    # It is running: the next refresh re-reads the page it stands on.
    clock.now += 10
    running.scrape()
    assert counts(fake) == (then or first)


def test_an_active_job_that_moved_is_fetched_by_get_job(fake, start_exporter):
    jobs = history(300, active=(50,))
    fake.set_jobs(WS, jobs)
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, api="  min_refresh_interval: 10s\n"), clock=clock
    )
    running.scrape()
    fake.log.clear()
    # 100 new finished jobs at the head move job-00050 from page 1 to page 2; it progressed.
    newer = {
        f"new-{i:03d}": full_job(
            f"new-{i:03d}", WS, status="completed", done=True, ts=int(time.time() * 1000)
        )
        for i in range(100)
    }
    moved = {**jobs, "job-00050": full_job("job-00050", WS, scrapedPagesNum=77)}
    fake.set_jobs(WS, {**newer, **moved})
    clock.now += 10
    series = running.scrape()
    # Page 1 (where it stood, and the head), page 4 (the list grew at its end), then get-job.
    assert fake.queries(LIST) == ["page=1&limit=100", "page=4&limit=100"]
    assert fake.count(fake.job_path(WS, "job-00050")) == 1
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-00050") == 77
    assert len(exported(series)) == 400


@pytest.mark.parametrize(("pagination", "left_out"), [("page", 150), ("cursor", 1)])
def test_the_page_cap_is_counted_and_logged_once(
    fake, start_exporter, captured_logs, pagination, left_out
):
    fake.api.pagination = pagination
    fake.set_jobs(WS, history(350))
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, "    discover_max_pages: 2\n    discover_interval: 1m\n"), clock=clock
    )
    series = running.scrape()
    assert len(exported(series)) == 200
    assert len(fake.queries(LIST)) == 2
    assert value(series, P + "discovery_truncated_jobs_total", workspace_id=WS) == left_out
    clock.now += 60  # the next full listing leaves the same jobs out: not counted again
    running.scrape()
    assert wait_for(lambda: settled(running), 20)
    series = running.scrape()
    assert value(series, P + "discovery_truncated_jobs_total", workspace_id=WS) == left_out
    lines = [line for line in captured_logs if "discover_max_pages reached" in line]
    assert len(lines) == 1
    assert f"workspace_id=ws-1 left_out={left_out} discover_max_pages=2" in lines[0]
    if pagination == "page":
        fake.set_jobs(WS, history(400))  # 50 more left out
        clock.now += 60
        running.scrape()
        assert wait_for(lambda: settled(running), 20)
        series = running.scrape()
        assert value(series, P + "discovery_truncated_jobs_total", workspace_id=WS) == 200


def test_a_workspace_without_discovery_has_no_truncation_series(fake, start_exporter):
    fake.set_jobs(WS, history(1))
    config = config_yaml(fake.base_url, f"  - id: {WS}\n    token: x\n    jobs: [job-00000]\n")
    series = start_exporter(config).scrape()
    assert not [k for k in series if k[0] == P + "discovery_truncated_jobs_total"]


def test_finished_jobs_past_include_finished_for_are_not_kept(fake, start_exporter):
    old = int((time.time() - 30 * 86400) * 1000)
    jobs = {
        f"old-{i}": full_job(f"old-{i}", WS, status="completed", done=True, ts=old)
        for i in range(150)
    }
    jobs["live"] = full_job("live", WS)
    fake.set_jobs(WS, jobs)
    running = start_exporter(discovering(fake, WS, "    include_finished_for: 7d\n"))
    series = running.scrape()
    assert exported(series) == {"live"}
    assert running.exporter.memory().listed_jobs == {WS: 1}


def test_a_reload_keeps_the_listing_and_its_cadence(fake, start_exporter):
    fake.set_jobs(WS, history(250))
    clock = Clock()
    config = discovering(fake, WS, api="  min_refresh_interval: 10s\n")
    running = start_exporter(config, clock=clock)
    running.scrape()
    assert len(counts(fake)) == 3
    running.exporter.set_config(running.exporter.config)
    series = running.scrape()
    assert counts(fake) == []
    assert len(exported(series)) == 250


def test_a_shard_refreshes_only_the_pages_of_its_own_active_jobs(fake, start_exporter):
    # One active job on page 2 and one on page 3, owned by different shards of two.
    mine = next(i for i in range(100, 200) if shard_of(WS, f"job-{i:05d}", 2) == 0)
    theirs = next(i for i in range(200, 300) if shard_of(WS, f"job-{i:05d}", 2) == 1)
    fake.set_jobs(WS, history(300, active=(mine, theirs)))
    clock = Clock()
    config = discovering(fake, WS, api="  min_refresh_interval: 10s\n")
    running = start_exporter(config, clock=clock, shard=0, total_shards=2)
    series = running.scrape()
    # Each shard reads the whole listing once per discover_interval ...
    assert len(counts(fake)) == 3
    assert f"job-{mine:05d}" in exported(series)
    assert f"job-{theirs:05d}" not in exported(series)
    clock.now += 10
    running.scrape()
    # ... and refreshes the head and the page of its own active job, not the other's.
    assert counts(fake) == ["page=1&limit=100", "page=2&limit=100"]
