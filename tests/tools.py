"""Locating the Prometheus tools the tests need."""

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on the PATH; scripts/test installs it")
        pytest.skip(f"{name} is not on the PATH; scripts/test installs it")
    return path
