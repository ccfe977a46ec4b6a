"""The command line, run as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import requests

from exporter.demo import DEMO_TOKEN

from .conftest import config_yaml, parse_exposition, value
from .fakeapi import TOKEN, Fault, full_job, wait_for
from .processes import free_port, spawn_exporter

P = "convocore_crawler_"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_help_documents_every_flag():
    result = run("--help")
    assert result.returncode == 0
    for flag in (
        "--config.file",
        "--config.check",
        "--web.listen-address",
        "--web.config.file",
        "--once",
        "--demo",
        "--log.level",
        "--log.format",
        "--scrape.timeout-offset",
        "--scrape.default-timeout",
        "--shard",
        "--total-shards",
    ):
        assert flag in result.stdout, flag
    assert "19417" in result.stdout


def test_config_check(tmp_path):
    good = tmp_path / "good.yml"
    good.write_text("workspaces:\n  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j]\n")
    result = run("--config.check", "--config.file", str(good), env={"CONVOCORE_TOKEN": TOKEN})
    assert (result.returncode, result.stdout) == (0, "OK\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("workspaces:\n  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j, j]\n")
    result = run("--config.check", "--config.file", str(bad), env={"CONVOCORE_TOKEN": TOKEN})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().endswith(f"{bad}: workspaces[0].jobs[1]: duplicate job id 'j'")
    assert TOKEN not in result.stderr


def test_once_prints_one_scrape(fake, tmp_path):
    fake.set_jobs("ws-1", {"j1": full_job("j1", "ws-1"), "j2": full_job("j2", "ws-1")})
    fake.fail(fake.job_path("ws-1", "j2"), Fault(404, {"message": "gone"}))
    path = tmp_path / "config.yml"
    path.write_text(
        config_yaml(
            fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1, j2]\n"
        )
    )
    result = run(
        "--once", "--config.file", str(path), "--log.level", "debug", env={"CONVOCORE_TOKEN": TOKEN}
    )
    assert result.returncode == 0, result.stderr
    series = parse_exposition(result.stdout)
    assert value(series, P + "job_scraped_pages", workspace_id="ws-1", job_id="j1") == 40
    assert value(series, P + "up", workspace_id="ws-1", job_id="j2") == 0
    assert (
        value(series, P + "error_info", workspace_id="ws-1", job_id="j2", reason="not_found") == 1
    )
    assert TOKEN not in result.stdout + result.stderr
    assert 'level=warning logger=exporter.collect msg="job is down"' in result.stderr
    assert "workspace_id=ws-1 job_id=j2 reason=not_found" in result.stderr


def test_demo_serves_every_endpoint_and_stops_cleanly_on_sigterm():
    port = free_port()
    process = spawn_exporter(
        "--demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.level",
        "debug",
        "--log.format",
        "json",
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return requests.get(base + "/-/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_for(ready, 30)
        assert requests.get(base + "/-/healthy", timeout=5).text == "Healthy\n"
        metrics = requests.get(base + "/metrics", timeout=15)
        series = parse_exposition(metrics.text)
        states = {
            dict(labels)["job_id"]: dict(labels)["status"]
            for (name, labels), v in series.items()
            if name == P + "job_status" and v == 1
        }
        assert states == {
            "job-docs": "processing",
            "job-blog": "processing",
            "job-help": "completed",
            "job-legacy": "failed",
            "job-pricing": "cancelled",
            "job-careers": "queued",
        }
        assert (
            value(series, P + "job_credits_per_page", workspace_id="ws-demo", job_id="job-blog")
            == 10
        )
        landing = requests.get(base + "/", timeout=5)
        assert landing.headers["Content-Type"] == "text/html; charset=utf-8"
        for text in ("ws-demo", "job-legacy (legacy-wiki)", 'href="metrics"'):
            assert text in landing.text
        assert requests.get(base + "/nope", timeout=5).status_code == 404
        assert requests.get(base + "/-/reload", timeout=5).status_code == 405
        for body in (metrics.text, landing.text):
            assert DEMO_TOKEN not in body
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    assert '"msg": "shutting down", "signal": "SIGTERM"' in err
    assert DEMO_TOKEN not in out + err


def test_listen_address_in_use_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("--demo", "--web.listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
