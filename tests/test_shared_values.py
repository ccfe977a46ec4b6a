"""Values many jobs share are kept once: a parsed job's status, refresh rate, processing
mode, agents and small whole numbers are the objects other jobs with the same values hold,
with exactly the values parsed; what cannot be shared safely (a negative zero, long texts)
is not."""

from __future__ import annotations

import json

from exporter.convocore.model import MAX_LABEL_CHARS, parse_job

from .fakeapi import full_job


def parsed(**over):
    # Through JSON text, as the API's answers are read: every string its own object.
    return parse_job(json.loads(json.dumps(full_job(**over))))


def test_jobs_share_their_common_values_with_the_values_parsed():
    one = parsed(job_id="a", status="Completed", toAgentIds=["agent-7", "agent-8"])
    two = parsed(job_id="b", status="completed ", toAgentIds=["agent-7", "agent-8"])
    assert (one.status, one.refresh_rate, one.agents) == (
        "completed",
        "24h",
        ("agent-7", "agent-8"),
    )
    assert one.status is two.status
    assert one.refresh_rate is two.refresh_rate
    assert one.agents is two.agents
    assert one.scraped_pages == 40.0 and one.scraped_pages is two.scraped_pages
    assert one.page_limit == 200.0 and one.page_limit is two.page_limit


def test_a_negative_zero_and_long_texts_are_not_shared():
    zero = parsed(job_id="a", estimatedCredits=-0.0)
    assert str(zero.estimated_credits) == "-0.0"
    assert str(parsed(job_id="b", estimatedCredits=0).estimated_credits) == "0.0"
    rate = "r" * 65
    one, two = parsed(job_id="a", refreshRate=rate), parsed(job_id="b", refreshRate=rate)
    assert one.refresh_rate == two.refresh_rate == rate
    assert one.refresh_rate is not two.refresh_rate
    long = "x" * (MAX_LABEL_CHARS + 5)
    assert parsed(job_id="c", refreshRate=long).refresh_rate == long[:MAX_LABEL_CHARS]
