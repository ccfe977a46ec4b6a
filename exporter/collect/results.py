"""What a scrape and a probe return: the families to write and, beside them, each job's
outcome as data, so that no caller has to read it back from rendered samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..exposition.writer import Family
from .state import Key, Outcome, Target


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """One exported job's ``convocore_crawler_up`` and, when it is down, the ``reason`` of
    its ``convocore_crawler_error_info``."""

    workspace_id: str
    job_id: str
    up: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """The families of one scrape (or probe) and the outcome of every job in them, in the
    order of the samples."""

    families: list[Family]
    outcomes: tuple[JobOutcome, ...] = ()

    @property
    def down(self) -> tuple[JobOutcome, ...]:
        """The jobs exported with ``convocore_crawler_up`` 0."""
        return tuple(o for o in self.outcomes if not o.up)


@dataclass(frozen=True, slots=True)
class ProbeRefused:
    """Why ``/probe`` may not probe a job, and how it answers: nothing is asked upstream."""

    reason: str
    """``unknown_workspace`` or ``unknown_job``."""
    message: str
    """For the user: names the workspace and the job."""
    status: int = 404


def job_outcomes(
    targets: Sequence[Target], outcomes: Mapping[Key, Outcome]
) -> tuple[JobOutcome, ...]:
    """The outcome of each target that has one, as its families export it."""
    return tuple(
        JobOutcome(target.workspace.id, target.job_id, outcome.up, outcome.reason)
        for target in targets
        if (outcome := outcomes.get(target.key)) is not None
    )
