"""The upstream request threads run on one CPU by default (``api.request_cpus``), the other
threads wherever the process may run; ``0`` leaves them there too."""

from __future__ import annotations

import os
import threading

import pytest

from exporter.collect.affinity import request_cpus
from exporter.collect.own import OwnMetrics
from exporter.collect.state import Runtime
from exporter.config import parse_config

ALLOWED = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
pytestmark = pytest.mark.skipif(
    len(ALLOWED) < 2, reason="needs CPU affinity and two CPUs to choose from"
)


def _request_threads(api: str) -> tuple[list[frozenset[int]], int]:
    """The CPUs each request thread of a runtime may use (all of its threads started at once),
    and how many threads there were."""
    config = parse_config(
        f"api: {{max_concurrency: 6{api}}}\nworkspaces:\n  - {{id: w, token: t, jobs: [j]}}\n",
        "t.yml",
        {},
    )
    runtime = Runtime(config, OwnMetrics())
    everyone = threading.Barrier(6, timeout=30)

    def affinity() -> tuple[frozenset[int], int]:
        everyone.wait()  # six threads at once: the pool started each of them
        return frozenset(os.sched_getaffinity(0)), threading.get_ident()

    try:
        answers = [f.result(30) for f in [runtime.executor.submit(affinity) for _ in range(6)]]
    finally:
        runtime.close()
    return [cpus for cpus, _ in answers], len({ident for _, ident in answers})


def test_request_threads_share_one_cpu_of_the_process_by_default():
    seen, threads = _request_threads("")
    assert threads == 6
    chosen = request_cpus(1)
    assert chosen is not None and len(chosen) == 1 and chosen <= ALLOWED
    assert seen == [chosen] * 6
    # The thread that made the runtime (as the web server's and gzip's) is left as it was.
    assert frozenset(os.sched_getaffinity(0)) == ALLOWED


@pytest.mark.parametrize("api", [", request_cpus: 0", f", request_cpus: {len(ALLOWED)}"])
def test_zero_or_as_many_cpus_as_the_process_has_leaves_the_threads_on_all(api):
    seen, threads = _request_threads(api)
    assert (threads, seen) == (6, [ALLOWED] * 6)


def test_the_choice_is_the_process_ids_turn_among_the_cpus_allowed():
    cpus = sorted(ALLOWED)
    start = os.getpid() % len(cpus)
    assert request_cpus(1) == {cpus[start]}
    assert request_cpus(len(cpus) - 1) == {
        cpus[(start + i) % len(cpus)] for i in range(len(cpus) - 1)
    }
    assert request_cpus(0) is None and request_cpus(len(cpus)) is None
