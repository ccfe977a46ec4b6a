"""The package's layers (docs/development.md) hold: import-linter's contracts from pyproject.toml,
run with the real ``lint-imports``; and each contract can break."""

from __future__ import annotations

import ast
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


@pytest.mark.integration
def test_the_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # convocore below collect: an upward import
        (
            "convocore/model.py",
            "from ..collect import Exporter",
            "Layers: application, web, collect, exposition, convocore, foundation",
        ),
        # the YAML reader of both config files, in the foundation, reaching up into web
        (
            "yamlnodes.py",
            "from .web.errors import WebConfigError",
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


# Private names of the standard library that have no public equivalent.
STDLIB_PRIVATE = {
    "_current_frames",  # sys: what each thread is running
    "_actions",  # argparse.ArgumentParser: its arguments
}


def private_uses(source: str) -> list[str]:
    """Where a test module reaches past public names: an underscored attribute of anything
    but itself (``self``, ``cls``), an underscored name imported, an underscored attribute
    patched by name, or a helper imported from another test module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base not in ("self", "cls") and node.attr not in STDLIB_PRIVATE:
                found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").startswith("test_"):
                found.append(f"line {node.lineno}: from .{node.module} import")
            found += [
                f"line {node.lineno}: import {a.name}" for a in node.names if _private(a.name)
            ]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "setattr":
            for arg in node.args[1:2]:
                if isinstance(arg, ast.Constant) and _private(str(arg.value).rsplit(".", 1)[-1]):
                    found.append(f"line {node.lineno}: setattr {arg.value}")
    return sorted(found, key=lambda text: int(text.split(":")[0].removeprefix("line ")))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def test_the_tests_use_public_names_only():
    found = {
        path.name: uses
        for path in sorted((ROOT / "tests").glob("*.py"))
        if (uses := private_uses(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_a_private_use_is_found():
    assert private_uses(
        "from .test_cli import run\n"
        "from exporter.config import _Reader\n"
        "x = exporter._runtime.states\n"
        "monkeypatch.setattr(transport, '_QUICK_RETRY_DELAY', 0)\n"
        "self._ok = sys._current_frames()\n"
    ) == [
        "line 1: from .test_cli import",
        "line 2: import _Reader",
        "line 3: ._runtime",
        "line 4: setattr _QUICK_RETRY_DELAY",
    ]


def test_a_test_not_marked_integration_cannot_start_a_process():
    """tests/conftest.py refuses processes to the tests of the quick loop, so that a test
    which needs one is marked and left out of `--quick`."""
    with pytest.raises(pytest.fail.Exception, match="not marked integration"):
        subprocess.run(["true"], check=False)


MAX_MODULE_LINES = 600


def test_no_module_of_the_package_is_over_600_lines():
    """Small modules with names that say what they hold: a module that outgrows 600 lines is
    split along its concerns (as the config was into its schema and its reading)."""
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in sorted((ROOT / "exporter").rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
