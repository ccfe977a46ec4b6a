"""Discovery, caching, coalescing, backoff, /probe, /sd and sharding."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from exporter.collect import shard_of
from exporter.config import parse_config

from .conftest import parse_exposition, value
from .fakeapi import TOKEN, Fault, envelope, full_job
from .support import config_yaml, discover_yaml

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"


def many_jobs(count: int, finished_every: int = 0) -> dict[str, dict]:
    jobs = {}
    for i in range(count):
        over = {"scrapedPagesNum": i}
        if finished_every and i % finished_every == 0:
            over.update(status="completed", done=True)
        jobs[f"job-{i:04d}"] = full_job(f"job-{i:04d}", WS, **over)
    return jobs


def discover_config(fake, extra: str = "", api: str = "") -> str:
    return discover_yaml(fake.base_url, WS, extra, api)


@pytest.mark.parametrize("pagination", ["page", "cursor"])
def test_discovery_follows_both_pagination_styles(fake, start_exporter, pagination):
    fake.api.pagination = pagination
    fake.set_jobs(WS, many_jobs(250))
    series = start_exporter(discover_config(fake)).scrape()
    ups = [k for k in series if k[0] == P + "up"]
    assert len(ups) == 250
    for i in (0, 99, 100, 249):
        labels = {"workspace_id": WS, "job_id": f"job-{i:04d}"}
        assert value(series, P + "up", **labels) == 1
        assert value(series, P + "job_scraped_pages", **labels) == i
        # List items carry no URL arrays: those metrics are absent, not 0.
        assert value(series, P + "job_scraped_urls", **labels) is None
        assert value(series, P + "job_seed_urls", **labels) == 2
    assert fake.paths() == [LIST] * 3
    queries = [target.split("?", 1)[1] for target, _ in fake.log]
    if pagination == "page":
        # Page 1 first (its total says how many pages follow), then the rest at once.
        assert queries[0] == "page=1&limit=100"
        assert sorted(queries[1:]) == ["page=2&limit=100", "page=3&limit=100"]
    else:
        assert queries == ["page=1&limit=100", "cursor=100&limit=100", "cursor=200&limit=100"]


def test_an_explicit_job_in_a_discovering_workspace_gets_its_full_detail(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(3))
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n"
        "    jobs: [{id: job-0001, name: main}]\n",
    )
    series = start_exporter(config).scrape()
    assert value(series, P + "job_scraped_urls", workspace_id=WS, job_id="job-0001") == 40
    assert value(series, P + "job_scraped_urls", workspace_id=WS, job_id="job-0002") is None
    assert len([k for k in series if k[0] == P + "up"]) == 3
    assert sorted(fake.paths()) == sorted([LIST, fake.job_path(WS, "job-0001")])


def test_discovery_bounds_a_lying_cursor(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(3))
    fake.fail(LIST, Fault(200, envelope({"jobs": [full_job("job-x", WS)], "nextCursor": "same"})))
    series = start_exporter(discover_config(fake)).scrape()
    # The repeated cursor ends the walk as a listing that cannot be trusted to be whole.
    assert fake.count(LIST) == 2
    assert value(series, P + "up", workspace_id=WS, job_id="job-x") is None
    assert value(series, P + "discovery_up", workspace_id=WS) == 0
    reason = {"workspace_id": WS, "reason": "invalid_response"}
    assert value(series, P + "discovery_error_info", **reason) == 1


def test_discovery_failure_keeps_the_last_listing_with_up_zero(fake, start_exporter):
    # With no grace period, the discovered jobs are down from the first failed listing on.
    fake.set_jobs(WS, many_jobs(2))
    running = start_exporter(discover_config(fake, "    discover_grace_period: 0s\n"))
    running.scrape()
    fake.fail(LIST, Fault(500, "<html>oops</html>"))
    series = running.scrape()
    for job_id in ("job-0000", "job-0001"):
        labels = {"workspace_id": WS, "job_id": job_id}
        assert value(series, P + "up", **labels) == 0
        assert value(series, P + "error_info", **labels, reason="server_error") == 1
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-0001") == 1
    assert value(series, P + "api_errors_total", workspace_id=WS, reason="server_error") == 1


def test_include_finished_for_and_max_jobs(fake, start_exporter, captured_logs):
    now = time.time()
    jobs = {
        "old-done": full_job("old-done", WS, status="completed", ts=int((now - 8 * 86400) * 1000)),
        "new-done": full_job("new-done", WS, status="completed", ts=int((now - 3600) * 1000)),
        "active-1": full_job("active-1", WS, ts=int(now * 1000)),
        "active-2": full_job("active-2", WS, ts=int((now - 60) * 1000)),
        "active-3": full_job("active-3", WS, ts=int((now - 120) * 1000)),
    }
    fake.set_jobs(WS, jobs)
    running = start_exporter(
        discover_config(fake, "    include_finished_for: 7d\n    max_jobs: 3\n")
    )
    series = running.scrape()
    exported = {dict(k[1])["job_id"] for k in series if k[0] == P + "up"}
    # old-done is past the horizon; of the rest, active jobs beat finished ones.
    assert exported == {"active-1", "active-2", "active-3"}
    assert value(series, P + "dropped_jobs_total", workspace_id=WS) == 1
    series = running.scrape()
    assert value(series, P + "dropped_jobs_total", workspace_id=WS) == 1  # counted once
    dropped_logs = [line for line in captured_logs if "max_jobs reached" in line]
    assert len(dropped_logs) == 1
    assert "workspace_id=ws-1 dropped=1 max_jobs=3" in dropped_logs[0]


def test_a_reload_resets_no_counter(fake, start_exporter):
    """The per-workspace counters of max_jobs and page_stats_max_pages keep counting across a
    reload (a counter never goes back); a workspace that leaves the config loses its series."""
    fake.set_jobs(WS, many_jobs(3))
    fake.set_jobs("ws-2", {"j": full_job("j", "ws-2")})
    # Two jobs are exported (max_jobs), of which one has more pages than the cap.
    for i, count in enumerate((5, 1, 1)):
        fake.set_pages(WS, f"job-{i:04d}", [{"id": f"p{n}"} for n in range(count)])
    text = discover_config(
        fake, "    max_jobs: 2\n    page_stats: true\n    page_stats_max_pages: 4\n"
    )
    other = "  - id: ws-2\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j]\n    max_jobs: 1\n"
    running = start_exporter(text + other)
    series = running.scrape()
    counters = ("dropped_jobs_total", "page_stats_truncated_jobs_total")
    assert [value(series, P + c, workspace_id=WS) for c in counters] == [1, 1]
    assert value(series, P + "dropped_jobs_total", workspace_id="ws-2") == 0
    running.exporter.set_config(parse_config(text, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    for _ in range(2):
        series = running.scrape()
        assert [value(series, P + c, workspace_id=WS) for c in counters] == [1, 1]
    assert value(series, P + "dropped_jobs_total", workspace_id="ws-2") is None


def test_finished_jobs_are_fetched_once(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(10, finished_every=2))
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{', '.join(f'job-{i:04d}' for i in range(10))}]\n",
    )
    running = start_exporter(config)
    first = running.scrape()
    assert len(fake.log) == 10
    second = running.scrape()
    assert len(fake.log) == 15  # only the 5 active jobs again

    def job_series(series):
        return {k: v for k, v in series.items() if k[0].startswith(P + "job_")}

    assert job_series(second) == job_series(first)
    finished = {"workspace_id": WS, "job_id": "job-0000"}
    assert value(second, P + "up", **finished) == 1
    assert value(second, P + "last_success_timestamp_seconds", **finished) == value(
        first, P + "last_success_timestamp_seconds", **finished
    )


def test_refresh_finished_and_min_refresh_interval(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(2, finished_every=2))
    jobs = f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0000, job-0001]\n"
    running = start_exporter(config_yaml(fake.base_url, jobs, "  refresh_finished: true\n"))
    running.scrape()
    running.scrape()
    assert len(fake.log) == 4
    slow = start_exporter(
        config_yaml(fake.base_url, jobs).replace(
            "min_refresh_interval: 0s", "min_refresh_interval: 1h"
        )
    )
    slow.scrape()
    slow.scrape()
    assert len(fake.log) == 6  # both served from memory the second time


def test_overlapping_scrapes_share_one_fetch(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(4))
    for i in range(4):
        fake.fail(
            fake.job_path(WS, f"job-{i:04d}"),
            Fault(200, envelope(full_job(f"job-{i:04d}", WS)), delay=0.5),
        )
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0000, job-0001, job-0002, job-0003]\n",
    )
    running = start_exporter(config)
    barrier = threading.Barrier(2)

    def scrape():
        barrier.wait()
        return running.scrape()

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: scrape(), range(2)))
    assert len(fake.log) == 4
    for series in results:
        assert [v for k, v in series.items() if k[0] == P + "up"] == [1, 1, 1, 1]


def test_rate_limit_backs_off_the_workspace_and_serves_last_good_data(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(2))
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0000, job-0001]\n",
    )
    running = start_exporter(config)
    running.scrape()
    fake.fail(
        fake.job_path(WS, "job-0001"), Fault(429, {"message": "slow"}, {"Retry-After": "120"})
    )
    before = time.time()
    series = running.scrape(headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})
    assert len(fake.log) == 4
    until = value(series, P + "backoff_until_timestamp_seconds", workspace_id=WS)
    assert until is not None and before + 119 <= until <= time.time() + 120
    down = {"workspace_id": WS, "job_id": "job-0001"}
    assert value(series, P + "error_info", **down, reason="rate_limited") == 1
    assert value(series, P + "job_scraped_pages", **down) == 1  # last good data
    # While backing off, the workspace is not called at all.
    series = running.scrape()
    assert len(fake.log) == 4
    for job_id in ("job-0000", "job-0001"):
        labels = {"workspace_id": WS, "job_id": job_id}
        assert value(series, P + "up", **labels) == 0
        assert value(series, P + "error_info", **labels, reason="rate_limited") == 1
    assert value(series, P + "api_errors_total", workspace_id=WS, reason="rate_limited") == 1


def test_rate_limit_without_retry_after_backs_off_exponentially(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(1))
    fake.fail(fake.job_path(WS, "job-0000"), Fault(429, {"message": "slow"}))
    config = config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0000]\n"
    )
    running = start_exporter(config)
    before = time.time()
    series = running.scrape()
    until = value(series, P + "backoff_until_timestamp_seconds", workspace_id=WS)
    # First strike: 1 s base with jitter between 0.5x and 1.5x.
    assert until is not None and before + 0.5 <= until <= time.time() + 1.5
    assert len(fake.log) == 1


def test_a_reload_keeps_the_finished_jobs_of_the_same_api_and_drops_another_apis(
    fake, start_exporter
):
    fake.set_jobs(WS, many_jobs(2, finished_every=1))
    workspace = f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0000]\n"
    text = config_yaml(fake.base_url, workspace)
    running = start_exporter(text)
    running.scrape()
    running.scrape()
    assert len(fake.log) == 1
    # A reload of the same config (as an edit elsewhere in the file causes): the finished
    # job stays known and is not fetched again.
    running.exporter.set_config(parse_config(text, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    series = running.scrape()
    assert len(fake.log) == 1
    assert value(series, P + "up", workspace_id=WS, job_id="job-0000") == 1
    # The same API under another name is another API as far as the exporter can tell.
    other = config_yaml(fake.base_url.replace("127.0.0.1", "localhost"), workspace)
    running.exporter.set_config(parse_config(other, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    running.scrape()
    assert len(fake.log) == 2


def test_probe_serves_one_job(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(3))
    fake.set_jobs("ws-open", {"any": full_job("any", "ws-open")})
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0000, job-0001]\n"
        "  - id: ws-open\n    token: ${CONVOCORE_TOKEN}\n    jobs: [x]\n    allow_unconfigured_probes: true\n",
    )
    running = start_exporter(config)
    series = running.scrape(f"/probe?workspace_id={WS}&job_id=job-0001")
    jobs = {dict(k[1]).get("job_id") for k in series}
    assert jobs == {"job-0001"}
    assert value(series, P + "up", workspace_id=WS, job_id="job-0001") == 1
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-0001") == 1
    assert fake.paths() == [fake.job_path(WS, "job-0001")]
    assert running.get(f"/probe?workspace_id={WS}&job_id=job-0002").status_code == 404
    assert (
        "not configured or discovered"
        in running.get(f"/probe?workspace_id={WS}&job_id=job-0002").text
    )
    assert running.get("/probe?workspace_id=nope&job_id=a").status_code == 404
    assert running.get(f"/probe?workspace_id={WS}").status_code == 400
    assert running.get(f"/probe?workspace_id={WS}&job_id=a/b").status_code == 400
    open_series = running.scrape("/probe?workspace_id=ws-open&job_id=any")
    assert value(open_series, P + "up", workspace_id="ws-open", job_id="any") == 1


def test_probe_of_a_discovered_job_uses_the_listing(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(3))
    running = start_exporter(discover_config(fake))
    series = running.scrape(f"/probe?workspace_id={WS}&job_id=job-0002")
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="job-0002") == 2
    assert fake.paths() == [LIST]


def test_sd_lists_every_job_for_probe(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(2))
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n    jobs: [{{id: job-0000, name: main}}]\n",
    )
    running = start_exporter(config)
    response = running.get("/sd", headers={"Host": "exporter.example:19417"})
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == [
        {
            "targets": ["exporter.example:19417"],
            "labels": {
                "__param_workspace_id": WS,
                "__param_job_id": job_id,
                "__meta_convocore_workspace_id": WS,
                "__meta_convocore_job_id": job_id,
                "__meta_convocore_job_name": name,
            },
        }
        for job_id, name in (("job-0000", "main"), ("job-0001", ""))
    ]
    # A Host header that is not host[:port] is not echoed back.
    bad = running.get("/sd", headers={"Host": 'evil"host/x'}).json()
    assert bad[0]["targets"] == [running.url.removeprefix("http://")]


def test_shards_are_disjoint_and_complete(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(60))
    config = discover_config(fake)
    seen: list[set[str]] = []
    for shard in range(3):
        series = start_exporter(config, shard=shard, total_shards=3).scrape()
        seen.append({dict(k[1])["job_id"] for k in series if k[0] == P + "up"})
    assert set().union(*seen) == {f"job-{i:04d}" for i in range(60)}
    assert sum(len(s) for s in seen) == 60
    assert all(len(s) > 0 for s in seen)
    for shard, jobs in enumerate(seen):
        assert all(shard_of(WS, job, 3) == shard for job in jobs)
    # Stable across processes, restarts and Python versions.
    assert [shard_of("ws-1", f"job-{i:04d}", 3) for i in range(6)] == EXPECTED_SHARDS


EXPECTED_SHARDS = [1, 0, 0, 0, 2, 2]  # sha256-based, fixed forever


def test_metrics_of_discovered_jobs_parse(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(5))
    text = start_exporter(discover_config(fake)).get().text
    assert len([k for k in parse_exposition(text) if k[0] == P + "job_info"]) == 5


def test_jobs_that_leave_the_listing_leave_memory_and_output(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(5))
    running = start_exporter(discover_config(fake))
    running.scrape()
    memory = running.exporter.memory()
    assert (len(memory.jobs), memory.listings, memory.fetches_in_flight) == (5, {WS}, 0)
    fake.set_jobs(WS, {k: v for k, v in many_jobs(5).items() if k != "job-0003"})
    series = running.scrape()
    assert value(series, P + "up", workspace_id=WS, job_id="job-0003") is None
    assert sorted(k[1] for k in running.exporter.memory().jobs) == [
        "job-0000",
        "job-0001",
        "job-0002",
        "job-0004",
    ]


def test_include_finished_for_never_hides_a_job_listed_by_hand(fake, start_exporter):
    old = full_job("old", WS, status="completed", ts=1_000_000_000_000)
    fake.set_jobs(
        WS,
        {"old": old, "other-old": full_job("other-old", WS, status="failed", ts=1_000_000_000_000)},
    )
    running = start_exporter(
        discover_config(fake, "    include_finished_for: 1d\n    jobs: [old]\n")
    )
    for _ in range(2):
        series = running.scrape()
        assert value(series, P + "up", workspace_id=WS, job_id="old") == 1
        assert value(series, P + "up", workspace_id=WS, job_id="other-old") is None
    assert fake.count(fake.job_path(WS, "old")) == 1


@pytest.mark.parametrize(("count", "pages"), [(100, 1), (200, 2), (201, 3), (0, 1)])
@pytest.mark.parametrize("pagination", ["page", "cursor"])
def test_discovery_asks_for_exactly_the_pages_it_needs(
    fake, start_exporter, pagination, count, pages
):
    fake.api.pagination = pagination
    fake.set_jobs(WS, many_jobs(count))
    series = start_exporter(discover_config(fake)).scrape()
    assert len([k for k in series if k[0] == P + "up"]) == count
    assert fake.count(LIST) == pages


def test_sd_prunes_jobs_gone_from_the_listing(fake, start_exporter):
    fake.set_jobs(WS, many_jobs(3))
    running = start_exporter(discover_config(fake))
    for job_id in ("job-0000", "job-0001", "job-0002"):
        running.scrape(f"/probe?workspace_id={WS}&job_id={job_id}")
    assert len(running.exporter.memory().jobs) == 3
    fake.set_jobs(WS, {k: v for k, v in many_jobs(3).items() if k != "job-0001"})
    assert [g["labels"]["__param_job_id"] for g in running.get("/sd").json()] == [
        "job-0000",
        "job-0002",
    ]
    assert sorted(k[1] for k in running.exporter.memory().jobs) == ["job-0000", "job-0002"]
