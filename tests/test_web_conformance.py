"""The exporter process with the exporter-toolkit's newer web config keys, and clients that
misbehave: every claim is about a real exporter process and real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import trustme

from exporter.demo.api import DemoApi, DemoServer

from .processes import free_port, spawn_exporter
from .support import wait_for

WAIT_SECONDS = 60  # an upper bound on waits only, never a measured duration


@dataclass
class Exporter:
    process: subprocess.Popen[str]
    base: str
    lines: queue.Queue[str | None]
    seen: list[str] = field(default_factory=list)

    def _drain(self) -> bool:
        """Move what stderr has written so far into ``seen``; True once it is closed."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return False
            if line is None:
                return True
            self.seen.append(line)

    def wait_for_line(self, text: str) -> bool:
        def found() -> bool:
            self._drain()
            return any(text in line for line in self.seen)

        return wait_for(found, WAIT_SECONDS)

    def count(self, text: str) -> int:
        self._drain()
        return sum(text in line for line in self.seen)

    def stop(self) -> str:
        """Stop the process; everything it wrote to stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=WAIT_SECONDS)
        assert wait_for(self._drain, WAIT_SECONDS)
        return "\n".join(self.seen)


@contextlib.contextmanager
def exporter(web_config: Path, *extra: str) -> Iterator[Exporter]:
    port = free_port()
    process = spawn_exporter(
        "--demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--web.config.file",
        str(web_config),
        *extra,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    scheme = "https" if "tls_server_config" in web_config.read_text() else "http"
    running = Exporter(process, f"{scheme}://127.0.0.1:{port}", lines)
    try:
        assert running.wait_for_line("msg=listening"), running.seen
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT_SECONDS)
        if process.stdout is not None:
            process.stdout.close()


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    allowed: tuple[str, str]  # a client certificate for prometheus.example
    other: tuple[str, str]  # one for other.example, from the same CA


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    pairs = []
    for name in ("prometheus.example", "other.example"):
        client = ca.issue_cert(name)
        client.cert_chain_pems[0].write_to_path(str(tmp_path / f"{name}.pem"))
        client.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
        pairs.append((str(tmp_path / f"{name}.pem"), str(tmp_path / f"{name}.key")))
    return Certificates(
        tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key", pairs[0], pairs[1]
    )


TLS = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"


@pytest.mark.integration
def test_a_client_certificate_without_an_allowed_san_gets_403(
    tmp_path: Path, certificates: Certificates
) -> None:
    (tmp_path / "web.yml").write_text(
        TLS + "  client_ca_file: ca.pem\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_allowed_sans: [prometheus.example, 192.0.2.7]\n"
    )
    with exporter(tmp_path / "web.yml") as running:
        verify = str(certificates.ca)
        for path, body in (("/-/healthy", "Healthy\n"), ("/-/ready", "Ready\n")):
            allowed = requests.get(
                running.base + path, cert=certificates.allowed, verify=verify, timeout=30
            )
            assert (allowed.status_code, allowed.text) == (200, body)
            other = requests.get(
                running.base + path, cert=certificates.other, verify=verify, timeout=30
            )
            assert (other.status_code, other.text) == (403, "Forbidden\n")
        metrics = requests.get(
            running.base + "/metrics", cert=certificates.allowed, verify=verify, timeout=30
        )
        assert metrics.status_code == 200
        assert "convocore_" in metrics.text
        refused = requests.get(
            running.base + "/metrics", cert=certificates.other, verify=verify, timeout=30
        )
        assert (refused.status_code, refused.text) == (403, "Forbidden\n")
        running.stop()
    assert running.process.returncode == 0


@pytest.mark.integration
def test_requests_beyond_the_rate_limit_get_429_and_a_reload_keeps_the_bucket(
    tmp_path: Path,
) -> None:
    web = tmp_path / "web.yml"
    # A token every hour: none comes back during the test, whatever the machine's speed.
    web.write_text("rate_limit:\n  interval: 1h\n  burst: 3\n")
    with exporter(web) as running:

        def status() -> tuple[int, str]:
            answer = requests.get(running.base + "/-/healthy", timeout=30)
            return answer.status_code, answer.text

        assert [status() for _ in range(4)] == [(200, "Healthy\n")] * 3 + [
            (429, "Too Many Requests\n")
        ]
        # Every endpoint shares the bucket, as in the exporter-toolkit.
        assert requests.get(running.base + "/metrics", timeout=30).status_code == 429
        post = requests.post(running.base + "/-/reload", timeout=30)
        assert post.status_code == 429

        # A reload with the same limit keeps the bucket as it is: still empty.
        running.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: running.count('msg="config reloaded"') == 1, WAIT_SECONDS)
        assert status() == (429, "Too Many Requests\n")

        # A new limit is a new, full bucket.
        web.write_text("rate_limit:\n  interval: 1h\n  burst: 2\n")
        running.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: running.count('msg="config reloaded"') == 2, WAIT_SECONDS)
        assert [status() for _ in range(3)] == [(200, "Healthy\n")] * 2 + [
            (429, "Too Many Requests\n")
        ]
        running.stop()
    assert running.process.returncode == 0


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP reset instead of a clean end."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_response(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


_CONNECTION_LINE = re.compile(
    r'ts=\S+ level=debug logger=exporter\.web\.httpserver msg="client connection failed" '
    r'client=127\.0\.0\.1 error=\w+ detail=("[^"]+"|\S+)'
)


@pytest.mark.integration
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_clients_that_reset_never_cause_a_traceback(
    tmp_path: Path, certificates: Certificates, scheme: str
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(TLS if scheme == "https" else "")
    client_context = ssl.create_default_context(cafile=str(certificates.ca))

    def connect(port: int) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        if scheme == "http":
            return raw
        return client_context.wrap_socket(raw, server_hostname="127.0.0.1")

    with exporter(web, "--log.level", "debug") as running:
        port = int(running.base.rsplit(":", 1)[1])
        # Reset right after connecting, before any byte (or handshake).
        reset(socket.create_connection(("127.0.0.1", port), timeout=30))
        # Reset in the middle of a request, on a connection that has served one already:
        # the server is then certainly reading the next request when the reset comes.
        sock = connect(port)
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock, b"Healthy\n").startswith(b"HTTP/1.1 200 OK\r\n")
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept:")
        reset(sock)
        # Reset with a whole request sent, before reading the answer.
        sock = connect(port)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reset(sock)

        assert running.wait_for_line('msg="client connection failed"'), running.seen
        answer = requests.get(running.base + "/-/healthy", verify=str(certificates.ca), timeout=30)
        assert (answer.status_code, answer.text) == (200, "Healthy\n")
        stderr = running.stop()
    assert running.process.returncode == 0
    assert "Traceback" not in stderr, stderr
    assert "Exception occurred" not in stderr
    failures = [line for line in stderr.splitlines() if "client connection failed" in line]
    assert failures
    for line in failures:
        assert _CONNECTION_LINE.fullmatch(line), line


def test_the_demo_api_logs_a_hung_up_exporter_as_one_debug_line(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # The exporter hangs up on a demo API request it no longer needs when it stops; the demo
    # server then fails writing its answer. socketserver hands that to handle_error, which by
    # default prints a traceback on stderr.
    server = DemoServer(DemoApi())
    try:
        with caplog.at_level(logging.DEBUG, logger="exporter"):
            try:
                raise BrokenPipeError(32, "Broken pipe")
            except BrokenPipeError:
                server.handle_error(None, ("127.0.0.1", 40000))
    finally:
        server.server_close()
    assert capsys.readouterr() == ("", "")
    assert [(r.levelname, r.getMessage(), r.error, r.detail) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("DEBUG", "client connection failed", "BrokenPipeError", "Broken pipe")
    ]
