"""Which CPUs the upstream request threads run on (``api.request_cpus``).

Python runs one thread at a time (the GIL). A cold scrape keeps ``api.max_concurrency``
request threads waiting on answers; spread over every core, each answer wakes a thread on a
core other than the one holding the GIL, and handing the GIL between cores costs more CPU
than the request's own work. Kept on one CPU, the same threads take turns there: bench case
15 measured about a quarter less CPU per upstream request. It is the choice node_exporter
makes for its Go runtime (``--runtime.gomaxprocs``, 1 by default). Only the request threads
are kept there: the web server's threads (and gzip, which runs outside the GIL) still use
every CPU the process may use.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("exporter.collect")


def request_cpus(count: int) -> frozenset[int] | None:
    """``count`` of the CPUs this process may use, for its request threads; None to leave
    them where they are: ``count`` 0, no more CPUs than ``count`` to choose from, or a system
    without CPU affinity (not Linux). Where the choice starts depends on the process id, so
    that exporters sharing a host (shards) do not all pick the same CPU."""
    get = getattr(os, "sched_getaffinity", None)
    if count <= 0 or get is None or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(get(0))
    if len(allowed) <= count:
        return None
    start = os.getpid() % len(allowed)
    return frozenset(allowed[(start + i) % len(allowed)] for i in range(count))


def pin(cpus: frozenset[int] | None) -> None:
    """Keep the calling thread on ``cpus`` (a request thread pool's initializer); a system
    that refuses leaves it where it is."""
    if cpus is None:
        return
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        log.debug("request thread left on every CPU", extra={"error": exc.strerror})
