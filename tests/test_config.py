"""Config files: valid ones load exactly; each invalid one is refused naming file and key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from exporter.config import (
    ConfigError,
    JobRef,
    Secret,
    load_config,
    parse_config,
)
from exporter.durations import DurationError, parse_duration

SECRET = "vg_live_do_not_leak_42"
ENV = {"CONVOCORE_TOKEN": SECRET}
VALID = """
api:
  region: na
  timeout_seconds: 5
  max_concurrency: 8
workspaces:
  - id: "ws-123"
    token: "${CONVOCORE_TOKEN}"
    jobs:
      - "job-abc"
      - id: "job-def"
        name: "docs-site"
"""


def test_a_valid_config_loads_exactly():
    config = parse_config(VALID, "c.yml", ENV)
    assert config.api.region == "na"
    assert config.api.base_url == "https://na-gcp-api.vg-stuff.com/v3"
    assert config.api.timeout_seconds == 5.0
    assert config.api.max_concurrency == 8
    assert config.api.max_response_bytes == 32 * 1024 * 1024
    assert config.api.min_refresh_interval == 10.0
    assert config.api.refresh_finished is False
    (ws,) = config.workspaces
    assert ws.id == "ws-123"
    assert ws.token.reveal() == SECRET
    assert ws.jobs == (JobRef("job-abc", ""), JobRef("job-def", "docs-site"))


def test_defaults_and_base_url_override():
    text = "api:\n  base_url: http://127.0.0.1:8080/v3/\nworkspaces:\n  - {id: w, token: t, jobs: [j]}\n"
    config = parse_config(text, "c.yml", {})
    assert config.api.base_url == "http://127.0.0.1:8080/v3"
    assert config.api.region == "eu"
    assert parse_config("workspaces: [{id: w, token: t, jobs: [j]}]", "c", {}).api.base_url == (
        "https://eu-gcp-api.vg-stuff.com/v3"
    )


def test_secrets_never_show_in_repr_or_str():
    config = parse_config(VALID, "c.yml", ENV)
    for text in (repr(config), str(config), repr(config.workspaces[0]), f"{config}"):
        assert SECRET not in text
    assert repr(Secret(SECRET)) == "Secret('<redacted>')"
    assert str(Secret(SECRET)) == "<redacted>"


def test_token_file_is_read_and_stripped_of_its_trailing_newline(tmp_path):
    (tmp_path / "secret").write_text(SECRET + "\n")
    path = tmp_path / "config.yaml"
    path.write_text("workspaces:\n  - id: w\n    token_file: secret\n    jobs: [j]\n")
    config = load_config(str(path))
    assert config.workspaces[0].token.reveal() == SECRET
    assert config.workspaces[0].token_file == "secret"


def test_a_plaintext_token_in_a_world_readable_file_is_a_warning(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"workspaces:\n  - id: w\n    token: {SECRET}\n    jobs: [j]\n")
    os.chmod(path, 0o644)
    config = load_config(str(path))
    assert config.warnings == (
        f"{path}:3:12: workspaces[0].token: a plaintext token in a world-readable file; "
        "use ${VAR} or token_file",
    )
    assert all(SECRET not in w for w in config.warnings)
    os.chmod(path, 0o600)
    assert load_config(str(path)).warnings == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("0ms", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        ("250ms", 0.25),
        ("1y2w3d4h5m6s7ms", 31536000 + 1209600 + 259200 + 14400 + 300 + 6.007),
        ("90s", 90.0),  # a unit need not be the largest that fits
        ("0001s", 1.0),
        ("292y", 292 * 365 * 86400.0),
    ],
)
def test_durations_are_read_as_prometheus_reads_them(text, seconds):
    assert parse_duration(text) == seconds


RULE = "(whole numbers with units y, w, d, h, m, s, ms, largest first, each once)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a duration: empty"),
        ("1s1m", f"not a duration: '1s1m' {RULE}"),  # smaller unit first
        ("5m5m", f"not a duration: '5m5m' {RULE}"),  # a unit twice
        ("1ms1s", f"not a duration: '1ms1s' {RULE}"),
        ("5", f"not a duration: '5' {RULE}"),
        ("m", f"not a duration: 'm' {RULE}"),
        ("1.5h", f"not a duration: '1.5h' {RULE}"),
        ("5 m", f"not a duration: '5 m' {RULE}"),
        ("-1s", f"not a duration: '-1s' {RULE}"),
        ("+1s", f"not a duration: '+1s' {RULE}"),
        ("1S", f"not a duration: '1S' {RULE}"),
        ("1us", f"not a duration: '1us' {RULE}"),
        ("1mss", f"not a duration: '1mss' {RULE}"),
        (" 1s", f"not a duration: ' 1s' {RULE}"),
        ("\u0663s", f"not a duration: '\u0663s' {RULE}"),  # ARABIC-INDIC DIGIT THREE
        ("293y", "duration out of range: '293y'"),
        ("9" * 25 + "ms", f"duration out of range: '{'9' * 25}ms'"),
    ],
)
def test_what_is_not_a_duration_is_refused_saying_why(text, message):
    with pytest.raises(DurationError) as raised:
        parse_duration(text)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("90s", 90.0), ("1h30m", 5400.0)],
)
def test_duration_keys_take_zero_and_canonical_durations(text, seconds):
    config = parse_config(
        f"api: {{min_refresh_interval: '{text}'}}\n"
        f"workspaces:\n  - {{id: w, token: x, discover: true, include_finished_for: '{text}'}}\n",
        "c.yml",
        ENV,
    )
    assert config.api.min_refresh_interval == seconds
    assert config.workspaces[0].include_finished_for == seconds


@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        ("", 7 * 86400.0),
        (", include_finished_for: null", 7 * 86400.0),
        (", include_finished_for: forever", None),
        (", include_finished_for: 30d", 30 * 86400.0),
    ],
)
def test_include_finished_for_defaults_to_a_week_and_forever_keeps_every_job(line, seconds):
    config = parse_config(
        f"workspaces:\n  - {{id: w, token: x, discover: true{line}}}\n", "c.yml", ENV
    )
    assert config.workspaces[0].include_finished_for == seconds


DURATION = f"a duration such as 0, 30s, 5m, 1h30m or 7d {RULE}"
API_KEYS = (
    "base_url, max_concurrency, max_response_bytes, min_refresh_interval, refresh_finished, "
    "region, request_cpus, timeout_seconds"
)
WORKSPACE_KEYS = (
    "allow_unconfigured_probes, discover, discover_grace_period, discover_interval, "
    "discover_max_pages, id, include_finished_for, jobs, "
    "max_jobs, page_stats, page_stats_interval, page_stats_max_pages, token, token_file"
)
WS = "workspaces:\n  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j]\n"

INVALID = [
    ("", "c.yml: the file is empty; expected a mapping with workspaces"),
    ("[1, 2]", "c.yml:1:1: the top level: expected a mapping, got a list"),
    (
        "workspaces: [\n",
        "c.yml:2:1: expected valid YAML: expected the node content, but found '<stream end>'",
    ),
    ("workspace: []\n", "c.yml:1:1: workspace: unknown key; expected one of api, workspaces"),
    (
        "workspaces: []\n",
        "c.yml:1:13: workspaces: expected a non-empty list of workspaces, got a list",
    ),
    (
        "workspaces: {}\n",
        "c.yml:1:13: workspaces: expected a non-empty list of workspaces, got a mapping",
    ),
    (
        "api: {regoin: eu}\n" + WS,
        f"c.yml:1:7: api.regoin: unknown key; expected one of {API_KEYS}",
    ),
    ("api: {region: us}\n" + WS, "c.yml:1:15: api.region: expected one of eu, na, got string 'us'"),
    (
        "api: {base_url: 'ftp://x'}\n" + WS,
        "c.yml:1:17: api.base_url: expected an http:// or https:// URL, got string 'ftp://x'",
    ),
    (
        "api: {timeout_seconds: '10'}\n" + WS,
        "c.yml:1:24: api.timeout_seconds: expected a number, got string '10'",
    ),
    (
        "api: {timeout_seconds: 0}\n" + WS,
        "c.yml:1:24: api.timeout_seconds: expected a number from 0.001 to 300, got number 0",
    ),
    (
        "api: {max_concurrency: 1.5}\n" + WS,
        "c.yml:1:24: api.max_concurrency: expected a whole number, got number 1.5",
    ),
    (
        "api: {max_concurrency: 0}\n" + WS,
        "c.yml:1:24: api.max_concurrency: expected a whole number from 1 to 256, got number 0",
    ),
    (
        "api: {max_concurrency: true}\n" + WS,
        "c.yml:1:24: api.max_concurrency: expected a whole number, got boolean true",
    ),
    (
        "api: {request_cpus: -1}\n" + WS,
        "c.yml:1:21: api.request_cpus: expected a whole number from 0 to 4096, got number -1",
    ),
    (
        "api: {min_refresh_interval: 10}\n" + WS,
        f"c.yml:1:29: api.min_refresh_interval: expected {DURATION}, got number 10",
    ),
    (
        "api: {min_refresh_interval: 1s1m}\n" + WS,
        f"c.yml:1:29: api.min_refresh_interval: expected {DURATION}, got string '1s1m'",
    ),
    (
        "api: {min_refresh_interval: ''}\n" + WS,
        f"c.yml:1:29: api.min_refresh_interval: expected {DURATION}, got string ''",
    ),
    (
        "api: {refresh_finished: 'yes'}\n" + WS,
        "c.yml:1:25: api.refresh_finished: expected true or false, got string 'yes'",
    ),
    (
        "workspaces:\n  - token: x\n    jobs: [j]\n",
        "c.yml:2:5: workspaces[0].id: missing (the workspace's id)",
    ),
    (
        "workspaces:\n  - id: w\n    jobs: [j]\n",
        "c.yml:2:5: workspaces[0]: expected exactly one of token or token_file, got neither",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    token_file: f\n    jobs: [j]\n",
        "c.yml:2:5: workspaces[0]: expected exactly one of token or token_file, got both",
    ),
    (
        "workspaces:\n  - id: w\n    token: ${UNSET_VAR}\n    jobs: [j]\n",
        "c.yml:3:12: workspaces[0].token: environment variable UNSET_VAR is not set",
    ),
    (
        "workspaces:\n  - id: w\n    token: 12345\n    jobs: [j]\n",
        "c.yml:3:12: workspaces[0].token: expected a non-empty string such as ${CONVOCORE_TOKEN}",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n",
        "c.yml:2:5: workspaces[0].jobs: expected at least one job id (or discover: true)",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: j\n",
        "c.yml:4:11: workspaces[0].jobs: expected a list of job ids, got string 'j'",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [a, b, a]\n",
        "c.yml:4:18: workspaces[0].jobs[2]: duplicate job id 'a'",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [a, {id: a}]\n",
        "c.yml:4:20: workspaces[0].jobs[1].id: duplicate job id 'a'",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [{name: n}]\n",
        "c.yml:4:12: workspaces[0].jobs[0].id: missing (the job's id)",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [{id: a, nmae: n}]\n",
        "c.yml:4:20: workspaces[0].jobs[0].nmae: unknown key; expected one of id, name",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [{id: a, name: 5}]\n",
        "c.yml:4:26: workspaces[0].jobs[0].name: expected a non-empty string, got number 5",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobz: [a]\n",
        f"c.yml:4:5: workspaces[0].jobz: unknown key; expected one of {WORKSPACE_KEYS}",
    ),
    (
        "workspaces:\n  - {id: w, token: x, jobs: [a]}\n  - {id: w, token: y, jobs: [b]}\n",
        "c.yml:3:10: workspaces[1].id: duplicate workspace id 'w'",
    ),
    (
        "workspaces:\n  - {id: w, token: x, jobs: [a], discover: 1}\n",
        "c.yml:2:44: workspaces[0].discover: expected true or false, got number 1",
    ),
    (
        "workspaces:\n  - {id: w, token: x, discover: true, max_jobs: 0}\n",
        "c.yml:2:49: workspaces[0].max_jobs: expected a whole number from 1 to 1000000, "
        "got number 0",
    ),
    (
        "workspaces:\n  - {id: w, token: x, discover: true, include_finished_for: week}\n",
        f"c.yml:2:61: workspaces[0].include_finished_for: expected {DURATION}, or forever, got string 'week'",
    ),
    (
        "workspaces:\n  - {id: w, token: x, discover: true, include_finished_for: 5m5m}\n",
        f"c.yml:2:61: workspaces[0].include_finished_for: expected {DURATION}, or forever, got string '5m5m'",
    ),
    (
        "workspaces:\n  - id: w\n    token_file: /nonexistent/secret\n    jobs: [a]\n",
        "c.yml:3:17: workspaces[0].token_file: cannot read token file '/nonexistent/secret' "
        "(No such file or directory)",
    ),
]
BAD_IDS = ["a/b", "a?b", "a#b", "a%2Fb", "a b", "a\tb", ".", "..", "", "x" * 129, "é"]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_an_invalid_config_is_refused_naming_the_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", ENV)
    assert str(caught.value) == message


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("where", ["workspace", "job", "job_mapping"])
def test_ids_that_could_change_the_url_path_are_refused(bad, where):
    quoted = '"' + bad.replace("\t", "\\t") + '"'
    ws_id = quoted if where == "workspace" else "w"
    job = quoted if where == "job" else "j"
    if where == "job_mapping":
        job = "{id: " + quoted + "}"
    text = f"workspaces:\n  - id: {ws_id}\n    token: x\n    jobs: [{job}]\n"
    where_key = {
        "workspace": "2:9: workspaces[0].id",
        "job": "4:12: workspaces[0].jobs[0]",
        "job_mapping": "4:17: workspaces[0].jobs[0].id",
    }[where]
    shown = bad if len(bad) <= 60 else bad[:57] + "..."  # a long value is cut
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", ENV)
    assert str(caught.value) == (
        f"c.yml:{where_key}: expected a plain identifier (1 to 128 of letters, digits, '-', "
        f"'_', '.', ':'), got string {shown!r}"
    )


def test_good_ids():
    text = 'workspaces:\n  - id: "ws_1.A:b-c"\n    token: x\n    jobs: ["' + "j" * 128 + '", 42]\n'
    config = parse_config(text, "c.yml", ENV)
    assert [j.id for j in config.workspaces[0].jobs] == ["j" * 128, "42"]


def test_errors_never_echo_a_token():
    text = f"workspaces:\n  - id: w\n    token: [{SECRET}]\n    jobs: [j]\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", ENV)
    assert SECRET not in str(caught.value)
    text = f"workspaces:\n  - id: w\n    token: {SECRET}\n    token_file: x\n    jobs: [j]\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", ENV)
    assert SECRET not in str(caught.value)


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "missing.yml"))
    assert (
        str(caught.value)
        == f"{tmp_path / 'missing.yml'}: cannot read the config file (No such file or directory)"
    )


def test_an_unknown_key_with_a_newline_is_shown_quoted_on_one_line():
    # Found by the property test: a key of two newlines reached the message raw.
    with pytest.raises(ConfigError) as caught:
        parse_config("? '\n\n'\n: 1\n", "c.yaml", {})
    assert str(caught.value) == "c.yaml:1:3: '\\n': unknown key; expected one of api, workspaces"


# -- each kind of error, at its line and column in a real file --------------------------------

FILE = """\
# the exporter's config
api:
  region: eu
  timeout_seconds: 10
  max_concurrency: 8
  min_refresh_interval: 30s

workspaces:
  - id: ws-main
    token: ${CONVOCORE_TOKEN}
    jobs:
      - job-a
      - id: job-b
        name: docs
  - id: ws-other
    token_file: token
    discover: true
"""
NOT_READ = "expected a value YAML can read, got an impossible date, number or tag"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # unknown key
        (
            "    jobs:\n",
            "    jobz:\n",
            f"11:5: workspaces[0].jobz: unknown key; expected one of {WORKSPACE_KEYS}",
        ),
        # wrong type
        (
            "max_concurrency: 8",
            "max_concurrency: '8'",
            "5:20: api.max_concurrency: expected a whole number, got string '8'",
        ),
        (
            "    jobs:\n      - job-a\n      - id: job-b\n        name: docs\n",
            "    jobs: {job-a: docs}\n",
            "11:11: workspaces[0].jobs: expected a list of job ids, got a mapping",
        ),
        # out of range
        (
            "timeout_seconds: 10",
            "timeout_seconds: 0",
            "4:20: api.timeout_seconds: expected a number from 0.001 to 300, got number 0",
        ),
        # bad duration
        (
            "min_refresh_interval: 30s",
            "min_refresh_interval: 30 s",
            f"6:25: api.min_refresh_interval: expected {DURATION}, got string '30 s'",
        ),
        # missing required key
        (
            "  - id: ws-other\n    token_file",
            "  - token_file",
            "15:5: workspaces[1].id: missing (the workspace's id)",
        ),
        (
            "      - id: job-b\n        name: docs\n",
            "      - name: docs\n",
            "13:9: workspaces[0].jobs[1].id: missing (the job's id)",
        ),
        # repeated key
        (
            "        name: docs\n",
            "        name: docs\n        name: site\n",
            "15:9: workspaces[0].jobs[1].name: set twice",
        ),
        ("    discover: true\n", "    discover: true\napi: {}\n", "18:1: api: set twice"),
        # bad environment reference
        (
            "${CONVOCORE_TOKEN}",
            "${1TOKEN}",
            "10:12: workspaces[0].token: expected ${NAME} with NAME a valid environment "
            "variable name",
        ),
        (
            "${CONVOCORE_TOKEN}",
            "${CONVOCORE_TOKN}",
            "10:12: workspaces[0].token: environment variable CONVOCORE_TOKN is not set",
        ),
        # bad token file
        (
            "token_file: token",
            "token_file: missing",
            "16:17: workspaces[1].token_file: cannot read token file 'missing' "
            "(No such file or directory)",
        ),
        (
            "token_file: token",
            "token_file: empty",
            "16:17: workspaces[1]: the token is empty",
        ),
        (
            "token_file: token",
            "token_file: binary",
            "16:17: workspaces[1].token_file: token file 'binary' is not UTF-8 text",
        ),
        # invalid YAML
        (
            "      - job-a\n",
            "      - [job-a\n",
            "13:11: expected valid YAML: expected ',' or ']', but got ':'",
        ),
        (
            "    discover: true\n",
            "\tdiscover: true\n",
            "17:1: expected valid YAML: found character '\\t' that cannot start any token",
        ),
        (
            "ws-other",
            "ws-\x07other",
            "15:12: expected valid YAML: special character #x0007 is not allowed",
        ),
        (
            "    discover: true\n",
            "    discover: true\n---\napi: {}\n",
            "18:1: expected valid YAML: expected a single document in the stream, but found "
            "another document",
        ),
        ("id: ws-other", "id: 2001-02-30", f"15:9: workspaces[1].id: {NOT_READ}"),
        # a value that is refused for what it is
        (
            "      - id: job-b\n",
            "      - id: job-a\n",
            "13:13: workspaces[0].jobs[1].id: duplicate job id 'job-a'",
        ),
        (
            "id: ws-other",
            "id: ws-main",
            "15:9: workspaces[1].id: duplicate workspace id 'ws-main'",
        ),
        (
            "id: ws-other",
            "id: ws/other",
            "15:9: workspaces[1].id: expected a plain identifier (1 to 128 of letters, digits, "
            "'-', '_', '.', ':'), got string 'ws/other'",
        ),
    ],
)
def test_each_kind_of_error_names_its_line_and_column(tmp_path, old, new, error):
    (tmp_path / "token").write_text(SECRET + "\n")
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    path = tmp_path / "config.yaml"
    path.write_text(FILE)
    assert [ws.id for ws in load_config(str(path), ENV).workspaces] == ["ws-main", "ws-other"]
    assert FILE.count(old) == 1
    path.write_text(FILE.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), ENV)
    assert str(caught.value) == f"{path}:{error}"
    assert SECRET not in str(caught.value)


def test_merge_keys_are_read_and_a_key_set_beside_one_wins():
    text = (
        "workspaces:\n"
        "  - &first\n"
        "    id: ws-1\n"
        "    token: ${CONVOCORE_TOKEN}\n"
        "    discover: true\n"
        "    max_jobs: 10\n"
        "  - <<: [{max_jobs: 20}, *first]\n"
        "    id: ws-2\n"
    )
    first, second = parse_config(text, "c.yml", ENV).workspaces
    assert (first.id, first.discover, first.max_jobs) == ("ws-1", True, 10)
    # The merged keys are read; id set beside the merge wins; the first mapping listed wins.
    assert (second.id, second.discover, second.max_jobs) == ("ws-2", True, 20)
    assert second.token.reveal() == SECRET
    with pytest.raises(ConfigError) as caught:
        parse_config(text + "    id: ws-3\n", "c.yml", ENV)
    assert str(caught.value) == "c.yml:9:5: workspaces[1].id: set twice"
    with pytest.raises(ConfigError) as caught:
        parse_config("workspaces:\n  - <<: [a]\n", "c.yml", ENV)
    assert str(caught.value) == (
        "c.yml:2:10: workspaces[0]: expected a valid merge (<<): a mapping or a list of "
        "mappings, got a string"
    )
    # A chain of merges (each workspace merging the one before) is resolved once per link.
    chain = "workspaces:\n  - &w0 {id: w0, token: t, discover: true}\n" + "".join(
        f"  - &w{i} {{<<: *w{i - 1}, id: w{i}}}\n" for i in range(1, 2000)
    )
    workspaces = parse_config(chain, "c.yml", ENV).workspaces
    assert [ws.id for ws in workspaces] == [f"w{i}" for i in range(2000)]
    assert {(ws.token.reveal(), ws.discover) for ws in workspaces} == {("t", True)}


def _tree(node):
    """A composed YAML node as plain data: kind, tag, value, plain or not, line and column."""
    where = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, not node.style, where)
    kids = node.value
    if isinstance(node, yaml.MappingNode):
        kids = [item for pair in kids for item in pair]
    return (type(node).__name__, node.tag, where, [_tree(kid) for kid in kids])


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="this PyYAML was built without libyaml")
@pytest.mark.parametrize(
    "text",
    [
        VALID,
        Path(__file__).parent.parent.joinpath("config.example.yaml").read_text(),
        "a: &x {b: 1, c: [y, n, 'y', \"n\", ~, null, 0o17, 0x1f, 1e3, .inf]}\n"
        "d:\n  <<: *x\n  e: !!str 12\n  f: |\n    two\n     lines\n  g: >-\n    folded\n"
        "    text\n  h: plain\n    continued   # a comment\n  i: 'it''s'\n"
        'j: ["\\u00e9\\t", 2026-12-07, 1_000, -.5]\n',
    ],
)
def test_libyaml_composes_the_nodes_pyyaml_composes(text):
    # The config is composed with libyaml when PyYAML has it (ten times as fast for a config
    # of thousands of jobs) and by PyYAML's own parser otherwise, and for every error message:
    # both must give the same nodes, positions included.
    assert _tree(yaml.CSafeLoader(text).get_single_node()) == _tree(
        yaml.SafeLoader(text).get_single_node()
    )
