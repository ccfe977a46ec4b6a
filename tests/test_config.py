"""Config files: valid ones load exactly; each invalid one is refused naming file and key."""

from __future__ import annotations

import os

import pytest

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
        f"{path}: workspaces[0].token: a plaintext token in a world-readable file; "
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


WS = "workspaces:\n  - id: w\n    token: ${CONVOCORE_TOKEN}\n    jobs: [j]\n"

INVALID = [
    ("", "c.yml: the file is empty; expected a mapping with workspaces"),
    ("[1, 2]", "c.yml: (top level): expected a mapping, got a list"),
    ("workspaces: [\n", "c.yml: not valid YAML at line 2, column 1"),
    ("workspace: []\n", "c.yml: workspace: unknown key (allowed: api, workspaces)"),
    ("workspaces: []\n", "c.yml: workspaces: expected a non-empty list of workspaces, got a list"),
    (
        "workspaces: {}\n",
        "c.yml: workspaces: expected a non-empty list of workspaces, got a mapping",
    ),
    ("api: {regoin: eu}\n" + WS, "c.yml: api.regoin: unknown key"),
    ("api: {region: us}\n" + WS, "c.yml: api.region: expected one of eu, na, got string 'us'"),
    (
        "api: {base_url: 'ftp://x'}\n" + WS,
        "c.yml: api.base_url: expected an http:// or https:// URL",
    ),
    (
        "api: {timeout_seconds: '10'}\n" + WS,
        "c.yml: api.timeout_seconds: expected a number, got string '10'",
    ),
    (
        "api: {timeout_seconds: 0}\n" + WS,
        "c.yml: api.timeout_seconds: expected a number from 0.001 to 300",
    ),
    ("api: {max_concurrency: 1.5}\n" + WS, "c.yml: api.max_concurrency: expected a whole number"),
    (
        "api: {max_concurrency: 0}\n" + WS,
        "c.yml: api.max_concurrency: expected a whole number from 1 to 256",
    ),
    (
        "api: {max_concurrency: true}\n" + WS,
        "c.yml: api.max_concurrency: expected a whole number, got boolean true",
    ),
    (
        "api: {min_refresh_interval: 10}\n" + WS,
        "c.yml: api.min_refresh_interval: expected a duration",
    ),
    (
        "api: {min_refresh_interval: 1s1m}\n" + WS,
        "c.yml: api.min_refresh_interval: expected a duration such as 0, 30s, 5m, 1h30m or 7d "
        "(whole numbers with units y, w, d, h, m, s, ms, largest first, each once), "
        "got string '1s1m'",
    ),
    (
        "api: {min_refresh_interval: ''}\n" + WS,
        "c.yml: api.min_refresh_interval: expected a duration such as 0, 30s, 5m, 1h30m or 7d "
        "(whole numbers with units y, w, d, h, m, s, ms, largest first, each once), "
        "got string ''",
    ),
    (
        "api: {refresh_finished: 'yes'}\n" + WS,
        "c.yml: api.refresh_finished: expected true or false",
    ),
    ("workspaces:\n  - token: x\n    jobs: [j]\n", "c.yml: workspaces[0].id: missing"),
    (
        "workspaces:\n  - id: w\n    jobs: [j]\n",
        "c.yml: workspaces[0]: expected exactly one of token or token_file, got neither",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    token_file: f\n    jobs: [j]\n",
        "c.yml: workspaces[0]: expected exactly one of token or token_file, got both",
    ),
    (
        "workspaces:\n  - id: w\n    token: ${UNSET_VAR}\n    jobs: [j]\n",
        "c.yml: workspaces[0].token: environment variable UNSET_VAR is not set",
    ),
    (
        "workspaces:\n  - id: w\n    token: 12345\n    jobs: [j]\n",
        "c.yml: workspaces[0].token: expected a non-empty string such as ${CONVOCORE_TOKEN}",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n",
        "c.yml: workspaces[0].jobs: expected at least one job id (or discover: true)",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: j\n",
        "c.yml: workspaces[0].jobs: expected a list of job ids, got string 'j'",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [a, b, a]\n",
        "c.yml: workspaces[0].jobs[2]: duplicate job id 'a'",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [a, {id: a}]\n",
        "c.yml: workspaces[0].jobs[1].id: duplicate job id 'a'",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [{name: n}]\n",
        "c.yml: workspaces[0].jobs[0].id: missing",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [{id: a, nmae: n}]\n",
        "c.yml: workspaces[0].jobs[0].nmae: unknown key",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobs: [{id: a, name: 5}]\n",
        "c.yml: workspaces[0].jobs[0].name: expected a non-empty string, got number 5",
    ),
    (
        "workspaces:\n  - id: w\n    token: x\n    jobz: [a]\n",
        "c.yml: workspaces[0].jobz: unknown key",
    ),
    (
        "workspaces:\n  - {id: w, token: x, jobs: [a]}\n  - {id: w, token: y, jobs: [b]}\n",
        "c.yml: workspaces[1].id: duplicate workspace id 'w'",
    ),
    (
        "workspaces:\n  - {id: w, token: x, jobs: [a], discover: 1}\n",
        "c.yml: workspaces[0].discover: expected true or false",
    ),
    (
        "workspaces:\n  - {id: w, token: x, discover: true, max_jobs: 0}\n",
        "c.yml: workspaces[0].max_jobs: expected a whole number from 1",
    ),
    (
        "workspaces:\n  - {id: w, token: x, discover: true, include_finished_for: week}\n",
        "c.yml: workspaces[0].include_finished_for: expected a duration",
    ),
    (
        "workspaces:\n  - {id: w, token: x, discover: true, include_finished_for: 5m5m}\n",
        "c.yml: workspaces[0].include_finished_for: expected a duration such as 0, 30s, 5m, "
        "1h30m or 7d (whole numbers with units y, w, d, h, m, s, ms, largest first, each once), "
        "got string '5m5m'",
    ),
    (
        "workspaces:\n  - id: w\n    token_file: /nonexistent/secret\n    jobs: [a]\n",
        "c.yml: workspaces[0].token_file: cannot read token file '/nonexistent/secret'",
    ),
]
BAD_IDS = ["a/b", "a?b", "a#b", "a%2Fb", "a b", "a\tb", ".", "..", "", "x" * 129, "é"]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_an_invalid_config_is_refused_naming_the_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", ENV)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("where", ["workspace", "job", "job_mapping"])
def test_ids_that_could_change_the_url_path_are_refused(bad, where):
    quoted = '"' + bad.replace("\t", "\\t") + '"'
    ws_id = quoted if where == "workspace" else "w"
    job = quoted if where == "job" else "j"
    if where == "job_mapping":
        job = "{id: " + quoted + "}"
    text = f"workspaces:\n  - id: {ws_id}\n    token: x\n    jobs: [{job}]\n"
    key = {
        "workspace": "workspaces[0].id",
        "job": "workspaces[0].jobs[0]",
        "job_mapping": "workspaces[0].jobs[0].id",
    }[where]
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yml", ENV)
    assert str(caught.value).startswith(f"c.yml: {key}: expected a plain identifier")


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
    assert str(caught.value).startswith("c.yaml: '\\n': unknown key (allowed: api, workspaces)")
