"""The output is valid for the real Prometheus tools and both exposition formats."""

from __future__ import annotations

import gzip
import math
import struct
import subprocess

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter
from prometheus_client import generate_latest as client_text
from prometheus_client.openmetrics.exposition import generate_latest as client_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from exporter.collect import default_process_collectors
from exporter.config import parse_config
from exporter.demo.api import DEMO_TOKEN, DemoApi, DemoServer, demo_config_yaml
from exporter.exposition.negotiation import wants_openmetrics
from exporter.exposition.writer import (
    Family,
    format_value,
    iter_exposition,
    render_labels,
    write_openmetrics,
    write_text,
)

from .conftest import parse_exposition, value
from .fakeapi import Fault, full_job
from .support import config_yaml
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


@pytest.mark.integration
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
    assert write_text([family]).decode() == (
        "# HELP demo_total Help with \\\\ and\\nnewline.\n# TYPE demo_total counter\n"
        'demo_total{k="v"} 3\n'
    )
    assert write_openmetrics([family]).decode() == (
        "# HELP demo Help with \\\\ and\\nnewline.\n# TYPE demo counter\n"
        'demo_total{k="v"} 3\n# EOF\n'
    )


PROMETHEUS_2_42_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        (PROMETHEUS_2_42_ACCEPT, True),
        ("application/openmetrics-text; version=1.0.0", True),
        ("application/openmetrics-text;version=0.0.1", True),
        ("Application/OpenMetrics-Text", True),
        ("text/plain;q=0.5, application/openmetrics-text;q=0.9", True),
        # The client prefers the text format: it gets it, though it also takes OpenMetrics.
        ("text/plain;version=0.0.4, application/openmetrics-text;q=0.5", False),
        ("*/*;q=0.8, application/openmetrics-text;q=0.5", False),
        # Equal qualities: the first written wins.
        ("application/openmetrics-text, text/plain", True),
        ("text/plain, application/openmetrics-text", False),
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text;q=nonsense, text/plain;q=0.1", False),
        ("application/json, application/openmetrics-text;q=0.2", True),
        ("text/plain", False),
        ("*/*", False),
        ("application/json", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_negotiation(accept, openmetrics):
    assert wants_openmetrics(accept) is openmetrics


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


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-0.0, "-0"),  # the sign kept, as Go's strconv 'g' writes it
        (0.0, "0"),
        (0, "0"),
        (7, "7"),
        (-3, "-3"),
        (True, "1"),
        (False, "0"),
        (999_999_999_999_999, "999999999999999"),
        (10**15, "1000000000000000.0"),
        (2**53, "9007199254740992.0"),
        (2**63, "9.223372036854776e+18"),
        (1.5, "1.5"),
        (-1e-300, "-1e-300"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (float("-inf"), "-Inf"),
    ],
)
def test_format_value_takes_floats_ints_and_bools(value, text):
    assert format_value(value) == text
    if not math.isinf(value):
        assert struct.pack(">d", float(text)) == struct.pack(">d", float(value))


def test_negative_zero_keeps_its_sign_next_to_zeros():
    family = Family("z", "gauge", "Zeros.")
    for index, number in enumerate([0.0, -0.0, 0.0, 0, -0.0, False]):
        family.add(f'i="{index}"', number)
    assert write_text([family]).decode().splitlines()[2:] == [
        'z{i="0"} 0',
        'z{i="1"} -0',
        'z{i="2"} 0',
        'z{i="3"} 0',
        'z{i="4"} -0',
        'z{i="5"} 0',
    ]


# client_python's escaping case (tests/test_exposition.py there): a quote, a backslash and a
# newline in the help, and in a label value.
ESCAPE_HELP = 'A\ncount\\er"'
ESCAPE_LABEL = '\\x\n"'


def test_help_escaping_matches_client_python_in_both_formats():
    family = Family("cc_total", "counter", ESCAPE_HELP)
    family.add(render_labels(("a",), (ESCAPE_LABEL,)), 1.0)
    text = write_text([family]).decode()
    openmetrics = write_openmetrics([family]).decode()
    # Text format 0.0.4 escapes only \\ and newline in HELP; OpenMetrics also the quote.
    assert text == (
        '# HELP cc_total A\\ncount\\\\er"\n# TYPE cc_total counter\ncc_total{a="\\\\x\\n\\""} 1\n'
    )
    assert openmetrics == (
        '# HELP cc A\\ncount\\\\er\\"\n# TYPE cc counter\ncc_total{a="\\\\x\\n\\""} 1\n# EOF\n'
    )
    registry = CollectorRegistry()
    Counter("cc", ESCAPE_HELP, ["a"], registry=registry).labels(ESCAPE_LABEL).inc()

    def comparable(exposition: str) -> list[str]:
        # client_python adds a _created series and writes 1 as 1.0.
        return [
            line.replace("} 1.0", "} 1")
            for line in exposition.splitlines()
            if "_created" not in line and line != "# EOF"
        ]

    assert comparable(text) == comparable(client_text(registry).decode())
    assert comparable(openmetrics) == comparable(client_openmetrics(registry).decode())
    parsed = {f.name: f for f in parse_om(openmetrics)}
    assert parsed["cc"].documentation == ESCAPE_HELP
    assert parsed["cc"].samples[0].labels == {"a": ESCAPE_LABEL}


def _gauge(name: str, value: float = 1.0) -> Family:
    family = Family(name, "gauge", "A gauge.")
    family.add('k="v"', value)
    return family


def _counter(name: str, value: float) -> Family:
    family = Family(name, "counter", "A counter.")
    family.add("", 1.0)
    family.add('k="v"', value)
    return family


@pytest.mark.parametrize(
    ("bad", "formats", "message"),
    [
        (
            _counter("c_total", math.nan),
            (False, True),
            "metric family 'c_total': counter sample c_total{k=\"v\"} is NaN; "
            "a counter is a number >= 0",
        ),
        (
            _counter("c_total", -1.0),
            (False, True),
            "metric family 'c_total': counter sample c_total{k=\"v\"} is -1; "
            "a counter is a number >= 0",
        ),
        (
            _counter("c_total", -math.inf),
            (False, True),
            "metric family 'c_total': counter sample c_total{k=\"v\"} is -Inf; "
            "a counter is a number >= 0",
        ),
        (
            _counter("requests", 2.0),
            (True,),
            "metric family 'requests': an OpenMetrics counter's name must end in _total",
        ),
        (_gauge("first"), (False, True), "metric family 'first': the name is used twice"),
    ],
)
def test_invalid_families_are_refused_before_their_text(bad, formats, message):
    for openmetrics in formats:
        pieces = iter_exposition([_gauge("first"), bad, _gauge("last")], openmetrics)
        assert next(pieces).decode() == (
            '# HELP first A gauge.\n# TYPE first gauge\nfirst{k="v"} 1\n'
        )
        with pytest.raises(ValueError) as raised:
            next(pieces)
        assert str(raised.value) == message


def test_what_each_format_may_carry():
    # The text format names a counter as written; _total is OpenMetrics' rule.
    assert write_text([_counter("requests", 2.0)]).decode().splitlines()[1:] == [
        "# TYPE requests counter",
        "requests 1",
        'requests{k="v"} 2',
    ]
    # OpenMetrics names a counter family without _total: it clashes with a gauge of that name.
    clash = [_gauge("c"), _counter("c_total", 1.0)]
    assert "c_total 1" in write_text(clash).decode()
    with pytest.raises(ValueError, match=r"^metric family 'c': the name is used twice$"):
        write_openmetrics(clash)
    # An empty family is not written, but its name still counts.
    with pytest.raises(ValueError, match=r"^metric family 'x': the name is used twice$"):
        write_text([Family("x", "gauge", "Empty."), _gauge("x")])
    # Zero (of either sign) and +Inf are counter values.
    lines = write_text([_counter("c_total", -0.0), _counter("d_total", math.inf)]).decode()
    assert [line for line in lines.splitlines() if 'k="v"' in line] == [
        'c_total{k="v"} -0',
        'd_total{k="v"} +Inf',
    ]


@pytest.mark.integration
def test_the_demo_passes_the_writer_checks_in_both_formats(start_exporter, captured_logs):
    """Every family the exporter produces (jobs, its own counters and histogram, process and
    Python metrics) is one the writer accepts, in both formats."""
    promtool = require_tool("promtool")
    demo = DemoServer(DemoApi())
    demo.start()
    try:
        config = parse_config(
            demo_config_yaml(demo.base_url), "<demo>", {"CONVOCORE_DEMO_TOKEN": DEMO_TOKEN}
        )
        running = start_exporter(config, process_collectors=default_process_collectors())
        running.get()  # the second scrapes have every counter and histogram populated
        text = running.get().text
        openmetrics = running.get(headers={"Accept": "application/openmetrics-text"}).text
    finally:
        demo.shutdown()
        demo.server_close()
    assert "process_cpu_seconds_total " in text and "python_gc_objects_collected_total{" in text
    assert "convocore_crawler_api_request_duration_seconds_bucket{" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert openmetrics.endswith("\n# EOF\n")
    families = {f.name: f.type for f in parse_om(openmetrics)}
    assert families["convocore_crawler_api_requests"] == "counter"
    assert families["process_cpu_seconds"] == "counter"
    assert [line for line in captured_logs if " level=error " in line] == []
