"""A workspace's totals: jobs by status, credits and pages, over every job it lists and its
configured jobs (each counted once), and the same per agent.

They are computed from :class:`~exporter.convocore.model.JobTally` records, which discovery
keeps for every listed job (those past ``include_finished_for`` included), so they stay exact
whatever the length of the history, while the per-job series follow only what is live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..convocore.model import STATUSES, JobTally


@dataclass(frozen=True, slots=True)
class AgentTotals:
    """One agent's share of a workspace: the jobs feeding it, by status, and their credits."""

    jobs: Mapping[str, int]
    estimated_credits: float


@dataclass(frozen=True, slots=True)
class WorkspaceTotals:
    """The totals of one workspace (of this shard's jobs, with ``--total-shards``)."""

    workspace_id: str
    jobs: Mapping[str, int]
    """Jobs in each of :data:`~exporter.convocore.model.STATUSES`, 0 included."""
    estimated_credits: float
    scraped_pages: float
    failed_pages: float
    agents: Mapping[str, AgentTotals]
    """Per agent (``toAgentIds``, else ``toAgentId``): a job feeding two counts for each."""


def total(workspace_id: str, tallies: Iterable[JobTally]) -> WorkspaceTotals:
    """The totals over ``tallies``, one per job (the caller counts each job once)."""
    jobs = dict.fromkeys(STATUSES, 0)
    credits = scraped = failed = 0.0
    agent_jobs: dict[str, dict[str, int]] = {}
    agent_credits: dict[str, float] = {}
    for tally in tallies:
        jobs[tally.status] = jobs.get(tally.status, 0) + 1
        credits += tally.estimated_credits or 0.0
        scraped += tally.scraped_pages or 0.0
        failed += tally.failed_pages or 0.0
        for agent in tally.agents:
            counts = agent_jobs.get(agent)
            if counts is None:
                counts = agent_jobs[agent] = dict.fromkeys(STATUSES, 0)
                agent_credits[agent] = 0.0
            counts[tally.status] = counts.get(tally.status, 0) + 1
            agent_credits[agent] += tally.estimated_credits or 0.0
    agents = {
        agent: AgentTotals(counts, agent_credits[agent]) for agent, counts in agent_jobs.items()
    }
    return WorkspaceTotals(workspace_id, jobs, credits, scraped, failed, agents)
