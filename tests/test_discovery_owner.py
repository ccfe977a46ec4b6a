"""Discovery with one owner per workspace: a walk's errors are its own, readers only ever see
whole snapshots, listing requests share one bound over all workspaces, and a refresh that
read the whole list drops the jobs that left it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

import exporter.collect.discovery.snapshot as snapshot_module
import exporter.collect.discovery.walks as walks_module
from exporter.convocore.api import Follow

from .conftest import value
from .fakeapi import Fault, full_job
from .support import Clock, config_yaml, discovering, wait_for

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"
# Jobs updated now: within the default include_finished_for (7d) whatever the day the tests
# run (full_job's own timestamp is a fixed date).
NOW_MS = int(time.time() * 1000)


def jobs(count: int, prefix: str = "job", workspace: str = WS) -> dict[str, dict[str, Any]]:
    """``count`` completed jobs, listed in this order."""
    return {
        f"{prefix}-{i:04d}": full_job(
            f"{prefix}-{i:04d}",
            workspace,
            status="completed",
            done=True,
            scrapedPagesNum=i,
            ts=NOW_MS,
        )
        for i in range(count)
    }


def exported(series) -> set[str]:
    return {dict(k[1])["job_id"] for k in series if k[0] == P + "up" and series[k] == 1}


def settled(running) -> bool:
    return running.exporter.memory().fetches_in_flight == 0


class Once:
    """Raises ``error`` the first time it is called, then calls ``real``."""

    def __init__(self, real: Any, error: Exception) -> None:
        self.real, self.error, self.calls = real, error, 0

    def __call__(self, *args: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise self.error
        return self.real(*args, **kw)


@pytest.mark.parametrize("where", ["parser", "follower"])
def test_a_walk_that_raises_is_down_with_its_reason_and_the_next_recovers(
    fake, start_exporter, captured_logs, monkeypatch, where
):
    # The follower reads on past the first answer of a cursor list.
    fake.api.pagination = "page" if where == "parser" else "cursor"
    fake.set_jobs(WS, jobs(150))
    if where == "parser":
        monkeypatch.setattr(
            snapshot_module, "parse_job", Once(snapshot_module.parse_job, KeyError("x"))
        )
    else:
        monkeypatch.setattr(walks_module, "Follow", Once(Follow, RuntimeError("boom")))
    running = start_exporter(discovering(fake, WS))
    series = running.scrape()
    assert exported(series) == set()
    assert value(series, P + "discovery_up", workspace_id=WS) == 0
    reason = {"workspace_id": WS, "reason": "internal_error"}
    assert value(series, P + "discovery_error_info", **reason) == 1
    assert value(series, P + "api_errors_total", **reason) == 1
    crashed = [line for line in captured_logs if "job listing crashed" in line]
    error = "KeyError" if where == "parser" else "RuntimeError"
    assert len(crashed) == 1
    assert f"workspace_id={WS} error={error}" in crashed[0]
    assert "level=error" in crashed[0]
    # The next cycle lists again, and recovers.
    series = running.scrape()
    assert exported(series) == set(jobs(150))
    assert value(series, P + "discovery_up", workspace_id=WS) == 1
    assert not [k for k in series if k[0] == P + "discovery_error_info"]
    assert value(series, P + "api_errors_total", **reason) == 1
    assert len([line for line in captured_logs if "job listing crashed" in line]) == 1
    assert [line for line in captured_logs if "listing_in_progress" in line] == []


def test_readers_see_whole_snapshots_while_jobs_come_and_go(fake, start_exporter, captured_logs):
    """Adds and drops applied continuously (every scrape refreshes the one-page list) while
    threads read /metrics, /sd, /probe and / for about three seconds."""
    stable = full_job("stable", WS, ts=NOW_MS)
    fake.set_jobs(WS, {"stable": stable, **jobs(40)})
    running = start_exporter(discovering(fake, WS))
    assert "stable" in exported(running.scrape())
    stop = threading.Event()
    answers: list[int] = []
    paths = ["/metrics", "/sd", f"/probe?workspace_id={WS}&job_id=stable", "/"]

    def churn() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            fake.set_jobs(WS, {"stable": stable, **jobs(40 + n % 7, prefix=f"j{n % 5}")})
            time.sleep(0.005)

    def pound(path: str) -> None:
        with requests.Session() as session:
            for _ in range(400):
                if stop.is_set():
                    break
                answers.append(session.get(running.url + path, timeout=30).status_code)

    threads = [threading.Thread(target=churn)]
    threads += [threading.Thread(target=pound, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(answers) > len(paths)
    assert set(answers) == {200}
    assert [line for line in captured_logs if "level=error" in line or "error=" in line] == []


def test_listing_takes_half_of_max_concurrency_over_every_workspace(fake, start_exporter):
    """Three discovering workspaces, each 1,000 jobs (10 pages) at 50 ms an answer, with
    max_concurrency 8: at most 4 list requests in flight at once, all workspaces together."""
    spaces = ("ws-a", "ws-b", "ws-c")
    for ws in spaces:
        fake.set_jobs(ws, jobs(1000, workspace=ws))
    fake.latency = 0.05
    workspaces = "".join(
        f"  - id: {ws}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n" for ws in spaces
    )
    running = start_exporter(config_yaml(fake.base_url, workspaces, "  max_concurrency: 8\n"))
    series = running.scrape()
    ups = [k for k in series if k[0] == P + "up" and series[k] == 1]
    assert len(ups) == 3000
    assert all("/crawler/jobs/" not in path for path in fake.paths())  # list requests only
    assert len(fake.paths()) == 30
    assert fake.peak == 4


@pytest.mark.parametrize("pagination", ["page", "cursor"])
def test_a_job_deleted_from_a_one_page_list_leaves_at_the_next_refresh(
    fake, start_exporter, pagination
):
    fake.api.pagination = pagination
    listed = {**jobs(59), "live": full_job("live", WS, ts=NOW_MS)}
    fake.set_jobs(WS, listed)
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, api="  min_refresh_interval: 10s\n"), clock=clock
    )
    assert len(exported(running.scrape())) == 60
    fake.log.clear()
    del listed["job-0007"]
    fake.set_jobs(WS, dict(listed))
    clock.now += 10
    series = running.scrape()
    assert fake.queries(LIST) == ["page=1&limit=100"]
    assert len(exported(series)) == 59
    assert "job-0007" not in exported(series)
    assert value(series, P + "up", workspace_id=WS, job_id="job-0007") is None


def test_a_job_deleted_from_a_long_list_leaves_at_the_next_full_listing(fake, start_exporter):
    listed = {"live": full_job("live", WS, ts=NOW_MS), **jobs(299)}
    fake.set_jobs(WS, listed)
    clock = Clock()
    config = discovering(
        fake, WS, "    discover_interval: 10m\n", api="  min_refresh_interval: 10s\n"
    )
    running = start_exporter(config, clock=clock)
    assert len(exported(running.scrape())) == 300
    fake.log.clear()
    del listed["job-0250"]  # on the third page
    fake.set_jobs(WS, dict(listed))
    clock.now += 10
    series = running.scrape()
    # A refresh reads the page of the active job only: the third page is not read.
    assert fake.queries(LIST) == ["page=1&limit=100"]
    assert len(exported(series)) == 300
    clock.now += 590  # the full listing is due, and runs in the background
    running.scrape()
    assert wait_for(lambda: settled(running))
    series = running.scrape()
    assert len(exported(series)) == 299
    assert "job-0250" not in exported(series)


def test_a_refresh_that_turns_into_a_full_listing_is_not_waited_for(fake, start_exporter):
    """Five active jobs on page 1 move to page 2 behind 100 new ones: re-reading them would
    cost more than a full listing has pages, so the refresh becomes a full listing, which
    runs in the background like every full listing after the first (here it hangs)."""
    listed = {f"run-{i}": full_job(f"run-{i}", WS, ts=NOW_MS) for i in range(5)} | jobs(295)
    fake.set_jobs(WS, listed)
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, api="  min_refresh_interval: 10s\n  timeout_seconds: 5\n"),
        clock=clock,
    )
    assert len(exported(running.scrape())) == 300
    fake.log.clear()
    fake.set_jobs(WS, jobs(100, prefix="new") | listed)
    fake.chaos = lambda target: Fault(hang=True) if "page=2&" in target else None
    clock.now += 10
    started = time.monotonic()
    series = running.scrape(headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
    took = time.monotonic() - started
    # The refresh read page 1 and the new last page, then started the full listing.
    assert fake.queries(LIST)[:2] == ["page=1&limit=100", "page=4&limit=100"]
    assert "page=2&limit=100" in fake.queries(LIST)
    assert took < 2.0  # not the 2.5 s deadline: the hung full listing was not waited for
    assert len(exported(series)) == 300  # the last snapshot, served meanwhile
    assert value(series, P + "discovery_up", workspace_id=WS) == 1
