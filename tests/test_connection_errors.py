"""A request that gets no HTTP answer says which API host failed and why, in the log only.

Each failure is real, on loopback: a closed port, a name under ``.invalid`` (RFC 6761: it
never resolves), a TLS handshake against a plain-HTTP server, a server that accepts and never
answers, one that resets the connection. The warning names the host and the cause; the debug
line adds the request's path, never its query; the ``reason`` label keeps its bounded values;
the token shows nowhere.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from exporter.config import parse_config
from exporter.convocore import neterrors

from .conftest import value
from .fakeapi import Fault, full_job
from .support import config_yaml

P = "convocore_crawler_"
WS = "ws-conn"
JOB = "job-1"
PATH = f"/v3/workspaces/{WS}/crawler/jobs/{JOB}"
SECRET = "vg_conn_errors_secret_5b1e9d7c3a"  # distinctive: found only where it leaked
# A scrape timeout well above api.timeout_seconds: the API's own timeout decides, not the
# scrape deadline (and a resolver that has to time out still ends within it).
HEADERS = {"X-Prometheus-Scrape-Timeout-Seconds": "30"}


class Resetter:
    """A TCP server that reads each request, then resets the connection (SO_LINGER 0)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def resetter() -> Iterator[Resetter]:
    server = Resetter()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_down(start_exporter, base_url: str, discover: bool = False, api: str = ""):
    jobs = "discover: true" if discover else f"jobs: [{JOB}]"
    text = config_yaml(
        base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    {jobs}\n", api
    )
    running = start_exporter(parse_config(text, "test.yml", {"CONVOCORE_TOKEN": SECRET}))
    return running, running.scrape(headers=HEADERS)


def lines(captured: list[str], message: str) -> list[str]:
    """The captured lines with that message, without their timestamp."""
    return [line.split(" ", 1)[1] for line in captured if f'msg="{message}"' in line]


def assert_logged(captured, host: str, reason: str, cause: str, detail: str, *, attempts: int):
    shown = f'"{detail}"' if " " in detail else detail
    assert lines(captured, "job is down") == [
        f'level=warning logger=exporter.collect msg="job is down" workspace_id={WS} '
        f"job_id={JOB} reason={reason} host={host} cause={cause} detail={shown}"
    ]
    assert (
        lines(captured, "upstream request failed")
        == [
            f'level=debug logger=exporter.client msg="upstream request failed" workspace_id={WS} '
            f"host={host} path={PATH} reason={reason} cause={cause} detail={shown}"
        ]
        * attempts
    )
    everything = "\n".join(captured)
    assert SECRET not in everything
    assert "Bearer" not in everything


def assert_down(series, reason: str) -> None:
    labels = {"workspace_id": WS, "job_id": JOB}
    assert value(series, P + "up", **labels) == 0
    assert value(series, P + "error_info", **labels, reason=reason) == 1
    reasons = {dict(labels)["reason"] for name, labels in series if name == P + "error_info"}
    assert reasons == {reason}


def test_a_closed_port_is_refused(start_exporter, captured_logs):
    port = closed_port()
    _, series = scrape_down(start_exporter, f"http://127.0.0.1:{port}/v3")
    assert_down(series, "connection")
    # Refused connections are retried once: two attempts, one warning.
    assert_logged(
        captured_logs,
        f"127.0.0.1:{port}",
        "connection",
        "refused",
        "ConnectionRefusedError",
        attempts=2,
    )


def test_a_name_that_does_not_resolve_is_dns(start_exporter, captured_logs):
    # .invalid never resolves (RFC 6761); a resolver answers at once, and where none can be
    # reached the lookup fails as well (within the scrape timeout above).
    _, series = scrape_down(start_exporter, "https://convocore-exporter-test.invalid/v3")
    assert_down(series, "connection")
    assert_logged(
        captured_logs,
        "convocore-exporter-test.invalid",
        "connection",
        "dns",
        "gaierror",
        attempts=2,
    )


def test_tls_to_a_plain_http_server_is_tls(fake, start_exporter, captured_logs):
    port = fake.server_address[1]
    _, series = scrape_down(start_exporter, f"https://127.0.0.1:{port}/v3")
    assert_down(series, "connection")
    assert_logged(
        captured_logs,
        f"127.0.0.1:{port}",
        "connection",
        "tls",
        "SSLError (WRONG_VERSION_NUMBER)",
        attempts=2,
    )


def test_a_server_that_never_answers_is_a_timeout(fake, start_exporter, captured_logs):
    fake.fail(PATH, Fault(hang=True))
    port = fake.server_address[1]
    _, series = scrape_down(start_exporter, fake.base_url, api="  timeout_seconds: 0.3\n")
    assert_down(series, "timeout")
    # api.timeout_seconds at config_yaml's 2 s would do too; 0.3 s keeps the test short.
    assert_logged(
        captured_logs,
        f"127.0.0.1:{port}",
        "timeout",
        "timeout",
        "upstream did not answer in time",
        attempts=1,
    )


def test_a_reset_is_reset(resetter, start_exporter, captured_logs):
    _, series = scrape_down(start_exporter, f"http://127.0.0.1:{resetter.port}/v3")
    assert_down(series, "connection")
    assert_logged(
        captured_logs,
        f"127.0.0.1:{resetter.port}",
        "connection",
        "reset",
        "ConnectionResetError",
        attempts=2,
    )


def test_a_listing_cut_mid_answer_names_the_path_without_its_query(
    fake, start_exporter, captured_logs
):
    fake.api.token = SECRET
    fake.set_jobs(WS, {JOB: full_job(JOB, WS)})
    running, series = scrape_down(start_exporter, fake.base_url, discover=True)
    assert value(series, P + "up", workspace_id=WS, job_id=JOB) == 1
    listing = f"/v3/workspaces/{WS}/crawler/jobs"
    fake.fail(listing, Fault(200, b"x" * 1000, reset_after=10))
    series = running.scrape(headers=HEADERS)
    # Within discover_grace_period the job keeps its last listing; discovery is down.
    assert value(series, P + "up", workspace_id=WS, job_id=JOB) == 1
    assert value(series, P + "discovery_error_info", workspace_id=WS, reason="connection") == 1
    port = fake.server_address[1]
    detail = '"body interrupted (ConnectionResetError)"'
    message = "job listing failed; the discovered jobs keep the last listing for up to "
    assert lines(captured_logs, message + "discover_grace_period") == [
        f'level=warning logger=exporter.collect msg="{message}discover_grace_period" '
        f"workspace_id={WS} reason=connection host=127.0.0.1:{port} cause=reset "
        f"detail={detail} discover_grace_period=300.0"
    ]
    assert lines(captured_logs, "job is down") == []
    assert (
        lines(captured_logs, "upstream request failed")
        == [
            f'level=debug logger=exporter.client msg="upstream request failed" workspace_id={WS} '
            f"host=127.0.0.1:{port} path={listing} reason=connection cause=reset detail={detail}"
        ]
        * 2
    )
    assert [path for path, _ in fake.log if path.startswith(listing)][-1] == (
        f"{listing}?page=1&limit=100"
    )
    ours = [line for line in captured_logs if "logger=exporter." in line]
    assert not any("page=" in line for line in ours)
    assert SECRET not in "\n".join(captured_logs)


def test_an_answer_with_a_status_has_no_cause(fake, start_exporter, captured_logs):
    fake.fail(PATH, Fault(503, "down"))
    _, series = scrape_down(start_exporter, fake.base_url)
    assert_down(series, "server_error")
    assert lines(captured_logs, "job is down") == [
        f'level=warning logger=exporter.collect msg="job is down" workspace_id={WS} '
        f"job_id={JOB} reason=server_error"
    ]
    assert lines(captured_logs, "upstream request failed") == []


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://eu-gcp-api.vg-stuff.com/v3", "eu-gcp-api.vg-stuff.com"),
        ("http://user:pass@127.0.0.1:8080/v3?x=1", "127.0.0.1:8080"),
        ("http://[::1]:9/v3", "[::1]:9"),
    ],
)
def test_the_host_is_shown_without_user_info(url, host):
    assert neterrors.api_host(url) == host


def test_an_unknown_failure_is_other():
    class Odd(Exception):
        pass

    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = Odd("no known kind")
    assert neterrors.classify(wrapped) == ("other", "Odd")
    assert neterrors.CAUSES == ("dns", "refused", "tls", "timeout", "reset", "other")
