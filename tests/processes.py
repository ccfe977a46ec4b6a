"""Running the exporter as a real process in tests: a free loopback port and the command."""

from __future__ import annotations

import socket
import subprocess
import sys


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
