"""What scrapes serve of a discovery snapshot (its targets and outcomes) is derived once per
snapshot and reused while it is current; a new snapshot, or the listing going past its
grace, derives it again, with the new values."""

from __future__ import annotations

import gc
import time
from types import MappingProxyType

from exporter.collect.discovery import Derived, Snapshot

from .conftest import value
from .fakeapi import Fault, full_job
from .support import Clock, discovering

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"


def per_job(series):
    """The series of the jobs (those with a ``job_id`` label)."""
    return {k: v for k, v in series.items() if any(name == "job_id" for name, _ in k[1])}


def snapshot(at: float) -> Snapshot:
    empty = MappingProxyType({})
    return Snapshot(empty, empty, empty, empty, False, 100, 0, at, at, at)


def test_a_value_is_derived_once_per_snapshot_and_variant():
    derived = Derived()
    made: list[str] = []

    def make(text: str):
        return lambda previous: made.append(f"{text} after {previous}") or [text]

    first = snapshot(1.0)
    value_1 = derived.get("x", first, make("one"))
    assert value_1 == ["one"]
    assert derived.get("x", first, make("again")) is value_1
    assert derived.get("y", first, make("other")) == ["other"]  # another name: its own
    second = snapshot(2.0)
    assert derived.get("x", second, make("two")) == ["two"]
    assert derived.get("x", second, make("again"), ("down",)) == ["again"]
    assert derived.get("x", second, make("never"), ("down",)) == ["again"]
    assert made == [
        "one after None",
        "other after None",
        "two after ['one']",
        "again after ['two']",
    ]
    assert derived.builds == 4


def test_a_replaced_snapshot_is_not_kept_alive_by_what_was_derived_from_it():
    derived = Derived()
    old = snapshot(1.0)
    derived.get("x", old, lambda previous: "derived")
    del old
    gc.collect()
    # A new snapshot may take the old one's address: it is still derived again.
    assert derived.get("x", snapshot(2.0), lambda previous: f"new after {previous}") == (
        "new after derived"
    )
    assert derived.builds == 2


def test_scrapes_reuse_the_derived_outcomes_until_a_new_snapshot(fake, start_exporter):
    fake.set_jobs(WS, {"a": full_job("a", WS, scrapedPagesNum=5), "b": full_job("b", WS)})
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, api="  min_refresh_interval: 10s\n"), clock=clock
    )
    series = running.scrape()
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="a") == 5
    assert value(series, P + "up", workspace_id=WS, job_id="a") == 1
    assert running.exporter.memory().derived == 2  # the targets and the outcomes
    last = value(series, P + "last_success_timestamp_seconds", workspace_id=WS, job_id="a")
    before = {t.job_id: t for t in running.exporter.targets(time.monotonic() + 5)}
    # Within min_refresh_interval: the same snapshot, nothing derived again.
    for _ in range(3):
        assert per_job(running.scrape()) == per_job(series)
    assert running.exporter.memory().derived == 2
    # A refresh publishes a new snapshot with the job's new data.
    fake.set_jobs(WS, {"a": full_job("a", WS, scrapedPagesNum=9), "b": full_job("b", WS)})
    clock.now += 10
    series = running.scrape()
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="a") == 9
    moved = value(series, P + "last_success_timestamp_seconds", workspace_id=WS, job_id="a")
    assert last is not None and moved is not None and moved >= last
    assert running.exporter.memory().derived == 4
    # A job listed before keeps its target (and key) from one snapshot to the next.
    after = {t.job_id: t for t in running.exporter.targets(time.monotonic() + 5)}
    assert sorted(after) == ["a", "b"]
    assert after["a"] is before["a"] and after["b"] is before["b"]
    assert per_job(running.scrape()) == per_job(series)
    assert running.exporter.memory().derived == 4


def test_the_outcomes_are_derived_again_when_the_listing_goes_past_its_grace(fake, start_exporter):
    fake.set_jobs(WS, {"a": full_job("a", WS)})
    clock = Clock()
    running = start_exporter(
        discovering(fake, WS, "    discover_grace_period: 60s\n", "  min_refresh_interval: 10s\n"),
        clock=clock,
    )
    assert value(running.scrape(), P + "up", workspace_id=WS, job_id="a") == 1
    assert running.exporter.memory().derived == 2
    fake.fail(LIST, Fault(500, "<html>oops</html>"))
    clock.now += 10
    series = running.scrape()  # failing, within grace: the same snapshot and outcomes
    assert value(series, P + "up", workspace_id=WS, job_id="a") == 1
    assert running.exporter.memory().derived == 2
    clock.now += 60
    series = running.scrape()
    assert value(series, P + "up", workspace_id=WS, job_id="a") == 0
    reason = {"workspace_id": WS, "job_id": "a", "reason": "server_error"}
    assert value(series, P + "error_info", **reason) == 1
    assert running.exporter.memory().derived == 3  # the outcomes only: same targets
