"""Reading the configuration file: each key checked for its type and range, environment
references and token files resolved, every error naming the file, the line, the key and what
was expected (:class:`~.schema.ConfigError`).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

import yaml

from ..durations import DURATION_RULE, DurationError, parse_duration
from ..yamlnodes import NodeReader, YamlFileError, is_null
from .schema import (
    API_KEYS,
    JOB_KEYS,
    MAX_CONFIG_FILE_BYTES,
    MAX_TOKEN_FILE_CHARS,
    REGIONS,
    WEEK,
    WORKSPACE_KEYS,
    ApiConfig,
    Config,
    ConfigError,
    JobRef,
    Secret,
    Workspace,
    is_identifier,
)

_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONVENTIONAL_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


class _ConfigReader(NodeReader):
    """The config file's nodes read into typed values: each scalar as PyYAML's safe loader
    constructs it, then checked for its Python type; every error names the file, the line and
    the column of the node, and the key."""

    error_type = ConfigError
    columns = True
    single_document = True

    def show_key(self, name: str) -> str:
        """An unknown key as the message shows it: as written when it is short printable
        text, else quoted with its escapes (a key may hold a newline), cut to 64 characters."""
        if not (name.isprintable() and name.strip() == name and name and len(name) <= 64):
            name = repr(name[:64])
        return name

    def fail(
        self, node: yaml.Node | None, key: str, expected: str, value: Any = None, *, show: bool
    ) -> YamlFileError:
        """``expected ...``, and what was found when ``show`` (never for a possible secret)."""
        shown = f", got {self.describe(value)}" if show else ""
        return self.error(node, key, f"expected {expected}{shown}")

    def describe(self, value: Any) -> str:
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"boolean {str(value).lower()}"
        if isinstance(value, int | float):
            return f"number {value!r}"
        if isinstance(value, str):
            shown = value if len(value) <= 60 else value[:57] + "..."
            return f"string {shown!r}"
        if isinstance(value, yaml.SequenceNode):
            return "a list"
        if isinstance(value, yaml.MappingNode):
            return "a mapping"
        return type(value).__name__

    def table(self, node: yaml.Node, key: str, allowed: frozenset[str]) -> dict[str, yaml.Node]:
        """A mapping with only ``allowed`` keys, each set once; null is not a mapping."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(
                node, key or "the top level", "a mapping", self.value(node, key), show=True
            )
        return self.fields(node, key, tuple(sorted(allowed)))

    def read(self, node: yaml.Node | None, key: str, default: Any = None) -> Any:
        """The value of ``node``, or ``default`` when the key is not there."""
        return default if node is None else self.value(node, key)

    def text(self, node: yaml.Node | None, key: str) -> str:
        value = self.read(node, key)
        if not isinstance(value, str) or not value:
            raise self.fail(node, key, "a non-empty string", value, show=True)
        return value

    def identifier(self, node: yaml.Node | None, key: str) -> str:
        value = self.read(node, key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not is_identifier(value):
            raise self.fail(
                node,
                key,
                "a plain identifier (1 to 128 of letters, digits, '-', '_', '.', ':')",
                value,
                show=True,
            )
        return value

    def number(
        self, node: yaml.Node | None, key: str, default: float, *, minimum: float, maximum: float
    ) -> float:
        value = self.read(node, key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(node, key, "a number", value, show=True)
        if not minimum <= value <= maximum:
            raise self.fail(
                node, key, f"a number from {minimum:g} to {maximum:g}", value, show=True
            )
        return float(value)

    def whole(
        self, node: yaml.Node | None, key: str, default: int, *, minimum: int, maximum: int
    ) -> int:
        value = self.read(node, key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, key, "a whole number", value, show=True)
        if not minimum <= value <= maximum:
            raise self.fail(
                node, key, f"a whole number from {minimum} to {maximum}", value, show=True
            )
        return value

    def flag(self, node: yaml.Node | None, key: str, default: bool) -> bool:
        value = self.read(node, key, default)
        if not isinstance(value, bool):
            raise self.fail(node, key, "true or false", value, show=True)
        return value

    def duration(self, node: yaml.Node | None, key: str, default: float, more: str = "") -> float:
        """A duration; zero is taken (every duration key of this file has a meaning for 0)."""
        if node is None:
            return default
        value = self.value(node, key)
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError:
                pass
        raise self.fail(
            node,
            key,
            f"a duration such as 0, 30s, 5m, 1h30m or 7d ({DURATION_RULE}){more}",
            value,
            show=True,
        )


def _given(fields: dict[str, yaml.Node], name: str) -> yaml.Node | None:
    """The node of an optional key, None when it is missing or null (the default applies)."""
    node = fields.get(name)
    return None if node is None or is_null(node) else node


def _expand_env(
    reader: _ConfigReader, node: yaml.Node, value: str, key: str, env: dict[str, str]
) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _ENV_NAME.fullmatch(name):
            raise reader.fail(
                node, key, "${NAME} with NAME a valid environment variable name", show=False
            )
        if name not in env:
            # A conventional NAME is shown; anything else may be a secret pasted inside ${}.
            shown = name if _CONVENTIONAL_ENV_NAME.fullmatch(name) else "named there"
            raise reader.error(node, key, f"environment variable {shown} is not set")
        return env[name]

    return _ENV_REF.sub(substitute, value)


def _resolve(path: str, base_dir: str) -> str:
    """A token file's path as the loader opens it: relative to the config file's folder."""
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


def _read_token_file(
    reader: _ConfigReader, node: yaml.Node, path: str, key: str, base_dir: str
) -> str:
    full = _resolve(path, base_dir)
    try:
        with open(full, encoding="utf-8") as handle:
            # Bounded: a token is short, and the path may name a device or a huge file.
            token = handle.read(MAX_TOKEN_FILE_CHARS + 1)
        if len(token) > MAX_TOKEN_FILE_CHARS:
            raise reader.error(
                node,
                key,
                f"token file {path!r} is larger than {MAX_TOKEN_FILE_CHARS} characters; "
                "expected only the token",
            )
        token = token.rstrip("\r\n")
    except OSError as exc:
        raise reader.error(node, key, f"cannot read token file {path!r} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise reader.error(node, key, f"token file {path!r} is not UTF-8 text") from None
    return token


def _parse_api(reader: _ConfigReader, node: yaml.Node) -> ApiConfig:
    data = reader.table(node, "api", API_KEYS)
    region_node = data.get("region")
    region = reader.read(region_node, "api.region", "eu")
    if not isinstance(region, str) or region not in REGIONS:
        raise reader.fail(
            region_node, "api.region", "one of " + ", ".join(sorted(REGIONS)), region, show=True
        )
    base_url = REGIONS[region]
    url_node = _given(data, "base_url")
    if url_node is not None:
        base_url = reader.text(url_node, "api.base_url")
        if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", base_url):
            raise reader.fail(
                url_node, "api.base_url", "an http:// or https:// URL", base_url, show=True
            )
        base_url = base_url.rstrip("/")
    defaults = ApiConfig()

    def whole(name: str, minimum: int, maximum: int) -> int:
        default = getattr(defaults, name)
        return reader.whole(
            data.get(name), f"api.{name}", default, minimum=minimum, maximum=maximum
        )

    return ApiConfig(
        region=region,
        base_url=base_url,
        timeout_seconds=reader.number(
            data.get("timeout_seconds"),
            "api.timeout_seconds",
            defaults.timeout_seconds,
            minimum=0.001,
            maximum=300,
        ),
        max_concurrency=whole("max_concurrency", 1, 256),
        request_cpus=whole("request_cpus", 0, 4096),
        max_response_bytes=whole("max_response_bytes", 1024, 1024**3),
        min_refresh_interval=reader.duration(
            data.get("min_refresh_interval"),
            "api.min_refresh_interval",
            defaults.min_refresh_interval,
        ),
        refresh_finished=reader.flag(
            data.get("refresh_finished"), "api.refresh_finished", defaults.refresh_finished
        ),
    )


def _parse_jobs(reader: _ConfigReader, node: yaml.Node, key: str) -> tuple[JobRef, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise reader.fail(node, key, "a list of job ids", reader.value(node, key), show=True)
    jobs: list[JobRef] = []
    seen: set[str] = set()
    for index, item in enumerate(node.value):
        item_key = f"{key}[{index}]"
        if isinstance(item, yaml.MappingNode):
            entry = reader.table(item, item_key, JOB_KEYS)
            id_key = f"{item_key}.id"
            id_node = entry.get("id")
            if id_node is None:
                raise reader.error(item, id_key, "missing (the job's id)")
            job_id = reader.identifier(id_node, id_key)
            name = ""
            name_node = _given(entry, "name")
            if name_node is not None:
                name = reader.text(name_node, f"{item_key}.name")
                if len(name) > 256:
                    raise reader.fail(
                        name_node, f"{item_key}.name", "at most 256 characters", name, show=True
                    )
        else:
            job_id = reader.identifier(item, item_key)
            name = ""
            id_key = item_key
            id_node = item
        if job_id in seen:
            raise reader.error(id_node, id_key, f"duplicate job id {job_id!r}")
        seen.add(job_id)
        jobs.append(JobRef(job_id, name))
    return tuple(jobs)


def _parse_token(
    reader: _ConfigReader,
    data: dict[str, yaml.Node],
    node: yaml.Node,
    key: str,
    *,
    env: dict[str, str],
    base_dir: str,
    world_readable: bool,
) -> tuple[str, str | None, yaml.Node, list[str]]:
    """The workspace's secret: the token, the token file it came from, the node it was set
    by, and any warning."""
    token_node = _given(data, "token")
    file_node = _given(data, "token_file")
    if (token_node is None) == (file_node is None):
        raise reader.error(
            node,
            key,
            "expected exactly one of token or token_file"
            + (", got both" if token_node is not None else ", got neither"),
        )
    warnings: list[str] = []
    if token_node is not None:
        raw_token = reader.value(token_node, f"{key}.token")
        if not isinstance(raw_token, str) or not raw_token:
            # Never echo what was given: it may be the secret itself.
            raise reader.fail(
                token_node,
                f"{key}.token",
                "a non-empty string such as ${CONVOCORE_TOKEN}",
                show=False,
            )
        token = _expand_env(reader, token_node, raw_token, f"{key}.token", env)
        if not _ENV_REF.search(raw_token) and world_readable:
            where = reader.where(token_node.start_mark)
            warnings.append(
                f"{where}: {key}.token: a plaintext token in a world-readable file; "
                "use ${VAR} or token_file"
            )
        return token, None, token_node, warnings
    assert file_node is not None
    token_file = reader.text(file_node, f"{key}.token_file")
    token = _read_token_file(reader, file_node, token_file, f"{key}.token_file", base_dir)
    return token, token_file, file_node, warnings


def _parse_workspace(
    reader: _ConfigReader,
    node: yaml.Node,
    key: str,
    *,
    env: dict[str, str],
    base_dir: str,
    world_readable: bool,
) -> tuple[Workspace, yaml.Node, list[str]]:
    """The workspace, the node of its id, and any warning."""
    data = reader.table(node, key, WORKSPACE_KEYS)
    id_node = data.get("id")
    if id_node is None:
        raise reader.error(node, f"{key}.id", "missing (the workspace's id)")
    ws_id = reader.identifier(id_node, f"{key}.id")
    token, token_file, token_node, warnings = _parse_token(
        reader, data, node, key, env=env, base_dir=base_dir, world_readable=world_readable
    )
    if not token.strip():
        raise reader.error(token_node, key, "the token is empty")
    if any(ch in token for ch in "\r\n\0"):
        raise reader.error(token_node, key, "the token contains a line break or NUL")
    discover = reader.flag(data.get("discover"), f"{key}.discover", False)
    jobs_node = data.get("jobs")
    jobs = _parse_jobs(reader, jobs_node, f"{key}.jobs") if jobs_node is not None else ()
    if not jobs and not discover:
        raise reader.error(
            jobs_node or node, f"{key}.jobs", "expected at least one job id (or discover: true)"
        )
    grace = reader.duration(
        _given(data, "discover_grace_period"),
        f"{key}.discover_grace_period",
        Workspace.discover_grace_period,
    )
    discover_interval = reader.duration(
        _given(data, "discover_interval"),
        f"{key}.discover_interval",
        Workspace.discover_interval,
    )
    discover_max_pages = reader.whole(
        data.get("discover_max_pages"),
        f"{key}.discover_max_pages",
        Workspace.discover_max_pages,
        minimum=1,
        maximum=1_000_000,
    )
    include_node = _given(data, "include_finished_for")
    forever = include_node is not None and reader.value(include_node, key) == "forever"
    include_for = (
        None
        if forever
        else reader.duration(include_node, f"{key}.include_finished_for", WEEK, ", or forever")
    )
    max_jobs = None
    max_node = _given(data, "max_jobs")
    if max_node is not None:
        max_jobs = reader.whole(max_node, f"{key}.max_jobs", 0, minimum=1, maximum=1_000_000)
    workspace = Workspace(
        id=ws_id,
        token=Secret(token),
        jobs=jobs,
        token_file=token_file,
        discover=discover,
        discover_grace_period=grace,
        discover_interval=discover_interval,
        discover_max_pages=discover_max_pages,
        include_finished_for=include_for,
        max_jobs=max_jobs,
        allow_unconfigured_probes=reader.flag(
            data.get("allow_unconfigured_probes"), f"{key}.allow_unconfigured_probes", False
        ),
        page_stats=reader.flag(data.get("page_stats"), f"{key}.page_stats", False),
        page_stats_interval=reader.duration(
            _given(data, "page_stats_interval"),
            f"{key}.page_stats_interval",
            Workspace.page_stats_interval,
        ),
        page_stats_max_pages=reader.whole(
            data.get("page_stats_max_pages"),
            f"{key}.page_stats_max_pages",
            Workspace.page_stats_max_pages,
            minimum=1,
            maximum=1_000_000,
        ),
    )
    return workspace, id_node, warnings


def parse_config(
    text: str, source: str, env: dict[str, str] | None = None, *, world_readable: bool = False
) -> Config:
    """Validate a configuration document; ``source`` names it in error messages."""
    reader = _ConfigReader(source)
    environment = dict(os.environ) if env is None else env
    root = reader.compose(text)
    if root is None or is_null(root):
        raise ConfigError(f"{source}: the file is empty; expected a mapping with workspaces")
    data = reader.table(root, "", frozenset({"api", "workspaces"}))
    api_node = _given(data, "api")
    api = _parse_api(reader, api_node) if api_node is not None else ApiConfig()
    ws_node = data.get("workspaces")
    if not isinstance(ws_node, yaml.SequenceNode) or not ws_node.value:
        raise reader.fail(
            ws_node or root,
            "workspaces",
            "a non-empty list of workspaces",
            reader.read(ws_node, "workspaces"),
            show=True,
        )
    base_dir = os.path.dirname(os.path.abspath(source)) if source.startswith("<") is False else "."
    workspaces: list[Workspace] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(ws_node.value):
        key = f"workspaces[{index}]"
        workspace, id_node, found = _parse_workspace(
            reader,
            item,
            key,
            env=environment,
            base_dir=base_dir,
            world_readable=world_readable,
        )
        if workspace.id in seen:
            raise reader.error(id_node, f"{key}.id", f"duplicate workspace id {workspace.id!r}")
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
