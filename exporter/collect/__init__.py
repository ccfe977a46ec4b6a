"""Collection: which jobs to export (:mod:`.targets`), fetching them within the scrape
deadline (:mod:`.fetch`), and turning what was fetched into metric families
(:mod:`.families`); :class:`Exporter` ties them to the config in force."""

from .exporter import Exporter, MemoryView, TargetView
from .families import default_process_collectors
from .results import JobOutcome, ProbeRefused, ScrapeResult
from .state import Key, Target
from .targets import shard_of
from .totals import AgentTotals, WorkspaceTotals
from .warmup import WarmUp

__all__ = [
    "AgentTotals",
    "Exporter",
    "JobOutcome",
    "Key",
    "MemoryView",
    "ProbeRefused",
    "ScrapeResult",
    "Target",
    "TargetView",
    "WarmUp",
    "WorkspaceTotals",
    "default_process_collectors",
    "shard_of",
]
