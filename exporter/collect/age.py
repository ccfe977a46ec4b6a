"""The one age rule of discovered jobs (``include_finished_for``) and its one clock.

A finished job whose last update (``ts``) is older than the workspace's horizon is past it:
discovery keeps only its :class:`~exporter.convocore.model.JobTally`, and it is not exported
(a job configured by hand always is). The listing walks and the selection of the exported
jobs both ask this module, so that they agree on the rule and on the time.
"""

from __future__ import annotations

import time

from ..config import Workspace
from ..convocore.model import Job, JobTally

wall_clock = time.time
"""The clock of the age rule: Unix seconds, as the jobs' ``ts``."""


def horizon(ws: Workspace) -> float | None:
    """Finished jobs updated before this (Unix seconds) are past ``include_finished_for``;
    None when the workspace keeps every job."""
    if ws.include_finished_for is None:
        return None
    return wall_clock() - ws.include_finished_for


def past(job: Job | JobTally, horizon: float | None) -> bool:
    """Whether ``job`` is finished and last updated before ``horizon``."""
    return (
        horizon is not None
        and job.finished
        and job.updated_timestamp is not None
        and job.updated_timestamp < horizon
    )
