"""The release artifacts: what `python -m build` makes is what the release workflow publishes.

The sdist and wheel are built from the working tree exactly as .github/workflows/release.yml
builds them, checked with `twine check --strict` (PyPI's own rendering rules), inspected member
by member, and the wheel is installed into a fresh virtualenv, outside the source tree, where
its console script has to run.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import trove_classifiers

import exporter
from exporter.demo.api import DEMO_NAMES, DEMO_WORKSPACE

from .conftest import parse_exposition

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST_NAME = "convocore_crawler_exporter"
SCRIPT = "convocore-crawler-exporter"


@dataclass
class Built:
    sdist: Path
    wheel: Path
    log: str


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    # With it set, distutils prints "byte-compiling is disabled" warnings that are about the
    # environment, not about this project's configuration.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        env=build_env(),
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Built(sdist, wheel, log)


def git_head() -> tuple[str, str] | None:
    """The commit the source tree is at and its date as the build stamps it, or None when
    the tree is not a git checkout."""
    if not (ROOT / ".git").exists():
        return None
    result = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "log",
            "-1",
            "--format=%H %cd",
            "--date=format-local:%Y%m%d-%H:%M:%S",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
        check=False,
    )
    out = result.stdout.split()
    if result.returncode != 0 or len(out) != 2:
        return None
    if os.environ.get("SOURCE_DATE_EPOCH"):  # a reproducible build's date wins
        seconds = int(os.environ["SOURCE_DATE_EPOCH"])
        return out[0], time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds))
    return out[0], out[1]


GIT_HEAD = git_head()
# What the wheel holds besides the modules.
DATA_FILES = {"exporter/config.example.yaml"}


def source_files() -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "exporter").rglob("*.py")
        if "__pycache__" not in p.parts
    }


@pytest.mark.integration
def test_artifact_names_carry_the_version(built: Built) -> None:
    assert built.sdist.name == f"{DIST_NAME}-{exporter.__version__}.tar.gz"
    assert built.wheel.name == f"{DIST_NAME}-{exporter.__version__}-py3-none-any.whl"


@pytest.mark.integration
def test_build_log_has_no_warnings(built: Built) -> None:
    warnings = [
        line
        for line in built.log.splitlines()
        if re.search(r"warning|deprecat", line, re.IGNORECASE)
    ]
    assert warnings == []


@pytest.mark.integration
def test_twine_check_strict_passes(built: Built) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built.sdist), str(built.wheel)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("PASSED") == 2, output
    assert "WARNING" not in output


@pytest.mark.integration
def test_sdist_holds_the_package_and_the_documents_and_nothing_private(built: Built) -> None:
    prefix = f"{DIST_NAME}-{exporter.__version__}/"
    with tarfile.open(built.sdist) as tar:
        members = [m.name for m in tar.getmembers()]
    assert all(m.startswith(prefix) or m == prefix.rstrip("/") for m in members)
    files = {m[len(prefix) :] for m in members if m.startswith(prefix)} - {""}
    for document in ["README.md", "LICENSE", "CHANGELOG.md", "exporter/config.example.yaml"]:
        assert document in files
    assert "setup.py" in files  # the build hook, so that a wheel can be built from the sdist
    assert source_files() <= files
    assert ("exporter/_build.json" in files) is (GIT_HEAD is not None)
    private = {".venv", ".tools", "dist", ".git", "build", "node_modules", "__pycache__"}
    leaked = sorted(f for f in files if private & set(f.split("/")) or f.endswith(".pyc"))
    assert leaked == []
    # The test suite needs the whole repository; half of it would only mislead.
    assert not any(f.startswith("tests/") for f in files)
    # The monitoring mixin and its renderer, whole.
    mixin = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mixin").rglob("*") if p.is_file()}
    assert len(mixin) >= 7
    assert mixin <= files
    assert "scripts/render_mixin.py" in files


@pytest.mark.integration
def test_the_sdist_alone_renders_the_mixin_with_other_settings(
    built: Built, tmp_path: Path
) -> None:
    with tarfile.open(built.sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (source,) = tmp_path.iterdir()
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "scripts/render_mixin.py", "--out", str(out), "--set", "creditBudget=7"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "expr: vector(7)\n" in (out / "rules.yml").read_text()


@pytest.mark.integration
def test_wheel_holds_every_module_and_the_license(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"{DIST_NAME}-{exporter.__version__}.dist-info/METADATA")
        license_text = wheel.read(
            f"{DIST_NAME}-{exporter.__version__}.dist-info/licenses/LICENSE"
        ).decode()
    stamp = {"exporter/_build.json"} if GIT_HEAD is not None else set()
    assert {n for n in names if n.startswith("exporter/")} == source_files() | DATA_FILES | stamp
    assert license_text == (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in license_text
    message = email.parser.BytesParser().parsebytes(metadata)
    assert message["Name"] == "convocore-crawler-exporter"
    assert message["Version"] == exporter.__version__
    assert message["License-Expression"] == "Apache-2.0"
    assert message.get_all("License-File") == ["LICENSE"]
    assert message["License"] is None
    assert message["Requires-Python"] == ">=3.11"
    urls = dict(u.split(", ", 1) for u in message.get_all("Project-URL"))
    assert urls == PYPROJECT["project"]["urls"]
    assert message.get_all("Classifier") == PYPROJECT["project"]["classifiers"]


def test_classifiers_are_known_to_pypi() -> None:
    # PyPI refuses an upload with an unknown classifier: that would fail the release job.
    classifiers = PYPROJECT["project"]["classifiers"]
    assert [c for c in classifiers if c not in trove_classifiers.classifiers] == []
    # The SPDX expression replaces license classifiers; setuptools refuses both together.
    assert [c for c in classifiers if c.startswith("License ::")] == []


def test_project_urls_share_one_repository() -> None:
    urls = PYPROJECT["project"]["urls"]
    home = urls["Homepage"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", home)
    assert all(url == home or url.startswith(home + "/") for url in urls.values())


# The installed wheel ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh virtualenv holding only the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(built.wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv / "bin"


def run_installed(
    bin_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script, started outside the source tree so only the wheel can be imported."""
    return subprocess.run(
        [str(bin_dir / SCRIPT), *args],
        cwd=bin_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.integration
def test_installed_package_is_the_wheel_not_the_source_tree(installed: Path) -> None:
    result = subprocess.run(
        [str(installed / "python"), "-c", "import exporter; print(exporter.__file__)"],
        cwd=installed.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    location = Path(result.stdout.strip())
    assert location.is_relative_to(installed.parent / "lib")


@pytest.mark.integration
def test_installed_version_flag_prints_the_version(installed: Path) -> None:
    help_text = run_installed(installed, "--help")
    assert help_text.returncode == 0, help_text.stderr
    if "--version" not in help_text.stdout:
        pytest.skip("this build's CLI offers no --version flag")
    result = run_installed(installed, "--version")
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert exporter.__version__ in first_line


@pytest.mark.integration
def test_installed_demo_once_exports_every_demo_job(installed: Path) -> None:
    result = run_installed(installed, "--demo", "--once")
    assert result.returncode == 0, result.stderr
    series = parse_exposition(result.stdout)
    up = {
        (dict(labels)["workspace_id"], dict(labels)["job_id"]): value
        for (name, labels), value in series.items()
        if name == "convocore_crawler_up"
    }
    assert up == {(DEMO_WORKSPACE, job_id): 1.0 for job_id in DEMO_NAMES}


@pytest.mark.integration
def test_a_first_run_in_an_empty_directory(
    installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A pip user has no repository: the example config comes from the installed package and
    passes --config.check once the token is set."""
    empty = tmp_path_factory.mktemp("first-run")
    env = {k: v for k, v in os.environ.items() if k != "CONVOCORE_TOKEN"}

    def exporter(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed / SCRIPT), *args],
            cwd=empty,
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **extra},
            check=False,
        )

    started = exporter()
    assert (started.returncode, started.stdout) == (1, "")
    assert "--config.example > config.yaml" in started.stderr
    printed = exporter("--config.example")
    assert (printed.returncode, printed.stderr) == (0, "")
    assert printed.stdout == (ROOT / "exporter" / "config.example.yaml").read_text()
    (empty / "config.yaml").write_text(printed.stdout)
    assert sorted(p.name for p in empty.iterdir()) == ["config.yaml"]
    unset = exporter("--config.check")
    # The error names the place of the first workspace's token in the example.
    lines = printed.stdout.splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "token: " in text)
    column = lines[line - 1].index("token: ") + len("token: ") + 1
    assert (unset.returncode, unset.stdout, unset.stderr) == (
        1,
        "",
        f"config.yaml:{line}:{column}: workspaces[0].token: environment variable CONVOCORE_TOKEN "
        "is not set\n",
    )
    checked = exporter("--config.check", CONVOCORE_TOKEN="vg_first_run")
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "OK\n", "")


# The revision and build date stamped at build time ------------------------------------------


needs_git = pytest.mark.skipif(GIT_HEAD is None, reason="the source tree is not a git checkout")


@pytest.mark.integration
@needs_git
def test_the_installed_wheel_shows_the_revision_and_date_it_was_built_from(
    installed: Path,
) -> None:
    assert GIT_HEAD is not None
    revision, date = GIT_HEAD
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOCORE_EXPORTER_")}
    result = run_installed(installed, "--version", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"{SCRIPT}, version {exporter.__version__} (revision: {revision})",
        f"  build date: {date}",
    ]
    once = run_installed(installed, "--demo", "--once", env=env)
    assert once.returncode == 0, once.stderr
    build = [
        dict(labels)
        for (name, labels) in parse_exposition(once.stdout)
        if name == "convocore_crawler_exporter_build_info"
    ]
    assert [(b["version"], b["revision"]) for b in build] == [(exporter.__version__, revision)]


@pytest.mark.integration
@needs_git
def test_a_wheel_built_from_the_sdist_keeps_the_stamp(
    built: Built, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert GIT_HEAD is not None
    revision, date = GIT_HEAD
    out = tmp_path_factory.mktemp("wheel-from-sdist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(built.sdist)],
        capture_output=True,
        text=True,
        env=build_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive, zipfile.ZipFile(built.wheel) as direct:
        stamp = json.loads(archive.read("exporter/_build.json"))
        assert stamp == json.loads(direct.read("exporter/_build.json"))
    assert stamp == {"revision": revision, "build_date": date}
