"""Structured logs: one line per event, with workspace_id, job_id and reason fields; a job
logs when it goes down and when it recovers, not on every scrape."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from exporter import logs

from .fakeapi import Fault, full_job
from .support import config_yaml

WS = "ws-123"
LOGFMT_PAIR = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "=]+)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    pairs = LOGFMT_PAIR.findall(line)
    assert "".join(f"{k}={v} " for k, v in pairs).rstrip() == line, line
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}


def transitions(lines: list[str]) -> list[tuple[str, str, str, str]]:
    found = []
    for line in lines:
        fields = parse_logfmt(line)
        if fields.get("msg") in ("job is down", "job is up again"):
            reason = fields.get("reason") or fields.get("previous_reason", "")
            found.append((fields["level"], fields["msg"], fields["job_id"], reason))
    return found


def test_a_failing_job_logs_once_when_down_and_once_when_up(fake, start_exporter, captured_logs):
    fake.set_jobs(WS, {"job-a": full_job("job-a", WS), "job-b": full_job("job-b", WS)})
    running = start_exporter(
        config_yaml(
            fake.base_url,
            f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-a, job-b]\n",
        )
    )
    running.scrape()
    fake.fail(fake.job_path(WS, "job-a"), Fault(403, {"message": "no"}))
    for _ in range(5):
        running.scrape()
    fake.fail(fake.job_path(WS, "job-a"), Fault(404, {"message": "gone"}))
    for _ in range(3):
        running.scrape()
    fake.faults.clear()
    for _ in range(3):
        running.scrape()
    assert transitions(captured_logs) == [
        ("warning", "job is down", "job-a", "forbidden"),
        ("warning", "job is down", "job-a", "not_found"),  # a new reason is a new event
        ("info", "job is up again", "job-a", "not_found"),
    ]
    down = parse_logfmt(next(line for line in captured_logs if "job is down" in line))
    assert down["workspace_id"] == WS and down["logger"] == "exporter.collect"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", down["ts"])
    assert all("\n" not in line for line in captured_logs)


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_both_formats_write_one_line_per_event_with_the_fields(fmt):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.setup("debug", fmt, stream)
        log = logging.getLogger("exporter.collect")
        log.warning(
            "job is down", extra={"workspace_id": WS, "job_id": "job-a", "reason": "timeout"}
        )
        log.info('odd "text"\nover two lines = x', extra={"workspace_id": WS, "job_id": "j b"})
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            log.exception("crashed", extra={"workspace_id": WS, "job_id": "job-a"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    parsed = (
        [json.loads(line) for line in lines]
        if fmt == "json"
        else [parse_logfmt(line) for line in lines]
    )
    first, second, third = parsed
    assert {
        k: first[k] for k in ("level", "logger", "msg", "workspace_id", "job_id", "reason")
    } == {
        "level": "warning",
        "logger": "exporter.collect",
        "msg": "job is down",
        "workspace_id": WS,
        "job_id": "job-a",
        "reason": "timeout",
    }
    assert list(first)[:4] == ["ts", "level", "logger", "msg"]
    assert second["msg"] == 'odd "text"\nover two lines = x' and second["job_id"] == "j b"
    assert third["level"] == "error" and third["error"] == "ValueError"
    assert "boom" not in lines[2]  # the exception's text (it may quote anything) stays out
