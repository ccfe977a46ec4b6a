"""The container image, built from the real Dockerfile and run as users run it.

The image is built once per module with buildah on a stand-in for its base image (see
tests/container.py for why and how), with the REVISION and BUILD_DATE build arguments, and
each test starts its command in a working container of it: as the image's user, with the
image's environment, entrypoint and command. What is checked is what ``docker run`` users
rely on: the user, --version, --demo, the default config path, a refused config, SIGTERM,
the HEALTHCHECK, and what the final image holds and weighs.
"""

from __future__ import annotations

import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.demo.api import DEMO_NAMES, DEMO_WORKSPACE

from .conftest import parse_exposition, value
from .container import (
    Container,
    Image,
    NetworkNamespace,
    build_image,
    container_process,
    default_base,
    ensure_standin_base,
    own_output,
    stop,
    uid_of,
)
from .fakeapi import TOKEN, FakeConvocore, full_job
from .processes import free_port
from .support import config_yaml, wait_for

# Builds and runs the image with buildah: processes and real tools.
pytestmark = pytest.mark.integration

REVISION = f"0123456789abcdef{uuid.uuid4().hex[:8]}"
BUILD_DATE = "20261206-01:02:03"
USER = "65532:65532"
UID = 65532
CONFIG_PATH = "/etc/convocore-exporter/config.yaml"
MAX_ADDED_BYTES = 30 * 1024 * 1024
STOP_SECONDS = 2.0


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    ensure_standin_base()
    built = build_image(REVISION, BUILD_DATE)
    try:
        yield built
    finally:
        built.remove()


@pytest.fixture(scope="module")
def config(image: Image) -> dict[str, Any]:
    return image.config()


@pytest.fixture(scope="module")
def container(image: Image) -> Iterator[Container]:
    working = Container(image.name)
    try:
        yield working
    finally:
        working.remove()


def entrypoint(config: dict[str, Any]) -> list[str]:
    words: list[str] = config["Entrypoint"]
    return words


def default_command(config: dict[str, Any]) -> list[str]:
    """ENTRYPOINT followed by CMD: what ``docker run IMAGE`` runs."""
    words: list[str] = config["Cmd"]
    return entrypoint(config) + words


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


def wait_ready(url: str, runner: Any) -> None:
    def ready() -> bool:
        answer = get(url + "/-/ready")
        return answer is not None and answer.status_code == 200

    assert wait_for(ready, 30), runner.communicate() if runner.poll() is not None else url


def test_the_image_declares_what_docker_run_relies_on(config: dict[str, Any]) -> None:
    assert config["User"] == USER
    assert entrypoint(config) == ["convocore-crawler-exporter"]
    assert config["Cmd"] == [f"--config.file={CONFIG_PATH}"]
    assert config["ExposedPorts"] == {"19417/tcp": {}}
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Labels"]["org.opencontainers.image.revision"] == REVISION
    assert f"CONVOCORE_EXPORTER_BUILD_DATE={BUILD_DATE}" in config["Env"]


def test_version_prints_the_revision_built_in(container: Container, config: dict[str, Any]) -> None:
    result = container.run([*entrypoint(config), "--version"])
    assert result.returncode == 0, result.stderr
    assert f"(revision: {REVISION})" in result.stdout
    assert f"build date: {BUILD_DATE}" in result.stdout


def test_demo_serves_the_demo_jobs_as_the_image_user_and_stops_on_sigterm(
    container: Container, config: dict[str, Any]
) -> None:
    port = free_port()
    started = time.monotonic()
    runner = container.start(
        [*entrypoint(config), "--demo", f"--web.listen-address=127.0.0.1:{port}"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, runner)
        ready_after = time.monotonic() - started
        process = container_process(runner, entrypoint(config)[0])
        assert uid_of(process) == UID
        scraped = requests.get(url + "/metrics", timeout=30)
        series = parse_exposition(scraped.text)
        for job_id in DEMO_NAMES:
            labels = {"workspace_id": DEMO_WORKSPACE, "job_id": job_id}
            assert value(series, "convocore_crawler_up", **labels) == 1, job_id
        status, seconds, stderr = stop(runner, process)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert (status, stderr.count("level=error")) == (0, 0), stderr
    assert seconds < STOP_SECONDS
    print(f"container ready after {ready_after:.2f}s, stopped {seconds:.2f}s after SIGTERM")


def mounted_config(directory: Path, text: str) -> str:
    """A read-only config file and the --volume that mounts it at the default path."""
    path = directory / "config.yaml"
    path.write_text(text)
    path.chmod(0o444)
    return f"{path}:{CONFIG_PATH}:ro"


def test_the_default_command_exports_the_mounted_config(
    container: Container, config: dict[str, Any], tmp_path: Path
) -> None:
    fake = FakeConvocore(jobs={"ws-1": {"j1": full_job("j1", "ws-1")}})
    mount = mounted_config(
        tmp_path,
        config_yaml(fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1]\n"),
    )
    port = free_port()
    # The listen address stands for docker run's port mapping: chroot isolation shares the
    # host's network, where the image's fixed port may be taken.
    runner = container.start(
        [*default_command(config), f"--web.listen-address=127.0.0.1:{port}"],
        volumes=(mount,),
        env={"CONVOCORE_TOKEN": TOKEN},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, runner)
        process = container_process(runner, entrypoint(config)[0])
        series = parse_exposition(requests.get(url + "/metrics", timeout=30).text)
        labels = {"workspace_id": "ws-1", "job_id": "j1"}
        assert value(series, "convocore_crawler_up", **labels) == 1
        assert value(series, "convocore_crawler_job_scraped_pages", **labels) == 40
        status, seconds, stderr = stop(runner, process)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
        fake.close()
    assert status == 0, stderr
    assert seconds < STOP_SECONDS
    assert TOKEN not in stderr


def test_a_broken_config_exits_1_with_one_log_line(
    container: Container, config: dict[str, Any], tmp_path: Path
) -> None:
    mount = mounted_config(tmp_path, "workspaces: [\n")
    result = container.run(default_command(config), volumes=(mount,))
    assert result.returncode == 1, result.stderr
    lines = own_output(result.stderr)
    assert len(lines) == 1, result.stderr
    assert ' level=error logger=exporter msg="config refused" ' in lines[0]
    assert CONFIG_PATH in lines[0]
    assert result.stdout == ""


def test_the_healthcheck_passes_against_the_exporter_and_fails_without_it(
    container: Container, config: dict[str, Any]
) -> None:
    # The image's HEALTHCHECK asks the fixed port 19417, so the exporter and the check share
    # a network namespace of their own, as in a container, and nothing else can answer there.
    check = config["Healthcheck"]["Test"][1:]
    netns = NetworkNamespace()
    try:
        runner = container.start([*entrypoint(config), "--demo"], netns=netns)
        try:

            def healthy() -> bool:
                return container.run(check, netns=netns).returncode == 0

            assert wait_for(healthy, 30), runner.communicate() if runner.poll() else ""
            status, _, stderr = stop(runner, container_process(runner, entrypoint(config)[0]))
            assert status == 0, stderr
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.communicate()
        refused = container.run(check, netns=netns)
    finally:
        netns.close()
    assert refused.returncode == 1
    assert "Connection refused" in refused.stderr


# What the final image holds -----------------------------------------------------------------

# Where the final stage may add or change files over its base: the installed distributions and
# their scripts, and the user and group it creates.
ALLOWED = (
    "usr/local/lib/python3.11/dist-packages/",  # Debian's interpreter in the stand-in base
    "usr/local/lib/python3.11/site-packages/",  # the official image's
    "usr/local/bin/",
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "etc/gshadow",
    "var/log/lastlog",
    "var/log/faillog",
    # Written by the engine for the RUN steps (buildah keeps an empty /etc/hosts in the layer;
    # Docker bind-mounts its own), not by the Dockerfile.
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
)
NOT_WALKED = {"proc", "sys", "dev", "run", "tmp"}


def tree(root: Path) -> dict[str, os.stat_result]:
    """Every path under ``root`` (symbolic links not followed) and its lstat."""
    found: dict[str, os.stat_result] = {}
    for directory, dirs, files in os.walk(root):
        relative = Path(directory).relative_to(root)
        if relative == Path("."):
            dirs[:] = [d for d in dirs if d not in NOT_WALKED]
        for name in dirs + files:
            path = Path(directory, name)
            found[path.relative_to(root).as_posix()] = path.lstat()
    return found


def added_over(base: dict[str, os.stat_result], final: dict[str, os.stat_result]) -> list[str]:
    def same(a: os.stat_result, b: os.stat_result) -> bool:
        return (a.st_mode, a.st_size, a.st_mtime_ns) == (b.st_mode, b.st_size, b.st_mtime_ns)

    return sorted(p for p, s in final.items() if p not in base or not same(base[p], s))


@pytest.fixture(scope="module")
def added(image: Image) -> Iterator[tuple[list[str], dict[str, os.stat_result]]]:
    base = Container(default_base())
    final = Container(image.name)
    try:
        with base.mounted() as base_root, final.mounted() as final_root:
            base_tree, final_tree = tree(base_root), tree(final_root)
    finally:
        base.remove()
        final.remove()
    yield added_over(base_tree, final_tree), final_tree


def test_the_final_image_holds_no_wheels_caches_or_build_files(
    added: tuple[list[str], dict[str, os.stat_result]],
) -> None:
    paths, final = added
    assert "wheels" not in final
    assert "src" not in final
    assert not [p for p in paths if p.endswith(".whl")]
    assert not [p for p in final if "/.cache/pip" in f"/{p}" or p.endswith("/pip-wheel-metadata")]
    assert not [p for p in paths if p.endswith("pyproject.toml")]
    # The project and its dependencies, nothing of the test extras.
    installed = {p.split("/")[5] for p in paths if p.startswith(ALLOWED[:2])}
    assert any(name.startswith("convocore_crawler_exporter-") for name in installed)
    assert not [name for name in installed if name.startswith(("pytest", "hypothesis"))]
    directories = {p for p in paths if stat.S_ISDIR(final[p].st_mode)}
    outside = [p for p in paths if p not in directories and not p.startswith(ALLOWED)]
    assert outside == []


def test_the_final_image_adds_at_most_30_mb_over_its_base(
    added: tuple[list[str], dict[str, os.stat_result]],
) -> None:
    paths, final = added
    size = sum(final[p].st_size for p in paths if stat.S_ISREG(final[p].st_mode))
    print(f"the image adds {size / 1e6:.1f} MB in {len(paths)} paths over its base")
    assert 0 < size <= MAX_ADDED_BYTES
