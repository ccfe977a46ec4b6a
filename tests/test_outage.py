"""An API outage is not hammered: after requests in a row without a usable answer, the API
host is backed off (nothing sent), probed with a few requests at growing intervals, and ramped
up again once it answers; meanwhile the jobs keep their last data with up 0 and the reason.

Time is the exporter's injected clock, moved by the tests; the jitter of a pause is at most
1.5 x its base, so the tests move the clock past that.
"""

from __future__ import annotations

import threading
import time

import pytest

from exporter.convocore.outage import MAX_SECONDS, PROBES, THRESHOLD, OutageBackoff, is_outage

from .conftest import value
from .fakeapi import Fault, full_job
from .support import Clock, config_yaml

P = "convocore_crawler_"
WS = "ws-1"
JOBS = [f"job-{i:02d}" for i in range(30)]
DOWN = Fault(503, "<html>503 Service Unavailable</html>", {"Content-Type": "text/html"})


def states(series) -> dict[str, float | None]:
    return {
        s: value(series, P + "api_outage_state", state=s) for s in ("normal", "backoff", "probing")
    }


def job_requests(fake) -> int:
    return sum(1 for p in fake.paths() if "/crawler/jobs/" in p)


def one_at_a_time(fake, jobs: list[str]) -> str:
    """A config exporting ``jobs`` with one request at a time, so that every count is exact."""
    return config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{', '.join(jobs)}]\n",
        "  max_concurrency: 1\n",
    )


def test_an_outage_is_backed_off_probed_and_ramped_up(fake, start_exporter, captured_logs):
    fake.set_jobs(WS, {j: full_job(j, WS, scrapedPagesNum=7) for j in JOBS})
    config = one_at_a_time(fake, JOBS)
    clock = Clock()
    running = start_exporter(config, clock=clock)
    series = running.scrape()
    assert states(series) == {"normal": 1, "backoff": 0, "probing": 0}
    for job in JOBS:
        fake.fail(fake.job_path(WS, job), DOWN)
    fake.log.clear()

    # Every 503 is retried once: 5 jobs make the 10 failures in a row, the 25 others wait.
    series = running.scrape()
    assert job_requests(fake) == THRESHOLD == 10
    assert states(series) == {"normal": 0, "backoff": 1, "probing": 0}
    for job in JOBS:
        labels = {"workspace_id": WS, "job_id": job}
        assert value(series, P + "up", **labels) == 0
        assert value(series, P + "error_info", **labels, reason="server_error") == 1
        assert value(series, P + "job_scraped_pages", **labels) == 7  # what it knew
    held = [line for line in captured_logs if "the API host is failing" in line]
    assert len(held) == 1 and "reason=server_error" in held[0]

    # Within the pause, nothing is sent.
    fake.log.clear()
    series = running.scrape()
    assert job_requests(fake) == 0
    assert value(series, P + "up", workspace_id=WS, job_id=JOBS[0]) == 0

    # After it (1 s, jitter at most 1.5 x): one probe, which fails (its retry is held); the
    # next pause is twice as long.
    clock.now += 1.5
    assert states(running.scrape(path="/metrics?jobs=false")) == {
        "normal": 0,
        "backoff": 0,
        "probing": 1,
    }
    series = running.scrape()
    assert job_requests(fake) == 1
    assert states(series)["backoff"] == 1
    clock.now += 0.9
    fake.log.clear()
    running.scrape()
    assert job_requests(fake) == 0  # 0.9 s is within the second pause (at least 2 x 0.5 s)

    # The API is back: the next probe succeeds, two more go, and so on; all 30 in one scrape.
    fake.faults.clear()
    clock.now += 2.1  # past the second pause (at most 2 x 1.5 s)
    captured_logs.clear()
    series = running.scrape()
    assert job_requests(fake) == 30
    assert states(series) == {"normal": 1, "backoff": 0, "probing": 0}
    for job in JOBS:
        assert value(series, P + "up", workspace_id=WS, job_id=job) == 1
    back = [line for line in captured_logs if "the API host answers again" in line]
    assert len(back) == 1
    assert [line for line in captured_logs if "the API host is failing" in line] == []


def test_answers_of_the_host_are_not_an_outage(fake, start_exporter):
    """Errors the API answers (a 404, a 429, an invalid body) reset the count: a host that
    answers is never backed off, only workspaces rate-limited by it."""
    fake.set_jobs(WS, {j: full_job(j, WS) for j in JOBS[:12]})
    for i, job in enumerate(JOBS[:12]):
        fault = DOWN if i % 4 else Fault(404, {"message": "gone"})
        fake.fail(fake.job_path(WS, job), fault)
    config = one_at_a_time(fake, JOBS[:12])
    running = start_exporter(config, clock=Clock())
    for _ in range(3):
        series = running.scrape()
    # Every fourth job answers 404: never more than 6 failed attempts in a row.
    assert states(series)["normal"] == 1
    assert job_requests(fake) == 3 * (3 + 9 * 2)


def test_a_reload_for_the_same_api_keeps_the_backoff(fake, start_exporter):
    from exporter.config import parse_config

    from .fakeapi import TOKEN

    fake.set_jobs(WS, {j: full_job(j, WS) for j in JOBS[:6]})
    for job in JOBS[:6]:
        fake.fail(fake.job_path(WS, job), DOWN)
    text = one_at_a_time(fake, JOBS[:6])
    running = start_exporter(text, clock=Clock())
    running.scrape()
    assert job_requests(fake) == 10
    running.exporter.set_config(parse_config(text, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    series = running.scrape()
    assert job_requests(fake) == 10
    assert states(series)["backoff"] == 1


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_backoff_state_machine():
    clock = Ticks()
    backoff = OutageBackoff("api.example", full=6, clock=clock, jitter=lambda: 0.5)
    far = 1e12  # a deadline that is never reached (time.monotonic() is far below it)
    for _ in range(THRESHOLD - 1):
        ticket, held = backoff.admit(far)
        assert held is None
        backoff.settle(ticket, "timeout", "timeout")
    assert backoff.state == "normal"
    ticket, _ = backoff.admit(far)
    backoff.settle(ticket, "deadline", "timeout")  # cut at a deadline while waiting: counts
    assert (backoff.state, backoff.reason, backoff.until) == ("backoff", "deadline", 1.0)
    assert backoff.admit(far)[1] == "deadline"
    clock.now = 1.0
    # Probing: PROBES requests may go; a third waits (here its deadline is already over).
    tickets = [backoff.admit(far) for _ in range(PROBES)]
    assert [held for _, held in tickets] == [None] * PROBES
    assert backoff.admit(0.0)[1] == "deadline"
    backoff.settle(tickets[0][0], "server_error", None)
    assert (backoff.state, backoff.until) == ("backoff", 3.0)  # the pause doubled
    backoff.settle(tickets[1][0], None, None)  # from before the new backoff: ignored
    assert backoff.state == "backoff"
    clock.now = 3.0
    # A request admitted but never sent (no time was left) gives its turn back, unjudged.
    ticket, held = backoff.admit(far)
    assert held is None
    backoff.settle(ticket, "deadline", None)
    assert backoff.state == "probing"
    assert [backoff.admit(far)[1] for _ in range(PROBES)] == [None] * PROBES
    assert backoff.admit(0.0)[1] == "server_error"  # no third turn
    clock.now = 3.0 + 4.0 * 1.5  # (the two turns above were never settled) a fresh round:
    backoff = OutageBackoff("api.example", full=6, clock=clock, jitter=lambda: 0.5)
    for _ in range(THRESHOLD):
        ticket, _ = backoff.admit(far)
        backoff.settle(ticket, "server_error", None)
    clock.now = backoff.until
    # Slow start: each success lets two more go, until `full` have succeeded.
    sent = 0
    while backoff.current() != "normal":
        ticket, held = backoff.admit(far)
        assert held is None
        sent += 1
        backoff.settle(ticket, None, None)
    assert sent == 6
    # Pauses double up to MAX_SECONDS.
    for strike in range(12):
        for _ in range(THRESHOLD if strike == 0 else 1):
            ticket, _ = backoff.admit(far)
            backoff.settle(ticket, "connection", "refused")
        pause = backoff.until - clock.now
        assert pause == min(MAX_SECONDS, 2.0**strike)
        clock.now = backoff.until


def test_a_request_waiting_for_its_turn_gives_up_when_the_exporter_stops():
    clock = Ticks()
    backoff = OutageBackoff("api.example", full=6, clock=clock, jitter=lambda: 0.5)
    for _ in range(THRESHOLD):
        ticket, _ = backoff.admit(1e12)
        backoff.settle(ticket, "server_error", None)
    clock.now = backoff.until
    for _ in range(PROBES):
        assert backoff.admit(1e12)[1] is None
    answers: list[str | None] = []
    deadline = time.monotonic() + 60
    waiter = threading.Thread(target=lambda: answers.append(backoff.admit(deadline)[1]))
    waiter.start()
    backoff.close()
    waiter.join(10)
    assert answers == ["connection"]


@pytest.mark.parametrize(
    ("reason", "cause", "outage"),
    [
        ("connection", "refused", True),
        ("connection", "reset", True),
        ("server_error", None, True),
        ("timeout", "timeout", True),
        ("deadline", "timeout", True),
        ("deadline", None, False),  # never sent: no time left
        ("rate_limited", None, False),
        ("not_found", None, False),
        ("unauthorized", None, False),
        ("invalid_response", None, False),
        (None, None, False),
    ],
)
def test_what_counts_as_an_outage(reason, cause, outage):
    assert is_outage(reason, cause) is outage
