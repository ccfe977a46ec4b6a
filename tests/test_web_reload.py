"""SIGHUP, POST /-/reload and the file watch re-read the web config too: new users in, old
ones out, a bad file refused."""

from __future__ import annotations

import signal

import bcrypt
import pytest
import requests

from exporter.web.settings import WebHolder

from .fakeapi import full_job
from .processes import free_port, spawn_exporter
from .support import config_yaml, wait_for


def users(tmp_path, password: str) -> None:
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  alice: {digest}\n")


@pytest.mark.integration
def test_a_reload_swaps_basic_auth_users_and_a_bad_file_keeps_the_last_good(tmp_path):
    users(tmp_path, "first-password")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = spawn_exporter(
        "--demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--web.config.file",
        str(tmp_path / "web.yml"),
        "--config.auto-reload-interval",
        "200ms",
        "--web.enable-lifecycle",
    )
    try:

        def status(password: str) -> int | None:
            try:
                return requests.get(
                    base + "/-/reload", auth=("alice", password), timeout=5
                ).status_code
            except requests.ConnectionError:
                return None

        assert wait_for(lambda: status("first-password") == 405, 30)
        assert status("wrong") == 401

        users(tmp_path, "second-password")
        answer = requests.post(base + "/-/reload", auth=("alice", "first-password"), timeout=10)
        assert (answer.status_code, answer.text) == (200, "Config reloaded.\n")
        assert status("first-password") == 401
        assert status("second-password") == 405

        (tmp_path / "web.yml").write_text("basic_auth_users: [not, a, mapping]\n")
        answer = requests.post(base + "/-/reload", auth=("alice", "second-password"), timeout=10)
        assert answer.status_code == 500
        assert str(tmp_path / "web.yml") in answer.text
        assert status("second-password") == 405

        users(tmp_path, "third-password")
        process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: status("third-password") == 405, 30)
        assert status("second-password") == 401

        # The file watch (--config.auto-reload-interval) picks a change up by itself.
        users(tmp_path, "fourth-password")
        assert wait_for(lambda: status("fourth-password") == 405, 30)
        assert status("third-password") == 401
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "password" not in out + err


def test_every_listener_reads_the_web_settings_in_force_for_each_request(
    fake, start_exporter, tmp_path
):
    """Applied in place: no listener is restarted, none keeps a copy of the old settings."""
    fake.set_jobs("ws-1", {"j1": full_job("j1", "ws-1")})
    config = config_yaml(
        fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1]\n"
    )
    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    holder = WebHolder.load(str(web))
    first = start_exporter(config, web=holder)
    second = start_exporter(config, web=holder)
    for running in (first, second):
        answer = running.get("/-/healthy")
        assert (answer.status_code, answer.headers["X-Frame-Options"]) == (200, "deny")

    users(tmp_path, "a-password")  # replaces the headers with a user
    new = holder.read()
    assert new is not None
    holder.apply(new)
    for running in (first, second):
        answer = running.get("/metrics")
        assert answer.status_code == 401
        assert "X-Frame-Options" not in answer.headers
        assert running.get("/metrics", auth=("alice", "a-password")).status_code == 200

    web.write_text("rate_limit:\n  interval: 1h\n  burst: 2\n")
    holder.apply(holder.read())  # type: ignore[arg-type]
    # One bucket for every listener: two requests in all, wherever they go.
    assert [first.get("/-/healthy").status_code, second.get("/-/healthy").status_code] == [
        200,
        200,
    ]
    assert [first.get("/-/healthy").status_code, second.get("/-/healthy").status_code] == [
        429,
        429,
    ]
