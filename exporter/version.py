"""What this build is: version, revision, build date and Python version.

Shown by ``--version``, on the landing page and as labels of the build-info metric.

The revision and build date come from, in order: the environment variables
``CONVOCORE_EXPORTER_REVISION`` / ``CONVOCORE_EXPORTER_BUILD_DATE`` (an image sets them from
build arguments), ``git`` when running from a checkout of the source (the commit and its
date), a file ``_build.json`` next to this module that ``setup.py`` writes into a package
built from a git checkout (``{"revision": "...", "build_date": "..."}``, kept by a wheel built
from that sdist), else ``unknown``.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import __version__

PROGRAM = "convocore-crawler-exporter"
UNKNOWN = "unknown"

_PACKAGE = Path(__file__).resolve().parent
_STAMP = _PACKAGE / "_build.json"
# promu's format, as in the --version output of Go exporters.
_DATE_FORMAT = "%Y%m%d-%H:%M:%S"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str
    build_date: str
    python_version: str

    def text(self) -> str:
        """The ``--version`` output, laid out as Go exporters print theirs."""
        return (
            f"{PROGRAM}, version {self.version} (revision: {self.revision})\n"
            f"  build date: {self.build_date}\n"
            f"  python version: {self.python_version}\n"
        )


def _from_stamp() -> dict[str, str]:
    try:
        data = json.loads(_STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}


def _from_git() -> dict[str, str]:
    """The commit and its date, only when this module runs from a source checkout (not from
    a package installed inside some other repository)."""
    root = _PACKAGE.parent
    if not (root / ".git").exists() or not (root / "pyproject.toml").exists():
        return {}
    try:
        out = subprocess.run(
            [
                *("git", "-C", str(root), "log", "-1"),
                *("--format=%H %cd", "--date=format-local:" + _DATE_FORMAT),
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return {}
    if len(out) != 2:
        return {}
    return {"revision": out[0], "build_date": out[1]}


@functools.cache
def build_info() -> BuildInfo:
    found: dict[str, str] = {}
    for source in (_from_stamp, _from_git):  # later sources win
        found.update(source())
    env = {
        "revision": os.environ.get("CONVOCORE_EXPORTER_REVISION", ""),
        "build_date": os.environ.get("CONVOCORE_EXPORTER_BUILD_DATE", ""),
    }
    found.update({k: v for k, v in env.items() if v})
    return BuildInfo(
        version=__version__,
        revision=found.get("revision", UNKNOWN),
        build_date=found.get("build_date", UNKNOWN),
        python_version=platform.python_version(),
    )
