"""The chaos soak, bounded for the test command (about 75 s; ``bench/soak.py`` runs it for
minutes). What runs and every rule checked are in :mod:`tests.soak`; this test fails with the
list of the rules broken, and prints the soak's numbers."""

from __future__ import annotations

import pytest

from .soak import Schedule, Soak
from .tools import require_tool

pytestmark = [pytest.mark.prometheus, pytest.mark.soak]

SECONDS = 70.0


def test_the_exporter_holds_under_chaos(tmp_path):
    prometheus = require_tool("prometheus")
    report = Soak(tmp_path, prometheus, Schedule.over(SECONDS)).run()
    print(report.summary())
    assert report.ended - report.started >= SECONDS
    # Each of the soak's kinds of fault happened, the reloads of each kind, the churn.
    assert set(report.faults) == {"500", "html-502", "429", "reset", "truncated", "stall"}
    assert report.joined_at and report.left_at and report.rotated_at
    assert report.problems() == []
