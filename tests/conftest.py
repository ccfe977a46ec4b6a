from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Callable, Generator, Iterator
from typing import Any, NoReturn
from unittest import mock

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.collect import Exporter
from exporter.config import Config, parse_config
from exporter.version import build_info
from exporter.web.server import ExporterServer, ServerOptions
from exporter.web.settings import WebHolder

from .fakeapi import TOKEN, FakeConvocore

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]

# The quick loop and the integration marker --------------------------------------------------
#
# A test that starts a process (the exporter, promtool, prometheus, node, a build, git...) is
# marked `integration`; so is every test marked `prometheus` or `soak`. `pytest --quick`
# (`scripts/test --quick`) runs the others only: in-process tests against loopback fakes.
# The marking is enforced, not trusted: while an unmarked test sets up or runs, starting a
# process fails it, so a slow newcomer cannot land in the quick loop unnoticed. A test that
# needs no process but seconds of CPU (memory tracing, hundreds of property examples) is
# marked `slow` and left out of the quick loop too; every run prints the slowest tests.

IMPLIES_INTEGRATION = ("prometheus", "soak")
# The longest modules (a parallel run gives each module to one worker) start first, so that
# the run does not end waiting on one of them alone; `--durations` shows when this is stale.
LONGEST = ("test_soak.py", "test_faults.py", "test_release.py", "test_cli.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick",
        action="store_true",
        help="run only the tests marked neither integration nor slow: in-process, no real tools",
    )


def pytest_configure(config: pytest.Config) -> None:
    # The exporter reads its git revision once, with git: read it now, outside any test.
    build_info()


def in_quick_loop(item: pytest.Item) -> bool:
    return not (item.get_closest_marker("integration") or item.get_closest_marker("slow"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in IMPLIES_INTEGRATION):
            item.add_marker(pytest.mark.integration)
    if config.getoption("quick"):
        deselected = [item for item in items if not in_quick_loop(item)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if in_quick_loop(item)]
    items.sort(key=lambda item: LONGEST.index(n) if (n := item.path.name) in LONGEST else 99)


def refuse_processes(item: pytest.Item) -> Any:
    def refuse(*args: Any, **kw: Any) -> NoReturn:
        pytest.fail(
            f"{item.nodeid} starts a process ({args[0] if args else kw.get('args')!r}) but is "
            "not marked integration: mark it (pytest.mark.integration) so that the quick loop "
            "leaves it out",
            pytrace=False,
        )

    if item.get_closest_marker("integration"):
        return contextlib.nullcontext()
    return mock.patch.object(subprocess, "Popen", refuse)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with refuse_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with refuse_processes(item):
        return (yield)


def parse_exposition(text: str) -> Series:
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


class Running:
    """An exporter serving on loopback, with helpers to scrape it."""

    def __init__(self, exporter: Exporter, server: ExporterServer) -> None:
        self.exporter = exporter
        self.server = server
        self.url = server.url

    def get(self, path: str = "/metrics", **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kw)

    def scrape(self, path: str = "/metrics", **kw: Any) -> Series:
        response = self.get(path, **kw)
        assert response.status_code == 200, response.text
        return parse_exposition(response.text)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.exporter.close()


def value(series: Series, metric: str, /, **labels: str) -> float | None:
    return series.get((metric, frozenset(labels.items())))


def names(series: Series, prefix: str = "convocore_crawler_job_") -> set[str]:
    return {name for name, _ in series if name.startswith(prefix)}


@pytest.fixture
def fake() -> Iterator[FakeConvocore]:
    server = FakeConvocore(jobs={})
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[FakeConvocore]:
    """A second loopback server standing for a host other than the API's."""
    server = FakeConvocore(jobs={})
    yield server
    server.close()


@pytest.fixture
def start_exporter() -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(
        config: Config | str,
        *,
        options: ServerOptions | None = None,
        web: WebHolder | None = None,
        **kw: Any,
    ) -> Running:
        if isinstance(config, str):
            config = parse_config(config, "test.yml", {"CONVOCORE_TOKEN": TOKEN})
        exporter = Exporter(config, **kw)
        server = ExporterServer(("127.0.0.1", 0), exporter, options or ServerOptions(), web)
        server.start(poll_interval=0.05)
        instance = Running(exporter, server)
        running.append(instance)
        return instance

    yield start
    for instance in running:
        instance.close()


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    """Every log line at every level, formatted as the exporter formats them."""
    from exporter.logs import LogfmtFormatter

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(LogfmtFormatter().format(record))

    handler = Collect(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)
