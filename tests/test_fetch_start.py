"""A fetch started only while it is still due: the due test is asked under the runtime's
lock, after the check for a fetch under way, so that a read another scrape has just finished
is not started again (``pagereads.Reads.start``)."""

from __future__ import annotations

import threading

from exporter.collect.fetch import start
from exporter.collect.own import OwnMetrics
from exporter.collect.state import Runtime
from exporter.config import parse_config
from exporter.convocore.transport import ApiResult

KEY = ("pages", "w", "j")


def _runtime() -> Runtime:
    return Runtime(
        parse_config("workspaces:\n  - {id: w, token: t, jobs: [j]}\n", "t.yml", {}),
        OwnMetrics(),
    )


def test_a_read_no_longer_due_is_not_started():
    rt = _runtime()
    reads: list[str] = []
    asked: list[bool] = []

    def work() -> ApiResult:
        reads.append("read")
        return ApiResult()

    def due() -> bool:
        asked.append(rt.lock.locked())  # asked under the runtime's lock
        return False

    try:
        assert start(rt, KEY, work, 1e12, due) is None
        assert asked == [True]
        assert rt.inflight == {}
    finally:
        rt.close()
    assert reads == []


def test_a_due_read_starts_and_one_under_way_is_shared_without_asking():
    rt = _runtime()
    release = threading.Event()
    reads: list[str] = []
    asked: list[str] = []

    def work() -> ApiResult:
        reads.append("read")
        release.wait(30)
        return ApiResult(data="done")

    def due() -> bool:
        asked.append("due")
        return True

    try:
        first = start(rt, KEY, work, 1e12, due)
        second = start(rt, KEY, work, 1e12, due)
        assert first is not None and second is first
        assert asked == ["due"]  # the second found the first under way: not asked
        release.set()
        assert first.future.result(30).data == "done"
    finally:
        release.set()
        rt.close()
    assert reads == ["read"]
