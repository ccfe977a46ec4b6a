"""A hung or slow job delays only itself: per-job pipelining of the pages reads, and overdue
fetches (a job, a pages list or a listing that timed out in flight) not waited for again.

Time bounds here are the claim ("this scrape did not wait for the hung job"), so each is the
scrape's own deadline: a scrape that waited would take at least that long, one that did not
takes milliseconds.
"""

from __future__ import annotations

import time

import pytest

from .conftest import value
from .fakeapi import Fault, full_job
from .support import config_yaml, wait_for

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"


def pages(count: int) -> list[dict[str, object]]:
    return [
        {"id": f"p{i}", "url": f"https://x.example/{i}", "mdCharCount": 100, "failed": False}
        for i in range(count)
    ]


def header(seconds: float) -> dict[str, str]:
    return {"X-Prometheus-Scrape-Timeout-Seconds": str(seconds)}


def timed_scrape(running, seconds: float):
    started = time.monotonic()
    series = running.scrape(headers=header(seconds))
    return series, time.monotonic() - started


def reasons(series, metric: str, job_id: str) -> list[str]:
    return [
        dict(labels)["reason"]
        for name, labels in series
        if name == P + metric and dict(labels).get("job_id") == job_id
    ]


def test_a_hung_get_job_delays_only_its_own_pages_read(fake, start_exporter):
    """The pages of the healthy jobs are read in the same scrape in which one job's get-job
    hangs until the deadline (before, every read waited for every get-job)."""
    fake.set_jobs(WS, {j: full_job(j, WS) for j in ("a", "b", "hung")})
    fake.set_pages(WS, "a", pages(3))
    fake.set_pages(WS, "b", pages(250))
    fake.fail(fake.job_path(WS, "hung"), Fault(hang=True))
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    page_stats: true\n"
        "    jobs: [a, b, hung]\n",
    )
    series, _ = timed_scrape(start_exporter(config), 2)
    for job_id, listed in (("a", 3), ("b", 250)):
        labels = {"workspace_id": WS, "job_id": job_id}
        assert value(series, P + "up", **labels) == 1
        assert value(series, P + "job_pages_listed", **labels) == listed
        assert value(series, P + "job_markdown_chars", **labels) == 100 * listed
        assert reasons(series, "page_stats_error_info", job_id) == []
    hung = {"workspace_id": WS, "job_id": "hung"}
    assert value(series, P + "up", **hung) == 0
    assert reasons(series, "error_info", "hung") == ["deadline"]
    assert value(series, P + "job_pages_listed", **hung) is None  # never fetched: no pages
    assert fake.pages_requests(WS, "a") == ["1"]
    assert fake.pages_requests(WS, "b") == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("api", "seconds", "reason"),
    [
        # The API's own timeout (3 s) runs out first: reason timeout.
        ("  timeout_seconds: 3\n", 12, "timeout"),
        # The scrape's deadline (3.5 s: the header minus 0.5 s) runs out first.
        ("  timeout_seconds: 30\n", 4, "deadline"),
    ],
    ids=["timeout", "deadline"],
)
def test_a_hung_job_costs_one_deadline_not_every_scrape(  # noqa: PLR0917
    fake, start_exporter, captured_logs, api, seconds, reason
):
    fake.set_jobs(WS, {j: full_job(j, WS) for j in ("ok", "hung")})
    fake.fail(fake.job_path(WS, "hung"), Fault(hang=True))
    config = config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [ok, hung]\n"
    ).replace("  timeout_seconds: 2\n", api)
    running = start_exporter(config)
    series, first = timed_scrape(running, seconds)
    waited = 3 if reason == "timeout" else seconds - 0.5
    assert first >= waited  # the first scrape waits for it once
    assert reasons(series, "error_info", "hung") == [reason]
    # The first fetch ends at its deadline (the watchdog's grace after it at most).
    assert wait_for(lambda: running.exporter.memory().fetches_in_flight == 0)
    for scrape in (2, 3):
        series, took = timed_scrape(running, seconds)
        assert took < waited, f"scrape {scrape} waited for the hung job"
        assert value(series, P + "up", workspace_id=WS, job_id="ok") == 1
        assert value(series, P + "up", workspace_id=WS, job_id="hung") == 0
        assert reasons(series, "error_info", "hung") == [reason]
        # The second scrape asks again (an answer would end it) without waiting; the third,
        # right after it, shares that request still in flight. One failure counted per fetch.
        assert value(series, P + "api_errors_total", workspace_id=WS, reason=reason) == 2
    assert fake.count(fake.job_path(WS, "hung")) == 2
    down = [line for line in captured_logs if "job is down" in line]
    assert len(down) == 1 and "job_id=hung" in down[0]  # one line, not one per scrape

    # An answer ends it: the next scrapes wait for the job again.
    fake.faults.clear()
    fake.release.set()  # the hanging requests end (the connection closes)
    assert wait_for(lambda: running.exporter.memory().fetches_in_flight == 0)
    fake.release.clear()
    series, _ = timed_scrape(running, seconds)
    assert value(series, P + "up", workspace_id=WS, job_id="hung") == 1
    assert reasons(series, "error_info", "hung") == []


@pytest.mark.parametrize("read", ["pages", "listing"])
def test_a_hung_read_is_waited_for_once(fake, start_exporter, read):
    """A pages read or a job listing that hangs costs the scrape that started it its deadline
    (3 s: 2.5 s after the header's half second); the next scrape does not wait for it."""
    if read == "pages":
        fake.set_jobs(WS, {j: full_job(j, WS) for j in ("a", "b")})
        fake.set_pages(WS, "a", pages(5))
        workspace = "    page_stats: true\n    page_stats_interval: 0s\n    jobs: [a, b]\n"
    else:
        fake.set_jobs(WS, {j: full_job(j, WS) for j in ("d1", "d2")})
        workspace = "    discover: true\n"
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n{workspace}",
        "  timeout_seconds: 30\n",
    )
    running = start_exporter(config)
    if read == "listing":
        timed_scrape(running, 3)  # one good listing first
    fake.fail(fake.pages_path(WS, "b") if read == "pages" else LIST, Fault(hang=True))
    first_series, first = timed_scrape(running, 3)
    assert first >= 2.5
    series, took = timed_scrape(running, 3)
    assert took < 2.5
    if read == "pages":
        for scraped in (first_series, series):
            assert reasons(scraped, "page_stats_error_info", "b") == ["deadline"]
            assert value(scraped, P + "job_pages_listed", workspace_id=WS, job_id="a") == 5
        assert value(series, P + "up", workspace_id=WS, job_id="b") == 1  # pages never mark down
    else:
        # The hung walk goes on (its request has its own 30 s timeout), shared, not restarted;
        # meanwhile the discovered jobs are served from the last complete listing, and a walk
        # under way is no failure of discovery.
        assert fake.count(LIST) == 2
        for job_id in ("d1", "d2"):
            assert value(series, P + "up", workspace_id=WS, job_id=job_id) == 1
        assert value(series, P + "discovery_up", workspace_id=WS) == 1
        assert not [k for k in series if k[0] == P + "discovery_error_info"]
