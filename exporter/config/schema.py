"""The typed configuration: what a loaded config holds (:class:`Config`, :class:`Workspace`,
:class:`ApiConfig`, :class:`Secret`), the keys each section accepts and the error a refused
file raises (:class:`ConfigError`). Reading a file into these is :mod:`.load`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..yamlnodes import YamlFileError

REGIONS = {
    "eu": "https://eu-gcp-api.vg-stuff.com/v3",
    "na": "https://na-gcp-api.vg-stuff.com/v3",
}

_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# The most the loader reads of a token file and of the config file (a path may name a device or a
# huge file by mistake); the reloader hashes watched files up to the larger of the two.
MAX_TOKEN_FILE_CHARS = 64 * 1024
MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024
WEEK = 7 * 86400.0  # the default include_finished_for


API_KEYS = frozenset(
    {
        "region",
        "base_url",
        "timeout_seconds",
        "max_concurrency",
        "request_cpus",
        "max_response_bytes",
        "min_refresh_interval",
        "refresh_finished",
    }
)
WORKSPACE_KEYS = frozenset(
    {
        "id",
        "token",
        "token_file",
        "jobs",
        "discover",
        "discover_grace_period",
        "discover_interval",
        "discover_max_pages",
        "include_finished_for",
        "max_jobs",
        "allow_unconfigured_probes",
        "page_stats",
        "page_stats_interval",
        "page_stats_max_pages",
    }
)
JOB_KEYS = frozenset({"id", "name"})


class ConfigError(YamlFileError):
    """A configuration that cannot be used; ``str()`` is the message for the user."""


class Secret:
    """A credential that never shows itself in ``repr()``, ``str()`` or formatting."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    def __str__(self) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class JobRef:
    id: str
    name: str = ""


@dataclass(frozen=True)
class Workspace:
    id: str
    token: Secret
    jobs: tuple[JobRef, ...] = ()
    token_file: str | None = None
    discover: bool = False
    discover_grace_period: float = 300.0
    discover_interval: float = 600.0
    discover_max_pages: int = 1000
    include_finished_for: float | None = WEEK  # None: forever
    max_jobs: int | None = None
    allow_unconfigured_probes: bool = False
    page_stats: bool = False
    page_stats_interval: float = 300.0
    page_stats_max_pages: int = 5000


@dataclass(frozen=True)
class ApiConfig:
    region: str = "eu"
    base_url: str = REGIONS["eu"]
    timeout_seconds: float = 10.0
    max_concurrency: int = 16
    request_cpus: int = 1
    """CPUs the request threads run on; 0: every CPU the process may use (see
    :mod:`exporter.collect.affinity`)."""
    max_response_bytes: int = 32 * 1024 * 1024
    min_refresh_interval: float = 10.0
    refresh_finished: bool = False


@dataclass(frozen=True)
class Config:
    api: ApiConfig = field(default_factory=ApiConfig)
    workspaces: tuple[Workspace, ...] = ()
    source: str = "<none>"
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    """The files this config was read from: the config file and its token files, resolved."""


def is_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(value)) and value not in (".", "..")
