"""/probe?...&debug=true: a plain-text report of what one probe asked upstream and why the
job is up or down, then its metrics; never the secret."""

from __future__ import annotations

import re

from .conftest import parse_exposition, value
from .fakeapi import TOKEN, Fault, full_job
from .support import config_yaml

WS = "ws-1"
NUMBER = r"\d+\.\d{3}"


def config(fake, api: str = "") -> str:
    return config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [j1, j2]\n",
        api=api,
    )


def report(running, job_id: str):
    answer = running.get(f"/probe?workspace_id={WS}&job_id={job_id}&debug=true")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    head, metrics = answer.text.split("\nMetrics that would have been returned:\n\n", 1)
    return head.splitlines(), parse_exposition(metrics), answer.text


def test_a_retried_server_error_then_success(fake, start_exporter):
    fake.set_jobs(WS, {"j1": full_job("j1", WS)})
    fake.fail(fake.job_path(WS, "j1"), Fault(500, f"oops {TOKEN}", times=1))
    running = start_exporter(config(fake))
    lines, series, text = report(running, "j1")
    url = f"{fake.base_url}/workspaces/{WS}/crawler/jobs/j1"
    patterns = [
        f"Probe of job j1 in workspace {WS}",
        f"Took {NUMBER}s of a {NUMBER}s deadline",
        "",
        "Upstream:",
        rf"  1\. GET {re.escape(url)} -> 500 in {NUMBER}s: server_error \(HTTP 500\)",
        rf"  - retrying in {NUMBER}s after server_error",
        rf"  2\. GET {re.escape(url)} -> 200 in {NUMBER}s: ok",
        "",
        re.escape("Result: up (convocore_crawler_up 1)"),
    ]
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="j1") == 1
    assert value(series, "convocore_crawler_job_scraped_pages", workspace_id=WS, job_id="j1") == 40
    assert TOKEN not in text
    # The Authorization header went upstream; nothing of it in the report.
    assert "Bearer" not in text


def test_a_refused_secret_is_explained_and_never_shown(fake, start_exporter):
    fake.fail(fake.job_path(WS, "j2"), Fault(401, {"message": f"bad token {TOKEN}"}))
    running = start_exporter(config(fake))
    lines, series, text = report(running, "j2")
    assert lines[4].endswith(" -> 401 in " + lines[4].rsplit(" in ", 1)[1])
    assert lines[4].endswith(": unauthorized (HTTP 401)")
    assert lines[5] == "  - not retried: unauthorized (this kind of failure is never retried)"
    assert lines[7] == (
        "Result: down (convocore_crawler_up 0), reason unauthorized: the API refused the "
        "workspace secret (HTTP 401): check this workspace's token"
    )
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="j2") == 0
    assert (
        value(
            series,
            "convocore_crawler_error_info",
            workspace_id=WS,
            job_id="j2",
            reason="unauthorized",
        )
        == 1
    )
    assert TOKEN not in text


def test_an_answer_from_memory_and_a_backoff_are_said_so(fake, start_exporter):
    fake.set_jobs(WS, {"j1": full_job("j1", WS), "j2": full_job("j2", WS)})
    running = start_exporter(config(fake, api="  min_refresh_interval: 1h\n"))
    report(running, "j1")
    lines, series, _ = report(running, "j1")
    assert re.fullmatch(
        r"  - served from memory, fetched \d+\.\ds ago: api\.min_refresh_interval is 3600s",
        lines[4],
    ), lines
    assert lines[6] == "Result: up (convocore_crawler_up 1)"
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="j1") == 1
    assert fake.count(fake.job_path(WS, "j1")) == 1

    fake.fail(fake.job_path(WS, "j2"), Fault(429, "", {"Retry-After": "3600"}))
    report(running, "j2")
    lines, _, _ = report(running, "j2")
    assert lines[4] == "  - not fetched: the workspace is in backoff after a 429"
    assert lines[6].startswith("Result: down (convocore_crawler_up 0), reason rate_limited: ")
    assert fake.count(fake.job_path(WS, "j2")) == 1


def test_debug_of_an_unknown_target_is_a_404(fake, start_exporter):
    running = start_exporter(config(fake))
    answer = running.get(f"/probe?workspace_id={WS}&job_id=nope&debug=true")
    assert answer.status_code == 404
    assert answer.text == (
        "Unknown probe target: job 'nope' is not configured or discovered in workspace 'ws-1'.\n"
    )
