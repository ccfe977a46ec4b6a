"""The configuration file: parsed, validated and with secrets resolved, or refused.

``load_config`` returns a :class:`Config` or raises :class:`ConfigError`, whose ``str()`` is
the message a user reads: it names the file, the key and what was expected. Secrets are held
in :class:`Secret`, whose ``repr()`` and ``str()`` never show the value.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml

from .durations import DURATION_RULE, DurationError, parse_duration

REGIONS = {
    "eu": "https://eu-gcp-api.vg-stuff.com/v3",
    "na": "https://na-gcp-api.vg-stuff.com/v3",
}

_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONVENTIONAL_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
# The most the loader reads of a token file and of the config file (a path may name a device or a
# huge file by mistake); the reloader hashes watched files up to the larger of the two.
MAX_TOKEN_FILE_CHARS = 64 * 1024
MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024


API_KEYS = frozenset(
    {
        "region",
        "base_url",
        "timeout_seconds",
        "max_concurrency",
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
        "include_finished_for",
        "max_jobs",
        "allow_unconfigured_probes",
        "page_stats",
        "page_stats_interval",
        "page_stats_max_pages",
    }
)
JOB_KEYS = frozenset({"id", "name"})


class ConfigError(Exception):
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
    include_finished_for: float | None = None
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


class _Reader:
    """Walks the YAML tree, naming each key in the errors it raises."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any = None, *, show: bool = True) -> ConfigError:
        shown = f", got {_describe(got)}" if show else ""
        return ConfigError(f"{self.source}: {key or '(top level)'}: expected {expected}{shown}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping", value)
        for name in value:
            if not isinstance(name, str) or name not in allowed:
                shown = _key_text(name)
                where = f"{key}.{shown}" if key else shown
                raise ConfigError(
                    f"{self.source}: {where}: unknown key (allowed: {', '.join(sorted(allowed))})"
                )
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "a non-empty string", value)
        return value

    def identifier(self, value: Any, key: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not is_identifier(value):
            raise self.fail(
                key,
                "a plain identifier (1 to 128 of letters, digits, '-', '_', '.', ':')",
                value,
            )
        return value

    def number(self, value: Any, key: str, *, minimum: float, maximum: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number", value)
        if not minimum <= value <= maximum:
            raise self.fail(key, f"a number from {minimum:g} to {maximum:g}", value)
        return float(value)

    def integer(self, value: Any, key: str, *, minimum: int, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "a whole number", value)
        if not minimum <= value <= maximum:
            raise self.fail(key, f"a whole number from {minimum} to {maximum}", value)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def duration(self, value: Any, key: str) -> float:
        """A duration; zero is taken (every duration key of this file has a meaning for 0)."""
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError:
                pass
        raise self.fail(key, f"a duration such as 0, 30s, 5m, 1h30m or 7d ({DURATION_RULE})", value)


def _key_text(name: object) -> str:
    """An unknown key as the message shows it: as written when it is short printable text,
    else quoted with its escapes (a key may hold a newline), cut to 64 characters."""
    text = str(name)
    if not (text.isprintable() and text.strip() == text and text and len(text) <= 64):
        text = repr(text[:64])
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _expand_env(reader: _Reader, value: str, key: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _ENV_NAME.fullmatch(name):
            raise reader.fail(
                key, "${NAME} with NAME a valid environment variable name", show=False
            )
        if name not in env:
            # A conventional NAME is shown; anything else may be a secret pasted inside ${}.
            shown = name if _CONVENTIONAL_ENV_NAME.fullmatch(name) else "named there"
            raise ConfigError(f"{reader.source}: {key}: environment variable {shown} is not set")
        return env[name]

    return _ENV_REF.sub(substitute, value)


def _resolve(path: str, base_dir: str) -> str:
    """A token file's path as the loader opens it: relative to the config file's folder."""
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def _read_token_file(reader: _Reader, path: str, key: str, base_dir: str) -> str:
    full = _resolve(path, base_dir)
    try:
        with open(full, encoding="utf-8") as handle:
            # Bounded: a token is short, and the path may name a device or a huge file.
            token = handle.read(MAX_TOKEN_FILE_CHARS + 1)
        if len(token) > MAX_TOKEN_FILE_CHARS:
            raise ConfigError(
                f"{reader.source}: {key}: token file {path!r} is larger than "
                f"{MAX_TOKEN_FILE_CHARS} characters; expected only the token"
            )
        token = token.rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(
            f"{reader.source}: {key}: cannot read token file {path!r} ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{reader.source}: {key}: token file {path!r} is not UTF-8 text"
        ) from None
    return token


def _parse_api(reader: _Reader, raw: Any) -> ApiConfig:
    data = reader.mapping(raw, "api", set(API_KEYS))
    region = data.get("region", "eu")
    if region not in REGIONS:
        raise reader.fail("api.region", "one of " + ", ".join(sorted(REGIONS)), region)
    base_url = REGIONS[region]
    if data.get("base_url") is not None:
        base_url = reader.string(data["base_url"], "api.base_url")
        if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", base_url):
            raise reader.fail("api.base_url", "an http:// or https:// URL", base_url)
        base_url = base_url.rstrip("/")
    defaults = ApiConfig()
    return ApiConfig(
        region=region,
        base_url=base_url,
        timeout_seconds=reader.number(
            data.get("timeout_seconds", defaults.timeout_seconds),
            "api.timeout_seconds",
            minimum=0.001,
            maximum=300,
        ),
        max_concurrency=reader.integer(
            data.get("max_concurrency", defaults.max_concurrency),
            "api.max_concurrency",
            minimum=1,
            maximum=256,
        ),
        max_response_bytes=reader.integer(
            data.get("max_response_bytes", defaults.max_response_bytes),
            "api.max_response_bytes",
            minimum=1024,
            maximum=1024**3,
        ),
        min_refresh_interval=reader.duration(
            data.get("min_refresh_interval", "10s"), "api.min_refresh_interval"
        ),
        refresh_finished=reader.boolean(
            data.get("refresh_finished", defaults.refresh_finished), "api.refresh_finished"
        ),
    )


def _parse_jobs(reader: _Reader, raw: Any, key: str) -> tuple[JobRef, ...]:
    if not isinstance(raw, list):
        raise reader.fail(key, "a list of job ids", raw)
    jobs: list[JobRef] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        item_key = f"{key}[{index}]"
        if isinstance(item, dict):
            entry = reader.mapping(item, item_key, set(JOB_KEYS))
            if "id" not in entry:
                raise ConfigError(f"{reader.source}: {item_key}.id: missing (the job's id)")
            job_id = reader.identifier(entry["id"], f"{item_key}.id")
            name = ""
            if entry.get("name") is not None:
                name = reader.string(entry["name"], f"{item_key}.name")
                if len(name) > 256:
                    raise reader.fail(f"{item_key}.name", "at most 256 characters", name)
            id_key = f"{item_key}.id"
        else:
            job_id = reader.identifier(item, item_key)
            name = ""
            id_key = item_key
        if job_id in seen:
            raise ConfigError(f"{reader.source}: {id_key}: duplicate job id {job_id!r}")
        seen.add(job_id)
        jobs.append(JobRef(job_id, name))
    return tuple(jobs)


def _parse_workspace(
    reader: _Reader, raw: Any, key: str, *, env: dict[str, str], base_dir: str, world_readable: bool
) -> tuple[Workspace, list[str]]:
    data = reader.mapping(raw, key, set(WORKSPACE_KEYS))
    warnings: list[str] = []
    if "id" not in data:
        raise ConfigError(f"{reader.source}: {key}.id: missing (the workspace's id)")
    ws_id = reader.identifier(data["id"], f"{key}.id")
    has_token = data.get("token") is not None
    has_file = data.get("token_file") is not None
    if has_token == has_file:
        raise ConfigError(
            f"{reader.source}: {key}: expected exactly one of token or token_file"
            + (", got both" if has_token else ", got neither")
        )
    token_file: str | None = None
    if has_token:
        raw_token = data["token"]
        if not isinstance(raw_token, str) or not raw_token:
            # Never echo what was given: it may be the secret itself.
            raise reader.fail(
                f"{key}.token", "a non-empty string such as ${CONVOCORE_TOKEN}", show=False
            )
        token = _expand_env(reader, raw_token, f"{key}.token", env)
        if not _ENV_REF.search(raw_token) and world_readable:
            warnings.append(
                f"{reader.source}: {key}.token: a plaintext token in a world-readable file; "
                "use ${VAR} or token_file"
            )
    else:
        token_file = reader.string(data["token_file"], f"{key}.token_file")
        token = _read_token_file(reader, token_file, f"{key}.token_file", base_dir)
    if not token.strip():
        raise ConfigError(f"{reader.source}: {key}: the token is empty")
    if any(ch in token for ch in "\r\n\0"):
        raise ConfigError(f"{reader.source}: {key}: the token contains a line break or NUL")
    discover = reader.boolean(data.get("discover", False), f"{key}.discover")
    jobs = _parse_jobs(reader, data.get("jobs", []), f"{key}.jobs") if "jobs" in data else ()
    if not jobs and not discover:
        raise ConfigError(
            f"{reader.source}: {key}.jobs: expected at least one job id (or discover: true)"
        )
    grace = Workspace.discover_grace_period
    if data.get("discover_grace_period") is not None:
        grace = reader.duration(data["discover_grace_period"], f"{key}.discover_grace_period")
    include_for = None
    if data.get("include_finished_for") is not None:
        include_for = reader.duration(data["include_finished_for"], f"{key}.include_finished_for")
    max_jobs = None
    if data.get("max_jobs") is not None:
        max_jobs = reader.integer(data["max_jobs"], f"{key}.max_jobs", minimum=1, maximum=1_000_000)
    page_stats_interval = Workspace.page_stats_interval
    if data.get("page_stats_interval") is not None:
        page_stats_interval = reader.duration(
            data["page_stats_interval"], f"{key}.page_stats_interval"
        )
    return (
        Workspace(
            id=ws_id,
            token=Secret(token),
            jobs=jobs,
            token_file=token_file,
            discover=discover,
            discover_grace_period=grace,
            include_finished_for=include_for,
            max_jobs=max_jobs,
            allow_unconfigured_probes=reader.boolean(
                data.get("allow_unconfigured_probes", False), f"{key}.allow_unconfigured_probes"
            ),
            page_stats=reader.boolean(data.get("page_stats", False), f"{key}.page_stats"),
            page_stats_interval=page_stats_interval,
            page_stats_max_pages=reader.integer(
                data.get("page_stats_max_pages", Workspace.page_stats_max_pages),
                f"{key}.page_stats_max_pages",
                minimum=1,
                maximum=1_000_000,
            ),
        ),
        warnings,
    )


def parse_config(
    text: str, source: str, env: dict[str, str] | None = None, *, world_readable: bool = False
) -> Config:
    """Validate a configuration document; ``source`` names it in error messages."""
    reader = _Reader(source)
    environment = dict(os.environ) if env is None else env
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError, TypeError):
        # PyYAML's constructors raise these for values such as the date 2001-02-30. The
        # exception's text may quote the value, so it is not repeated here.
        raise ConfigError(
            f"{source}: not valid YAML: a value cannot be read (an impossible date or number?)"
        ) from None
    if raw is None:
        raise ConfigError(f"{source}: the file is empty; expected a mapping with workspaces")
    data = reader.mapping(raw, "", {"api", "workspaces"})
    api = _parse_api(reader, data.get("api") or {}) if data.get("api") is not None else ApiConfig()
    raw_ws = data.get("workspaces")
    if not isinstance(raw_ws, list) or not raw_ws:
        raise reader.fail("workspaces", "a non-empty list of workspaces", raw_ws)
    base_dir = os.path.dirname(os.path.abspath(source)) if source.startswith("<") is False else "."
    workspaces: list[Workspace] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(raw_ws):
        workspace, found = _parse_workspace(
            reader,
            item,
            f"workspaces[{index}]",
            env=environment,
            base_dir=base_dir,
            world_readable=world_readable,
        )
        if workspace.id in seen:
            raise ConfigError(
                f"{source}: workspaces[{index}].id: duplicate workspace id {workspace.id!r}"
            )
        seen.add(workspace.id)
        workspaces.append(workspace)
        warnings.extend(found)
    files = [] if source.startswith("<") else [source]
    files += [_resolve(ws.token_file, base_dir) for ws in workspaces if ws.token_file is not None]
    return Config(
        api=api,
        workspaces=tuple(workspaces),
        source=source,
        warnings=tuple(warnings),
        files=tuple(dict.fromkeys(files)),
    )


def load_config(path: str, env: dict[str, str] | None = None) -> Config:
    """Read and validate the file at ``path``."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            content = handle.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    if len(content) > MAX_CONFIG_FILE_BYTES:
        raise ConfigError(
            f"{path}: the config file is larger than {MAX_CONFIG_FILE_BYTES} bytes; "
            "expected a YAML config"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the config file is not UTF-8 text") from None
    return parse_config(text, path, env, world_readable=bool(mode & stat.S_IROTH))
