"""The three shapes a Convocore list may answer in, for the job list (discovery) and the
scraped-pages list (page statistics): page numbers, cursors inside ``data``, cursors beside an
array ``data``; and answers that fit none of them or mix them."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import value
from .fakeapi import Fault, full_job
from .support import Clock, config_yaml, discovering

P = "convocore_crawler_"
WS = "ws-1"
LIST = f"/v3/workspaces/{WS}/crawler/jobs"
SHAPES = ["page", "cursor", "cursor-beside"]
QUERIES = {
    "page": ["page=1&limit=100", "page=2&limit=100", "page=3&limit=100"],
    "cursor": ["page=1&limit=100", "cursor=100&limit=100", "cursor=200&limit=100"],
}
QUERIES["cursor-beside"] = QUERIES["cursor"]


def jobs(count: int) -> dict[str, dict[str, Any]]:
    return {f"job-{i:04d}": full_job(f"job-{i:04d}", WS, scrapedPagesNum=i) for i in range(count)}


def ok(data: Any, **beside: Any) -> dict[str, Any]:
    return {"success": True, "message": "ok", "data": data, **beside}


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_of_the_job_list_is_followed_to_its_end(fake, start_exporter, shape):
    fake.api.pagination = shape
    fake.set_jobs(WS, jobs(250))
    series = start_exporter(discovering(fake, WS)).scrape()
    ups = {dict(k[1])["job_id"] for k in series if k[0] == P + "up" and series[k] == 1}
    assert ups == set(jobs(250))
    for i in (0, 99, 100, 249):
        labels = {"workspace_id": WS, "job_id": f"job-{i:04d}"}
        assert value(series, P + "job_scraped_pages", **labels) == i
    # The cursor is passed back verbatim, limit 100, and no page number once a cursor is given.
    assert sorted(fake.queries(LIST)) == sorted(QUERIES[shape])
    assert value(series, P + "discovery_up", workspace_id=WS) == 1


# One answer for every request of the job list, and how many requests it takes to tell.
BAD_JOB_LISTS = {
    "data neither list nor object": (ok("jobs"), 1),
    "jobs not a list": (ok({"jobs": {"a": 1}}), 1),
    "array data with a total and no cursor": (ok([full_job("a", WS)], total=1), 1),
    "array data with a page number and no cursor": (ok([full_job("a", WS)], page=1), 1),
    "array data without hasMore or nextCursor": (ok([full_job("a", WS)]), 1),
    "hasMore true without a cursor": (ok([full_job("a", WS)], hasMore=True), 1),
    "hasMore true with an empty cursor": (ok({"jobs": [], "hasMore": True, "nextCursor": ""}), 1),
    "hasMore not a boolean": (ok([full_job("a", WS)], hasMore="yes", nextCursor="2"), 1),
    "nextCursor not a string": (ok({"jobs": [], "nextCursor": 2}), 1),
    "repeated cursor beside": (ok([full_job("a", WS)], hasMore=True, nextCursor="same"), 2),
    "repeated cursor inside": (ok({"jobs": [full_job("a", WS)], "nextCursor": "x"}), 2),
    "answer for another page": (ok({"jobs": [], "total": 300, "page": 2, "pageSize": 100}), 1),
    "more jobs than pageSize": (
        ok({"jobs": [full_job("a", WS), full_job("b", WS)], "total": 2, "pageSize": 1}),
        1,
    ),
}


@pytest.mark.parametrize("case", list(BAD_JOB_LISTS))
def test_a_job_list_in_no_shape_is_an_invalid_response(fake, start_exporter, captured_logs, case):
    answer, requests = BAD_JOB_LISTS[case]
    fake.set_jobs(WS, jobs(3))
    fake.fail(LIST, Fault(200, answer))
    running = start_exporter(discovering(fake, WS, "    jobs: [job-0001]\n"))
    series = running.scrape()
    assert fake.count(LIST) == requests
    assert value(series, P + "discovery_up", workspace_id=WS) == 0
    reason = {"workspace_id": WS, "reason": "invalid_response"}
    assert value(series, P + "discovery_error_info", **reason) == 1
    assert value(series, P + "api_errors_total", **reason) == 1
    # Nothing discovered; the configured job is exported as usual.
    ups = {dict(k[1])["job_id"]: series[k] for k in series if k[0] == P + "up"}
    assert ups == {"job-0001": 1}
    assert len([line for line in captured_logs if "job listing failed" in line]) == 1


def test_a_list_that_turns_from_page_numbers_to_cursors_is_an_invalid_response(
    fake, start_exporter
):
    fake.set_jobs(WS, jobs(250))
    fake.api.pagination = "page"
    first = fake.api.answer
    calls: list[str] = []

    def answer(method: str, target: str, headers: dict[str, str]) -> Any:
        calls.append(target)
        if "page=1&" in target:
            return first(method, target, headers)
        fake.api.pagination = "cursor"
        try:
            return first(method, target, headers)
        finally:
            fake.api.pagination = "page"

    fake.api.answer = answer
    series = start_exporter(discovering(fake, WS)).scrape()
    assert value(series, P + "discovery_up", workspace_id=WS) == 0
    reason = {"workspace_id": WS, "reason": "invalid_response"}
    assert value(series, P + "discovery_error_info", **reason) == 1
    assert not [k for k in series if k[0] == P + "up"]


# -- the scraped-pages list -------------------------------------------------------------------


def summaries(count: int) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "mdCharCount": 0 if i % 4 == 3 else 1000} for i in range(count)]


def page_config(fake) -> str:
    return config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [job-0001]\n"
        "    page_stats: true\n    page_stats_interval: 5m\n",
    )


def pages(series) -> tuple[float | None, float | None]:
    labels = {"workspace_id": WS, "job_id": "job-0001"}
    return (
        value(series, P + "job_pages_listed", **labels),
        value(series, P + "job_empty_pages", **labels),
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_of_the_pages_list_is_followed_and_resumed(fake, start_exporter, shape):
    fake.api.pages_pagination = shape
    fake.set_jobs(WS, jobs(2))
    fake.set_pages(WS, "job-0001", summaries(250))
    path = fake.pages_path(WS, "job-0001")
    clock = Clock()
    running = start_exporter(page_config(fake), clock=clock)
    assert pages(running.scrape()) == (250, 62)
    assert fake.queries(path) == QUERIES[shape]
    fake.set_pages(WS, "job-0001", summaries(280))
    clock.now += 300
    assert pages(running.scrape()) == (280, 70)
    # Resumed from the answer holding the last page counted: page 3, or its cursor.
    assert fake.queries(path)[3:] == QUERIES[shape][2:]


BAD_PAGE_LISTS = {
    "array data without hasMore or nextCursor": ok(summaries(2)),
    "array data with a total": ok(summaries(2), total=2),
    "hasMore true without a cursor": ok({"pages": summaries(2), "hasMore": True}),
    "repeated cursor": ok(summaries(2), hasMore=True, nextCursor="again"),
}


@pytest.mark.parametrize("case", list(BAD_PAGE_LISTS))
def test_a_pages_list_in_no_shape_is_an_invalid_response(fake, start_exporter, case):
    fake.set_jobs(WS, jobs(2))
    fake.fail(fake.pages_path(WS, "job-0001"), Fault(200, BAD_PAGE_LISTS[case]))
    series = start_exporter(page_config(fake)).scrape()
    labels = {"workspace_id": WS, "job_id": "job-0001"}
    assert value(series, P + "up", **labels) == 1
    assert value(series, P + "page_stats_error_info", **labels, reason="invalid_response") == 1
    assert pages(series) == (None, None)
