"""The plain-text report of ``/probe?...&debug=true``, as blackbox_exporter gives one.

What was asked upstream (URLs without secrets, status, timing, retries), why the job is up or
down, then the metrics the probe would have served.
"""

from __future__ import annotations

from ..collect import ScrapeResult
from ..convocore.trace import ProbeTrace
from ..exposition.writer import write_text

EXPLAIN: dict[str, str] = {
    "unauthorized": "the API refused the workspace secret (HTTP 401): check this workspace's token",
    "forbidden": "the secret is valid but may not read this job (HTTP 403)",
    "not_found": "the API does not know this job in this workspace (HTTP 404)",
    "rate_limited": "the API asked to slow down (HTTP 429); the exporter backs off from this "
    "workspace and serves the last good values meanwhile",
    "bad_request": "the API refused the request (HTTP 4xx)",
    "server_error": "the API failed (HTTP 5xx), also on the retry if there was time for one",
    "timeout": "the API did not answer within api.timeout_seconds",
    "connection": "no connection to the API (DNS, TCP or TLS failed, or it was cut mid-answer)",
    "invalid_response": "the answer was not what the API documents (not JSON, wrong shape, "
    "too large, or a redirect off the API host)",
    "deadline": "the scrape deadline passed before the answer came (or an earlier fetch of "
    "it timed out and this scrape did not wait for it again)",
    "internal_error": "the workspace's job listing raised inside the exporter (a bug, not the "
    "API); the log line says where, and the next listing tries again",
}


def probe_report(
    workspace_id: str,
    job_id: str,
    trace: ProbeTrace,
    result: ScrapeResult,
    *,
    seconds: float,
    budget: float,
) -> bytes:
    lines = [
        f"Probe of job {job_id} in workspace {workspace_id}",
        f"Took {seconds:.3f}s of a {budget:.3f}s deadline",
        "",
        "Upstream:",
    ]
    events = trace.events()
    if not events:
        events = ["no request of its own: the probe shared a fetch already under way"]
    number = 0
    for event in events:
        if isinstance(event, str):
            lines.append(f"  - {event}")
            continue
        number += 1
        outcome = "ok" if event.reason is None else event.reason
        detail = f" ({event.detail})" if event.detail else ""
        lines.append(
            f"  {number}. GET {event.url} -> {event.status} in {event.seconds:.3f}s: "
            f"{outcome}{detail}"
        )
    lines.append("")
    if not result.outcomes:
        lines.append("Result: no convocore_crawler_up sample")
    for job in result.outcomes:
        if job.up:
            lines.append("Result: up (convocore_crawler_up 1)")
        else:
            why = EXPLAIN.get(job.reason or "", "no reason recorded")
            lines.append(f"Result: down (convocore_crawler_up 0), reason {job.reason}: {why}")
        if job.failure is not None:
            lines.append(f"Failure text (resultError): {job.failure}")
    lines += ["", "Metrics that would have been returned:", ""]
    return "\n".join(lines).encode() + b"\n" + write_text(result.families)
