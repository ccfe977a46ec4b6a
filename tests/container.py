"""The container image built and run for real, with buildah, on a stand-in base image.

No container registry is reachable from the test machines, so the Dockerfile's base
(``python:3.11.x-slim-bookworm``) cannot be pulled. A stand-in made from Debian bookworm's own
packages (Python 3.11, pip, venv, passwd) with ``mmdebstrap --variant=minbase`` is tagged with
the base's name, so the real Dockerfile builds unchanged. What makes it is
``mmdebstrap`` with :data:`STANDIN_RECIPE`; the root file system it produces is kept as a tarball in a cache
directory outside the clone, keyed by a hash of the recipe and the host's certificate bundle,
and the image in buildah's storage carries the same key as a label, so a machine that keeps
either builds the base once (a cold start costs the mmdebstrap run, about 30 s).

Containers are started as ``buildah run --isolation chroot --network host`` runs in a working
container of the image: ``podman run`` (crun) cannot set its resource limits on these
machines, and chroot isolation shares the host's network, so a test that needs the image's
fixed port alone (its HEALTHCHECK) runs in a network namespace of its own
(:class:`NetworkNamespace`).

Names are unique (a random suffix per image and container), so tests on several workers never
meet; only the stand-in base is shared, made under a file lock and renamed into place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
KEY_LABEL = "org.convocore-exporter.standin-base"

# The stand-in for python:3.11.x-slim-bookworm. Two steps are for these machines rather than
# for the image: pip inside the build reaches the package index through the same certificate
# authorities as the host (which may sit behind an intercepting proxy), so the host's bundle
# is copied in and PIP_CERT points at it; and Debian's EXTERNALLY-MANAGED marker goes, with
# python and pip linked into /usr/local/bin, as the official image has them (its pip installs
# into the system interpreter).
STANDIN_PACKAGES = ("python3", "python3-pip", "python3-venv", "passwd")
STANDIN_RECIPE = (
    "--quiet",
    "--variant=minbase",
    f"--include={','.join(STANDIN_PACKAGES)}",
    '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
    '--customize-hook=ln -sf /usr/bin/python3 "$1"/usr/local/bin/python',
    '--customize-hook=ln -sf /usr/bin/pip3 "$1"/usr/local/bin/pip',
    f'--customize-hook=cp {HOST_CA_BUNDLE} "$1"{HOST_CA_BUNDLE}',
    '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
    "bookworm",
)
STANDIN_CONFIG = (
    f"--env=PIP_CERT={HOST_CA_BUNDLE}",
    "--env=PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--env=LANG=C.UTF-8",
    '--cmd=["python3"]',
)


def buildah(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``buildah ARGS`` run to its end; fails with its output when it fails."""
    result = subprocess.run(
        [require_tool("buildah"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def default_base() -> str:
    """The Dockerfile's default base image, as Docker would name it in full."""
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match is not None, "the Dockerfile declares no default PYTHON_IMAGE"
    name = match[1]
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    return name if "." in first or ":" in first else f"docker.io/{name}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "convocore-exporter-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def standin_key() -> str:
    digest = hashlib.sha256("\0".join(STANDIN_RECIPE + STANDIN_CONFIG).encode())
    digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Base:
    name: str
    created: bool  # made or imported by this call, not found in buildah's storage
    seconds: float  # what making or importing it took (0 when found)


def image_label(name: str, label: str) -> str | None:
    result = subprocess.run(
        [require_tool("buildah"), "inspect", "--type", "image", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout)["Docker"]["config"].get("Labels") or {}
    value = labels.get(label)
    return value if isinstance(value, str) else None


REAL_BASE = "CONVOCORE_TEST_REAL_BASE"


def ensure_standin_base() -> Base:
    """The stand-in base in buildah's storage under the Dockerfile's base name: found, imported
    from the cached tarball, or made with mmdebstrap. Safe when several workers race.

    With ``CONVOCORE_TEST_REAL_BASE=1`` (a machine that reaches Docker Hub) the real base is
    pulled instead, and no stand-in is made."""
    name = default_base()
    if os.environ.get(REAL_BASE, "") not in ("", "0"):
        started = time.monotonic()
        buildah("pull", "--quiet", name, timeout=600)
        return Base(name, created=True, seconds=time.monotonic() - started)
    key = standin_key()
    directory = cache_dir()
    with (directory / "standin-base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_label(name, KEY_LABEL) == key:
            return Base(name, created=False, seconds=0.0)
        started = time.monotonic()
        tarball = directory / f"standin-base-{key}.tar"
        if not tarball.exists():
            partial = directory / f".standin-base-{key}.{os.getpid()}.tar"
            result = subprocess.run(
                [require_tool("mmdebstrap"), *STANDIN_RECIPE, str(partial)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                partial.unlink(missing_ok=True)
                raise AssertionError(f"mmdebstrap failed:\n{result.stderr[-4000:]}")
            partial.replace(tarball)
        container = buildah("from", "--name", unique("convocore-standin"), "scratch").stdout
        container = container.strip()
        try:
            buildah("add", "--quiet", container, str(tarball), "/")
            buildah("config", *STANDIN_CONFIG, f"--label={KEY_LABEL}={key}", container)
            buildah("commit", "--quiet", container, name)
        finally:
            subprocess.run(
                [require_tool("buildah"), "rm", container], capture_output=True, check=False
            )
        return Base(name, created=True, seconds=time.monotonic() - started)


@dataclass
class Image:
    name: str
    build_seconds: float

    def inspect(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            buildah("inspect", "--type", "image", self.name).stdout
        )
        return document

    def config(self) -> dict[str, Any]:
        """The image's configuration as Docker reads it: User, Entrypoint, Cmd, Healthcheck..."""
        config: dict[str, Any] = self.inspect()["Docker"]["config"]
        return config

    def remove(self) -> None:
        subprocess.run(
            [require_tool("buildah"), "rmi", "--force", self.name],
            capture_output=True,
            check=False,
            timeout=120,
        )


def build_image(revision: str, build_date: str) -> Image:
    """The repository's Dockerfile built as ``docker build`` would, with both build arguments;
    ``--format docker`` keeps the HEALTHCHECK (the OCI format has none)."""
    name = f"localhost/{unique('convocore-exporter-test')}:latest"
    started = time.monotonic()
    buildah(
        "bud",
        "--isolation=chroot",
        "--network=host",
        "--format=docker",
        "--pull-never",
        "--quiet",
        f"--build-arg=REVISION={revision}",
        f"--build-arg=BUILD_DATE={build_date}",
        f"--tag={name}",
        "--file",
        str(DOCKERFILE),
        str(ROOT),
        timeout=600,
    )
    return Image(name, time.monotonic() - started)


class NetworkNamespace:
    """A network namespace of its own with loopback up, held open by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            [require_tool("unshare"), "--net", "sh", "-c", "ip link set lo up && exec sleep 3600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        path = Path(f"/proc/{self.holder.pid}/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(path) == os.readlink("/proc/self/ns/net"):
            assert self.holder.poll() is None, self.holder.stderr
            assert time.monotonic() < deadline, "no network namespace"
            time.sleep(0.02)
        self.path = path

    def prefix(self) -> list[str]:
        return [require_tool("nsenter"), f"--net={self.path}"]

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(timeout=10)


class Container:
    """A working container of ``image``: each :meth:`run` or :meth:`start` is one command in
    its root file system, as the image's user with the image's environment."""

    def __init__(self, image: str) -> None:
        self.name = unique("convocore-exporter-ctr")
        buildah("from", "--pull-never", "--name", self.name, image)

    def command(
        self,
        argv: list[str],
        *,
        volumes: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        netns: NetworkNamespace | None = None,
    ) -> list[str]:
        options = [f"--volume={v}" for v in volumes]
        options += [f"--env={k}={v}" for k, v in (env or {}).items()]
        return [
            *(netns.prefix() if netns else []),
            require_tool("buildah"),
            "run",
            "--isolation=chroot",
            "--network=host",
            *options,
            self.name,
            "--",
            *argv,
        ]

    def run(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv, **kw), capture_output=True, text=True, timeout=120, check=False
        )

    def start(self, argv: list[str], **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(argv, **kw), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    @contextmanager
    def mounted(self) -> Iterator[Path]:
        """The container's root file system, read from the host."""
        path = Path(buildah("mount", self.name).stdout.strip())
        try:
            yield path
        finally:
            buildah("umount", self.name)

    def remove(self) -> None:
        subprocess.run([require_tool("buildah"), "rm", self.name], capture_output=True, check=False)


# What `buildah run` itself writes to standard error when the command exits non-zero (or is
# killed): not the container's output.
BUILDAH_TRAILER = re.compile(
    r"^(subprocess exited (with status \d+|on \w+)|Error: exit status \d+)$"
)


def own_output(stderr: str) -> list[str]:
    """The lines the container's command wrote, without buildah's own."""
    return [line for line in stderr.splitlines() if not BUILDAH_TRAILER.match(line)]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def container_process(runner: subprocess.Popen[str], executable: str) -> int:
    """The pid of the process running ``executable`` under a ``buildah run``: what a container
    engine would signal as the container's main process (buildah run does not pass SIGTERM
    on; it kills its child)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for pid in descendants(runner.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"buildah" not in argv[0] and any(a.endswith(executable.encode()) for a in argv[:2]):
                return pid
        assert runner.poll() is None, runner.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {executable} process under buildah run")


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
    assert match is not None
    return int(match[1])


def stop(runner: subprocess.Popen[str], pid: int) -> tuple[int, float, str]:
    """SIGTERM to the container's process, as ``docker stop`` sends it: the exit status of the
    run, the seconds until it ended (at most 10, then it is killed) and its standard error."""
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    try:
        _, stderr = runner.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        runner.kill()
        _, stderr = runner.communicate(timeout=10)
    return runner.returncode, time.monotonic() - started, stderr
