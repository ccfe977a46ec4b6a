"""The exporter process with --web.config.file, and a real Prometheus scraping it.

The exporter runs as its own process (``--demo``, ``--web.config.file``), Prometheus as
another, both on 127.0.0.1; Prometheus's claims are checked through its own HTTP API.
"""

from __future__ import annotations

import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme

from exporter.web.auth import WWW_AUTHENTICATE

from .processes import free_port, spawn_prometheus
from .tools import require_tool

HASH = "$2y$04$Ez8YO8hcsiuKyGXFAX64f.g.sIndll9sIOVMf5B8.Oiy7/eQWL/4e"
WAIT_SECONDS = 120  # generous: only the upper bound of waits, never a measured duration


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def exporter_command(web_config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "exporter",
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.config.file",
        str(web_config),
    ]


@pytest.fixture
def exporter_url(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """An exporter in --demo mode serving HTTPS with basic auth: (url, password, CA file)."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "exporter.crt"))
    server.private_key_pem.write_to_path(str(tmp_path / "exporter.key"))
    password = secrets.token_urlsafe(16)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n"
        "  cert_file: exporter.crt\n"
        "  key_file: exporter.key\n"
        "basic_auth_users:\n"
        f"  prometheus: '{hashed}'\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        exporter_command(tmp_path / "web.yml"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        url = None
        while url is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            match = re.search(r"msg=listening address=(https://127\.0\.0\.1:\d+) ", line)
            if match:
                url = match.group(1)
        yield url, password, tmp_path / "ca.pem"
    finally:
        stop(process)


@pytest.mark.integration
def test_exporter_serves_https_with_basic_auth(exporter_url: tuple[str, str, Path]) -> None:
    url, password, ca_file = exporter_url
    ok = requests.get(
        f"{url}/metrics", auth=("prometheus", password), verify=str(ca_file), timeout=30
    )
    assert ok.status_code == 200
    assert 'convocore_crawler_up{workspace_id="ws-demo",job_id="job-help"} 1' in ok.text

    for auth in [("prometheus", "wrong"), None]:
        denied = requests.get(f"{url}/metrics", auth=auth, verify=str(ca_file), timeout=30)
        assert (denied.status_code, denied.text) == (401, "Unauthorized\n")
        assert denied.headers["WWW-Authenticate"] == WWW_AUTHENTICATE

    # Orchestrator probes need no credentials; they never reveal anything.
    healthy = requests.get(f"{url}/-/healthy", verify=str(ca_file), timeout=30)
    assert (healthy.status_code, healthy.text) == (200, "Healthy\n")

    plain = requests.get(url.replace("https://", "http://") + "/metrics", timeout=30)
    assert (plain.status_code, plain.text) == (
        400,
        "Client sent an HTTP request to an HTTPS server.\n",
    )


@pytest.mark.integration
def test_exporter_refuses_to_start_with_a_bad_web_config(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: missing.crt\n", encoding="utf-8")
    result = subprocess.run(
        exporter_command(web), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    # One log line in the configured format (logfmt by default), the error as its field.
    line = result.stderr.splitlines()[-1]
    assert line.split(" ", 1)[1] == (
        'level=error logger=exporter msg="web config refused" '
        f'error="{web}:2: tls_server_config.key_file: missing; cert_file is set, and TLS needs '
        'the private key of that certificate: key_file, or key inline"'
    )


def test_config_check_also_checks_the_web_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter.cli import main

    monkeypatch.setenv("CONVOCORE_TOKEN", "token-for-the-check")
    # main() would replace the root log handlers of the whole test session.
    monkeypatch.setattr("exporter.cli.logs.setup", lambda *args, **kwargs: None)
    config = tmp_path / "config.yaml"
    config.write_text(
        "workspaces:\n  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [job-1]\n",
        encoding="utf-8",
    )
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: hunter2\n", encoding="utf-8")
    argv = ["--config.file", str(config), "--config.check", "--web.config.file", str(web)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (
        f"{web}:2: basic_auth_users.prometheus: expected a bcrypt hash such as htpasswd -nB "
        "makes ($2y$, cost, salt and hash, 60 characters), but it is too short to be a bcrypt "
        "hash\n"
    )

    web.write_text(f"basic_auth_users:\n  prometheus: '{HASH}'\n", encoding="utf-8")
    assert main(argv) == 0
    assert capsys.readouterr().out == "OK\n"


@pytest.mark.prometheus
def test_prometheus_scrapes_over_tls_with_basic_auth(
    exporter_url: tuple[str, str, Path], tmp_path: Path
) -> None:
    prometheus = require_tool("prometheus")
    url, password, ca_file = exporter_url
    target = url.removeprefix("https://")
    (tmp_path / "password").write_text(password, encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: convocore
    scheme: https
    tls_config:
      ca_file: {ca_file}
    basic_auth:
      username: prometheus
      password_file: {tmp_path / "password"}
    static_configs:
      - targets: ["{target}"]
  - job_name: convocore-wrong-password
    scheme: https
    tls_config:
      ca_file: {ca_file}
    basic_auth:
      username: prometheus
      password: not-the-password
    static_configs:
      - targets: ["{target}"]
""",
        encoding="utf-8",
    )
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    process = spawn_prometheus(prometheus, tmp_path, port)
    try:
        targets = wait_for_scrapes(api, process, {"convocore", "convocore-wrong-password"})
        assert targets["convocore"]["health"] == "up", targets["convocore"]
        assert targets["convocore"]["lastError"] == ""
        assert targets["convocore"]["scrapeUrl"] == f"{url}/metrics"
        wrong = targets["convocore-wrong-password"]
        assert (wrong["health"], wrong["lastError"]) == (
            "down",
            "server returned HTTP status 401 Unauthorized",
        )

        # The exporter's series arrived through the TLS connection.
        result = query(api, 'convocore_crawler_job_status{job="convocore",job_id="job-help"}')
        assert {(r["metric"]["status"], r["value"][1]) for r in result} == {
            ("queued", "0"),
            ("processing", "0"),
            ("completed", "1"),
            ("failed", "0"),
            ("cancelled", "0"),
        }
        assert [r["value"][1] for r in query(api, 'up{job="convocore"}')] == ["1"]
    finally:
        stop(process)


def wait_for_scrapes(
    api: str, process: subprocess.Popen[Any], jobs: set[str]
) -> dict[str, dict[str, Any]]:
    """Each job's active target once Prometheus has scraped every one at least once."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        assert process.poll() is None, "prometheus exited"
        try:
            response = requests.get(f"{api}/api/v1/targets", timeout=10)
            active = response.json()["data"]["activeTargets"] if response.ok else []
        except requests.RequestException:
            active = []
        targets = {t["labels"]["job"]: t for t in active}
        scraped = set(targets) == jobs and all(t["health"] != "unknown" for t in active)
        # A first scrape may fail while the exporter warms up; wait for the right one to pass.
        if scraped and targets["convocore"]["health"] == "up":
            return targets
        assert time.monotonic() < deadline, f"no scrape within {WAIT_SECONDS}s: {targets}"
        time.sleep(0.5)


def query(api: str, promql: str) -> list[dict[str, Any]]:
    response = requests.get(f"{api}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result
