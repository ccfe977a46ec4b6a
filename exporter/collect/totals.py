"""A workspace's totals: jobs by status, credits and pages, over every job it lists and its
configured jobs (each counted once), and the same per agent.

They are computed from :class:`~exporter.convocore.model.JobTally` records, which discovery
keeps for every listed job (those past ``include_finished_for`` included), so they stay exact
whatever the length of the history, while the per-job series follow only what is live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..config import Workspace
from ..convocore.model import STATUSES, Job, JobTally
from ..exposition import metrics
from ..exposition.writer import Family, render_labels
from .state import Runtime
from .targets import Sharding


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


class _Sums:
    """Totals being added up: jobs by status, credits and pages, and the same per agent."""

    __slots__ = ("agent_credits", "agent_jobs", "credits", "failed", "jobs", "scraped")

    def __init__(self) -> None:
        self.jobs = dict.fromkeys(STATUSES, 0)
        self.credits = self.scraped = self.failed = 0.0
        self.agent_jobs: dict[str, dict[str, int]] = {}
        self.agent_credits: dict[str, float] = {}

    def agent(self, agent: str) -> dict[str, int]:
        """The agent's jobs by status, made (all 0) the first time it is seen."""
        counts = self.agent_jobs.get(agent)
        if counts is None:
            counts = self.agent_jobs[agent] = dict.fromkeys(STATUSES, 0)
            self.agent_credits[agent] = 0.0
        return counts

    def result(self, workspace_id: str) -> WorkspaceTotals:
        agents = {
            agent: AgentTotals(counts, self.agent_credits[agent])
            for agent, counts in self.agent_jobs.items()
        }
        return WorkspaceTotals(
            workspace_id, self.jobs, self.credits, self.scraped, self.failed, agents
        )


def total(workspace_id: str, tallies: Iterable[JobTally]) -> WorkspaceTotals:
    """The totals over ``tallies``, one per job (the caller counts each job once)."""
    sums = _Sums()
    jobs, agent_credits = sums.jobs, sums.agent_credits
    credits = scraped = failed = 0.0
    for tally in tallies:  # once per listing over every listed job: kept to plain steps
        status, job_credits = tally.status, tally.estimated_credits or 0.0
        jobs[status] = jobs.get(status, 0) + 1
        credits += job_credits
        scraped += tally.scraped_pages or 0.0
        failed += tally.failed_pages or 0.0
        for agent in tally.agents:
            counts = sums.agent(agent)
            counts[status] = counts.get(status, 0) + 1
            agent_credits[agent] += job_credits
    sums.credits, sums.scraped, sums.failed = credits, scraped, failed
    return sums.result(workspace_id)


def merge(workspace_id: str, parts: Iterable[WorkspaceTotals]) -> WorkspaceTotals:
    """The totals of ``parts`` together (each over jobs the others do not hold)."""
    sums = _Sums()
    for part in parts:
        for status, count in part.jobs.items():
            sums.jobs[status] = sums.jobs.get(status, 0) + count
        sums.credits += part.estimated_credits
        sums.scraped += part.scraped_pages
        sums.failed += part.failed_pages
        for agent, share in part.agents.items():
            counts = sums.agent(agent)
            for status, count in share.jobs.items():
                counts[status] = counts.get(status, 0) + count
            sums.agent_credits[agent] += share.estimated_credits
    return sums.result(workspace_id)


def listed_tallies(rt: Runtime, ws: Workspace) -> Mapping[str, JobTally] | None:
    """Every job the workspace's listing holds, by id (those past ``include_finished_for``
    included); None until its first listing completed. Read from the immutable snapshot its
    discovery published: a walk replaces it whole, never changes it."""
    snapshot = rt.snapshot(ws.id)
    return snapshot.tallies if snapshot is not None else None


class _Configured:
    """One workspace's configured jobs this shard owns, in config order, with the tally of
    each job's last get-job data (made again only when that data is replaced) and the last
    totals over them."""

    __slots__ = ("ids", "owned", "part", "tallies", "used", "ws")

    def __init__(self, ws: Workspace, sharding: Sharding) -> None:
        self.ws = ws
        self.ids = frozenset(job.id for job in ws.jobs)
        self.owned = tuple(
            job_id
            for job_id in dict.fromkeys(job.id for job in ws.jobs)
            if sharding.owns((ws.id, job_id))
        )
        self.tallies: dict[str, tuple[Job, JobTally]] = {}
        self.used: list[JobTally] = []
        self.part = total(ws.id, ())

    def of(self, rt: Runtime, listed: Mapping[str, JobTally]) -> WorkspaceTotals:
        """The totals of the configured jobs: from their last get-job, else as listed."""
        ws_id, states, tallies = self.ws.id, rt.states, self.tallies
        used: list[JobTally] = []
        for job_id in self.owned:
            state = states.get((ws_id, job_id))
            job = state.job if state is not None else None
            if job is None:
                tally = listed.get(job_id)
                if tally is not None:
                    used.append(tally)
                continue
            known = tallies.get(job_id)
            if known is None or known[0] is not job:
                known = tallies[job_id] = (job, JobTally.of(job))
            used.append(known[1])
        if used != self.used:  # the same tallies (compared by identity first): the same part
            self.used, self.part = used, total(ws_id, used)
        return self.part


class Totals:
    """Each workspace's totals for one exporter (shard), from memory: no upstream call.

    The listed jobs' part is computed once per published listing (a walk replaces its tallies
    whole), so a scrape of 100,000 listed jobs does not sum them again; the configured jobs'
    part again only when one of them has new data."""

    def __init__(self, sharding: Sharding) -> None:
        self.sharding = sharding
        # workspace id -> (the tallies, the configured ids left out, their totals)
        self._listed: dict[str, tuple[Mapping[str, JobTally], frozenset[str], WorkspaceTotals]]
        self._listed = {}
        self._configured: dict[str, _Configured] = {}

    def of(self, rt: Runtime) -> dict[str, WorkspaceTotals]:
        """Per workspace of ``rt``'s config, its totals; a discovering workspace's appear once
        its first listing completed (a failed listing keeps the last one's)."""
        result: dict[str, WorkspaceTotals] = {}
        for ws in rt.config.workspaces:
            listed: Mapping[str, JobTally] = {}
            if ws.discover:
                found = listed_tallies(rt, ws)
                if found is None:
                    continue
                listed = found
            configured = self._configured.get(ws.id)
            if configured is None or configured.ws is not ws:
                # A new config (a reload): the workspace's configured jobs read anew.
                configured = self._configured[ws.id] = _Configured(ws, self.sharding)
            parts = [
                self._listed_part(ws.id, listed, configured.ids),
                configured.of(rt, listed),
            ]
            result[ws.id] = merge(ws.id, parts)
        for ws_id in self._configured.keys() - {ws.id for ws in rt.config.workspaces}:
            del self._configured[ws_id]
        return result

    def _listed_part(
        self, ws_id: str, listed: Mapping[str, JobTally], configured: frozenset[str]
    ) -> WorkspaceTotals:
        cached = self._listed.get(ws_id)
        if (
            cached is not None
            and cached[0] is listed
            and (cached[1] is configured or cached[1] == configured)
        ):
            return cached[2]
        owns = self.sharding.owns
        part = total(
            ws_id,
            (
                tally
                for job_id, tally in listed.items()
                if job_id not in configured and owns((ws_id, job_id))
            ),
        )
        self._listed[ws_id] = (listed, configured, part)
        return part


def families(totals: Iterable[WorkspaceTotals]) -> list[Family]:
    """The totals' families, in the order of :data:`~exporter.exposition.metrics.TOTALS`."""
    made = {d.name: Family(d.name, d.type, d.help, []) for d in metrics.TOTALS}

    def add(definition: metrics.MetricDef, values: tuple[str, ...], value: float) -> None:
        made[definition.name].add(render_labels(definition.labels, values), value)

    for ws in totals:
        wid = ws.workspace_id
        for status in STATUSES:
            add(metrics.WORKSPACE_JOBS, (wid, status), ws.jobs.get(status, 0))
        add(metrics.WORKSPACE_ESTIMATED_CREDITS, (wid,), ws.estimated_credits)
        add(metrics.WORKSPACE_SCRAPED_PAGES, (wid,), ws.scraped_pages)
        add(metrics.WORKSPACE_FAILED_PAGES, (wid,), ws.failed_pages)
        for agent in sorted(ws.agents):
            share = ws.agents[agent]
            for status in STATUSES:
                add(metrics.AGENT_JOBS, (wid, agent, status), share.jobs.get(status, 0))
            add(metrics.AGENT_ESTIMATED_CREDITS, (wid, agent), share.estimated_credits)
    return list(made.values())
