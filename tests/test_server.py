"""The HTTP side: one response writer (gzip negotiated from Accept-Encoding with q-values,
framing), the lifecycle switch on POST /-/reload, and the landing page."""

from __future__ import annotations

import gzip
import html
import re
import socket
import time
from collections.abc import Callable
from urllib.parse import urljoin

import pytest
import requests

from exporter.exposition.negotiation import accepts_gzip
from exporter.exposition.writer import Family
from exporter.web.server import ServerOptions, scrape_deadline

from .conftest import parse_exposition, value
from .fakeapi import Fault, full_job
from .processes import free_port, spawn_prometheus
from .support import config_yaml, wait_for
from .tools import require_tool

WS = "ws-1"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 9.5),  # no header: --scrape.default-timeout (10s) minus the offset
        ("", 9.5),
        ("4", 3.5),
        ("2.5", 2.0),
        ("0.55", 0.1),  # never less than 0.1 s away
        ("0", 9.5),  # not a timeout: the default
        ("-3", 9.5),
        ("3600", 9.5),  # an hour or more: the default
        ("soon", 9.5),
        ("nan", 9.5),
    ],
)
def test_the_scrape_deadline_is_the_timeout_header_minus_the_offset(header, seconds):
    before = time.monotonic()
    deadline = scrape_deadline(10.0, 0.5, header)
    after = time.monotonic()
    assert before + seconds <= deadline <= after + seconds


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("GZip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # an explicit refusal beats the wildcard
        ("*", True),
        ("*;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("x-gzip", True),
        ("gzipped", False),  # not a substring match
        ("br;q=1, gzip;q=nonsense", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding_is_parsed_with_q_values(header, expected):
    assert accepts_gzip(header) is expected


def raw_get(running, path: str, accept_encoding: str | None) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 request on a real socket; returns status line, headers, raw body."""
    host, port = running.server.server_address[:2]
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close"]
    if accept_encoding is not None:
        lines.append(f"Accept-Encoding: {accept_encoding}")
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    status, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, val = line.partition(": ")
        headers[name.lower()] = val
    if headers.get("transfer-encoding") == "chunked":
        data = b""
        while True:
            size_line, body = body.split(b"\r\n", 1)
            size = int(size_line, 16)
            if size == 0:
                break
            data, body = data + body[:size], body[size + 2 :]
        body = data
    return status, headers, body


def jobs_config(fake, count: int = 2, names: dict[str, str] | None = None) -> str:
    ids = [f"j{i}" for i in range(count)]
    fake.set_jobs(WS, {i: full_job(i, WS) for i in ids})
    jobs = "".join(
        f"      - id: {i}\n" + (f"        name: '{names[i]}'\n" if names and i in names else "")
        for i in ids
    )
    return config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs:\n{jobs}"
    )


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [("gzip", True), ("gzip;q=0", False), ("*", True), ("identity, *;q=0", False), (None, False)],
)
def test_every_route_negotiates_gzip_the_same_way(fake, start_exporter, accept_encoding, gzipped):
    running = start_exporter(jobs_config(fake, 40))
    for path in ("/metrics", "/probe?workspace_id=ws-1&job_id=j3", "/sd", "/"):
        status, headers, body = raw_get(running, path, accept_encoding)
        assert status == "HTTP/1.1 200 OK", path
        assert ("content-encoding" in headers) is gzipped, path
        text = (gzip.decompress(body) if gzipped else body).decode()
        if path.startswith(("/metrics", "/probe")):
            assert headers["transfer-encoding"] == "chunked"
            assert (
                value(parse_exposition(text), "convocore_crawler_up", workspace_id=WS, job_id="j3")
                == 1
            )
        else:
            assert int(headers["content-length"]) == len(body)
            assert "j39" in text
    # A small answer goes out as it is, whatever the client accepts.
    status, headers, body = raw_get(running, "/-/healthy", accept_encoding)
    assert (status, body, "content-encoding" in headers) == ("HTTP/1.1 200 OK", b"Healthy\n", False)


def test_reload_over_http_needs_the_lifecycle_flag(fake, start_exporter):
    calls = []

    def reload() -> str | None:
        calls.append(1)
        return None

    closed = start_exporter(jobs_config(fake), options=ServerOptions(reload=reload))
    answer = requests.post(closed.url + "/-/reload", timeout=10)
    assert answer.status_code == 403
    assert answer.text == (
        "Lifecycle API is not enabled: start the exporter with --web.enable-lifecycle "
        "to reload over HTTP, or send it SIGHUP.\n"
    )
    assert calls == []
    opened = start_exporter(jobs_config(fake), options=ServerOptions(reload=reload, lifecycle=True))
    answer = requests.post(opened.url + "/-/reload", timeout=10)
    assert (answer.status_code, answer.text, calls) == (200, "Config reloaded.\n", [1])


def test_landing_page_lists_targets_escaped_and_capped(fake, start_exporter):
    hostile = '<script>alert("x")</script> & co'
    running = start_exporter(jobs_config(fake, 503, names={"j0": hostile}))
    fake.set_jobs(WS, {"j0": full_job("j0", WS)})  # j1 and the rest are gone: 404
    running.scrape()
    page = running.get("/")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    text = page.text
    assert "<script" not in text and "<link" not in text
    assert (
        '<tr><td class="job" data-label="Job"><span class="name">'
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</span><br>"
        '<code class="id">j0</code></td><td data-label="Status">'
        '<span class="st st-processing">processing</span></td>'
        '<td class="up" data-label="Up">up</td>'
        '<td data-label="Progress"><progress value="40" max="200" title="20%"></progress> '
        '<span class="pages">40 / 200</span></td>'
        '<td class="num" data-label="Failed pages">3</td>'
        '<td class="num" data-label="Credits">200</td>'
    ) in text
    assert (
        '<tr><td class="job" data-label="Job"><code class="id">j1</code></td>'
        '<td data-label="Status">unknown</td>'
        '<td class="down" data-label="Up">down: not_found</td><td data-label="Progress">\u2014</td>'
        '<td class="num" data-label="Failed pages">\u2014</td><td class="num" data-label="Credits">'
        '\u2014</td><td data-label="Last success"><span class="never">never</span></td>'
    ) in text
    assert (
        '<td class="links" data-label="Links">'
        '<a href="probe?workspace_id=ws-1&amp;job_id=j0">probe</a> '
        '<a href="probe?workspace_id=ws-1&amp;job_id=j0&amp;debug=true">debug report</a></td>'
    ) in text
    assert text.count('&amp;debug=true">debug report</a>') == 500
    assert text.count('<tr><td class="job"') == 500
    assert "<h2>Jobs (503)</h2>" in text
    assert '<tr><td colspan="8">and 3 more</td></tr>' in text
    # The totals count every exported job, the 3 left out of the table too.
    assert (
        '<span class="label">Jobs</span><span class="value">503</span> '
        '<span class="meta">1 processing, 502 unknown</span>'
    ) in text
    assert "Demo mode" not in text


def test_landing_page_totals_sum_the_jobs_shown_per_workspace(fake, start_exporter):
    fake.set_jobs(
        WS,
        {
            "a": full_job("a", WS),
            "b": full_job(
                "b",
                WS,
                status="completed",
                done=True,
                scrapedPagesNum=1500,
                failedPagesNum=7,
                estimatedCredits=1234.5,
            ),
        },
    )
    fake.set_jobs("ws-2", {"c": full_job("c", "ws-2", pageLimit=None)})
    config = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [a, b, gone]\n"
        "  - id: ws-2\n    token: ${CONVOCORE_TOKEN}\n    jobs: [c]\n",
    )
    running = start_exporter(config)
    before = running.get("/?refresh=0").text
    # Nothing read yet (no first read in this test): every job says so.
    assert before.count('<td class="reading" data-label="Up">reading...</td>') == 4
    assert "4 reading..." not in before and "3 reading..." in before
    running.scrape()
    text = running.get("/?refresh=0").text
    sections = text.split("<section>")[1:]
    assert [
        re.findall(r'<span class="value">([^<]*)</span> <span class="meta">([^<]*)</span>', s)
        for s in sections
    ] == [
        [
            ("3", "1 processing, 1 completed, 1 unknown"),
            ("1,540", "10 failed"),
            ("1,434.50", "about US$1.43"),
        ],
        [("1", "1 processing"), ("40", "3 failed"), ("200", "about US$0.20")],
    ]
    assert (
        text.count('<p class="cover">Totals over every job listed or configured, each once.</p>')
        == 2
    )
    # Without a page limit, the max pages the job asked for.
    assert (
        '<progress value="40" max="250" title="16%"></progress> <span class="pages">40 / 250'
        in text
    )
    assert '<span class="pages">1,500 / 200</span>' in text  # past its limit: the bar is full
    assert '<progress value="200" max="200" title="100%"></progress>' in text


@pytest.mark.parametrize(
    ("query", "meta"),
    [
        ("", '<meta http-equiv="refresh" content="30">'),
        ("?refresh=60", '<meta http-equiv="refresh" content="60">'),
        ("?refresh=1", '<meta http-equiv="refresh" content="5">'),
        ("?refresh=99999", '<meta http-equiv="refresh" content="3600">'),
        ("?refresh=soon", '<meta http-equiv="refresh" content="30">'),
        ("?refresh=0", None),
    ],
)
def test_landing_page_reloads_itself_unless_asked_not_to(fake, start_exporter, query, meta):
    running = start_exporter(jobs_config(fake, 1))
    text = running.get("/" + query).text
    assert re.findall(r"<meta http-equiv[^>]*>", text) == ([meta] if meta else [])
    if meta:
        assert '(<a href="?refresh=0">stop</a>)' in text
    else:
        assert '(<a href="./">reload every 30 s</a>)' in text
    assert fake.paths() == []  # the page calls no API


def test_each_landing_page_row_links_a_probe_and_its_debug_report(fake, start_exporter):
    config = jobs_config(fake, 2)
    fake.fail(fake.job_path(WS, "j1"), Fault(401, {"message": "no"}))
    running = start_exporter(config)
    running.scrape()
    page = running.get("/")
    hrefs = [html.unescape(h) for h in re.findall(r'<a href="(probe\?[^"]*)"', page.text)]
    assert hrefs == [
        "probe?workspace_id=ws-1&job_id=j0",
        "probe?workspace_id=ws-1&job_id=j0&debug=true",
        "probe?workspace_id=ws-1&job_id=j1",
        "probe?workspace_id=ws-1&job_id=j1&debug=true",
    ]
    # Followed as a browser does, relative to the page.
    probe, debug = (requests.get(urljoin(page.url, h), timeout=30) for h in hrefs[2:])
    assert probe.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'convocore_crawler_up{workspace_id="ws-1",job_id="j1"} 0' in probe.text
    assert debug.headers["Content-Type"].startswith("text/plain")
    lines = debug.text.splitlines()
    assert lines[0] == "Probe of job j1 in workspace ws-1"
    assert (
        "Result: down (convocore_crawler_up 0), reason unauthorized: the API refused the "
        "workspace secret (HTTP 401): check this workspace's token"
    ) in lines


def test_the_demo_banner_keeps_each_flag_on_one_line(start_exporter, fake):
    running = start_exporter(jobs_config(fake, 1), options=ServerOptions(demo=True))
    text = running.get("/").text
    (banner,) = re.findall(r'<p class="banner">(.*?)</p>', text, re.DOTALL)
    flags = re.findall(r"--\w+(?:[.-]\w+)*", html.unescape(re.sub(r"<[^>]+>", "", banner)))
    assert flags == ["--config.example", "--config.file"]
    # Every flag is in a <code> element, and a browser wraps none of those inside the banner
    # (a hyphen is otherwise a place to break a line).
    codes = re.findall(r"<code>(.*?)</code>", banner)
    assert codes == ["--config.example&nbsp;&gt;&nbsp;config.yaml", "--config.file"]
    assert ".banner code{white-space:nowrap}" in text
    assert "\n" not in banner.split("<code>", 1)[1].rsplit("</code>", 1)[0]


BAD_DETAIL = (
    "metric family 'bad_total': counter sample bad_total{k=\\\"v\\\"} is -1; "
    "a counter is a number >= 0"
)


def with_bad_family(filler_samples: int) -> list[Callable[[], list[Family]]]:
    """A process collector whose families end in a counter that has gone negative."""

    def produce() -> list[Family]:
        filler = Family("filler", "gauge", "Fills the first chunks.")
        for index in range(filler_samples):
            filler.add(f'i="{index:060d}"', 1.0)
        bad = Family("bad_total", "counter", "Gone negative.")
        bad.add('k="v"', -1.0)
        after = Family("after", "gauge", "Never written.")
        after.add("", 1.0)
        return [filler, bad, after]

    return [produce]


def read_to_eof(running, request: bytes) -> bytes:
    """Everything the server sends until it closes the connection (or 30 s pass)."""
    host, port = running.server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def error_lines(captured_logs: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for line in captured_logs if " level=error " in line]


@pytest.mark.parametrize("filler_samples", [0, 6000])
def test_a_family_the_writer_refuses_aborts_the_stream(
    fake, start_exporter, captured_logs, filler_samples
):
    running = start_exporter(jobs_config(fake), process_collectors=with_bad_family(filler_samples))
    # Keep-alive: the connection ends only because the server aborts it.
    answer = read_to_eof(running, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    assert b"\r\nTransfer-Encoding: chunked" in head
    chunks = []
    while body:
        size_line, rest = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        chunks.append(size)
        assert rest[size : size + 2] == b"\r\n"
        body = rest[size + 2 :]
        text = rest[:size].decode()
        assert text.startswith("# HELP convocore_crawler_exporter_build_info ")
        assert 'filler{i="' in text and "bad_total" not in text and "# HELP after" not in text
    # With the filler, one whole chunk went out before the bad family; never the last chunk.
    assert len(chunks) == (1 if filler_samples else 0)
    assert 0 not in chunks
    assert error_lines(captured_logs) == [
        'level=error logger=exporter.server msg="cannot write the exposition" path=/metrics '
        f'action="connection aborted" error=ValueError detail="{BAD_DETAIL}"'
    ]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        running.get()


def test_a_family_the_writer_refuses_is_a_500_for_http_1_0(fake, start_exporter, captured_logs):
    running = start_exporter(jobs_config(fake), process_collectors=with_bad_family(10))
    answer = read_to_eof(running, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 500 Internal Server Error"
    assert body == b"The exposition failed; see the exporter's log.\n"
    assert f"Content-Length: {len(body)}".encode() in head
    assert error_lines(captured_logs) == [
        'level=error logger=exporter.server msg="cannot write the exposition" path=/metrics '
        f'action="answered 500" error=ValueError detail="{BAD_DETAIL}"'
    ]


@pytest.mark.prometheus
def test_prometheus_records_the_aborted_scrape_as_failed(fake, start_exporter, tmp_path):
    prometheus = require_tool("prometheus")
    good = start_exporter(jobs_config(fake))
    bad = start_exporter(jobs_config(fake), process_collectors=with_bad_family(10))
    targets = {"good": good.url.removeprefix("http://"), "bad": bad.url.removeprefix("http://")}
    jobs = "".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['{target}']\n"
        for name, target in targets.items()
    )
    (tmp_path / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}",
        encoding="utf-8",
    )
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    process = spawn_prometheus(prometheus, tmp_path, port)
    try:
        scraped: dict[str, dict[str, str]] = {}

        def both_scraped() -> bool:
            assert process.poll() is None, "prometheus exited"
            try:
                active = requests.get(f"{api}/targets", timeout=10).json()["data"]["activeTargets"]
            except (requests.RequestException, ValueError, KeyError):
                return False
            scraped.clear()
            scraped.update({t["labels"]["job"]: t for t in active if t["health"] != "unknown"})
            return set(scraped) == {"good", "bad"}

        assert wait_for(both_scraped, 120), scraped
        assert (scraped["good"]["health"], scraped["good"]["lastError"]) == ("up", "")
        # The body ended without its last chunk: a failed scrape, not a short one.
        assert (scraped["bad"]["health"], scraped["bad"]["lastError"]) == ("down", "unexpected EOF")
        answer = requests.get(f"{api}/query", params={"query": "up"}, timeout=10).json()
        ups = {r["metric"]["job"]: r["value"][1] for r in answer["data"]["result"]}
        assert ups == {"good": "1", "bad": "0"}
        # Nothing of what the bad exporter did write was stored.
        answer = requests.get(
            f"{api}/query", params={"query": "count by (job) (convocore_crawler_up)"}, timeout=10
        ).json()
        assert {r["metric"]["job"]: r["value"][1] for r in answer["data"]["result"]} == {
            "good": "2"
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
