"""The workspace token appears nowhere but in the Authorization header sent to the API host."""

from __future__ import annotations

import pytest
import requests

from exporter.config import ConfigError, load_config, parse_config

from .conftest import parse_exposition, value
from .fakeapi import TOKEN, Fault, envelope, full_job
from .processes import run_exporter
from .support import config_yaml

P = "convocore_crawler_"
WS = "ws-123"


def config_text(base_url: str, token_line: str = "token: ${CONVOCORE_TOKEN}") -> str:
    return config_yaml(
        base_url, f"  - id: {WS}\n    {token_line}\n    jobs: [job-a, job-b, job-c]\n"
    )


def test_config_objects_never_show_the_token(tmp_path):
    config = parse_config(config_text("http://127.0.0.1:1/v3"), "c.yml", {"CONVOCORE_TOKEN": TOKEN})
    for shown in (repr(config), str(config), repr(config.workspaces[0]), f"{config}"):
        assert TOKEN not in shown
    assert config.workspaces[0].token.reveal() == TOKEN
    (tmp_path / "token").write_text(TOKEN + "\n")
    path = tmp_path / "c.yml"
    path.write_text(config_text("http://127.0.0.1:1/v3", "token_file: token"))
    from_file = load_config(str(path))
    assert from_file.workspaces[0].token.reveal() == TOKEN  # trailing newline stripped
    assert TOKEN not in repr(from_file)


WORKSPACE_KEYS = (
    "allow_unconfigured_probes, discover, discover_grace_period, discover_interval, "
    "discover_max_pages, id, include_finished_for, jobs, "
    "max_jobs, page_stats, page_stats_interval, page_stats_max_pages, token, token_file"
)


@pytest.mark.parametrize(
    ("token_line", "message"),
    [
        (f'token: "{TOKEN}', "c.yml:9:1: expected valid YAML: found unexpected end of stream"),
        (
            f"token: {TOKEN}: x",
            "c.yml:7:43: expected valid YAML: mapping values are not allowed here",
        ),
        (
            f"token: [{TOKEN}]",
            "c.yml:7:12: workspaces[0].token: expected a non-empty string such as ${CONVOCORE_TOKEN}",
        ),
        (
            f"token: ${{{TOKEN}}}",
            "c.yml:7:12: workspaces[0].token: environment variable named there is not set",
        ),
        (
            f"token: {{{TOKEN}: 1}}",
            "c.yml:7:12: workspaces[0].token: expected a non-empty string such as ${CONVOCORE_TOKEN}",
        ),
        (
            f"token: ${{CONVOCORE_TOKEN}}{TOKEN}\n    token_file: x",
            "c.yml:6:5: workspaces[0]: expected exactly one of token or token_file, got both",
        ),
        (
            "token: ${CONVOCORE_TOKEN}\n    extra: 1",
            f"c.yml:8:5: workspaces[0].extra: unknown key; expected one of {WORKSPACE_KEYS}",
        ),
    ],
)
def test_a_refused_config_never_echoes_the_token(token_line, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(
            config_text("http://127.0.0.1:1/v3", token_line), "c.yml", {"CONVOCORE_TOKEN": TOKEN}
        )
    assert str(caught.value) == message
    assert TOKEN not in repr(caught.value)


def test_no_endpoint_and_no_log_line_shows_the_token(fake, start_exporter, captured_logs):
    fake.set_jobs(WS, {"job-a": full_job("job-a", WS), "job-c": full_job("job-c", WS)})
    fake.fail(fake.job_path(WS, "job-b"), Fault(500, f"<html>{TOKEN}?</html>", times=None))
    running = start_exporter(config_text(fake.base_url))
    bodies = []
    for path in (
        "/",
        "/?refresh=0",
        "/metrics",
        "/sd",
        "/probe?workspace_id=ws-123&job_id=job-a",
        "/probe?workspace_id=ws-123&job_id=job-b&debug=true",
        "/nothing",
    ):
        answer = running.get(path)
        bodies.append(answer.text + str(answer.headers))
    answer = requests.post(running.url + "/-/reload", timeout=10)
    bodies.append(answer.text)
    assert not [body for body in bodies if TOKEN in body]
    assert value(running.scrape(), P + "up", workspace_id=WS, job_id="job-a") == 1
    assert any("level=debug" in line for line in captured_logs)  # debug output was on
    assert not [line for line in captured_logs if TOKEN in line]
    # The token went, and only in the header, to the API host.
    assert {headers["authorization"] for _, headers in fake.log} == {f"Bearer {TOKEN}"}


def test_a_redirect_to_another_host_never_carries_the_token(fake, other, start_exporter):
    fake.set_jobs(WS, {"job-a": full_job("job-a", WS), "job-c": full_job("job-c", WS)})
    other.set_jobs(WS, {"job-b": full_job("job-b", WS)})
    fake.fail(
        fake.job_path(WS, "job-b"),
        Fault(302, "", {"Location": other.base_url + f"/workspaces/{WS}/crawler/jobs/job-b"}),
    )
    # A redirect within the API origin is followed, with the token.
    fake.fail(
        fake.job_path(WS, "job-c"),
        Fault(307, "", {"Location": f"/v3/workspaces/{WS}/crawler/jobs/job-c-moved"}),
    )
    fake.fail(fake.job_path(WS, "job-c-moved"), Fault(200, envelope(full_job("job-c", WS))))
    series = start_exporter(config_text(fake.base_url)).scrape()
    assert (
        value(series, P + "error_info", workspace_id=WS, job_id="job-b", reason="invalid_response")
        == 1
    )
    assert value(series, P + "up", workspace_id=WS, job_id="job-c") == 1
    assert other.log == []
    moved = [h for target, h in fake.log if target.endswith("job-c-moved")]
    assert [h["authorization"] for h in moved] == [f"Bearer {TOKEN}"]


@pytest.mark.integration
def test_check_and_once_output_never_show_the_token(tmp_path, fake):
    fake.set_jobs(WS, {"job-a": full_job("job-a", WS)})
    fake.fail(fake.job_path(WS, "job-b"), Fault(401, {"message": f"bad token {TOKEN}"}))
    path = tmp_path / "config.yaml"
    path.write_text(config_text(fake.base_url))
    env = {"CONVOCORE_TOKEN": TOKEN}
    check = run_exporter("--config.check", "--config.file", str(path), env=env)
    assert check.returncode == 0 and check.stdout == "OK\n"
    once = run_exporter("--once", "--config.file", str(path), "--log.level", "debug", env=env)
    assert once.returncode == 1  # job-b is down (401)
    assert value(parse_exposition(once.stdout), P + "up", workspace_id=WS, job_id="job-a") == 1
    for output in (check.stdout, check.stderr, once.stdout, once.stderr):
        assert TOKEN not in output
    path.write_text(config_text(fake.base_url, "token: [" + TOKEN + "]"))
    refused = run_exporter("--config.check", "--config.file", str(path), env=env)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"{path}:7:12: workspaces[0].token: expected a non-empty string such as "
        "${CONVOCORE_TOKEN}\n"
    )
    assert TOKEN not in refused.stdout + refused.stderr


@pytest.mark.integration
def test_a_plaintext_token_in_a_world_readable_file_is_warned_about(tmp_path, fake):
    fake.set_jobs(WS, {"job-a": full_job("job-a", WS)})
    path = tmp_path / "config.yaml"
    path.write_text(config_text(fake.base_url, f"token: {TOKEN}"))
    path.chmod(0o644)
    check = run_exporter("--config.check", "--config.file", str(path), env={})
    assert check.returncode == 0 and check.stdout == "OK\n"  # a warning, not an error
    assert check.stderr == (
        f"warning: {path}:7:12: workspaces[0].token: a plaintext token in a world-readable file; "
        "use ${VAR} or token_file\n"
    )
    once = run_exporter("--once", "--config.file", str(path), env={})
    assert once.returncode == 1  # job-b and job-c do not exist
    warned = [line for line in once.stderr.splitlines() if "plaintext token" in line]
    assert len(warned) == 1 and "level=warning" in warned[0]
    assert TOKEN not in once.stdout + once.stderr
    path.chmod(0o600)  # readable by its owner only: no warning
    assert run_exporter("--config.check", "--config.file", str(path), env={}).stderr == ""
