"""Reloading the config: on POST /-/reload, on SIGHUP, and when a watched file changes."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from exporter.config import load_config
from exporter.reloader import Reloader
from exporter.web.server import ServerOptions

from .conftest import parse_exposition, value
from .fakeapi import TOKEN, full_job
from .processes import free_port, spawn_exporter
from .support import config_yaml, wait_for, write_config

P = "convocore_crawler_"
WS = "ws-123"


def reload_config(path, base_url: str, jobs: str = "[job-a]", token: str = "token_file: token"):
    """The reload tests' config of one workspace, written to ``path``."""
    write_config(path, config_yaml(base_url, f"  - id: {WS}\n    {token}\n    jobs: {jobs}\n"))


def setup_files(tmp_path, fake, token: str = TOKEN):
    fake.set_jobs(WS, {"job-a": full_job("job-a", WS), "job-b": full_job("job-b", WS)})
    (tmp_path / "token").write_text(token + "\n")  # the trailing newline is stripped
    config = tmp_path / "config.yaml"
    reload_config(config, fake.base_url)
    return config


def up(series, job_id: str) -> float | None:
    return value(series, P + "up", workspace_id=WS, job_id=job_id)


def test_post_reload_swaps_a_good_config_and_refuses_a_bad_one(
    tmp_path, fake, start_exporter, captured_logs
):
    path = setup_files(tmp_path, fake)
    config = load_config(str(path))
    options = ServerOptions(lifecycle=True)
    running = start_exporter(config, options=options)
    options.reload = Reloader(running.exporter, str(path)).reload
    series = running.scrape()
    assert up(series, "job-a") == 1 and up(series, "job-b") is None
    assert value(series, P + "config_last_reload_successful") == 1
    first_time = value(series, P + "config_last_reload_success_timestamp_seconds")

    reload_config(path, fake.base_url, "[job-a, job-b]")
    answer = requests.post(running.url + "/-/reload", timeout=10)
    assert answer.status_code == 200, answer.text
    series = running.scrape()
    assert up(series, "job-a") == 1 and up(series, "job-b") == 1
    assert value(series, P + "config_last_reload_successful") == 1
    good_time = value(series, P + "config_last_reload_success_timestamp_seconds")
    assert good_time is not None and first_time is not None and good_time >= first_time

    # A malformed token line holding the secret itself: refused without echoing it.
    for token_line in (
        f'token: "{TOKEN}',
        f"token: {TOKEN}: x",
        f"token: [{TOKEN}]",
        f"token: ${{{TOKEN}}}",
        f"token: {{{TOKEN}: 1}}",
    ):
        reload_config(path, fake.base_url, "[job-b]", token=token_line)
        answer = requests.post(running.url + "/-/reload", timeout=10)
        assert answer.status_code == 500
        assert answer.text.startswith("Reload failed, the last good config keeps serving: ")
        assert str(path) in answer.text, answer.text
        assert TOKEN not in answer.text, token_line
        series = running.scrape()
        assert up(series, "job-a") == 1 and up(series, "job-b") == 1  # still the last good
        assert value(series, P + "config_last_reload_successful") == 0
        assert value(series, P + "config_last_reload_success_timestamp_seconds") == good_time
    assert not [line for line in captured_logs if TOKEN in line]
    failures = [line for line in captured_logs if "config reload failed" in line]
    assert len(failures) == 5 and all("level=error" in line for line in failures)

    reload_config(path, fake.base_url, "[job-b]")
    assert requests.post(running.url + "/-/reload", timeout=10).status_code == 200
    series = running.scrape()
    assert up(series, "job-a") is None and up(series, "job-b") == 1
    assert value(series, P + "config_last_reload_successful") == 1


def test_a_rotated_token_file_is_picked_up_without_a_restart(
    tmp_path, fake, start_exporter, captured_logs
):
    path = setup_files(tmp_path, fake, token="vg_revoked_old_token")
    running = start_exporter(load_config(str(path)))
    reloader = Reloader(running.exporter, str(path))
    reloader.watch(0.05)
    try:
        series = running.scrape()
        assert (
            value(series, P + "error_info", workspace_id=WS, job_id="job-a", reason="unauthorized")
            == 1
        )
        (tmp_path / "token").write_text(TOKEN + "\n")
        assert wait_for(lambda: up(running.scrape(), "job-a") == 1)
        assert fake.log[-1][1]["authorization"] == f"Bearer {TOKEN}"
        # A broken edit is refused once, not on every check, and the last good one serves.
        path.write_text("workspaces: [")
        assert wait_for(lambda: reloader.successful is False)
        checks = 10
        for _ in range(checks):
            reloader.check()
        failures = [line for line in captured_logs if "config reload failed" in line]
        assert len(failures) == 1
        assert up(running.scrape(), "job-a") == 1
        reload_config(path, fake.base_url, "[job-b]")
        assert wait_for(lambda: up(running.scrape(), "job-b") == 1)
        assert reloader.successful is True
    finally:
        reloader.close()
    assert not [line for line in captured_logs if TOKEN in line or "vg_revoked" in line]


def test_an_unchanged_file_is_not_reloaded(tmp_path, fake, start_exporter, captured_logs):
    path = setup_files(tmp_path, fake)
    running = start_exporter(load_config(str(path)))
    reloader = Reloader(running.exporter, str(path))
    config = running.exporter.config
    os.utime(path)  # touched, same content
    reloader.check()
    assert running.exporter.config is config
    assert not [line for line in captured_logs if "config reloaded" in line]


@pytest.mark.integration
def test_the_process_reloads_on_sighup_post_and_file_change(tmp_path, fake):
    path = setup_files(tmp_path, fake)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = spawn_exporter(
        "--config.file",
        str(path),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--config.auto-reload-interval",
        "100ms",
        "--web.enable-lifecycle",
        "--log.level",
        "debug",
    )

    def scrape():
        return parse_exposition(requests.get(base + "/metrics", timeout=10).text)

    def ready() -> bool:
        try:
            return requests.get(base + "/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        assert wait_for(ready, timeout=30)
        assert up(scrape(), "job-a") == 1
        # SIGHUP (the file watch would see the change too; the signal comes first).
        reload_config(path, fake.base_url, "[job-a, job-b]")
        process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: up(scrape(), "job-b") == 1)
        # A bad file: refused on POST, the last good config keeps serving.
        path.write_text(f"workspaces:\n  - id: {WS}\n    token: [{TOKEN}]\n")
        answer = requests.post(base + "/-/reload", timeout=10)
        assert answer.status_code == 500 and TOKEN not in answer.text
        series = scrape()
        assert value(series, P + "config_last_reload_successful") == 0
        assert up(series, "job-a") == 1 and up(series, "job-b") == 1
        # A fixed file is picked up by the watch alone.
        reload_config(path, fake.base_url, "[job-b]")
        assert wait_for(lambda: up(scrape(), "job-a") is None)
        assert value(scrape(), P + "config_last_reload_successful") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert TOKEN not in out + err
    assert "config reload failed" in err
    assert err.count('msg="config reloaded"') >= 2
