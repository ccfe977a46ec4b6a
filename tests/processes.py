"""Running the exporter as a real process in tests: a free loopback port, the command, and
the exporter beside the real Prometheus (:func:`running_stack`)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import yaml

from .tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
WAIT_SECONDS = 120.0
POLL_SECONDS = 0.5

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_exporter(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m exporter ARGS`` run to its end, its output captured as text; ``env`` is
    added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
        cwd=cwd,
    )


def spawn_exporter(*args: str) -> subprocess.Popen[str]:
    """``python -m exporter ARGS`` with its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def spawn_prometheus(prometheus: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """The real Prometheus on ``127.0.0.1:port``, reading ``workdir/prometheus.yml`` and
    keeping its data in ``workdir/data``; its output is discarded."""
    return subprocess.Popen(
        [
            prometheus,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=20)


@dataclass
class Stack:
    exporter_url: str
    prometheus_url: str
    processes: list[Process]

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name} output:\n{p.output()}" for p in self.processes)

    def wait_for(self, what: str, probe: Callable[[], T | None]) -> T:
        """Poll ``probe`` until it returns something other than None, within the bound."""
        deadline = time.monotonic() + WAIT_SECONDS
        last_error = ""
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.popen.poll() is not None:
                    pytest.fail(
                        f"{process.name} exited while waiting for {what}\n{self.diagnostics()}"
                    )
            try:
                result = probe()
            except (requests.RequestException, KeyError, ValueError) as exc:
                result, last_error = None, repr(exc)
            if result is not None:
                return result
            time.sleep(POLL_SECONDS)
        pytest.fail(f"gave up waiting for {what} ({last_error})\n{self.diagnostics()}")

    def api(self, path: str, **params: str) -> Any:
        answer = requests.get(f"{self.prometheus_url}/api/v1/{path}", params=params, timeout=10)
        document = answer.json()
        assert document["status"] == "success", document
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result


def start(name: str, args: list[str], log: Path) -> Process:
    handle = log.open("wb")
    try:
        popen = subprocess.Popen(args, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    finally:
        handle.close()
    return Process(name, popen, log)


def ready(url: str) -> bool | None:
    return True if requests.get(url, timeout=5).status_code == 200 else None


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    make_config: Callable[[str], dict[str, Any]],
    exporter_args: tuple[str, ...] = ("--demo",),
) -> Iterator[Stack]:
    """The exporter and the real Prometheus on loopback; ``make_config`` gets the exporter's
    address and returns Prometheus's configuration."""
    prometheus = require_tool("prometheus")
    exporter_address = f"{LOOPBACK}:{free_port()}"
    prometheus_address = f"{LOOPBACK}:{free_port()}"
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(make_config(exporter_address)), encoding="utf-8")

    processes: list[Process] = []
    result = Stack(f"http://{exporter_address}", f"http://{prometheus_address}", processes)
    try:
        processes.append(
            start(
                "exporter",
                [
                    sys.executable,
                    "-m",
                    "exporter",
                    *exporter_args,
                    "--web.listen-address",
                    exporter_address,
                ],
                workdir / "exporter.log",
            )
        )
        result.wait_for("the exporter", lambda: ready(f"{result.exporter_url}/-/ready"))
        processes.append(
            start(
                "prometheus",
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address={prometheus_address}",
                ],
                workdir / "prometheus.log",
            )
        )
        result.wait_for("Prometheus", lambda: ready(f"{result.prometheus_url}/-/ready"))
        yield result
    finally:
        for process in reversed(processes):
            process.stop()
