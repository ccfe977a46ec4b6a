"""Finding the Prometheus tools (promtool, prometheus, amtool) the tests run for real.

scripts/test puts Debian's binaries on the PATH. A developer without them gets a skip; in CI
(the CI environment variable set) a missing tool is a failure, so those tests cannot silently
stop running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(name: str) -> str:
    """The path of the executable ``name``: skip the test without it, or fail it in CI."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not on the PATH (scripts/test installs it)"
    if in_ci():
        pytest.fail(f"{message}; CI is set, so this test must run", pytrace=False)
    pytest.skip(message)


NODE_TOOLS = Path(__file__).resolve().parent / "js"


def require_node_tools() -> Path:
    """tests/js/node_modules (npm ci from the committed lock file): skip without it, or fail in CI."""
    node = shutil.which("node")
    modules = NODE_TOOLS / "node_modules"
    if node is not None and (modules / ".package-lock.json").exists():
        return modules
    message = (
        "node or tests/js/node_modules is missing (scripts/test runs npm ci --prefix tests/js)"
    )
    if in_ci():
        pytest.fail(f"{message}; CI is set, so this test must run", pytrace=False)
    pytest.skip(message)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A tool run to its end (at most two minutes), its output captured as text."""
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
