"""Build hook: stamps the revision and build date of a build from a git checkout into the
package, as ``exporter/_build.json``, which ``exporter/version.py`` reads.

Everything else about the package is in pyproject.toml. The stamp is written into the build
directory of a wheel and into the tree of an sdist, never into the source tree; a wheel built
from that sdist (where there is no git) copies the sdist's stamp as package data. The date is
the commit's (or ``SOURCE_DATE_EPOCH``), so two builds of one commit are the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
STAMP = Path("exporter", "_build.json")
DATE_FORMAT = "%Y%m%d-%H:%M:%S"  # as exporter/version.py shows it


def git_stamp() -> dict[str, str] | None:
    """The commit this checkout is at and its date, or None outside a git checkout of this
    project (such as an unpacked sdist) or without git."""
    if not (ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%H %ct"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 2 or not out[1].isdigit():
        return None
    seconds = int(os.environ.get("SOURCE_DATE_EPOCH") or out[1])
    return {"revision": out[0], "build_date": time.strftime(DATE_FORMAT, time.gmtime(seconds))}


def write_stamp(directory: str) -> None:
    stamp = git_stamp()
    if stamp is None:
        return  # an sdist's own stamp, if any, is package data and copied as it is
    path = Path(directory, STAMP)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a hard link into the source tree is replaced, not written
    path.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads git itself
            write_stamp(self.build_lib)


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        write_stamp(base_dir)


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
