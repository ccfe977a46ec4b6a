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
    its ``convocore_crawler_error_info``; the failure text of its
    ``convocore_crawler_job_failure_info`` when it has one."""

    workspace_id: str
    job_id: str
    up: bool
    reason: str | None
    failure: str | None = None


class ScrapeResult:
    """The families of one scrape (or probe) and the outcome of every job in them, in the
    order of the samples. Read-only; the outcomes are built when first asked for, so that a
    scrape nobody asks them of (``/metrics``) does not pay for 10,000 of them."""

    __slots__ = ("_families", "_outcomes", "_results", "_targets")

    def __init__(
        self,
        families: list[Family],
        targets: Sequence[Target] = (),
        results: Mapping[Key, Outcome] | None = None,
    ) -> None:
        self._families = families
        self._targets = targets
        self._results = results or {}
        self._outcomes: tuple[JobOutcome, ...] | None = None

    @property
    def families(self) -> list[Family]:
        return self._families

    @property
    def outcomes(self) -> tuple[JobOutcome, ...]:
        if self._outcomes is None:
            self._outcomes = tuple(
                JobOutcome(
                    target.workspace.id,
                    target.job_id,
                    outcome.up,
                    outcome.reason,
                    outcome.job.failure if outcome.job is not None else None,
                )
                for target in self._targets
                if (outcome := self._results.get(target.key)) is not None
            )
        return self._outcomes

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
