"""Each job's lines are rendered once, when its data changes, and written as they are: the
output stays byte-identical to the writer's (golden files made before the cache existed)."""

from __future__ import annotations

import gzip
import math
import socket
import tracemalloc
from pathlib import Path

import pytest
import requests

from exporter.collect.families import job_families
from exporter.collect.own import OwnMetrics
from exporter.collect.pagereads import PageView
from exporter.collect.rendered import COLUMNS, RenderCache
from exporter.collect.state import Outcome, Runtime
from exporter.config import parse_config
from exporter.convocore.model import Job
from exporter.convocore.pages import PageStats
from exporter.exposition.writer import (
    PARTS_PER_PIECE,
    Family,
    Parts,
    iter_exposition,
    render_labels,
    render_tail,
    value_tail,
    write_openmetrics,
    write_text,
)

from .conftest import value
from .fakeapi import full_job
from .support import config_yaml, discover_yaml

WS = "ws-123"
GOLDEN = Path(__file__).parent / "data" / "golden"

CONFIG = """\
api:
  base_url: http://127.0.0.1:9/v3
workspaces:
  - id: ws-a
    token: ${T}
    jobs:
      - {id: full, name: 'Docs "main" \\ é'}
      - failed
      - stale
      - down
      - never
      - pages-only
  - id: ws-b
    token: ${T}
    jobs: [other]
"""

FULL = Job(
    "processing",
    done=False,
    failed=False,
    cancelled=False,
    scraped_pages=40,
    failed_pages=0,
    current_page_index=42,
    page_limit=float("inf"),
    max_pages=1e15,
    credits_per_page=float("nan"),
    estimated_credits=-0.0,
    seed_urls=1,
    scraped_urls=40,
    pending_candidate_urls=3,
    processed_crawl_urls=41,
    failed_crawl_urls=1,
    created_timestamp=1796040000.0,
    updated_timestamp=1796040000.123,
    submitted_timestamp=1796040005.0,
    webhook_finalized_timestamp=None,
    webhook_configured=True,
    primary_url='https://x.example/"quoted"\\path\nnext',
    refresh_rate="24h",
    processing_mode="standard",
    deep=True,
    use_proxy=False,
    agents=("agent-1", "agent-2"),
)
FAILED = Job(
    "failed",
    done=True,
    failed=True,
    scraped_pages=7,
    estimated_credits=12.5,
    failure='blocked by "robots.txt" \\ here',
    agents=("agent-1",),
)
STALE = Job("completed", done=True, scraped_pages=250, deep=False)
OTHER = Job("queued", scraped_pages=0)


def stats(listed: int, last: float | None) -> PageStats:
    return PageStats(listed, 1, 5000.0, 25000.5, listed - 1, [1, 2, 3, 0, 1, 0], last)


def scenario(failed: Job = FAILED) -> tuple[Runtime, list, dict, dict]:
    """Every job family: up and down jobs, stale data, failures, agents, escapes, special
    values, page totals and page errors, and a job with pages but no outcome."""
    config = parse_config(CONFIG, "<golden>", {"T": "secret-not-shown"})
    rt = Runtime(config, OwnMetrics())
    targets = list(rt.explicit.values())
    outcomes = {
        ("ws-a", "full"): Outcome(True, None, FULL, 1796040010.0),
        ("ws-a", "failed"): Outcome(True, None, failed, 1796040011.5),
        ("ws-a", "stale"): Outcome(False, "timeout", STALE, 1796040000.0),
        ("ws-a", "down"): Outcome(False, "unauthorized", None, None),
        ("ws-b", "other"): Outcome(True, None, OTHER, 1796040012.0),
    }
    pages = {
        ("ws-a", "full"): PageView(stats(10, 1796040000.5), None),
        ("ws-a", "failed"): PageView(None, "timeout"),
        ("ws-a", "stale"): PageView(stats(3, None), "server_error"),
        ("ws-a", "pages-only"): PageView(stats(1, 1.0), None),
    }
    return rt, targets, outcomes, pages


def expositions(failed: Job = FAILED) -> tuple[bytes, bytes]:
    rt, targets, outcomes, pages = scenario(failed)
    try:
        text = write_text(job_families(rt, targets, outcomes, pages))
        openmetrics = write_openmetrics(job_families(rt, targets, outcomes, pages))
    finally:
        rt.close()
    return text, openmetrics


CHANGED = Job(
    "failed",
    done=True,
    failed=True,
    scraped_pages=8,
    estimated_credits=12.5,
    failure="another text",
    agents=("agent-3",),
)


def test_every_job_family_is_written_as_the_golden_files_in_both_formats():
    text, openmetrics = expositions()
    assert text == (GOLDEN / "jobs.prom").read_bytes()
    assert openmetrics == (GOLDEN / "jobs.om.txt").read_bytes()


def test_after_one_job_changes_only_its_lines_differ():
    text, openmetrics = expositions(CHANGED)
    assert text == (GOLDEN / "jobs-changed.prom").read_bytes()
    assert openmetrics == (GOLDEN / "jobs-changed.om.txt").read_bytes()
    before = (GOLDEN / "jobs.prom").read_text().splitlines()
    after = text.decode().splitlines()
    removed = [line for line in before if line not in after]
    added = [line for line in after if line not in before]
    assert removed and added
    assert all('workspace_id="ws-a",job_id="failed"' in line for line in removed + added)


def test_an_unchanged_job_is_not_rendered_again_and_a_changed_one_once():
    rt, targets, outcomes, pages = scenario()
    try:
        first = write_text(job_families(rt, targets, outcomes, pages))
        assert rt.rendered.renders == 6  # every job with an outcome or page totals
        assert write_text(job_families(rt, targets, outcomes, pages)) == first
        assert rt.rendered.renders == 6
        # A fresh parse of the same data is the same job: nothing to render.
        same = Job("queued", scraped_pages=0)
        outcomes[("ws-b", "other")] = Outcome(True, None, same, 1796040012.0)
        assert write_text(job_families(rt, targets, outcomes, pages)) == first
        assert rt.rendered.renders == 6
        outcomes[("ws-a", "failed")] = Outcome(True, None, CHANGED, 1796040011.5)
        for _ in range(3):
            changed = write_text(job_families(rt, targets, outcomes, pages))
            assert changed == (GOLDEN / "jobs-changed.prom").read_bytes()
        assert rt.rendered.renders == 7
        # A page total read again (a new object, other numbers) renders that job alone.
        pages[("ws-a", "pages-only")] = PageView(stats(2, 1.0), None)
        job_families(rt, targets, outcomes, pages)
        job_families(rt, targets, outcomes, pages)
        assert rt.rendered.renders == 8
    finally:
        rt.close()


def test_a_served_outcome_seen_again_is_taken_as_it_is_and_an_equal_new_one_compared():
    rt, targets, outcomes, _ = scenario()
    cache = rt.rendered
    try:
        first = write_text(job_families(rt, targets, outcomes, {}))
        full = next(t for t in targets if t.key == ("ws-a", "full"))
        entry = cache.entries[full.key]
        # The very outcome the lines were rendered from: taken without comparing anything.
        assert cache.current(full, outcomes[full.key]) is entry
        assert write_text(job_families(rt, targets, outcomes, {})) == first
        assert cache.renders == 5
        # An equal outcome read again is compared, not rendered, and then taken as it is.
        again = Outcome(True, None, FULL, 1796040010.0)
        assert cache.current(full, again) is None
        outcomes[full.key] = again
        assert write_text(job_families(rt, targets, outcomes, {})) == first
        assert cache.renders == 5
        assert cache.current(full, again) is cache.entries[full.key]
        # Lines with page totals, or for no outcome, are never taken this way.
        assert cache.current(full, None) is None
        job_families(rt, targets, outcomes, {full.key: PageView(stats(10, 1.0), None)})
        assert cache.current(full, again) is None
        assert cache.renders == 6
    finally:
        rt.close()


def test_a_job_that_leaves_leaves_the_cache():
    rt, targets, outcomes, pages = scenario()
    try:
        job_families(rt, targets, outcomes, pages)
        assert len(rt.rendered.entries) == 6
        assert {len(entry.parts) for entry in rt.rendered.entries.values()} == {COLUMNS}
        rt.rendered.keep_only({("ws-a", "full")})
        assert set(rt.rendered.entries) == {("ws-a", "full")}
    finally:
        rt.close()


def test_rendered_parts_are_the_bytes_of_the_same_samples_written_plainly():
    """A straightforward reference: the same samples as plain families, in pieces of
    PARTS_PER_PIECE jobs, in both formats: several columns, a job without lines, a gauge
    histogram."""
    jobs = 2 * PARTS_PER_PIECE + 3
    labels = [render_labels(("job_id",), (f"j{i}",)) for i in range(jobs)]
    heads = [("{" + lab).encode() for lab in labels]
    plain = Family("g", "gauge", "A gauge.")
    tails: list[list[bytes]] = [[], []]
    for i, lab in enumerate(labels):
        rows = [("", lab + ',s="a"', i * 0.5), ("", lab + ',s="b"', -0.0)]
        if i != 5:  # a job without lines in this family
            plain.add(rows[0][1], rows[0][2])
            plain.add(rows[1][1], rows[1][2])
        for column, row in enumerate(rows):
            tails[column].append(b"" if i == 5 else render_tail("g", lab, [row]))
    histogram_rows = [
        (
            [("_bucket", lab + ',le="1.0"', 1.0), ("_bucket", lab + ',le="+Inf"', 2.0)],
            [("_gcount", lab, 2.0)],
            [("_gsum", lab, float(i))],
        )
        for i, lab in enumerate(labels)
    ]
    plain_histogram = Family(
        "h",
        "gaugehistogram",
        "Sizes.",
        [s for row in histogram_rows for group in row for s in group],
    )

    def column(at: int) -> list[bytes]:
        return [
            render_tail("h", lab, row[at]) for lab, row in zip(labels, histogram_rows, strict=True)
        ]

    columns = tuple(
        (f"h{suffix}".encode(), lambda at=at: column(at))
        for at, suffix in enumerate(("_bucket", "_gcount", "_gsum"))
    )
    cached_histogram = Family("h", "gaugehistogram", "Sizes.", parts=Parts(heads, columns))
    empty = Family("e", "gauge", "Empty.", parts=Parts(heads, ((b"e", lambda: [b""] * jobs),)))
    for openmetrics in (False, True):
        cached = Family(
            "g",
            "gauge",
            "A gauge.",
            parts=Parts(heads, tuple((b"g", lambda t=t: t) for t in tails)),
        )
        pieces = list(iter_exposition([empty, cached, cached_histogram], openmetrics))
        reference = list(iter_exposition([plain, plain_histogram], openmetrics))
        assert b"".join(pieces) == b"".join(reference)
        assert len(pieces) > len(reference)  # streamed a batch of jobs at a time


@pytest.mark.parametrize(
    "number",
    [0.0, -0.0, 1.0, -3.0, 0.5, 1e15, 10**15 - 1, 2.0**63, 5e-324, math.inf, -math.inf, math.nan],
)
def test_a_value_tail_is_the_line_the_writer_writes(number):
    for _ in range(2):  # formatted, then from the kept tails
        assert value_tail(number) == render_tail("n", 'a="b"', [("", 'a="b"', number)])


def test_over_http_finished_jobs_are_rendered_once(fake, start_exporter):
    jobs = {f"job-{i}": full_job(f"job-{i}", WS, status="completed", done=True) for i in range(3)}
    fake.set_jobs(WS, jobs)
    running = start_exporter(
        config_yaml(
            fake.base_url,
            f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{', '.join(jobs)}]\n",
        )
    )
    first = running.get().text
    memory = running.exporter.memory()
    assert (memory.rendered, memory.renders) == ({(WS, f"job-{i}") for i in range(3)}, 3)
    for _ in range(2):
        assert _jobs_only(running.get().text) == _jobs_only(first)
    assert running.exporter.memory().renders == 3


def test_over_http_a_job_served_from_memory_keeps_its_outcome_and_lines(
    fake, start_exporter, monkeypatch
):
    fake.set_jobs(WS, {"job-0": full_job("job-0", WS, status="completed", done=True)})
    running = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0]\n"
        )
    )
    first = running.get().text
    compared: list[object] = []
    real = RenderCache.lines

    def lines(self, target, outcome, view):
        compared.append(outcome)
        return real(self, target, outcome, view)

    monkeypatch.setattr(RenderCache, "lines", lines)
    for _ in range(2):
        # The same outcome object served again: its lines taken as they are, not compared.
        assert _jobs_only(running.get().text) == _jobs_only(first)
    assert compared == []
    assert running.exporter.memory().renders == 1
    assert fake.count(f"/v3/workspaces/{WS}/crawler/jobs/job-0") == 1


def test_over_http_a_job_that_leaves_the_listing_leaves_the_cache(fake, start_exporter):
    jobs = {f"job-{i}": full_job(f"job-{i}", WS) for i in range(3)}
    fake.set_jobs(WS, jobs)
    running = start_exporter(discover_yaml(fake.base_url, WS))
    running.get()
    assert running.exporter.memory().rendered == {(WS, f"job-{i}") for i in range(3)}
    fake.set_jobs(WS, {k: v for k, v in jobs.items() if k != "job-1"})
    series = running.scrape()
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="job-1") is None
    assert running.exporter.memory().rendered == {(WS, "job-0"), (WS, "job-2")}


def _jobs_only(text: str) -> list[str]:
    return [line for line in text.splitlines() if "job_id=" in line]


def test_streamed_gzip_and_whole_bodies_are_the_same_text(fake, start_exporter):
    fake.set_jobs(WS, {f"job-{i}": full_job(f"job-{i}", WS) for i in range(50)})
    running = start_exporter(
        config_yaml(
            fake.base_url,
            f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n"
            f"    jobs: [{', '.join(f'job-{i}' for i in range(50))}]\n",
            api="  min_refresh_interval: 1h\n",
        )
    )
    running.get()  # every job fetched: the next answers are served from memory
    bodies = []
    for accept in ("text/plain", "application/openmetrics-text"):
        plain = running.get(headers={"Accept": accept, "Accept-Encoding": "identity"})
        assert plain.headers["Transfer-Encoding"] == "chunked"
        zipped = requests.get(
            running.url + "/metrics",
            headers={"Accept": accept, "Accept-Encoding": "gzip"},
            timeout=30,
            stream=True,
        )
        assert zipped.headers["Transfer-Encoding"] == "chunked"
        assert zipped.headers["Content-Encoding"] == "gzip"
        unzipped = gzip.decompress(zipped.raw.read(decode_content=False))
        whole = _http_1_0(running, accept)
        bodies.append((plain.content, unzipped, whole))
    for plain, unzipped, whole in bodies:
        assert _stable(plain) == _stable(unzipped) == _stable(whole)
        assert plain.count(b"convocore_crawler_up{") == 50


def _http_1_0(running, accept: str) -> bytes:
    host, port = running.server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(f"GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: {accept}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(body)}".encode() in head
    return body


def _stable(body: bytes) -> bytes:
    """The body less what moves between two scrapes: how long each took."""
    return b"\n".join(line for line in body.split(b"\n") if b"scrape_duration_seconds " not in line)


@pytest.mark.slow
def test_the_cache_holds_about_a_kilobyte_a_job_and_lets_go_of_jobs_that_leave():
    """Measured with tracemalloc: 5,000 jobs, each with its own timestamps, URL and failure
    text. A job with every field set writes about
    2.5 KB of text: the cache holds less than half of it (bench case 14 measures RSS)."""
    config = parse_config(
        "api:\n  base_url: http://127.0.0.1:9/v3\nworkspaces:\n  - id: ws-m\n    token: ${T}\n"
        "    jobs: [" + ", ".join(f"job-{i:05d}" for i in range(5000)) + "]\n",
        "<memory>",
        {"T": "secret-not-shown"},
    )
    rt = Runtime(config, OwnMetrics())
    try:
        targets = list(rt.explicit.values())
        outcomes = {
            t.key: Outcome(
                True,
                None,
                Job(
                    "failed" if i % 10 == 0 else "completed",
                    done=True,
                    scraped_pages=40 + i % 200,
                    estimated_credits=250.0,
                    created_timestamp=1796040000.0 + i,
                    updated_timestamp=1796050000.5 + i,
                    primary_url=f"https://site-{i}.example.com",
                    failure=f"blocked at page {i}" if i % 10 == 0 else None,
                    agents=(f"agent-{i % 50}",),
                ),
                1796060000.25 + i,
            )
            for i, t in enumerate(targets)
        }
        tracemalloc.start()
        try:
            job_families(rt, targets, outcomes)
            held = tracemalloc.get_traced_memory()[0]
            text = sum(
                len(piece)
                for piece in iter_exposition(job_families(rt, targets, outcomes), openmetrics=False)
            )
            rt.rendered.keep_only(set())
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert rt.rendered.renders == 5000
        assert held / 5000 < 1024, (held, text)
        # What stays: the values many jobs share (bounded) and CPython's free lists.
        assert after < 0.05 * held, (after, held)
    finally:
        rt.close()
