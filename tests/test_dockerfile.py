"""The Dockerfile read as text, for what building and running the image cannot show.

tests/test_container.py builds the image and runs it (user, entrypoint, command, health
check, SIGTERM, what the final image holds). What stays here: hadolint, and the claims of the
Dockerfile's comments that one build on a stand-in base cannot prove: the base pinned to an
exact Python patch release, the build arguments declared after the install (so changing
them rebuilds nothing), the health check's exit status on a non-2xx answer, and a build
context that keeps local configs, virtualenvs and git history out.
"""

import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
EXPORTER_PORT = 19417


@dataclass
class Instruction:
    keyword: str  # upper case, e.g. "RUN"
    args: str  # everything after the keyword, continuation lines joined
    line: int  # 1-based line of the keyword in the Dockerfile


@dataclass
class Stage:
    base: str  # the FROM image with build args resolved
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions: comments dropped, continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def parse_stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global build args (those before the first FROM) and the build stages."""
    build_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(text):
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.args.partition("=")
            build_args[name] = default
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: build_args[m[1] or m[2]], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before any FROM"
            stages[-1].instructions.append(instruction)
    return build_args, stages


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` flags of an instruction, and the rest of it."""
    flags: dict[str, str] = {}
    rest = args
    while match := re.match(r"--([\w-]+)=(\S+)\s+", rest):
        flags[match[1]] = match[2]
        rest = rest[match.end() :]
    return flags, rest


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction; fails the test on shell form."""
    assert args.startswith("["), f"shell form instead of exec form: {args}"
    value = json.loads(args)
    assert isinstance(value, list)
    assert all(isinstance(v, str) for v in value)
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_stages(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.mark.integration
def test_hadolint_reports_nothing() -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [
            hadolint,
            "--no-color",
            "--failure-threshold",
            "info",
            "--disable-ignore-pragma",
            str(DOCKERFILE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_parser_understands_continuations_and_comments() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.11.1-slim-bookworm\n"
        "FROM ${BASE} AS one\n"
        "RUN a \\\n"
        "    # dropped\n"
        "    && b\n"
        "FROM $BASE\n"
        'CMD ["x"]\n'
    )
    args, parsed = parse_stages(text)
    assert args == {"BASE": "python:3.11.1-slim-bookworm"}
    assert [(s.base, s.name) for s in parsed] == [
        ("python:3.11.1-slim-bookworm", "one"),
        ("python:3.11.1-slim-bookworm", None),
    ]
    assert [(i.keyword, i.args, i.line) for i in parsed[0].instructions] == [("RUN", "a && b", 4)]
    assert split_flags("--mount=type=bind,from=one --x=1 pip install") == (
        {"mount": "type=bind,from=one", "x": "1"},
        "pip install",
    )


def test_every_base_image_is_a_pinned_slim_python_or_an_earlier_stage(
    stages: list[Stage],
) -> None:
    names: set[str] = set()
    for stage in stages:
        assert stage.base in names or PINNED_PYTHON.match(stage.base), stage.base
        if stage.name:
            names.add(stage.name)
    assert PINNED_PYTHON.match(stages[-1].base)


def test_build_arguments_come_after_the_install(final: Stage) -> None:
    # "Declared after the install, so changing them rebuilds nothing": one build cannot show
    # what a second one with another revision would reuse.
    args = [i for i in final.all("ARG") if i.args.split("=")[0] in ("REVISION", "BUILD_DATE")]
    assert len(args) == 2
    assert all(run.line < arg.line for run in final.all("RUN") for arg in args)


def healthcheck_command(final: Stage) -> list[str]:
    (healthcheck,) = final.all("HEALTHCHECK")
    flags, rest = split_flags(healthcheck.args)
    assert set(flags) == {"interval", "timeout", "start-period", "retries"}
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    return exec_form(command)


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []  # noqa: RUF012 - shared on purpose, reset by the fixture

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


# "urlopen raises (exit status 1) on any non-2xx answer": the exporter never answers its
# /-/healthy with an error, so a loopback server plays one.
@pytest.mark.integration
@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (404, False)])
def test_healthcheck_command_exit_status_follows_the_answer(
    final: Stage,
    health_server: tuple[int, type[_Health]],
    status: int,
    healthy: bool,
) -> None:
    port, handler = health_server
    handler.status = status
    code = healthcheck_command(final)[2].replace(f":{EXPORTER_PORT}/", f":{port}/")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert (result.returncode == 0) is healthy
    assert handler.paths == ["/-/healthy"]


# .dockerignore ----------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out += "/?"  # "**/x" also matches a top-level "x"
                i += 1
            continue
        char = pattern[i]
        out += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        i += 1
    return re.compile(out)


def excluded_by_dockerignore(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        regex = _pattern_regex(pattern.strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_matcher() -> None:
    patterns = ["*", "!exporter/", "**/__pycache__"]
    assert excluded_by_dockerignore("config.yaml", patterns)
    assert excluded_by_dockerignore(".git/HEAD", patterns)
    assert not excluded_by_dockerignore("exporter/cli.py", patterns)
    assert excluded_by_dockerignore("exporter/__pycache__/cli.cpython-311.pyc", patterns)


def test_build_context_holds_what_the_builder_copies_and_nothing_secret(
    stages: list[Stage],
) -> None:
    patterns = dockerignore_patterns()
    sources = []
    for stage in stages:
        for copy in stage.all("COPY"):
            flags, rest = split_flags(copy.args)
            if "from" in flags:
                continue
            sources += rest.split()[:-1]
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert not excluded_by_dockerignore(relative, patterns), relative
    for private in [".git/config", ".venv/pyvenv.cfg", ".tools/usr/bin/promtool", "config.yaml"]:
        assert excluded_by_dockerignore(private, patterns), private
    # The image runs the exporter; the monitoring mixin is for Prometheus and Grafana.
    assert excluded_by_dockerignore("mixin/mixin.libsonnet", patterns)
