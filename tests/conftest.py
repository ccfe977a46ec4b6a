from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.collect import Exporter
from exporter.config import Config, parse_config
from exporter.web.server import ExporterServer, ServerOptions
from exporter.web.settings import WebHolder

from .fakeapi import TOKEN, FakeConvocore

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


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


def config_yaml(base_url: str, workspaces: str, api: str = "") -> str:
    """A config for the fake API: a 2 s timeout and no minimum refresh interval, unless
    ``api`` (lines such as ``"  timeout_seconds: 0.3\\n"``) sets them otherwise (a key may be
    set once only)."""
    settings = {"base_url": base_url, "timeout_seconds": "2", "min_refresh_interval": "0s"}
    for line in api.splitlines():
        key, _, value = line.strip().partition(":")
        settings[key] = value.strip()
    lines = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    return f"api:\n{lines}workspaces:\n{workspaces}"


def discover_yaml(base_url: str, workspace_id: str, extra: str = "", api: str = "") -> str:
    """A config of one workspace with ``discover: true`` (and ``extra`` lines of its own)."""
    lines = f"  - id: {workspace_id}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n"
    return config_yaml(base_url, lines + extra, api)


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
