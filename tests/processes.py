"""Running the exporter as a real process in tests: a free loopback port and the command."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
