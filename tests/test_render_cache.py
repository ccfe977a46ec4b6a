"""Each job's lines are rendered once, when its data changes, and written as they are: the
output stays byte-identical to the writer's (golden files made before the cache existed)."""

from __future__ import annotations

from pathlib import Path

from exporter.collect.families import job_families
from exporter.collect.own import OwnMetrics
from exporter.collect.pagereads import PageView
from exporter.collect.state import Outcome, Runtime
from exporter.config import parse_config
from exporter.convocore.model import Job
from exporter.convocore.pages import PageStats
from exporter.exposition.writer import (
    PARTS_PER_PIECE,
    Family,
    iter_exposition,
    render_labels,
    render_lines,
    write_openmetrics,
    write_text,
)

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


def test_a_job_that_leaves_leaves_the_cache():
    rt, targets, outcomes, pages = scenario()
    try:
        job_families(rt, targets, outcomes, pages)
        assert len(rt.rendered.entries) == 6
        rt.rendered.keep_only({("ws-a", "full")})
        assert set(rt.rendered.entries) == {("ws-a", "full")}
    finally:
        rt.close()


def test_rendered_parts_are_the_bytes_of_the_same_samples_written_plainly():
    """A straightforward reference: the same samples as a plain family, in pieces of
    PARTS_PER_PIECE jobs, in both formats, a gauge histogram included."""
    jobs = 2 * PARTS_PER_PIECE + 3
    labels = [render_labels(("job_id",), (f"j{i}",)) for i in range(jobs)]
    plain = Family("g", "gauge", "A gauge.", [("", lab, i * 0.5) for i, lab in enumerate(labels)])
    parts = [render_lines("g", [("", lab, i * 0.5)]) for i, lab in enumerate(labels)]
    parts[5] = b""  # a job without this series
    del plain.samples[5]  # type: ignore[attr-defined]
    rows = [
        (
            [("_bucket", lab + ',le="+Inf"', 2.0)],
            [("_gcount", lab, 2.0)],
            [("_gsum", lab, float(i))],
        )
        for i, lab in enumerate(labels)
    ]
    plain_histogram = Family(
        "h", "gaugehistogram", "Sizes.", [s for row in rows for group in row for s in group]
    )
    cached_histogram = Family(
        "h",
        "gaugehistogram",
        "Sizes.",
        parts=tuple([render_lines("h", row[i]) for row in rows] for i in range(3)),
    )
    empty = Family("e", "gauge", "Empty.", parts=([b""] * 3,))
    for openmetrics in (False, True):
        cached = Family("g", "gauge", "A gauge.", parts=(parts,))
        pieces = list(iter_exposition([empty, cached, cached_histogram], openmetrics))
        reference = list(iter_exposition([plain, plain_histogram], openmetrics))
        assert b"".join(pieces) == b"".join(reference)
        assert len(pieces) > len(reference)  # streamed a batch of jobs at a time
