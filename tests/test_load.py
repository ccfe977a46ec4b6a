"""Many concurrent scrapes: every answer complete, and threads and memory back to baseline."""

from __future__ import annotations

import concurrent.futures
import gc
import os
import sys
import threading
from typing import Any

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

from exporter.web.limits import Limits
from exporter.web.server import ServerOptions

from .conftest import parse_exposition, value
from .fakeapi import full_job
from .support import config_yaml, wait_for

P = "convocore_crawler_"
WS = "ws-load"
JOBS = 20
SCRAPES = 200


# Resident memory, not traced allocations: tracing 200 threads' allocations makes the test
# ten times slower. Measured from a steady state after a first burst; a leak of one answer's
# size (~45 KB) per scrape, times 200, would exceed the bound.
RSS_BOUND = 8 * 1024 * 1024


def threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def handler_threads(server: object) -> set[int]:
    """Threads handling a connection of ``server`` (found by their finish_request frame)."""
    found = set()
    for ident, frame in sys._current_frames().items():
        walk: Any = frame
        while walk is not None:
            if walk.f_code.co_name == "finish_request" and walk.f_locals.get("self") is server:
                found.add(ident)
                break
            walk = walk.f_back
    return found


def other_threads(*servers: object) -> list[str]:
    skip = set().union(*(handler_threads(s) for s in servers))
    return sorted(
        t.name
        for t in threading.enumerate()
        if t.ident not in skip and not t.name.startswith("upstream_")
    )


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_200_concurrent_scrapes_over_20_jobs(fake, start_exporter):
    fake.set_jobs(
        WS, {f"job-{i}": full_job(f"job-{i}", WS, scrapedPagesNum=i) for i in range(JOBS)}
    )
    jobs = ", ".join(f"job-{i}" for i in range(JOBS))
    # Every scrape at once is served: --web.max-requests refuses none of them here (its cap
    # has tests of its own, in test_web_limits.py).
    running = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{jobs}]\n"
        ),
        options=ServerOptions(limits=Limits(max_requests=SCRAPES)),
    )
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}

    def scrape(index: int) -> tuple[int, str, str]:
        accept = "application/openmetrics-text; version=1.0.0" if index % 4 == 0 else "*/*"
        with requests.Session() as session:
            answer = session.get(
                running.url + "/metrics", headers={**headers, "Accept": accept}, timeout=60
            )
        return answer.status_code, answer.headers.get("Content-Type", ""), answer.text

    # A first burst reaches the steady state: the allocator's per-thread arenas stay mapped
    # after 200 threads have come and gone, and are reused by the next 200.
    with concurrent.futures.ThreadPoolExecutor(max_workers=SCRAPES) as pool:
        list(pool.map(scrape, range(SCRAPES)))
    gc.collect()
    assert wait_for(lambda: not handler_threads(running.server), timeout=30)
    threads_before = other_threads(running.server, fake)
    rss_before = rss_bytes()
    with concurrent.futures.ThreadPoolExecutor(max_workers=SCRAPES) as pool:
        answers = list(pool.map(scrape, range(SCRAPES)))
    del pool
    for status, content_type, text in answers:
        assert status == 200
        if content_type.startswith("application/openmetrics-text"):
            assert text.endswith("# EOF\n")
            families = list(om_parse(text))  # the strict parser: raises if malformed
            assert any(f.name == P + "up" for f in families)
            series = {
                (s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples
            }
        else:
            series = parse_exposition(text)
        ups = [k for k in series if k[0] == P + "up"]
        assert len(ups) == JOBS
        for i in range(JOBS):
            labels = {"workspace_id": WS, "job_id": f"job-{i}"}
            assert value(series, P + "up", **labels) == 1
            assert value(series, P + "job_scraped_pages", **labels) == i
    del answers, series
    # The scrapes' threads end and their memory goes back (bounded waits, not timing).
    # Every scrape's thread ends. What stays is bounded: the upstream workers (a pool of
    # max_concurrency) and the fake's handlers of the pooled keep-alive upstream connections.
    assert wait_for(lambda: not handler_threads(running.server), timeout=30)
    assert len(threads("upstream_")) <= 16
    assert len(handler_threads(fake)) <= 16
    assert other_threads(running.server, fake) == threads_before

    def settled() -> bool:
        gc.collect()
        return rss_bytes() - rss_before < RSS_BOUND

    assert wait_for(settled, timeout=30), rss_bytes() - rss_before
    assert running.get("/-/healthy").status_code == 200
