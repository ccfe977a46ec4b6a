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
from exporter.exposition.writer import write_openmetrics, write_text

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
