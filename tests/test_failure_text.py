"""A job's failure text (``resultError``) and its agents (``toAgentIds``, ``toAgentId``) as
info series: exact label values, bounded and safe in both formats, and the job's other
series unchanged by them."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.convocore.model import MAX_AGENTS, MAX_FAILURE_CHARS, failure_text

from .conftest import Series, parse_exposition
from .fakeapi import TOKEN, FakeConvocore, full_job
from .processes import run_exporter
from .support import config_yaml
from .tools import require_tool

WS = "ws-123"
P = "convocore_crawler_"
FAILURE = P + "job_failure_info"
AGENT = P + "job_agent_info"
OM_ACCEPT = "application/openmetrics-text;version=1.0.0"

# A failed job as the API answers it, with no failure text and one agent.
FAILED: dict[str, Any] = {
    "status": "failed",
    "failed": True,
    "done": True,
    "message": "Crawl failed",
    "resultError": None,
}
ESCAPES = 'line one\nline two\r\n\ttabbed "quoted" back\\slash\x00nul \U0001f600 end'
ESCAPES_SHOWN = 'line one line two tabbed "quoted" back\\slash nul \U0001f600 end'
MARKUP = '<script>alert("x")</script> & <b>bold</b>'
LONG = "0123456789" * 10_000  # 100,000 characters
LONG_SHOWN = LONG[: MAX_FAILURE_CHARS - 1] + "\u2026"
DROP = object()  # a field left out of the answer


def config(fake: FakeConvocore, jobs: list[str]) -> str:
    return config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [{', '.join(jobs)}]\n",
    )


def serve(fake: FakeConvocore, start_exporter: Any, jobs: dict[str, dict[str, Any]]) -> Any:
    """An exporter of ``jobs`` (each a full_job with these fields) beside a control job,
    ``plain``: the same failed job without a failure text."""
    fake.set_jobs(
        WS,
        {
            "plain": full_job("plain", WS, **FAILED),
            **{
                job_id: {
                    k: v
                    for k, v in (full_job(job_id, WS, **FAILED) | over).items()
                    if v is not DROP
                }
                for job_id, over in jobs.items()
            },
        },
    )
    return start_exporter(config(fake, ["plain", *jobs]))


def of(series: Series, metric: str, job_id: str) -> list[dict[str, str]]:
    """The label sets of ``metric`` for one job, without workspace_id and job_id, each value 1."""
    found = []
    for (name, labels), sample in series.items():
        shown = dict(labels)
        if name == metric and shown.pop("job_id") == job_id:
            assert shown.pop("workspace_id") == WS
            assert sample == 1
            found.append(shown)
    return sorted(found, key=lambda labels: sorted(labels.items()))


def others(series: Series, job_id: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every other series of the job, its job_id left out (the time of its last fetch too:
    each job is fetched at its own moment)."""
    skip = {FAILURE, AGENT, P + "last_success_timestamp_seconds"}
    return {
        (name, frozenset(kv for kv in labels if kv[0] != "job_id")): sample
        for (name, labels), sample in series.items()
        if ("job_id", job_id) in labels and name not in skip
    }


def test_the_failure_text_is_one_series_with_the_text_exactly(fake, start_exporter):
    running = serve(
        fake,
        start_exporter,
        {
            "text": {"resultError": "Crawler blocked by robots.txt"},
            "long": {"resultError": LONG},
            "escapes": {"resultError": ESCAPES},
            "markup": {"resultError": MARKUP},
            "padded": {"resultError": "  \n\tTimed out   after\n\n 3 retries \t"},
        },
    )
    series = running.scrape()
    expected = {
        "text": "Crawler blocked by robots.txt",
        "long": LONG_SHOWN,
        "escapes": ESCAPES_SHOWN,
        "markup": MARKUP,
        "padded": "Timed out after 3 retries",
    }
    for job_id, text in expected.items():
        assert of(series, FAILURE, job_id) == [{"result_error": text}], job_id
        assert others(series, job_id) == others(series, "plain"), job_id
    assert len(LONG_SHOWN) == MAX_FAILURE_CHARS == 300
    assert of(series, FAILURE, "plain") == []
    # A second scrape serves the jobs from memory, with the same series.
    again = running.scrape()
    assert {k: v for k, v in again.items() if k[0] == FAILURE} == {
        k: v for k, v in series.items() if k[0] == FAILURE
    }


@pytest.mark.parametrize(
    "result_error",
    [None, "", "   \n\t ", {"message": "boom"}, ["boom"], 42, 1.5, True],
    ids=["null", "empty", "blank", "object", "list", "integer", "float", "boolean"],
)
def test_no_failure_text_gives_no_series_and_changes_nothing_else(
    fake, start_exporter, result_error
):
    series = serve(fake, start_exporter, {"odd": {"resultError": result_error}}).scrape()
    assert of(series, FAILURE, "odd") == []
    assert [k for k in series if k[0] == FAILURE] == []
    assert others(series, "odd") == others(series, "plain")
    assert series[(P + "up", frozenset({("workspace_id", WS), ("job_id", "odd")}))] == 1


def test_a_missing_result_error_gives_no_series(fake, start_exporter):
    series = serve(fake, start_exporter, {"gone": {"resultError": DROP}}).scrape()
    assert "resultError" not in fake.jobs[WS]["gone"]
    assert [k for k in series if k[0] == FAILURE] == []
    assert others(series, "gone") == others(series, "plain")


def test_message_alone_is_not_a_failure_text(fake, start_exporter):
    """Convocore's own client shows ``resultError || message``; ``message`` also holds
    progress notes such as "Crawling", so the exporter reads resultError only."""
    series = serve(
        fake, start_exporter, {"noted": {"message": "Crawler blocked by robots.txt"}}
    ).scrape()
    assert [k for k in series if k[0] == FAILURE] == []


@pytest.mark.integration
def test_the_text_reads_back_the_same_in_both_formats_and_promtool_finds_nothing(
    fake, start_exporter
):
    promtool = require_tool("promtool")
    running = serve(
        fake,
        start_exporter,
        {
            "escapes": {"resultError": ESCAPES, "toAgentIds": ['agent "one"\\', "agent\ntwo"]},
            "markup": {"resultError": MARKUP},
            "surrogate": {"resultError": "half \ud83d of a pair"},
        },
    )
    text = running.get()
    om = running.get(headers={"Accept": OM_ACCEPT})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    expected = {
        "escapes": ESCAPES_SHOWN,
        "markup": MARKUP,
        "surrogate": "half \ufffd of a pair",
    }
    for body, parse in ((text.text, parse_text), (om.text, parse_om)):
        assert "\x00" not in body
        read = {
            s.labels["job_id"]: s.labels["result_error"]
            for family in parse(body)
            for s in family.samples
            if s.name == FAILURE
        }
        assert read == expected
        agents = sorted(
            s.labels["agent_id"]
            for family in parse(body)
            for s in family.samples
            if s.name == AGENT and s.labels["job_id"] == "escapes"
        )
        assert agents == ['agent "one"\\', "agent two"]
    assert b"\x00" not in text.content + om.content
    line = (
        f'{FAILURE}{{workspace_id="{WS}",job_id="escapes",result_error='
        '"line one line two tabbed \\"quoted\\" back\\\\slash nul \U0001f600 end"} 1\n'
    )
    assert line in text.text and line in om.text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.text, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.integration
def test_the_token_in_a_failure_text_is_redacted_everywhere(
    fake, start_exporter, captured_logs, tmp_path
):
    said = f"401 from the crawler with Authorization: Bearer {TOKEN}; retry with {TOKEN}x"
    shown = "401 from the crawler with Authorization: Bearer <redacted>; retry with <redacted>x"
    fake.set_jobs(WS, {"leaky": full_job("leaky", WS, **(FAILED | {"resultError": said}))})
    running = start_exporter(config(fake, ["leaky"]))
    series = running.scrape()
    assert of(series, FAILURE, "leaky") == [{"result_error": shown}]
    bodies = [
        running.get(path).text
        for path in ("/metrics", "/", f"/probe?workspace_id={WS}&job_id=leaky&debug=true")
    ]
    bodies.append(running.get(headers={"Accept": OM_ACCEPT}).text)
    assert [body for body in bodies if TOKEN in body] == []
    assert shown.replace("<", "&lt;").replace(">", "&gt;") in bodies[1]  # the landing page
    assert f"Failure text (resultError): {shown}\n" in bodies[2]  # the debug report
    assert not [line for line in captured_logs if TOKEN in line]
    # A long text is cut after the secret is replaced: no part of it is left at the cut.
    cut_at = "x" * (MAX_FAILURE_CHARS - 5) + TOKEN
    assert failure_text(cut_at, [TOKEN]) == "x" * (MAX_FAILURE_CHARS - 5) + "<red\u2026"
    # And --once.
    path = tmp_path / "config.yaml"
    path.write_text(config(fake, ["leaky"]))
    once = run_exporter(
        "--once", "--config.file", str(path), "--log.level", "debug", env={"CONVOCORE_TOKEN": TOKEN}
    )
    assert once.returncode == 0, once.stderr
    assert TOKEN not in once.stdout + once.stderr
    assert of(parse_exposition(once.stdout), FAILURE, "leaky") == [{"result_error": shown}]


def test_every_configured_secret_is_redacted_not_only_the_job_workspace(fake, start_exporter):
    other = "vg_other_workspace_secret_42"
    fake.set_jobs(
        WS, {"j": full_job("j", WS, **(FAILED | {"resultError": f"{other} and {TOKEN}"}))}
    )
    config_text = config_yaml(
        fake.base_url,
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    jobs: [j]\n"
        f"  - id: ws-other\n    token: {other}\n    jobs: [k]\n",
    )
    series = start_exporter(config_text).scrape()
    assert of(series, FAILURE, "j") == [{"result_error": "<redacted> and <redacted>"}]


def test_agents_one_series_each_from_the_list_else_the_single_field(fake, start_exporter):
    running = serve(
        fake,
        start_exporter,
        {
            "two": {"toAgentIds": ["agent-a", "agent-b", "agent-a"], "toAgentId": "agent-a"},
            "single": {"toAgentIds": None, "toAgentId": "agent-old"},
            "unlisted": {"toAgentIds": DROP, "toAgentId": "agent-old"},
            "emptylist": {"toAgentIds": [], "toAgentId": "agent-old"},
            "listwins": {"toAgentIds": ["agent-new"], "toAgentId": "agent-old"},
            "none": {"toAgentIds": [], "toAgentId": None},
            "junk": {"toAgentIds": [1, None, "", "  ", {"id": "x"}], "toAgentId": 7},
            "odd": {"toAgentIds": "agent-a", "toAgentId": ""},
        },
    )
    series = running.scrape()
    expected = {
        "two": ["agent-a", "agent-b"],
        "single": ["agent-old"],
        "unlisted": ["agent-old"],
        "emptylist": ["agent-old"],
        "listwins": ["agent-new"],
        "none": [],
        "junk": [],
        "odd": [],
    }
    for job_id, agents in expected.items():
        assert of(series, AGENT, job_id) == [{"agent_id": a} for a in agents], job_id
        assert others(series, job_id) == others(series, "plain"), job_id
    assert of(series, AGENT, "plain") == [{"agent_id": "agent-1"}]


def test_the_agents_of_one_job_are_capped(fake, start_exporter):
    many = [f"agent-{i:04d}" for i in range(MAX_AGENTS + 50)]
    series = serve(fake, start_exporter, {"many": {"toAgentIds": many}}).scrape()
    assert of(series, AGENT, "many") == [{"agent_id": a} for a in many[:MAX_AGENTS]]
    assert MAX_AGENTS == 100


def test_a_new_answer_replaces_the_series_and_a_gone_text_leaves_none(fake, start_exporter):
    # A processing job, fetched again on every scrape (min_refresh_interval 0s).
    fake.set_jobs(WS, {"j": full_job("j", WS, resultError="first", toAgentIds=["a", "b"])})
    running = start_exporter(config(fake, ["j"]))
    series = running.scrape()
    assert of(series, FAILURE, "j") == [{"result_error": "first"}]
    assert of(series, AGENT, "j") == [{"agent_id": "a"}, {"agent_id": "b"}]
    fake.set_jobs(WS, {"j": full_job("j", WS, resultError="second", toAgentIds=["c"])})
    series = running.scrape()
    assert of(series, FAILURE, "j") == [{"result_error": "second"}]
    assert of(series, AGENT, "j") == [{"agent_id": "c"}]
    fake.set_jobs(WS, {"j": full_job("j", WS, toAgentIds=[], toAgentId=None)})
    series = running.scrape()
    assert of(series, FAILURE, "j") == []
    assert of(series, AGENT, "j") == []


def test_the_landing_page_shows_the_text_as_characters(fake, start_exporter):
    running = serve(fake, start_exporter, {"markup": {"resultError": MARKUP}})
    running.scrape()
    page = running.get("/").text
    row = next(line for line in page.splitlines() if '"id">markup</code>' in line)
    assert (
        '<td data-label="Status"><span class="st st-failed">failed</span><br><span class="why">'
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;</span></td>"
    ) in row
    assert "<script" not in page and "<b>" not in page
    plain = next(line for line in page.splitlines() if '"id">plain</code>' in line)
    assert '<span class="st st-failed">failed</span></td>' in plain
    assert 'class="why"' not in plain


def test_the_comparison_of_other_series_covers_every_job_series(fake, start_exporter):
    series = serve(fake, start_exporter, {"text": {"resultError": "x"}}).scrape()
    compared = others(series, "plain")
    # up, job_info, 5 statuses and 19 values (webhookFinalizedAt is null); not the failure
    # text, the agents or the time of the last fetch.
    assert len(compared) == 26
    assert compared[(P + "up", frozenset({("workspace_id", WS)}))] == 1
    assert compared[(P + "job_failed", frozenset({("workspace_id", WS)}))] == 1


@pytest.mark.parametrize("moved", [False, True])
def test_a_discovered_job_s_text_is_redacted_from_its_listing_and_its_get_job(
    fake, start_exporter, moved
):
    """Discovered jobs take their text from list answers, and from get-job when an active job
    moved in the list between two full listings: redacted on both paths."""
    text = f"auth failed with Bearer {TOKEN} at step 2"
    shown = "auth failed with Bearer <redacted> at step 2"
    failing = full_job("found", WS, resultError=text)  # still running, with a text
    done = {f"o{i}": full_job(f"o{i}", WS, status="completed", done=True) for i in range(299)}
    older = dict(list(done.items())[:50]) | {"found": failing} | dict(list(done.items())[50:])
    fake.set_jobs(WS, older)
    discovering = config_yaml(
        fake.base_url, f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n"
    )
    running = start_exporter(discovering)
    series = running.scrape()
    assert of(series, FAILURE, "found") == [{"result_error": shown}]
    if moved:  # 100 newer jobs push it from page 1 to 2: the refresh reads it by get-job
        newer = {f"n{i}": full_job(f"n{i}", WS, status="completed", done=True) for i in range(100)}
        fake.set_jobs(WS, newer | older)
        series = running.scrape()
        assert fake.count(fake.job_path(WS, "found")) == 1
        assert of(series, FAILURE, "found") == [{"result_error": shown}]
    assert TOKEN not in running.get().text
