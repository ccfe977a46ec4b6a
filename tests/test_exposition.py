"""The output is valid for the real Prometheus tools and both exposition formats."""

from __future__ import annotations

import gzip
import subprocess

import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from exporter.exposition import Family, format_value, render_labels, wants_openmetrics

from .conftest import config_yaml, parse_exposition, value
from .fakeapi import Fault, full_job
from .tools import require_tool

WS = "ws-123"


def mixed_config(fake):
    """Healthy jobs, a failed one, a down one, and label values that need escaping."""
    fake.set_jobs(
        WS,
        {
            "job-abc": full_job(primaryUrl='https://x.example/"quoted"\\path\nnext'),
            "job-done": full_job("job-done", status="completed", done=True),
            "job-down": full_job("job-down"),
        },
    )
    fake.fail(fake.job_path(WS, "job-down"), Fault(503, "<html>down</html>"))
    return config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n"
        '    jobs: [{id: job-abc, name: "Docs \\"main\\""}, job-done, job-down]\n',
    )


def test_promtool_check_metrics_finds_nothing(fake, start_exporter):
    promtool = require_tool("promtool")
    running = start_exporter(mixed_config(fake))
    running.scrape()  # a second scrape has every counter and histogram populated
    body = running.get().text
    assert "convocore_crawler_error_info" in body
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_openmetrics_is_negotiated_and_parses_strictly(fake, start_exporter):
    running = start_exporter(mixed_config(fake))
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    response = running.get(headers={"Accept": accept})
    assert response.headers["Content-Type"] == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    assert response.text.endswith("# EOF\n")
    families = {f.name: f for f in parse_om(response.text)}
    assert families["convocore_crawler_api_requests"].type == "counter"
    assert families["convocore_crawler_api_request_duration_seconds"].type == "histogram"
    info = families["convocore_crawler_job_info"].samples
    labels = {s.labels["job_id"]: s.labels for s in info}
    assert labels["job-abc"]["primary_url"] == 'https://x.example/"quoted"\\path\nnext'
    assert labels["job-abc"]["name"] == 'Docs "main"'
    assert not any(name.endswith("_created") for f in families.values() for name in [f.name])
    text = running.get()
    assert text.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    series = parse_exposition(text.text)
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="job-down") == 0


def test_gzip_when_asked(fake, start_exporter):
    running = start_exporter(mixed_config(fake))
    raw = requests.get(
        running.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(raw.raw.read(decode_content=False)).decode()
    assert "convocore_crawler_up{" in body
    plain = requests.get(
        running.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=10
    )
    assert "Content-Encoding" not in plain.headers


def test_values_and_labels_are_written_exactly():
    assert [format_value(v) for v in (1.0, 0.0, 40.0, 1796040000.123, 0.5, float("inf"))] == [
        "1",
        "0",
        "40",
        "1796040000.123",
        "0.5",
        "+Inf",
    ]
    assert format_value(float("nan")) == "NaN"
    assert render_labels(("a", "b"), ('x"y', "a\\b\nc")) == 'a="x\\"y",b="a\\\\b\\nc"'
    family = Family("demo_total", "counter", "Help with \\ and\nnewline.")
    family.add('k="v"', 3.0)
    from exporter.exposition import write_openmetrics, write_text

    assert write_text([family]).decode() == (
        "# HELP demo_total Help with \\\\ and\\nnewline.\n# TYPE demo_total counter\n"
        'demo_total{k="v"} 3\n'
    )
    assert write_openmetrics([family]).decode() == (
        "# HELP demo Help with \\\\ and\\nnewline.\n# TYPE demo counter\n"
        'demo_total{k="v"} 3\n# EOF\n'
    )


def test_accept_negotiation():
    assert wants_openmetrics("application/openmetrics-text; version=1.0.0")
    assert wants_openmetrics("text/plain;q=0.5, application/openmetrics-text;q=0.9")
    assert not wants_openmetrics("application/openmetrics-text;q=0")
    assert not wants_openmetrics("text/plain")
    assert not wants_openmetrics(None)
    assert not wants_openmetrics("*/*")


def test_metrics_are_streamed_chunked_and_whole_for_http_1_0(fake, start_exporter):
    import socket

    running = start_exporter(mixed_config(fake))
    streamed = running.get()
    assert streamed.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in streamed.headers
    host, port = running.server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0].endswith(b" 200 OK")
    assert f"Content-Length: {len(body)}".encode() in head
    series = parse_exposition(body.decode())
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="job-abc") == 1
    assert value(series, "convocore_crawler_up", workspace_id=WS, job_id="job-down") == 0
