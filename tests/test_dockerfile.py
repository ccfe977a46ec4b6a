"""The container image definition: hadolint clean, and the properties the docs promise.

Docker itself cannot run in the test environment, so the Dockerfile is read as text: a small
parser turns it into instructions grouped by build stage, and each test checks one claim
(pinned base, multi-stage wheel build, numeric non-root user, exec-form entrypoint, health
check, build context). The health-check command is run for real against a loopback server.
"""

import glob
import http.server
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from .conftest import config_yaml, parse_exposition, value
from .fakeapi import TOKEN, FakeConvocore, full_job, wait_for
from .processes import free_port
from .tools import in_ci, require_tool

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


def test_wheel_is_built_in_a_builder_stage_and_installed_in_the_final_one(
    stages: list[Stage], final: Stage
) -> None:
    assert len(stages) >= 2
    builder = stages[0]
    assert builder.name == "builder"
    builds = [i.args for i in builder.all("RUN") if i.args.startswith("pip wheel ")]
    assert len(builds) == 1
    wheel_dir = re.search(r"--wheel-dir[= ](\S+)", builds[0])
    assert wheel_dir is not None
    installs = [split_flags(i.args) for i in final.all("RUN")]
    mounted = [
        (flags, command)
        for flags, command in installs
        if flags.get("mount")
        == f"type=bind,from=builder,source={wheel_dir[1]},target={wheel_dir[1]}"
    ]
    assert len(mounted) == 1
    command = mounted[0][1]
    assert command.startswith("pip install --no-cache-dir --no-index ")
    assert f" {wheel_dir[1]}/*.whl" in command
    # Nothing of the source tree is copied into the final image.
    assert final.all("COPY") == []
    assert final.all("ADD") == []


def test_final_stage_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage never switches away from root"
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1].args)
    assert match is not None, f"USER {users[-1].args} is not numeric"
    assert int(match[1]) != 0
    assert match[2] is None or int(match[2]) != 0
    # USER comes after every RUN, so no later step silently runs as root again.
    assert all(i.line < users[-1].line for i in final.all("RUN"))


def test_entrypoint_is_the_console_script_in_exec_form(final: Stage) -> None:
    (entrypoint,) = final.all("ENTRYPOINT")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(entrypoint.args) == ["convocore-crawler-exporter"]
    assert "convocore-crawler-exporter" in scripts
    (cmd,) = final.all("CMD")
    assert exec_form(cmd.args) == ["--config.file=/etc/convocore-exporter/config.yaml"]


def test_port_and_stop_signal(final: Stage) -> None:
    assert [i.args for i in final.all("EXPOSE")] == [str(EXPORTER_PORT)]
    assert [i.args for i in final.all("STOPSIGNAL")] == ["SIGTERM"]


def healthcheck_command(final: Stage) -> list[str]:
    (healthcheck,) = final.all("HEALTHCHECK")
    flags, rest = split_flags(healthcheck.args)
    assert set(flags) == {"interval", "timeout", "start-period", "retries"}
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    return exec_form(command)


def test_healthcheck_asks_the_liveness_endpoint_with_python(final: Stage) -> None:
    command = healthcheck_command(final)
    assert command[:2] == ["python", "-c"]
    assert f"'http://127.0.0.1:{EXPORTER_PORT}/-/healthy'" in command[2]


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


@pytest.mark.integration
def test_healthcheck_command_fails_when_nothing_listens(final: Stage) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    port = server.server_address[1]
    server.server_close()  # the port is now closed: the connection is refused
    code = healthcheck_command(final)[2].replace(f":{EXPORTER_PORT}/", f":{port}/")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "ConnectionRefusedError" in result.stderr


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


# The image's install steps, run for real -----------------------------------------------------
#
# No container engine here, so the two stages are replayed on this machine: the builder's
# COPY and `pip wheel` in one fresh virtualenv, the final stage's `pip install` (same flags,
# same wheels, nothing from the index) in another, then the ENTRYPOINT with the CMD, as the
# USER's uid/gid, reading a read-only config file, checked with the image's HEALTHCHECK.


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def stage_command(args: str, starts_with: str) -> list[str]:
    """The one `&&`-separated part of a RUN that starts with ``starts_with``, as words."""
    (part,) = [p.strip() for p in args.split("&&") if p.strip().startswith(starts_with)]
    return shlex.split(part)


def world_reachable(path: Path) -> bool:
    """Whether any user can reach (and, for a file, execute) ``path``."""
    resolved = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [resolved, *resolved.parents])


def image_interpreter() -> str:
    """A Python >= 3.11 that the image's unprivileged user can run, to base the venvs on.

    As root the process drops to the USER's uid, so the interpreter and its standard library
    must be reachable by anyone (a Python under /root is not); otherwise this one does.
    """
    if os.geteuid() != 0:
        return sys.executable
    probe = "import sys, venv, ensurepip; assert sys.version_info >= (3, 11); print(sys.prefix)"
    candidates = [Path(sys.base_prefix) / "bin" / "python3", Path("/usr/local/bin/python3")]
    candidates.append(Path("/usr/bin/python3"))
    for candidate in candidates:
        if not candidate.exists() or not world_reachable(candidate):
            continue
        result = subprocess.run(
            [str(candidate), "-c", probe], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and world_reachable(Path(result.stdout.strip()) / "lib"):
            return str(candidate)
    message = "no Python >= 3.11 with venv that an unprivileged user can run"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Replayed:
    root: Path  # stands in for the container's /, readable by every user
    python: Path  # the final stage's interpreter
    user: tuple[int, int]  # the USER's uid and gid


@pytest.fixture(scope="module")
def replayed(stages: list[Stage], final: Stage) -> Iterator[Replayed]:
    # tmp_path lives under a root-only directory; the unprivileged user must read this one.
    root = Path(tempfile.mkdtemp(prefix="image-"))
    try:
        root.chmod(0o755)
        builder = stages[0]
        (workdir_instruction,) = builder.all("WORKDIR")
        workdir = root / workdir_instruction.args.lstrip("/")
        workdir.mkdir(parents=True)
        for copy in builder.all("COPY"):
            *sources, dest = shlex.split(copy.args)
            target = workdir / dest
            for source in sources:
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target / source)

        def in_root(word: str) -> str:
            return str(root / word.lstrip("/")) if word.startswith("/") else word

        python = image_interpreter()
        build_venv = root / "builder-venv"
        subprocess.run([python, "-m", "venv", str(build_venv)], check=True)
        (wheel_run,) = [i for i in builder.all("RUN") if i.args.startswith("pip wheel ")]
        words = stage_command(wheel_run.args, "pip wheel")
        command = [str(build_venv / "bin" / "python"), "-m", *[in_root(w) for w in words]]
        result = subprocess.run(
            command,
            cwd=workdir,
            env={**os.environ, **env_of(builder)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

        image_venv = root / "usr-local"
        subprocess.run([python, "-m", "venv", str(image_venv)], check=True)
        (install_run,) = [i for i in final.all("RUN") if "pip install" in i.args]
        _, rest = split_flags(install_run.args)
        words = stage_command(rest, "pip install")
        expanded: list[str] = []
        for word in words:
            if "*" in word:
                matches = sorted(glob.glob(in_root(word)))
                assert matches, f"{word}: the builder made no such files"
                expanded += matches
            else:
                expanded.append(word)
        result = subprocess.run(
            [str(image_venv / "bin" / "python"), "-m", *expanded],
            env={**os.environ, **env_of(final)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

        (user,) = final.all("USER")
        uid, _, gid = user.args.partition(":")
        useradd = stage_command(install_run.args, "useradd")
        assert useradd[useradd.index("--uid") + 1] == uid
        assert useradd[useradd.index("--gid") + 1] == (gid or uid)
        yield Replayed(root, image_venv / "bin" / "python", (int(uid), int(gid or uid)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.integration
def test_replayed_install_holds_only_the_project_and_its_dependencies(
    replayed: Replayed,
) -> None:
    result = subprocess.run(
        [str(replayed.python), "-m", "pip", "list", "--format=freeze", "--exclude", "pip"],
        capture_output=True,
        text=True,
        check=True,
    )

    def normalized(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    installed = {normalized(line.split("==")[0]) for line in result.stdout.split()}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = re.match(r"[\w.-]+", requirement)
        assert name is not None
        assert normalized(name[0]) in installed
    assert "convocore-crawler-exporter" in installed
    assert "pytest" not in installed  # nothing of the test extras


@pytest.mark.integration
def test_image_entrypoint_runs_unprivileged_from_a_read_only_config(
    replayed: Replayed, final: Stage
) -> None:
    fake = FakeConvocore(jobs={"ws-1": {"j1": full_job("j1", "ws-1")}})
    config_dir = replayed.root / "etc" / "convocore-exporter"
    config_dir.mkdir(parents=True, exist_ok=True)
    config_dir.chmod(0o755)
    (entrypoint,) = final.all("ENTRYPOINT")
    (cmd,) = final.all("CMD")
    argv = exec_form(entrypoint.args) + exec_form(cmd.args)
    config_flag = [a for a in argv if a.startswith("--config.file=")]
    assert len(config_flag) == 1
    config = replayed.root / config_flag[0].partition("=")[2].lstrip("/")
    assert config.parent == config_dir
    config.write_text(
        config_yaml(fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1]\n")
    )
    config.chmod(0o444)
    argv = [f"--config.file={config}" if a in config_flag else a for a in argv]
    port = free_port()
    bin_dir = replayed.python.parent
    env = {
        **env_of(final),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "CONVOCORE_TOKEN": TOKEN,
    }
    uid, gid = replayed.user
    as_root = os.geteuid() == 0

    def drop_privileges() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    process = subprocess.Popen(
        [*argv, f"--web.listen-address=127.0.0.1:{port}"],
        env=env,
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=drop_privileges if as_root else None,  # noqa: PLW1509 - no threads started in between
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return requests.get(base + "/-/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_for(ready, 30), process.stderr.read() if process.poll() is not None else ""
        status = Path(f"/proc/{process.pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        assert uids is not None
        assert int(uids[1]) == (uid if as_root else os.geteuid())
        healthy = requests.get(base + "/-/healthy", timeout=5)
        assert (healthy.status_code, healthy.text) == (200, "Healthy\n")
        series = parse_exposition(requests.get(base + "/metrics", timeout=15).text)
        assert value(series, "convocore_crawler_up", workspace_id="ws-1", job_id="j1") == 1
        assert (
            value(series, "convocore_crawler_job_scraped_pages", workspace_id="ws-1", job_id="j1")
            == 40
        )
        # The image's own health check, with the image's interpreter, against the process.
        command = healthcheck_command(final)
        assert command[0] == "python"
        code = command[2].replace(f":{EXPORTER_PORT}/", f":{port}/")
        check = subprocess.run(
            [str(replayed.python), "-c", code], capture_output=True, text=True, check=False
        )
        assert (check.returncode, check.stderr) == (0, "")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        fake.close()
    assert process.returncode == 0, stderr
    assert TOKEN not in stderr
