"""The package's layers (docs/development.md) hold: import-linter's contracts from pyproject.toml,
run with the real ``lint-imports``; and each contract can break."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(workdir / "pyproject.toml"), "--no-cache"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # convocore below collect: an upward import
        (
            "convocore/model.py",
            "from ..collect import Exporter",
            "Layers: application, web, collect, exposition, convocore, foundation",
        ),
        # web reaching past collect's package into one of its modules
        (
            "web/server.py",
            "from ..collect.state import Runtime",
            "Collection is reached from outside only through its package",
        ),
        # anything but the command line importing the simulated API
        (
            "reloader.py",
            "from .demo.api import DEMO_TOKEN",
            "The simulated API is wired in by the command line alone",
        ),
    ],
)
def test_each_contract_breaks_on_a_bad_import(tmp_path, module, line, broken):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "exporter", tmp_path / "exporter", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "exporter" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken} BROKEN" in result.stdout
    assert "Contracts: 2 kept, 1 broken." in result.stdout
