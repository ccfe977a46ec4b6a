"""Connections that never finish their request are closed, idle keep-alive connections too,
and at most --web.max-requests requests are served at once; scrapes keep answering meanwhile.

Raw sockets on loopback play the clients. Times asserted are generous upper bounds on "was
closed at all" (a limit that did not work would hold the connection for minutes), or lower
bounds that no machine can break.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from exporter.cli import build_parser
from exporter.web.limits import Limits
from exporter.web.server import ServerOptions

from .conftest import value
from .fakeapi import Fault, full_job
from .support import config_yaml, wait_for

P = "convocore_crawler_"
WS = "ws-1"
TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 58\r\nConnection: close\r\n\r\n"
    b"Request Timeout: the request head did not arrive in time.\n"
)
GENEROUS = 10.0


def jobs_config(fake, jobs: str = "[a]") -> str:
    fake.set_jobs(WS, {j: full_job(j, WS) for j in ("a", "b")})
    return config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: {jobs}\n"
    )


def start(start_exporter, fake, **limits: float) -> object:
    return start_exporter(jobs_config(fake), options=ServerOptions(limits=Limits(**limits)))


def connect(running) -> socket.socket:
    host, port = running.server.server_address[:2]
    sock = socket.create_connection((host, port), timeout=GENEROUS)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (``GENEROUS`` at most)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One answer with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_the_flags_and_their_defaults():
    args = build_parser().parse_args([])
    assert (args.read_header_timeout, args.idle_timeout, args.max_requests) == (10.0, 60.0, 40)
    assert Limits() == Limits(10.0, 60.0, 40)
    args = build_parser().parse_args(
        ["--web.read-header-timeout", "0s", "--web.idle-timeout", "90s", "--web.max-requests", "0"]
    )
    assert (args.read_header_timeout, args.idle_timeout, args.max_requests) == (0.0, 90.0, 0)
    for flag, bad in (("--web.max-requests", "-1"), ("--web.idle-timeout", "1.5m")):
        with pytest.raises(SystemExit):
            build_parser().parse_args([flag, bad])


def test_a_request_head_not_finished_in_time_is_answered_408_and_closed(fake, start_exporter):
    running = start(start_exporter, fake, read_header_timeout=0.5)
    # The server's clock starts when it accepts the connection: time from before connecting.
    started = time.monotonic()
    with connect(running) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        assert read_until_closed(sock) == TIMEOUT_408
        assert time.monotonic() - started >= 0.5


def test_a_trickled_head_is_cut_at_the_same_deadline(fake, start_exporter):
    """A byte every 50 ms: each read is quick, the head never ends. The limit is on the head
    as a whole, so the connection is closed once it is over."""
    running = start(start_exporter, fake, read_header_timeout=0.5)
    stop = threading.Event()
    with connect(running) as sock:

        def trickle() -> None:
            head = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100_000
            for byte in head:
                if stop.wait(0.05):
                    return
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            started = time.monotonic()
            assert read_until_closed(sock) == TIMEOUT_408
            assert time.monotonic() - started < GENEROUS
        finally:
            stop.set()
            sender.join()


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(fake, start_exporter):
    running = start(start_exporter, fake, read_header_timeout=0.5)
    with connect(running) as sock:
        assert read_until_closed(sock) == b""


def test_an_idle_keep_alive_connection_is_closed(fake, start_exporter):
    running = start(start_exporter, fake, idle_timeout=0.5)
    with connect(running) as sock:
        # Kept alive between requests that follow each other closely...
        for _ in range(2):
            # The server's idle clock starts once it has answered, so no earlier than this:
            # timed from here, not from when the answer was read, the bound is exact.
            sent = time.monotonic()
            sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"Healthy\n"
        # ... then closed when no request comes.
        assert read_until_closed(sock) == b""
        assert time.monotonic() - sent >= 0.5


def test_requests_beyond_max_requests_are_answered_503(fake, start_exporter):
    fake.set_jobs(WS, {"hung": full_job("hung", WS)})
    fake.fail(fake.job_path(WS, "hung"), Fault(hang=True))
    running = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [hung]\n"
        ).replace("timeout_seconds: 2", "timeout_seconds: 60"),
        options=ServerOptions(limits=Limits(max_requests=2)),
    )
    slow = {"X-Prometheus-Scrape-Timeout-Seconds": "60"}
    with requests.Session() as one, requests.Session() as two:
        blocked = [
            threading.Thread(
                target=lambda s=s: s.get(running.url + "/metrics", headers=slow, timeout=90)
            )
            for s in (one, two)
        ]
        for thread in blocked:
            thread.start()
        assert wait_for(lambda: running.server.slots.busy == 2)
        with connect(running) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_until_closed(sock)  # closed after the answer
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
        assert b"\r\nConnection: close" in head
        assert body == b"Too many requests at once (--web.max-requests 2); try again later.\n"
        # Liveness and readiness are never refused.
        assert running.get("/-/healthy").status_code == 200
        assert running.get("/-/ready").status_code == 200
        fake.release.set()  # the hung upstream request ends; so do the two scrapes
        for thread in blocked:
            thread.join(GENEROUS)
    assert wait_for(lambda: running.server.slots.busy == 0)
    assert running.get("/metrics?jobs=false").status_code == 200


def test_a_client_that_takes_no_answer_frees_its_slot(fake, start_exporter):
    """A client that asks for a large answer and never reads it: the write waits idle_timeout,
    then the connection is closed and the slot is free again."""
    fake.set_jobs(WS, {f"d{i:04d}": full_job(f"d{i:04d}", WS) for i in range(3000)})
    running = start_exporter(
        config_yaml(
            fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n"
        ),
        options=ServerOptions(limits=Limits(idle_timeout=0.5, max_requests=1)),
    )
    size = len(running.get().content)  # listed once; about 5.5 MB
    assert size > 5_000_000
    host, port = running.server.server_address[:2]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(GENEROUS)
        sock.connect((host, port))
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
        assert wait_for(lambda: running.server.slots.busy == 1)
        assert wait_for(lambda: running.server.slots.busy == 0, timeout=GENEROUS)
        # The server gave up on the answer: the client, reading now, finds it cut short.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            received = len(read_until_closed(sock))
        except ConnectionResetError:
            received = 0
        assert received < size
    assert running.get("/metrics?jobs=false").status_code == 200


def test_scrapes_answer_while_many_connections_hold_half_a_request(fake, start_exporter):
    running = start(start_exporter, fake, read_header_timeout=2.0)
    running.scrape()  # the upstream workers are started
    baseline = threading.active_count()
    held = []
    try:
        for _ in range(200):
            sock = connect(running)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        series = running.scrape()
        assert value(series, P + "up", workspace_id=WS, job_id="a") == 1
        for sock in held:
            assert read_until_closed(sock) == TIMEOUT_408
        # Every thread those connections held has ended.
        assert wait_for(lambda: threading.active_count() <= baseline + 1, timeout=GENEROUS)
    finally:
        for sock in held:
            sock.close()
