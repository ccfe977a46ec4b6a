"""A listing blip is not a fleet outage: discovered jobs keep the last good listing until it
has failed for ``discover_grace_period``; discovery's health is a metric of its own and one
log line per workspace and change.

Time is the exporter's injected clock, moved by the tests.
"""

from __future__ import annotations

import pytest

from exporter.config import ConfigError, parse_config

from .conftest import value
from .fakeapi import Fault, full_job
from .support import Clock, discovering

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"
JOBS = ("d1", "d2", "d3")


def ups(series) -> dict[str, float | None]:
    return {j: value(series, P + "up", workspace_id=WS, job_id=j) for j in JOBS}


def job_errors(series) -> list[tuple[str, str]]:
    return sorted(
        (dict(labels)["job_id"], dict(labels)["reason"])
        for name, labels in series
        if name == P + "error_info"
    )


def discovery(series) -> tuple[float | None, list[str]]:
    errors = [
        dict(labels)["reason"]
        for name, labels in series
        if name == P + "discovery_error_info" and dict(labels)["workspace_id"] == WS
    ]
    return value(series, P + "discovery_up", workspace_id=WS), errors


def test_the_grace_period_is_five_minutes_by_default_and_configurable():
    base = "workspaces:\n  - id: w\n    token: t\n    discover: true\n"
    (ws,) = parse_config(base, "c.yml", {}).workspaces
    assert ws.discover_grace_period == 300.0
    (ws,) = parse_config(base + "    discover_grace_period: 90s\n", "c.yml", {}).workspaces
    assert ws.discover_grace_period == 90.0
    with pytest.raises(ConfigError) as caught:
        parse_config(base + "    discover_grace_period: 90\n", "c.yml", {})
    assert str(caught.value) == (
        "c.yml:5:28: workspaces[0].discover_grace_period: expected a duration such as 0, 30s, "
        "5m, 1h30m or 7d (whole numbers with units y, w, d, h, m, s, ms, largest first, each "
        "once), got number 90"
    )


FAULTS = {
    "500": (Fault(500, "<html>oops</html>", times=2), "server_error"),
    "html 502": (
        Fault(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}, times=2),
        "server_error",
    ),
    "truncated json": (
        Fault(200, '{"success": true, "data": {"jobs": [', times=1),
        "invalid_response",
    ),
    "reset mid-body": (
        Fault(200, '{"success": true, "data": {}}', reset_after=5, times=2),
        "connection",
    ),
    "429": (Fault(429, {"message": "slow"}, {"Retry-After": "3600"}, times=1), "rate_limited"),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_listing_blip_leaves_discovered_jobs_up(fake, start_exporter, captured_logs, name):
    fault, reason = FAULTS[name]
    fake.set_jobs(WS, {j: full_job(j, WS, scrapedPagesNum=i) for i, j in enumerate(JOBS)})
    clock = Clock(5000.0)
    running = start_exporter(discovering(fake, WS), clock=clock)
    first = running.scrape()
    last_success = value(first, P + "last_success_timestamp_seconds", workspace_id=WS, job_id="d2")
    assert discovery(first) == (1, [])
    captured_logs.clear()

    fake.fail(LIST, fault)
    clock.now += 10
    series = running.scrape()
    assert ups(series) == {"d1": 1, "d2": 1, "d3": 1}
    assert job_errors(series) == []
    # The last good listing's data, and its age through the last-success timestamp.
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="d3") == 2
    assert (
        value(series, P + "last_success_timestamp_seconds", workspace_id=WS, job_id="d2")
        == last_success
    )
    assert discovery(series) == (0, [reason])
    assert value(series, P + "api_errors_total", workspace_id=WS, reason=reason) == 1
    warned = [line for line in captured_logs if "level=warning" in line]
    assert len(warned) == 1, warned
    assert "job listing failed" in warned[0] and f"workspace_id={WS}" in warned[0]
    assert f"reason={reason}" in warned[0] and "job_id" not in warned[0]

    if name == "429":
        return  # the workspace stays in backoff for an hour: the listing is not asked again
    captured_logs.clear()
    clock.now += 10
    series = running.scrape()
    assert ups(series) == {"d1": 1, "d2": 1, "d3": 1}
    assert discovery(series) == (1, [])
    lines = [line for line in captured_logs if "exporter.collect" in line]
    assert len(lines) == 1 and "job listing answers again" in lines[0], lines
    assert f"previous_reason={reason}" in lines[0]


def test_a_listing_failing_past_the_grace_period_marks_discovered_jobs_down(
    fake, start_exporter, captured_logs
):
    fake.set_jobs(WS, {j: full_job(j, WS) for j in JOBS})
    clock = Clock(5000.0)
    running = start_exporter(discovering(fake, WS, "    discover_grace_period: 5m\n"), clock=clock)
    running.scrape()
    fake.fail(LIST, Fault(503, "<html>down</html>"))
    captured_logs.clear()
    series = running.scrape()  # the first failure, at 5000 s
    assert ups(series) == {"d1": 1, "d2": 1, "d3": 1}
    clock.now += 299.9
    series = running.scrape()
    assert ups(series) == {"d1": 1, "d2": 1, "d3": 1}
    assert discovery(series) == (0, ["server_error"])
    clock.now += 0.1  # failing for 300 s: the grace period is over
    for _ in range(2):
        series = running.scrape()
        assert ups(series) == {"d1": 0, "d2": 0, "d3": 0}
        assert job_errors(series) == [(j, "server_error") for j in JOBS]
        # Still the last listing's data, with up 0.
        assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="d1") == 40
    warned = [line for line in captured_logs if "level=warning" in line]
    assert len(warned) == 2, warned  # the failure, then the grace period's end: per workspace
    assert "job listing failed" in warned[0]
    assert "failing for longer than discover_grace_period" in warned[1]
    assert "jobs=3" in warned[1]
    assert not any("job is down" in line for line in captured_logs)

    # It answers again: every discovered job is up at once, with one line.
    fake.faults.clear()
    captured_logs.clear()
    clock.now += 1
    series = running.scrape()
    assert ups(series) == {"d1": 1, "d2": 1, "d3": 1}
    assert job_errors(series) == []
    assert discovery(series) == (1, [])
    lines = [line for line in captured_logs if "level=info" in line and "exporter.collect" in line]
    assert len(lines) == 1 and "job listing answers again" in lines[0]
    assert "previous_reason=server_error" in lines[0]


def test_jobs_join_and_leave_with_the_first_good_listing(fake, start_exporter):
    fake.set_jobs(WS, {j: full_job(j, WS) for j in ("d1", "d2")})
    running = start_exporter(discovering(fake, WS))
    running.scrape()
    # d2 leaves and d3 joins while the listing fails: the last good listing is served.
    fake.set_jobs(WS, {j: full_job(j, WS) for j in ("d1", "d3")})
    fake.fail(LIST, Fault(500, "x", times=2))
    series = running.scrape()
    assert {dict(k[1])["job_id"] for k in series if k[0] == P + "up"} == {"d1", "d2"}
    # The first good listing: d2 is gone, d3 is exported.
    series = running.scrape()
    assert {dict(k[1])["job_id"] for k in series if k[0] == P + "up"} == {"d1", "d3"}
    assert value(series, P + "up", workspace_id=WS, job_id="d3") == 1
