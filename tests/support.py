"""Helpers shared by the tests (and bench/bench.py): a clock moved by hand, the discovery
config builders, waiting on background threads, and writing a config file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Clock:
    """A monotonic clock moved by hand, for the exporter's injected ``clock``: the cadence
    of listings and page reads, how long a listing has failed, the outage backoff's pauses."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until ``predicate`` holds, at most ``timeout`` seconds; whether it did. For
    waiting on background threads, never for timing: assert the result."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


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


def discovering(fake: Any, workspace_id: str, extra: str = "", api: str = "") -> str:
    """:func:`discover_yaml` for the fake API ``fake``."""
    return discover_yaml(fake.base_url, workspace_id, extra, api)


def write_config(path: Path, text: str) -> str:
    """Write ``text`` to ``path`` (a config file); the path as a string, for a flag."""
    path.write_text(text, encoding="utf-8")
    return str(path)
