"""The fault matrix: every way the upstream can misbehave, alone and next to healthy jobs.

For each fault the exporter keeps serving and answers within the scrape deadline, the faulty
job is ``up`` 0 with the right reason, the healthy jobs' values are exact, repeated scrapes do
not grow memory, and the fault is logged once (at warning, on the transition), not per scrape.
"""

from __future__ import annotations

import email.utils
import gc
import logging
import re
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass, replace
from typing import Any

import pytest

from exporter.convocore import transport as transport_module

from .conftest import value
from .fakeapi import FakeConvocore, Fault, envelope, full_job
from .support import config_yaml, wait_for

P = "convocore_crawler_"
WS_BAD = "ws-bad"
WS_OK = "ws-ok"
BAD = "job-bad"
# Healthy jobs and their distinct page counts, to tell each one's values apart.
HEALTHY = {(WS_BAD, "job-ok1"): 11, (WS_OK, "job-ok2"): 22, (WS_OK, "job-ok3"): 33}
HTML = "<html><head><title>{0}</title></head><body><h1>{0}</h1><hr>nginx</body></html>"
# Prometheus's scrape timeout header; the deadline is this minus the 0.5 s offset.
SCRAPE_TIMEOUT = 2.0
# Faults that last until the deadline (hang, trickle) use a shorter one when repeated.
SHORT_SCRAPE_TIMEOUT = 0.8


def _wrong_types(job: dict[str, Any]) -> dict[str, Any]:
    """Every field of the job with a value of another JSON type."""
    wrong: dict[str, Any] = {}
    for key, field_value in job.items():
        if isinstance(field_value, bool):
            wrong[key] = 1
        elif isinstance(field_value, int | float):
            wrong[key] = str(field_value)
        elif isinstance(field_value, str):
            wrong[key] = [7]  # not a number either: numbers are valid timestamps
        elif isinstance(field_value, list):
            wrong[key] = "not-a-list"
        elif isinstance(field_value, dict):
            wrong[key] = ["not-an-object"]
        else:  # null
            wrong[key] = [True]
    return wrong


def _big_json(size: int) -> bytes:
    item = b'"https://docs.example.com/a/rather/long/path/to/one/of/many/pages",'
    head = b'{"success": true, "message": "ok", "data": {"id": "job-bad", "urls": ['
    return head + item * (size // len(item)) + b'"x"]}}'


_BIG = _big_json(50 * 1024 * 1024)
_DATE_IN_AN_HOUR = email.utils.formatdate(time.time() + 3600, usegmt=True)


@dataclass(frozen=True)
class Case:
    fault: Fault
    reason: str | None  # None: the job is up (a well-formed answer of wrongly typed fields)
    attempts: int = 1
    slow: bool = False  # lasts until the deadline
    repetitions: int = 100


CASES: dict[str, Case] = {
    "401": Case(Fault(401, {"message": "Invalid token", "code": "UNAUTHORIZED"}), "unauthorized"),
    "403": Case(Fault(403, {"message": "Forbidden", "code": "FORBIDDEN"}), "forbidden"),
    "404": Case(Fault(404, {"message": "No such job", "code": "NOT_FOUND"}), "not_found"),
    "429-seconds": Case(
        Fault(429, {"message": "Too many requests"}, {"Retry-After": "3600"}), "rate_limited"
    ),
    "429-http-date": Case(
        Fault(429, {"message": "Too many requests"}, {"Retry-After": _DATE_IN_AN_HOUR}),
        "rate_limited",
    ),
    "500-html": Case(
        Fault(500, HTML.format("500 Internal Server Error"), {"Content-Type": "text/html"}),
        "server_error",
        attempts=2,
    ),
    "502-html": Case(
        Fault(502, HTML.format("502 Bad Gateway"), {"Content-Type": "text/html"}),
        "server_error",
        attempts=2,
    ),
    "503-html": Case(
        Fault(503, HTML.format("503 Service Unavailable"), {"Content-Type": "text/html"}),
        "server_error",
        attempts=2,
    ),
    "reset-mid-body": Case(
        Fault(200, envelope(full_job(BAD, WS_BAD)), reset_after=100), "connection", attempts=2
    ),
    "hang": Case(Fault(hang=True), "deadline", slow=True, repetitions=10),
    "trickle-body": Case(
        Fault(200, envelope(full_job(BAD, WS_BAD)), trickle=1.0),
        "deadline",
        slow=True,
        repetitions=10,
    ),
    "trickle-head": Case(
        Fault(200, envelope(full_job(BAD, WS_BAD)), head_trickle=1.0),
        "deadline",
        slow=True,
        repetitions=10,
    ),
    "invalid-json": Case(Fault(200, '{"success": true, "data": {"id": '), "invalid_response"),
    "json-not-object": Case(Fault(200, '["success", true]'), "invalid_response"),
    "success-false": Case(
        Fault(200, {"success": False, "message": "Internal error", "data": None}),
        "invalid_response",
    ),
    "data-null": Case(
        Fault(200, {"success": True, "message": "ok", "data": None}), "invalid_response"
    ),
    "wrong-types": Case(Fault(200, envelope(_wrong_types(full_job(BAD, WS_BAD)))), None),
    "50mb-announced": Case(Fault(200, _BIG), "invalid_response"),
    # Without Content-Length the cap is found by reading: 32 MiB per scrape, so fewer rounds.
    "50mb-unannounced": Case(Fault(200, _BIG, length=False), "invalid_response", repetitions=10),
    "deeply-nested": Case(
        Fault(200, b'{"success": true, "data": ' + b"[" * 100_000), "invalid_response"
    ),
    "deeply-nested-closed": Case(
        Fault(200, b'{"success": true, "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "invalid_response",
    ),
    "non-utf8": Case(
        Fault(200, b'{"success": true, "data": {"id": "\xff\xfe\xfa"}}'), "invalid_response"
    ),
    "redirect-other-host": Case(Fault(302, ""), "invalid_response"),  # Location set per test
}


def _setup(fake: FakeConvocore, other: FakeConvocore, case: Case, mixed: bool) -> str:
    fake.set_jobs(WS_BAD, {BAD: full_job(BAD, WS_BAD)})
    fake.set_jobs(WS_OK, {})
    for (ws, job_id), pages in HEALTHY.items():
        fake.jobs[ws][job_id] = full_job(job_id, ws, scrapedPagesNum=pages)
    fault = case.fault
    if fault.status == 302:
        fault = replace(fault, headers={"Location": other.base_url + "/stolen"})
    fake.fail(fake.job_path(WS_BAD, BAD), replace(fault))
    token = "    token: ${CONVOCORE_TOKEN}\n"
    if not mixed:
        return config_yaml(fake.base_url, f"  - id: {WS_BAD}\n{token}    jobs: [{BAD}]\n")
    # The healthy job of the faulty workspace comes first: it is fetched before the fault's
    # answer can put the workspace into rate-limit backoff.
    return config_yaml(
        fake.base_url,
        f"  - id: {WS_BAD}\n{token}    jobs: [job-ok1, {BAD}]\n"
        f"  - id: {WS_OK}\n{token}    jobs: [job-ok2, job-ok3]\n",
    )


def _timeout_header(seconds: float) -> dict[str, str]:
    return {"X-Prometheus-Scrape-Timeout-Seconds": str(seconds)}


def _check_healthy(series: Any) -> None:
    for (ws, job_id), pages in HEALTHY.items():
        labels = {"workspace_id": ws, "job_id": job_id}
        assert value(series, P + "up", **labels) == 1, job_id
        assert value(series, P + "job_scraped_pages", **labels) == pages, job_id
        assert value(series, P + "job_failed_pages", **labels) == 3, job_id
        assert value(series, P + "job_status", **labels, status="processing") == 1, job_id


def _check_faulty(series: Any, case: Case) -> None:
    bad = {"workspace_id": WS_BAD, "job_id": BAD}
    errors = {
        dict(k[1])["job_id"]: dict(k[1])["reason"] for k in series if k[0] == P + "error_info"
    }
    if case.reason is None:
        assert value(series, P + "up", **bad) == 1
        assert errors == {}
        job_series = {k[0] for k in series if dict(k[1]).get("job_id") == BAD}
        assert job_series == {
            P + "up",
            P + "last_success_timestamp_seconds",
            P + "job_info",
            P + "job_status",
        }
        info = {
            **bad,
            "name": "",
            "primary_url": "",
            "refresh_rate": "",
            "processing_mode": "",
            "deep": "",
            "use_proxy": "",
        }
        assert value(series, P + "job_info", **info) == 1
        assert value(series, P + "job_status", **bad, status="queued") == 1
        return
    assert value(series, P + "up", **bad) == 0
    assert errors == {BAD: case.reason}
    assert value(series, P + "api_errors_total", workspace_id=WS_BAD, reason=case.reason) == 1
    assert value(series, P + "job_scraped_pages", **bad) is None


@pytest.mark.parametrize("mixed", [False, True], ids=["alone", "mixed"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_fault_marks_its_job_down_and_the_exporter_answers(
    fake, other, start_exporter, name, mixed
):
    case = CASES[name]
    exporter = start_exporter(_setup(fake, other, case, mixed))
    started = time.monotonic()
    series = exporter.scrape(headers=_timeout_header(SCRAPE_TIMEOUT))
    assert time.monotonic() - started < SCRAPE_TIMEOUT + 5  # a generous bound only
    _check_faulty(series, case)
    if mixed:
        _check_healthy(series)
    assert fake.count(fake.job_path(WS_BAD, BAD)) == case.attempts
    assert other.log == []  # nothing ever reaches the other host, least of all the token
    assert exporter.get("/-/healthy").status_code == 200
    if case.slow:
        # The worker held by the fault is free again soon after the deadline.
        assert wait_for(lambda: not _busy_upstream_threads(), timeout=10)
        assert exporter.exporter.memory().fetches_in_flight == 0


def _busy_upstream_threads() -> list[str]:
    """Threads currently inside the upstream client (idle pool workers are not)."""
    busy = []
    client_file = transport_module.__file__
    workers = {t.ident: t.name for t in threading.enumerate() if t.name.startswith("upstream_")}
    for thread_id, frame in sys._current_frames().items():
        if thread_id not in workers:
            continue
        walk: Any = frame
        while walk is not None:
            if walk.f_code.co_filename == client_file:
                busy.append(workers[thread_id])
                break
            walk = walk.f_back
    return busy


def test_connection_refused_alone(start_exporter):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = config_yaml(
        f"http://127.0.0.1:{port}/v3",
        f"  - id: {WS_BAD}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{BAD}, job-ok1]\n",
    )
    exporter = start_exporter(config)
    for _ in range(3):
        series = exporter.scrape(headers=_timeout_header(SCRAPE_TIMEOUT))
        for job_id in (BAD, "job-ok1"):
            labels = {"workspace_id": WS_BAD, "job_id": job_id}
            assert value(series, P + "up", **labels) == 0
            assert value(series, P + "error_info", **labels, reason="connection") == 1
    assert exporter.get("/-/healthy").status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_repeated_fault_grows_no_memory_and_logs_once(  # noqa: PLR0917
    fake, other, start_exporter, captured_logs, monkeypatch, name
):
    """Repeats the fault and compares traced memory after a warm-up
    with memory after the repetitions. Faults that last until the deadline are repeated 10
    times with a short deadline instead of 100: each costs a full deadline, and any per-scrape
    leak (a socket, a thread, a buffer) shows after a few rounds as well as after many."""
    case = CASES[name]
    # The quick retry's pause is not what is measured here; it only slows the loop down.
    monkeypatch.setattr(transport_module, "QUICK_RETRY_DELAY", 0.001)
    exporter = start_exporter(_setup(fake, other, case, mixed=False))
    timeout = SHORT_SCRAPE_TIMEOUT if case.slow else SCRAPE_TIMEOUT
    headers = _timeout_header(timeout)

    def scrape() -> None:
        started = time.monotonic()
        response = exporter.get(headers=headers)
        assert response.status_code == 200
        assert time.monotonic() - started < timeout + 5
        if case.slow:
            # Once the worker has given up at the deadline, let go of the fake's handlers
            # still hanging or trickling (earlier, the worker would see a closed connection).
            assert wait_for(lambda: not _busy_upstream_threads(), timeout=10)
            fake.release.set()
            fake.release.clear()
        with fake.lock:
            fake.log.clear()

    for _ in range(3):
        scrape()
    # From here on only what is checked: pytest keeps every record it sees, and thousands
    # of debug lines would show as growth. (Debug output is covered by the secrets tests.)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(case.repetitions):
            scrape()
        wait_for(lambda: not _busy_upstream_threads(), timeout=10)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 256 * 1024, f"{growth} bytes more after {case.repetitions} scrapes"
    serious = [line for line in captured_logs if re.search(r"level=(error|critical)", line)]
    assert serious == []
    warnings = [line for line in captured_logs if "level=warning" in line]
    # The API host's outage backoff, when the fault is one (once, whatever the repetitions).
    host = [line for line in warnings if "the API host is failing" in line]
    assert len(host) <= 1, host
    warnings = [line for line in warnings if line not in host]
    jobs_warned = [re.search(r"job_id=(\S+)", line).group(1) for line in warnings]  # type: ignore[union-attr]
    assert len(jobs_warned) == len(set(jobs_warned)), warnings  # once per job, on the transition
    if case.reason is not None:
        assert f"job_id={BAD}" in " ".join(warnings)
