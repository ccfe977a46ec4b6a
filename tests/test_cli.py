"""The command line, run as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from exporter.demo.api import DEMO_TOKEN

from .conftest import parse_exposition, value
from .fakeapi import TOKEN, Fault, full_job
from .processes import free_port, spawn_exporter
from .processes import run_exporter as run
from .support import config_yaml, wait_for

P = "convocore_crawler_"


ROOT = Path(__file__).resolve().parents[1]


def wait_ready(base: str) -> bool:
    def ready() -> bool:
        try:
            return requests.get(base + "/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    return wait_for(ready, 30)


@pytest.mark.integration
def test_help_documents_every_flag_with_defaults_as_written():
    result = run("--help")
    assert result.returncode == 0
    for flag in (
        "--config.file",
        "--config.check",
        "--config.example",
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.config.file",
        "--web.enable-lifecycle",
        "--once",
        "--demo",
        "--log.level",
        "--log.format",
        "--scrape.timeout-offset",
        "--scrape.default-timeout",
        "--shard",
        "--total-shards",
        "--version",
    ):
        assert flag in result.stdout, flag
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for default in (
        "(default: :19417)",
        "(default: 10s)",
        "(default: 500ms)",
        "(default: config.yaml)",
        "(default: /metrics)",
        "(one of debug, info, warn, error; default: info)",
    ):
        assert default in text, default
    assert "None" not in result.stdout
    assert "(default: False)" not in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("columns", ["40", "60", "80", "120"])
def test_help_wraps_at_spaces_only(columns):
    from exporter.cli import build_parser

    result = run("--help", env={"COLUMNS": columns})
    assert result.returncode == 0
    words = set(result.stdout.split())
    assert "X-Prometheus-Scrape-Timeout-Seconds" in words
    for action in build_parser()._actions:
        for word in (action.help or "").split():
            assert word in words, (columns, word)
        for flag in action.option_strings:
            assert flag in result.stdout


@pytest.mark.integration
def test_the_example_config_passes_config_check_once_the_token_is_set(tmp_path):
    printed = run("--config.example", cwd=tmp_path)
    assert (printed.returncode, printed.stderr) == (0, "")
    assert printed.stdout == (ROOT / "exporter" / "config.example.yaml").read_text()
    example = tmp_path / "config.yaml"
    example.write_text(printed.stdout)
    result = run("--config.check", cwd=tmp_path, env={"CONVOCORE_TOKEN": TOKEN})
    assert (result.returncode, result.stdout, result.stderr) == (0, "OK\n", "")
    unset = {k: v for k, v in os.environ.items() if k != "CONVOCORE_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**unset, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    # The place of the first workspace's token in the example, as the error names it.
    lines = printed.stdout.splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "token: " in text)
    column = lines[line - 1].index("token: ") + len("token: ") + 1
    assert result.stderr == (
        f"config.yaml:{line}:{column}: workspaces[0].token: environment variable "
        "CONVOCORE_TOKEN is not set\n"
    )


@pytest.mark.integration
def test_one_name_for_the_config_file_everywhere():
    assert "/config.yaml" in (ROOT / ".gitignore").read_text().splitlines()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    other_name = "config" + ".yml"  # spelled so that this file does not contain it
    for name in tracked:
        path = ROOT / name
        if path.is_file() and path.suffix not in (".png", ".gz"):
            assert other_name not in path.read_text(errors="replace"), name


NO_CONFIG_HINT = (
    "write an example with: convocore-crawler-exporter --config.example > config.yaml (then "
    "put in your workspace and job ids and set CONVOCORE_TOKEN), or pass --config.file PATH, "
    "or run with --demo to try the exporter against a simulated Convocore API"
)
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.mark.integration
def test_without_a_config_file_one_log_line_names_the_flags(tmp_path):
    result = run(cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert re.fullmatch(
        rf"ts={TS} level=error logger=exporter "
        + re.escape(f'msg="no config file" file=config.yaml hint="{NO_CONFIG_HINT}"\n'),
        result.stderr,
    ), result.stderr
    result = run("--log.format", "json", cwd=tmp_path)
    assert result.returncode == 1
    line = json.loads(result.stderr)
    assert re.fullmatch(TS, line.pop("ts"))
    assert line == {
        "level": "error",
        "logger": "exporter",
        "msg": "no config file",
        "file": "config.yaml",
        "hint": NO_CONFIG_HINT,
    }
    check = run("--config.check", cwd=tmp_path)
    assert (check.returncode, check.stdout) == (1, "")
    assert check.stderr == f"no config file: config.yaml does not exist; {NO_CONFIG_HINT}\n"


@pytest.mark.integration
def test_start_up_errors_are_log_lines_in_the_chosen_format(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("workspaces:\n  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j, j]\n")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: not-a-hash\n")
    cases = [
        (
            ["--config.file", missing],
            "config refused",
            {"error": f"{missing}: cannot read the config file (No such file or directory)"},
        ),
        (
            ["--config.file", str(bad)],
            "config refused",
            {"error": f"{bad}:4:15: workspaces[0].jobs[1]: duplicate job id 'j'"},
        ),
        (
            ["--demo", "--web.config.file", str(web)],
            "web config refused",
            {
                "error": f"{web}:2: basic_auth_users.prometheus: expected a bcrypt hash such as "
                "htpasswd -nB makes ($2y$, cost, salt and hash, 60 characters), but it is too "
                "short to be a bcrypt hash"
            },
        ),
    ]
    for args, msg, fields in cases:
        for fmt in ("logfmt", "json"):
            result = run(*args, "--log.format", fmt, env={"CONVOCORE_TOKEN": TOKEN})
            assert (result.returncode, result.stdout) == (1, ""), result.stderr
            assert len(result.stderr.splitlines()) == 1, result.stderr
            if fmt == "json":
                line = json.loads(result.stderr)
                del line["ts"]
                assert line == {"level": "error", "logger": "exporter", "msg": msg, **fields}
            else:
                shown = " ".join(f'{k}="{v}"' for k, v in fields.items())
                assert result.stderr.split(" ", 1)[1] == (
                    f'level=error logger=exporter msg="{msg}" {shown}\n'
                )
            assert TOKEN not in result.stderr


def exit_cases(tmp_path: Path) -> list[tuple[int, list[str]]]:
    good = tmp_path / "good.yaml"
    good.write_text("workspaces:\n  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("workspaces: []\napi: {region: mars}\n")
    missing = str(tmp_path / "missing.yaml")
    return [
        (0, ["--version"]),
        (0, ["--help"]),
        (0, ["--config.example"]),
        (0, ["--config.check", "--config.file", str(good)]),
        (0, ["--demo", "--once"]),
        (1, []),  # no config.yaml in the working directory
        (1, ["--config.check"]),
        (1, ["--config.file", missing]),
        (1, ["--config.check", "--config.file", missing]),
        (1, ["--config.file", str(bad)]),
        (1, ["--config.check", "--config.file", str(bad)]),
        (1, ["--demo", "--web.config.file", missing]),
        (1, ["--config.check", "--config.file", str(good), "--web.config.file", missing]),
        (2, ["--no-such-flag"]),
        (2, ["--scrape.timeout-offset", "5m5m"]),
        (2, ["--web.listen-address", "nowhere"]),
        (2, ["--web.telemetry-path", "/"]),
        (2, ["--log.format", "xml"]),
        (2, ["--shard", "1"]),
        (2, ["--total-shards", "0"]),
        (2, ["--demo", "--shard", "-1"]),
    ]


@pytest.mark.integration
def test_exit_statuses_are_those_documented(tmp_path):
    """2 when the command line is wrong, 1 when the config, a file or the runtime fails
    (listening and --once's down jobs are tested above), 0 otherwise."""
    from exporter.cli import EXIT_STATUSES

    cases = exit_cases(tmp_path)
    assert {status for status, _ in cases} == {status for status, _, _ in EXIT_STATUSES}
    for status, args in cases:
        result = run(*args, cwd=tmp_path, env={"CONVOCORE_TOKEN": TOKEN})
        assert result.returncode == status, (args, result.stderr)
        if status == 2:
            assert result.stderr.startswith("usage: convocore-crawler-exporter "), args
            assert result.stderr.splitlines()[-1].startswith(
                "convocore-crawler-exporter: error: "
            ), args
            assert "level=" not in result.stderr
        elif status == 1 and "--config.check" not in args:
            (line,) = result.stderr.splitlines()
            assert " level=error logger=exporter msg=" in line, args


@pytest.mark.integration
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
    assert result.stderr == f"{bad}:4:15: workspaces[0].jobs[1]: duplicate job id 'j'\n"
    assert TOKEN not in result.stderr


@pytest.mark.integration
def test_once_prints_one_scrape_and_exits_1_when_a_job_is_down(fake, tmp_path):
    fake.set_jobs("ws-1", {"j1": full_job("j1", "ws-1"), "j2": full_job("j2", "ws-1")})
    fake.fail(fake.job_path("ws-1", "j2"), Fault(404, {"message": "gone"}))
    path = tmp_path / "config.yaml"
    path.write_text(
        config_yaml(
            fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1, j2]\n"
        )
    )
    result = run(
        "--once", "--config.file", str(path), "--log.level", "debug", env={"CONVOCORE_TOKEN": TOKEN}
    )
    assert result.returncode == 1, result.stderr
    series = parse_exposition(result.stdout)  # printed all the same
    assert value(series, P + "job_scraped_pages", workspace_id="ws-1", job_id="j1") == 40
    assert value(series, P + "up", workspace_id="ws-1", job_id="j1") == 1
    assert value(series, P + "up", workspace_id="ws-1", job_id="j2") == 0
    assert (
        value(series, P + "error_info", workspace_id="ws-1", job_id="j2", reason="not_found") == 1
    )
    assert TOKEN not in result.stdout + result.stderr
    assert 'level=warning logger=exporter.collect msg="job is down"' in result.stderr
    assert "workspace_id=ws-1 job_id=j2 reason=not_found" in result.stderr
    assert 'msg="a job is down" down_jobs=1' in result.stderr

    # The same jobs, all up: exit 0.
    path.write_text(
        config_yaml(fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1]\n")
    )
    result = run("--once", "--config.file", str(path), env={"CONVOCORE_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert value(parse_exposition(result.stdout), P + "up", workspace_id="ws-1", job_id="j1") == 1

    # A wrong secret: every job is down as unauthorized.
    result = run("--once", "--config.file", str(path), env={"CONVOCORE_TOKEN": "vg_wrong"})
    assert result.returncode == 1
    series = parse_exposition(result.stdout)
    assert (
        value(series, P + "error_info", workspace_id="ws-1", job_id="j1", reason="unauthorized")
        == 1
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("level", "shown"),
    [("warn", True), ("warning", True), ("WARN", True), ("error", False)],
)
def test_log_level_warn_and_its_alias_warning(fake, tmp_path, level, shown):
    fake.set_jobs("ws-1", {})
    fake.fail(fake.job_path("ws-1", "j2"), Fault(404, {"message": "gone"}))
    path = tmp_path / "config.yaml"
    path.write_text(
        config_yaml(fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j2]\n")
    )
    result = run(
        "--once", "--config.file", str(path), "--log.level", level, env={"CONVOCORE_TOKEN": TOKEN}
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert ('level=warning logger=exporter.collect msg="job is down"' in result.stderr) is shown
    assert not [line for line in lines if "level=info" in line or "level=debug" in line]
    assert [line for line in lines if "level=error" in line] == [
        line for line in lines if 'msg="a job is down"' in line
    ]


@pytest.mark.integration
def test_an_unknown_log_level_is_refused():
    result = run("--log.level", "verbose", "--demo")
    assert result.returncode == 2
    assert "invalid choice: 'verbose'" in result.stderr


@pytest.mark.integration
def test_version_prints_version_revision_build_date_and_python():
    import platform

    from exporter import __version__

    result = run("--version", env={"CONVOCORE_EXPORTER_REVISION": "0123abc"})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"convocore-crawler-exporter, version {__version__} (revision: 0123abc)"
    assert lines[1].startswith("  build date: ") and len(lines[1]) > len("  build date: ")
    assert lines[2] == f"  python version: {platform.python_version()}"
    assert len(lines) == 3

    result = run(
        "--version",
        env={
            "CONVOCORE_EXPORTER_REVISION": "",
            "CONVOCORE_EXPORTER_BUILD_DATE": "20260102-03:04:05",
        },
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    assert f"(revision: {head or 'unknown'})" in result.stdout
    assert "  build date: 20260102-03:04:05\n" in result.stdout


@pytest.mark.integration
def test_build_info_carries_version_revision_and_python_version():
    import platform

    result = run(
        "--demo",
        "--once",
        env={"CONVOCORE_EXPORTER_REVISION": "0123abc", "CONVOCORE_EXPORTER_BUILD_DATE": ""},
    )
    assert result.returncode == 0, result.stderr
    series = parse_exposition(result.stdout)
    build = [labels for name, labels in series if name == P + "exporter_build_info"]
    assert [dict(labels) for labels in build] == [
        {"version": "0.1.0", "revision": "0123abc", "pythonversion": platform.python_version()}
    ]


@pytest.mark.integration
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
        assert wait_ready(base)
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
        for text in (
            "Demo mode.",
            "<h3>Workspace <code>ws-demo</code></h3>",
            '<span class="name">legacy-wiki</span><br><code class="id">job-legacy</code></td>'
            '<td data-label="Status"><span class="st st-failed">failed</span><br>'
            '<span class="why">Crawl aborted after 30 failed pages: '
            "https://legacy.example.com/x-0 answered HTTP 403 Forbidden (blocked by the "
            "site&#x27;s firewall)</span></td>",
            'href="probe?workspace_id=ws-demo&amp;job_id=job-legacy"',
            'href="metrics"',
            "<style>",
        ):
            assert text in landing.text, text
        assert "<link" not in landing.text and "<script" not in landing.text
        assert requests.get(base + "/nope", timeout=5).status_code == 404
        assert requests.get(base + "/-/reload", timeout=5).status_code == 405
        refused = requests.post(base + "/-/reload", timeout=5)
        assert refused.status_code == 403
        assert refused.text.startswith("Lifecycle API is not enabled")
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


@pytest.mark.integration
def test_a_demo_reload_says_there_is_no_file_to_re_read():
    port = free_port()
    process = spawn_exporter(
        "--demo", "--web.enable-lifecycle", "--web.listen-address", f"127.0.0.1:{port}"
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_ready(base)
        answer = requests.post(base + "/-/reload", timeout=5)
        assert (answer.status_code, answer.text) == (
            400,
            "Running with --demo: there is no config file to re-read.\n",
        )
        process.send_signal(signal.SIGHUP)
        assert requests.get(base + "/-/healthy", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "SIGHUP: running with --demo, there is no config file to re-read" in err


def _held_connection(port: int) -> socket.socket:
    """A keep-alive connection left open (an idle Prometheus), which must not delay a stop."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


@pytest.mark.integration
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_process_within_a_second(fake, tmp_path, stop):
    fake.set_jobs("ws-1", {"j1": full_job("j1", "ws-1")})
    path = tmp_path / "config.yaml"
    path.write_text(
        config_yaml(fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1]\n")
    )
    ports = [free_port(), free_port()]
    args = ["--config.file", str(path), "--config.auto-reload-interval", "1s"]
    for port in ports:
        args += ["--web.listen-address", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CONVOCORE_TOKEN": TOKEN},
    )
    held = []
    try:
        for port in ports:
            assert wait_ready(f"http://127.0.0.1:{port}")
            scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=15)
            assert value(parse_exposition(scraped.text), P + "up", workspace_id="ws-1", job_id="j1")
            held.append(_held_connection(port))
        sent = time.monotonic()
        process.send_signal(stop)
        process.wait(timeout=20)
        elapsed = time.monotonic() - sent
    finally:
        for sock in held:
            sock.close()
        if process.poll() is None:
            process.kill()
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"signal={signal.Signals(stop).name}" in err
    # Nothing polls on the way out: about 0.1 s here; the bound leaves room for a busy machine.
    assert elapsed < 1.0, elapsed


@pytest.mark.integration
def test_a_stop_does_not_wait_for_an_upstream_request_in_flight(fake, tmp_path):
    fake.fail(fake.job_path("ws-1", "j1"), Fault(hang=True))
    path = tmp_path / "config.yaml"
    path.write_text(
        config_yaml(
            fake.base_url, "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j1]\n"
        ).replace("timeout_seconds: 2", "timeout_seconds: 60")
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "exporter", "--config.file", str(path)),
            *("--web.listen-address", f"127.0.0.1:{port}", "--scrape.default-timeout", "60s"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CONVOCORE_TOKEN": TOKEN},
    )
    try:
        assert wait_ready(base)
        scrape = threading.Thread(target=_get_ignoring_errors, args=(base + "/metrics",))
        scrape.start()
        assert wait_for(lambda: fake.count(fake.job_path("ws-1", "j1")) == 1, 30)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=70)
        elapsed = time.monotonic() - sent
        scrape.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    # The upstream request would have held the exit for up to its 60 s timeout.
    assert elapsed < 1.0, elapsed


def _get_ignoring_errors(url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.get(url, timeout=90)


@pytest.mark.integration
def test_listen_address_in_use_is_a_clear_error_and_starts_nothing():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("--demo", "--web.listen-address", f"127.0.0.1:{port}")
        as_json = run("--demo", "--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json")
    assert result.returncode == 1
    assert re.fullmatch(
        rf"ts={TS} level=error logger=exporter msg=\"cannot listen\" "
        rf"address=127\.0\.0\.1:{port} error=\"Address already in use\"\n",
        result.stderr,
    ), result.stderr
    assert as_json.returncode == 1
    line = json.loads(as_json.stderr)
    del line["ts"]
    assert line == {
        "level": "error",
        "logger": "exporter",
        "msg": "cannot listen",
        "address": f"127.0.0.1:{port}",
        "error": "Address already in use",
    }


@pytest.mark.integration
def test_several_listen_addresses_and_a_telemetry_path():
    first, second = free_port(), free_port()
    process = spawn_exporter(
        "--demo",
        "--web.listen-address",
        f":{first}",
        "--web.listen-address",
        f"127.0.0.1:{second}",
        "--web.telemetry-path",
        "/internal/metrics",
    )
    try:
        for port in (first, second):
            base = f"http://127.0.0.1:{port}"
            assert wait_ready(base)
            answer = requests.get(base + "/internal/metrics", timeout=15)
            assert answer.status_code == 200
            series = parse_exposition(answer.text)
            assert value(series, P + "up", workspace_id="ws-demo", job_id="job-docs") == 1
            assert requests.get(base + "/metrics", timeout=5).status_code == 404
            assert 'href="internal/metrics"' in requests.get(base + "/", timeout=5).text
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert err.count("msg=listening") == 2
    assert f"address=http://:{first}" in err or f"address=http://0.0.0.0:{first}" in err
    assert f"address=http://127.0.0.1:{second}" in err


@pytest.mark.integration
def test_a_bad_telemetry_path_is_refused():
    result = run("--demo", "--web.telemetry-path", "metrics")
    assert result.returncode == 2
    assert "expected a path such as /metrics" in result.stderr


@pytest.mark.parametrize(
    ("flag", "text", "seconds"),
    [
        ("--scrape.default-timeout", "1m30s", 90.0),
        ("--scrape.default-timeout", "250ms", 0.25),
        ("--scrape.timeout-offset", "0", 0.0),
        ("--scrape.timeout-offset", "0s", 0.0),
        ("--config.auto-reload-interval", "0", 0.0),
        ("--config.auto-reload-interval", "1h30m", 5400.0),
    ],
)
def test_duration_flags_read_durations_as_the_config_does(flag, text, seconds):
    from exporter.cli import build_parser

    dest = {
        "--scrape.default-timeout": "default_timeout",
        "--scrape.timeout-offset": "timeout_offset",
        "--config.auto-reload-interval": "auto_reload_interval",
    }[flag]
    assert getattr(build_parser().parse_args([flag, text]), dest) == seconds


@pytest.mark.parametrize(
    ("flag", "text", "expected"),
    [
        ("--scrape.default-timeout", "0", "a duration above 0 such as 500ms, 10s or 1m30s"),
        ("--scrape.default-timeout", "0s", "a duration above 0 such as 500ms, 10s or 1m30s"),
        ("--scrape.default-timeout", "1s1m", "a duration above 0 such as 500ms, 10s or 1m30s"),
        ("--scrape.timeout-offset", "5m5m", "a duration such as 0, 500ms, 10s or 1m30s"),
        ("--scrape.timeout-offset", "", "a duration such as 0, 500ms, 10s or 1m30s"),
        ("--config.auto-reload-interval", "1.5s", "a duration such as 0, 500ms, 10s or 1m30s"),
    ],
)
def test_duration_flags_refuse_what_is_not_a_duration_for_them(flag, text, expected, capsys):
    from exporter.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([flag, text])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"convocore-crawler-exporter: error: argument {flag}: expected {expected}, got {text!r}"
    )


@pytest.mark.integration
def test_a_zero_timeout_offset_scrapes_with_the_whole_timeout():
    result = run("--demo", "--once", "--scrape.timeout-offset", "0")
    assert result.returncode == 0, result.stderr
    assert (
        value(parse_exposition(result.stdout), P + "up", workspace_id="ws-demo", job_id="job-help")
        == 1
    )
