"""What each upstream request carries and which way it goes: the proxies and CA bundle of the
environment, read once per config, and requests prepared once per config's worth of settings.

The proxy is a real forwarding proxy on loopback that counts what it forwards (plain GETs by
absolute URI, and CONNECT tunnels for HTTPS); the API is the tests' fake, over plain HTTP or
over TLS with a certificate from a throwaway CA.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import trustme

from exporter.config import ApiConfig, Secret, parse_config
from exporter.convocore.api import ConvocoreClient, list_params
from exporter.convocore.transport import USER_AGENT, Sender

from .conftest import parse_exposition, value
from .fakeapi import TOKEN, FakeConvocore, Fault, full_job
from .support import config_yaml

P = "convocore_crawler_"
WS = "ws-proxy"
JOBS = ("job-1", "job-2")
ENVIRONMENT = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
DIRECT = {"http": None, "https": None}  # requests: no proxy, whatever the environment says
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding"}


class Proxy(ThreadingHTTPServer):
    """A forwarding HTTP proxy on loopback that records what it was asked to forward."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        self.forwarded: list[str] = []  # absolute URIs of plain requests
        self.tunnels: list[str] = []  # host:port of CONNECT requests
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.forwarded.append(self.path)
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream.request(
            "GET", target.path + (f"?{target.query}" if target.query else ""), None, headers
        )
        answer = upstream.getresponse()
        body = answer.read()
        upstream.close()
        self.send_response(answer.status)
        for name, field in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, field)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        with self.server.lock:
            self.server.tunnels.append(self.path)
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        ends = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(ends, [], [], 30)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True


class TlsFake(FakeConvocore):
    """The fake API over TLS."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(jobs={})

    def server_activate(self) -> None:
        super().server_activate()
        self.socket = self.context.wrap_socket(self.socket, server_side=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/v3"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy or CA-bundle variable from the machine running the tests."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    server = Proxy()
    yield server
    server.close()


def workspace(jobs: tuple[str, ...] = JOBS) -> str:
    return f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{', '.join(jobs)}]\n"


def job_urls(base_url: str, jobs: tuple[str, ...] = JOBS) -> list[str]:
    return [f"{base_url}/workspaces/{WS}/crawler/jobs/{job}" for job in jobs]


def all_up(series: dict[Any, float], jobs: tuple[str, ...] = JOBS) -> list[float | None]:
    return [value(series, P + "up", workspace_id=WS, job_id=job) for job in jobs]


def scrape(running: Any) -> dict[Any, float]:
    """The exporter's /metrics, asked directly: the test's own request takes no proxy."""
    series: dict[Any, float] = running.scrape(proxies=DIRECT)
    return series


def serve_jobs(fake: FakeConvocore, jobs: tuple[str, ...] = JOBS) -> None:
    fake.set_jobs(WS, {job: full_job(job, WS) for job in jobs})


def test_requests_go_through_the_proxy_of_the_environment(
    environment: pytest.MonkeyPatch, proxy: Proxy, fake: FakeConvocore, start_exporter: Any
) -> None:
    serve_jobs(fake)
    environment.setenv("HTTP_PROXY", proxy.url)
    environment.setenv("HTTPS_PROXY", proxy.url)
    running = start_exporter(config_yaml(fake.base_url, workspace()))
    assert all_up(scrape(running)) == [1, 1]
    assert sorted(proxy.forwarded) == job_urls(fake.base_url)
    assert sorted(fake.paths()) == [fake.job_path(WS, job) for job in JOBS]


def test_no_proxy_covering_the_api_host_bypasses_the_proxy(
    environment: pytest.MonkeyPatch, proxy: Proxy, fake: FakeConvocore, start_exporter: Any
) -> None:
    serve_jobs(fake)
    environment.setenv("HTTP_PROXY", proxy.url)
    environment.setenv("HTTPS_PROXY", proxy.url)
    environment.setenv("NO_PROXY", "example.org,127.0.0.1")
    running = start_exporter(config_yaml(fake.base_url, workspace()))
    assert all_up(scrape(running)) == [1, 1]
    assert proxy.forwarded == []
    assert proxy.tunnels == []
    assert sorted(fake.paths()) == [fake.job_path(WS, job) for job in JOBS]


def test_the_environment_is_read_when_a_config_is_loaded(
    environment: pytest.MonkeyPatch, proxy: Proxy, fake: FakeConvocore, start_exporter: Any
) -> None:
    serve_jobs(fake, JOBS[:1])
    environment.setenv("HTTP_PROXY", proxy.url)
    text = config_yaml(fake.base_url, workspace(JOBS[:1]))
    running = start_exporter(text)
    assert all_up(scrape(running), JOBS[:1]) == [1]
    environment.setenv("NO_PROXY", "127.0.0.1")
    assert all_up(scrape(running), JOBS[:1]) == [1]
    assert proxy.forwarded == job_urls(fake.base_url, JOBS[:1]) * 2
    # A reload builds the requests' settings anew from the environment of that moment.
    running.exporter.set_config(parse_config(text, "test.yml", {"CONVOCORE_TOKEN": TOKEN}))
    assert all_up(scrape(running), JOBS[:1]) == [1]
    assert proxy.forwarded == job_urls(fake.base_url, JOBS[:1]) * 2
    assert fake.count(fake.job_path(WS, JOBS[0])) == 3


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


@pytest.fixture
def tls_fake(ca: tuple[trustme.CA, Path]) -> Iterator[TlsFake]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca[0].issue_cert("127.0.0.1").configure_cert(context)
    server = TlsFake(context)
    serve_jobs(server, JOBS[:1])
    yield server
    server.close()


def test_an_https_api_is_reached_through_the_proxys_tunnel_with_the_environments_ca(
    environment: pytest.MonkeyPatch,
    proxy: Proxy,
    tls_fake: TlsFake,
    ca: tuple[trustme.CA, Path],
    start_exporter: Any,
) -> None:
    environment.setenv("HTTPS_PROXY", proxy.url)
    environment.setenv("REQUESTS_CA_BUNDLE", str(ca[1]))
    running = start_exporter(config_yaml(tls_fake.base_url, workspace(JOBS[:1])))
    assert all_up(scrape(running), JOBS[:1]) == [1]
    assert proxy.tunnels == [f"127.0.0.1:{tls_fake.server_address[1]}"]
    assert proxy.forwarded == []
    assert tls_fake.paths() == [tls_fake.job_path(WS, JOBS[0])]


def test_without_the_environments_ca_the_api_is_not_trusted(
    environment: pytest.MonkeyPatch, tls_fake: TlsFake, start_exporter: Any
) -> None:
    running = start_exporter(config_yaml(tls_fake.base_url, workspace(JOBS[:1])))
    series = scrape(running)
    assert all_up(series, JOBS[:1]) == [0]
    labels = {"workspace_id": WS, "job_id": JOBS[0], "reason": "connection"}
    assert value(series, P + "error_info", **labels) == 1
    assert tls_fake.paths() == []


def test_every_request_carries_the_same_headers_and_no_cookie(
    environment: pytest.MonkeyPatch, fake: FakeConvocore, start_exporter: Any
) -> None:
    serve_jobs(fake, JOBS[:1])
    path = fake.job_path(WS, JOBS[0])
    # A cookie set by the API is not sent back: the bearer token alone authenticates.
    fake.fail(path, Fault(status=503, headers={"Set-Cookie": "lb=node-7; Path=/"}, times=1))
    running = start_exporter(config_yaml(fake.base_url, workspace(JOBS[:1])))
    assert all_up(scrape(running), JOBS[:1]) == [1]  # the retry succeeds
    with fake.lock:
        seen = [headers for _, headers in fake.log]
        targets = [target for target, _ in fake.log]
    assert targets == [path, path]  # the request line holds the path alone, without a proxy
    port = fake.server_address[1]
    expected = {
        "host": f"127.0.0.1:{port}",
        "user-agent": USER_AGENT,
        "accept-encoding": requests.utils.default_headers()["Accept-Encoding"],
        "accept": "application/json",
        "connection": "keep-alive",
        "authorization": f"Bearer {TOKEN}",
    }
    assert seen == [expected, expected]


@pytest.mark.parametrize(
    ("workspace_id", "job_id", "at"),
    [
        ("ws-1", "job-1", None),
        ("ws 1", "jöb/2?x=1#y", None),
        ("ws-1", "..", None),
        ("ws-1", ".hidden", None),
        ("ws-1", "a%41b", 3),
        ("ws-1", "job-1", "c/ur+sor=&?ü%20"),
    ],
)
def test_a_prepared_url_is_the_one_requests_would_send(
    environment: pytest.MonkeyPatch, workspace_id: str, job_id: str, at: int | str | None
) -> None:
    for base in ("http://127.0.0.1:9/v3", "http://EXAMPLE.org:9/v3", "http://bücher.example/v3"):
        client = ConvocoreClient(ApiConfig(base_url=base), Unobserved())
        url = client.job_url(workspace_id, job_id)
        params = None if at is None else list_params(at, 100)
        sender = Sender(base, 4)
        try:
            prepared = sender.prepare(Secret(TOKEN), url, params)
        finally:
            sender.close()
            client.close()
        assert prepared.url == requests.Request("GET", url, params=params).prepare().url


class Unobserved:
    def observe_request(self, workspace_id: str, code: str, seconds: float) -> None:
        pass


def test_an_answer_trickled_through_the_proxys_tunnel_is_cut_at_the_timeout(
    environment: pytest.MonkeyPatch,
    proxy: Proxy,
    tls_fake: TlsFake,
    ca: tuple[trustme.CA, Path],
    start_exporter: Any,
) -> None:
    # A byte of the status line and headers every 0.3 s: no read ever times out, the
    # watchdog must stop the attempt at api.timeout_seconds.
    path = tls_fake.job_path(WS, JOBS[0])
    tls_fake.fail(path, Fault(200, {"success": True, "data": {}}, head_trickle=0.3))
    environment.setenv("HTTPS_PROXY", proxy.url)
    environment.setenv("REQUESTS_CA_BUNDLE", str(ca[1]))
    text = config_yaml(tls_fake.base_url, workspace(JOBS[:1]), "  timeout_seconds: 1\n")
    running = start_exporter(text)
    started = time.monotonic()
    response = running.get(headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"}, proxies=DIRECT)
    took = time.monotonic() - started
    series = parse_exposition(response.text)
    labels = {"workspace_id": WS, "job_id": JOBS[0], "reason": "timeout"}
    assert value(series, P + "error_info", **labels) == 1
    assert proxy.tunnels == [f"127.0.0.1:{tls_fake.server_address[1]}"]
    assert took < 10, took  # the whole head takes over 30 s to trickle


class CountingFake(FakeConvocore):
    """The fake API, counting the connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        super().__init__(jobs={})

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)


def test_one_connection_carries_the_requests_one_after_another(
    environment: pytest.MonkeyPatch, start_exporter: Any
) -> None:
    fake = CountingFake()
    try:
        serve_jobs(fake, JOBS[:1])
        running = start_exporter(config_yaml(fake.base_url, workspace(JOBS[:1])))
        for _ in range(5):
            assert all_up(scrape(running), JOBS[:1]) == [1]
        assert fake.count(fake.job_path(WS, JOBS[0])) == 5
        assert fake.connections == 1
    finally:
        fake.close()


def test_a_request_after_a_reloads_close_still_goes(
    environment: pytest.MonkeyPatch, fake: FakeConvocore
) -> None:
    # A reload closes the old config's pool while its requests in flight may still retry.
    serve_jobs(fake, JOBS[:1])
    client = ConvocoreClient(ApiConfig(base_url=fake.base_url), Unobserved())
    token = Secret(TOKEN)
    assert client.get_job(WS, token, JOBS[0], time.monotonic() + 10).ok
    client.close()
    assert client.get_job(WS, token, JOBS[0], time.monotonic() + 10).ok
    client.close(abort=True)
    stopped = client.get_job(WS, token, JOBS[0], time.monotonic() + 10)
    assert stopped.reason == "connection"  # a stopping exporter sends nothing more
    assert fake.count(fake.job_path(WS, JOBS[0])) == 2
