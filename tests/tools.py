"""Finding the Prometheus tools (promtool, prometheus, amtool) the tests run for real.

scripts/test puts Debian's binaries on the PATH. A developer without them gets a skip; in CI
(the CI environment variable set) a missing tool is a failure, so those tests cannot silently
stop running.
"""

from __future__ import annotations

import os
import shutil

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
