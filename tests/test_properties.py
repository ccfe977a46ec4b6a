"""Property-based tests: whatever the API answers or the config file holds, the parsers
return a result or a clear error, never an uncaught exception."""

from __future__ import annotations

import json
import math
import re
import struct

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import (
    API_KEYS,
    JOB_KEYS,
    WORKSPACE_KEYS,
    Config,
    ConfigError,
    parse_config,
)
from exporter.convocore.model import (
    MAX_AGENTS,
    MAX_FAILURE_CHARS,
    STATUSES,
    Job,
    agent_ids,
    as_number,
    failure_text,
    parse_job,
)
from exporter.convocore.transport import ApiResult, parse_envelope
from exporter.durations import DURATION_UNITS, MAX_DURATION_MS, DurationError, parse_duration
from exporter.exposition.writer import format_value

from .fakeapi import full_job

# Hundreds of examples per property: seconds each, so outside the quick loop.
pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JOB_FIELDS = sorted(full_job())

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "2026-11-01T10:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-02-30",
            "",
            " ",
            "COMPLETED",
            "processing",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["url", "maxPages", "x", ""]) | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
jobs = st.dictionaries(
    st.sampled_from(JOB_FIELDS) | st.text(max_size=10), json_values, max_size=len(JOB_FIELDS)
)


@SETTINGS
@given(jobs)
def test_parse_job_takes_any_object(data):
    job = parse_job(data)
    assert isinstance(job, Job)
    assert job.status in STATUSES
    for name in ("scraped_pages", "created_timestamp", "updated_timestamp", "max_pages"):
        number = getattr(job, name)
        assert number is None or (isinstance(number, float) and math.isfinite(number))


@SETTINGS
@given(
    st.dictionaries(st.sampled_from(JOB_FIELDS), json_values).map(
        lambda over: {**full_job(), **over}
    )
)
def test_parse_job_takes_a_realistic_job_with_any_fields_replaced(data):
    assert isinstance(parse_job(data), Job)


SECRET = "vg_s3cret"
# Text rich in what must not pass: control characters, whitespace of every kind, quotes,
# backslashes, surrogates, emoji, pieces of the secret and the secret itself.
hostile_text = st.lists(
    st.text(max_size=40)
    | st.sampled_from(
        [
            SECRET,
            "vg_",
            "s3cret",
            "\x00",
            "\r\n",
            "\t",
            "\u2028",
            "\x85",
            "\ud800",
            "\U0001f600",
            '"',
            "\\",
            "<b>",
            " ",
        ]
    ),
    max_size=40,
).map("".join)


@SETTINGS
@given(hostile_text, st.integers(min_value=0, max_value=400))
def test_a_failure_text_is_one_bounded_line_without_the_secret(text, padding):
    raw = text + "x" * padding

    def blank(c: str) -> bool:
        return c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F

    shown = failure_text(raw, [SECRET])
    if shown is None:
        assert all(blank(c) for c in raw)
        return
    assert 0 < len(shown) <= MAX_FAILURE_CHARS
    assert SECRET not in shown
    assert shown == shown.strip()
    assert "  " not in shown
    assert not any(blank(c) and c != " " for c in shown)
    shown.encode("utf-8")  # no lone surrogate
    if len(raw) <= MAX_FAILURE_CHARS and SECRET not in raw:
        assert len(shown) <= len(raw)  # never padded, never cut


@SETTINGS
@given(json_values, json_values)
def test_agents_are_distinct_non_blank_labels(many, one):
    agents = agent_ids(many, one)
    assert len(set(agents)) == len(agents) <= MAX_AGENTS
    for agent in agents:
        assert agent and agent == agent.strip()
        agent.encode("utf-8")


def _envelopes() -> st.SearchStrategy[bytes]:
    documents = (
        json_values
        | st.fixed_dictionaries({"success": json_values, "data": json_values})
        | st.fixed_dictionaries({"success": st.just(True), "data": jobs})
    )
    encoded = documents.map(lambda doc: json.dumps(doc).encode())
    return encoded | st.binary(max_size=200) | encoded.map(lambda b: b[: len(b) // 2])


@SETTINGS
@given(_envelopes())
def test_parse_envelope_takes_any_bytes(body):
    result = parse_envelope(body)
    assert isinstance(result, ApiResult)
    assert result.ok or result.reason == "invalid_response"


KEYS = sorted({"api", "workspaces"} | API_KEYS | WORKSPACE_KEYS | JOB_KEYS)
yaml_scalars = scalars | st.sampled_from(
    [
        "${CONVOCORE_TOKEN}",
        "${UNSET_VAR}",
        "${bad name}",
        "eu",
        "na",
        "http://127.0.0.1:1/v3",
        "10s",
        "job-abc",
        "missing-token-file",
    ]
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=4)
texts = (
    documents.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True))
    | yaml_values.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True))
    | st.text(max_size=300)
    | st.sampled_from(
        [
            "a: 2001-02-30\n",
            "2001-02-30",
            "workspaces:\n  - id: 2001-13-01\n",
            "&a [*a]",
            "? [a]\n: b\n",
            "!!python/object:os.system x",
            "[" * 10_000,
            "{a: 1, a: 2}",
            "a: !!binary '%%%'\n",
            "a: !!int 0x\n",
            "a: !!float 1e99999\n",
        ]
    )
)


def _check_config(text: str, source: str) -> None:
    try:
        config = parse_config(text, source, {"CONVOCORE_TOKEN": "tok"})
    except ConfigError as exc:
        message = str(exc)
        # The file, and the line and column when the error is at a place in it.
        assert re.match(re.escape(source) + r"(:\d+:\d+)?: \S", message), message
        assert len(message) > len(source) + 10
        assert "\n" not in message
    else:
        assert isinstance(config, Config)


@SETTINGS
@given(texts)
def test_parse_config_takes_any_text(tmp_path_factory, text):
    source = str(tmp_path_factory.getbasetemp() / "config.yaml")
    _check_config(text, source)


def canonical_duration(ms: int) -> str:
    """A duration as Prometheus writes one (model.Duration.String): each unit that has a
    share, largest first; ``0s`` for zero."""
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in DURATION_UNITS.items():
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@SETTINGS
@given(st.integers(min_value=0, max_value=MAX_DURATION_MS))
def test_a_canonical_duration_parses_back_to_its_seconds(ms):
    assert parse_duration(canonical_duration(ms)) == ms / 1000


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(list(DURATION_UNITS)), st.integers(0, 10**6)),
        min_size=1,
        unique_by=lambda part: part[0],
    )
)
def test_units_in_order_add_up(parts):
    parts.sort(key=lambda part: list(DURATION_UNITS).index(part[0]))
    text = "".join(f"{count}{unit}" for unit, count in parts)
    ms = sum(count * DURATION_UNITS[unit] for unit, count in parts)
    if ms > MAX_DURATION_MS:
        with pytest.raises(DurationError, match=r"^duration out of range: "):
            parse_duration(text)
    else:
        assert parse_duration(text) == ms / 1000
    if len(parts) > 1:  # the same parts in any other order are refused
        with pytest.raises(DurationError):
            parse_duration("".join(f"{count}{unit}" for unit, count in reversed(parts)))


@SETTINGS
@given(st.text(alphabet="0123456789ywdhms.-+ \u0663", max_size=12) | st.text(max_size=12))
def test_parse_duration_takes_any_text(text):
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        assert str(exc).startswith(("not a duration: ", "duration out of range: "))
    else:
        assert 0 <= seconds <= MAX_DURATION_MS / 1000


@SETTINGS
@given(
    st.floats(allow_nan=False)
    | st.integers(min_value=-(2**1023), max_value=2**1023)
    | st.booleans()
)
def test_a_written_value_reads_back_as_the_same_float(number):
    read = float(format_value(number))  # as Go's ParseFloat reads it: +Inf, -0, 1e+16 ...
    assert struct.pack(">d", read) == struct.pack(">d", float(number))  # -0.0 keeps its sign


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (250, 250.0),
        (2**53 + 1, float(2**53 + 1)),
        (-3, -3.0),
        (0.5, 0.5),
        (-0.0, -0.0),
        (1e308, 1e308),
        (float("inf"), None),
        (float("-inf"), None),
        (float("nan"), None),
        (10**400, None),  # beyond a float: JSON allows it
        (True, None),
        (False, None),
        ("42", None),
        (None, None),
        ([1], None),
    ],
)
def test_a_number_is_a_finite_json_number_and_nothing_else(value, expected):
    got = as_number(value)
    assert got == expected and type(got) is type(expected)
