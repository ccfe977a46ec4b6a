#!/usr/bin/env python3
"""Performance benchmark of the exporter against a loopback fake Convocore (not a test).

Runs the cases of the scale and reliability goals and prints one table: measured value, goal,
pass/fail.
See bench/README.md for what each case measures and why it is set up the way it is.

    python bench/bench.py                 # every case, defaults of the goals
    python bench/bench.py --cases 1,2     # only some cases
    python bench/bench.py --help

The fake Convocore runs in a child process (like the real API, it does not share the
exporter's interpreter lock); per-request latency is a sleep in its own handler thread, so
requests are never serialised by it. Cases 1-4 run the exporter in this process behind a
real ExporterServer; cases 5-6 run it as its own process (``python -m exporter``) so its
resident memory can be read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import logging
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from exporter.collect import Exporter, default_process_collectors
from exporter.collect.affinity import pin, request_cpus
from exporter.collect.families import job_families
from exporter.collect.own import OwnMetrics
from exporter.collect.state import Outcome, Runtime
from exporter.config import Secret, parse_config
from exporter.convocore.api import PAGES_LIMIT
from exporter.convocore.model import STATUSES, parse_job
from exporter.convocore.transport import Sender
from exporter.demo import paging
from exporter.demo.api import LIST_ITEM_OMITS
from exporter.exposition import metrics
from exporter.exposition.metrics import JOB_LABELS
from exporter.exposition.writer import write_text
from exporter.web.server import ExporterServer, ServerOptions

# The tests' helpers (tests/support.py, standard library only), from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import Clock

TOKEN = "vg_bench_secret_not_real"
FINISHED = ("completed", "failed", "cancelled")


# -- the fake Convocore (runs in a child process) -----------------------------------------


def job_id(index: int) -> str:
    return f"job-{index:05d}"


def make_job(
    ws: str, index: int, finished: bool, urls: int, age: float = 86_400.0
) -> dict[str, Any]:
    """A get-job ``data`` object; ``urls`` URLs in each of the scraped/processed arrays; a
    finished job last updated ``age`` seconds ago."""
    status = FINISHED[index % 3] if finished else ("processing" if index % 4 else "queued")
    site = f"https://site-{index}.example.com"
    scraped = 40 + index % 200
    now_ms = int(time.time() * 1000)
    return {
        "id": job_id(index),
        "workspaceId": ws,
        "status": status,
        "primaryUrl": site,
        "urls": [site],
        "crawl": True,
        "crawlOptions": {
            "maxPages": 250,
            "urlMatchers": [],
            "unMatchers": [],
            "stayOnDomain": True,
        },
        "useProxy": index % 2 == 0,
        "deep": index % 5 == 0,
        "refreshRate": "24h",
        "toAgentId": "agent-1",
        "toAgentIds": ["agent-1"],
        "done": status == "completed",
        "failed": status == "failed",
        "isCancelled": status == "cancelled",
        "message": None,
        "resultError": "blocked by robots.txt" if status == "failed" else None,
        "createdAt": "2026-11-01T10:00:00Z",
        "ts": now_ms - (int(age * 1000) if finished else 0),
        "currentPageIndex": scraped + 2,
        "scrapedPagesNum": scraped,
        "failedPagesNum": index % 7,
        "pageLimit": 250,
        "creditsPerPage": 10 if index % 5 == 0 else 1,
        "estimatedCredits": 250,
        "activeScrapeUrl": None if finished else f"{site}/page-{scraped}",
        "crawlerJobId": f"crawler-{index}",
        "scrapedUrls": [f"{site}/page-{i}" for i in range(urls)],
        "scrapedHashes": [],
        "pendingCandidateUrls": [],
        "processedCrawlUrls": [f"{site}/page-{i}" for i in range(urls)],
        "failedCrawlUrls": [],
        "webhookFinalizedAt": None,
        "processingMode": "standard",
        "crawlerSubmittedAt": "2026-11-01T10:00:05Z",
        "crawlerWebhookUrl": None,
        "crawlerSubmissionEndpoint": None,
        "webhook": None,
    }


def history_shape(index: int) -> tuple[str, float, list[str], int]:
    """Case 13's job ``index``: (status, seconds since its last update, agents, credits).
    5 % active (1 in 20: processing, or queued every fourth); of the finished ones (completed,
    failed, cancelled in turn) 1 in 20 updated within the hour, the others 2 to 10 weeks ago;
    one agent each, a second one for every third job; credits 10 to 99."""
    agents = [f"agent-{index % 7}"] + ([f"agent-{(index + 3) % 7}"] if index % 3 == 0 else [])
    credits = 10 + index % 90
    if index % 20 == 0:
        return ("queued" if index % 80 == 0 else "processing"), 0.0, agents, credits
    status = FINISHED[(index // 20 + index) % 3]
    if (index // 20) % 20 == 7:
        return status, 60.0 + index % 3000, agents, credits
    return status, 14 * 86_400.0 + (index * 7919) % (56 * 86_400), agents, credits


def is_finished(index: int, share: float) -> bool:
    """Spreads ``share`` of the jobs evenly over the indexes (exactly round(n*share) of n)."""
    return int((index + 1) * share + 1e-9) > int(index * share + 1e-9)


def make_page(job: str, index: int) -> dict[str, Any]:
    """One page summary of a job's pages list; every 10th page is empty."""
    url = f"https://{job}.example.com/page-{index}"
    markdown = 0 if index % 10 == 9 else 500 + index * 37 % 9000
    return {
        "id": f"{job}-p{index}",
        "url": url,
        "urlHash": f"{index:016x}",
        "title": f"Page {index}",
        "description": f"Page {index} of {job}",
        "scrapedAt": 1_796_040_000_000 + index * 1000,
        "imageUrl": None,
        "userId": "user-1",
        "mdCharCount": markdown,
        "htmlCharCount": 2000 + markdown * 5,
        "failed": False,
    }


@dataclass
class FakeWorkspace:
    jobs: int
    finished: float
    urls: int
    pages: int  # page summaries each job lists
    pagination: paging.Style
    bodies: dict[str, bytes]  # get-job answers, rendered once when they are small
    items: list[dict[str, Any]]  # list items
    hang: frozenset[str] = frozenset()  # jobs whose get-job is never answered
    active: tuple[int, int] | None = None  # (first, count): the only active jobs, listed there
    age: float = 86_400.0  # seconds since a finished job was last updated
    history: bool = False  # case 13's shape (history_shape) instead of the others

    def job(self, ws: str, index: int, urls: int) -> dict[str, Any]:
        if not self.history:
            return make_job(ws, index, self.finished_at(index), urls, self.age)
        status, age, agents, credits = history_shape(index)
        job = make_job(ws, index, status in FINISHED, urls, age)
        done = status in ("completed", "failed")
        job.update(
            status=status,
            done=done,
            failed=status == "failed",
            isCancelled=status == "cancelled",
            toAgentId=agents[0],
            toAgentIds=agents,
            estimatedCredits=credits,
            resultError="blocked by robots.txt" if status == "failed" else None,
        )
        return job

    def finished_at(self, index: int) -> bool:
        if self.active is not None:
            return not self.active[0] <= index < self.active[0] + self.active[1]
        return is_finished(index, self.finished)

    @classmethod
    def build(cls, ws: str, spec: dict[str, Any]) -> FakeWorkspace:
        n, share, urls = int(spec["jobs"]), float(spec["finished"]), int(spec.get("urls", 0))
        pages = int(spec.get("pages", 0))
        active = tuple(spec["active"]) if spec.get("active") else None
        shell = cls(n, share, urls, pages, spec.get("pagination", "page"), {}, [])
        shell.active = (active[0], active[1]) if active else None
        shell.age = float(spec.get("age", 86_400.0))
        shell.hang = frozenset(spec.get("hang", ()))
        shell.history = bool(spec.get("history", False))
        # Large histories (cases 11 and 12) render their get-job answers when asked.
        keep = urls == 0 and n <= 20_000
        for i in range(n):
            job = shell.job(ws, i, 0)
            shell.items.append({k: v for k, v in job.items() if k not in LIST_ITEM_OMITS})
            if keep:
                shell.bodies[job_id(i)] = envelope(job)
        if shell.history:  # listed newest first, as Convocore lists: active, recent, old
            shell.items.sort(key=lambda item: -item["ts"] if item["status"] in FINISHED else -1e15)
        return shell

    def get_job(self, ws: str, wanted: str) -> bytes | None:
        body = self.bodies.get(wanted)
        if body is not None:
            return body
        if not wanted.startswith("job-") or not wanted[4:].isdigit():
            return None
        index = int(wanted[4:])
        if index >= self.jobs:
            return None
        return envelope(self.job(ws, index, self.urls))

    def list_page(self, query: dict[str, str]) -> bytes:
        return json.dumps(paging.document(self.items, query, self.pagination)).encode()

    def pages_page(self, wanted: str, query: dict[str, str]) -> bytes | None:
        """One answer of a job's pages list (page style), built for the window asked."""
        if self.get_job("", wanted) is None:
            return None
        limit = max(1, min(paging.MAX_LIMIT, int(query.get("limit", "20"))))
        page = max(1, int(query.get("page", "1")))
        start = (page - 1) * limit
        window = range(start, min(self.pages, start + limit))
        return envelope(
            {
                "pages": [make_page(wanted, i) for i in window],
                "total": self.pages,
                "page": page,
                "pageSize": limit,
            }
        )


def envelope(data: Any) -> bytes:
    return json.dumps({"success": True, "message": "ok", "data": data}).encode()


class FakeConvocore:
    """The fake API on asyncio: a latency is a timer, not a thread, so thousands of requests
    can wait at once, and the little CPU it spends per request stays off the exporter's."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.outage = False  # every GET answered 503 from a proxy
        self.workspaces: dict[str, FakeWorkspace] = {}
        self.counts: dict[str, int] = {"job": 0, "list": 0, "pages": 0, "other": 0}
        self.listing = 0  # list requests being answered
        self.list_peak = 0  # ... and the most at once since the last /_peak

    async def serve(self) -> None:
        server = await asyncio.start_server(self.connection, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                if method == "POST":
                    status, payload = self.control(target, body)
                else:
                    status, payload = await self.get(target, headers)
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s"
                    % (status, b"OK" if status == 200 else b"Error", len(payload), payload)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def control(self, target: str, body: bytes) -> tuple[int, bytes]:
        """Control endpoints, not counted as upstream requests."""
        if target == "/_configure":
            spec = json.loads(body)
            self.latency = float(spec["latency"])
            self.workspaces = {
                ws: FakeWorkspace.build(ws, s) for ws, s in spec["workspaces"].items()
            }
            self.outage = False
        elif target == "/_outage":
            self.outage = bool(json.loads(body)["on"])
        elif target == "/_peak":
            peak, self.list_peak = self.list_peak, self.listing
            return 200, json.dumps({"list": peak}).encode()
        counts = dict(self.counts)
        if target in ("/_configure", "/_reset"):
            self.counts = dict.fromkeys(self.counts, 0)
        return 200, json.dumps(counts).encode()

    async def get(self, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/") if p]
        kind = "other"
        if len(parts) in (5, 6) and parts[:2] == ["v3", "workspaces"]:
            kind = "job" if len(parts) == 6 else "list"
        elif len(parts) == 7 and parts[:2] == ["v3", "workspaces"] and parts[6] == "pages":
            kind = "pages"
        self.counts[kind] += 1
        ws = self.workspaces.get(parts[2]) if kind != "other" else None
        if ws is not None and kind == "job" and parts[5] in ws.hang:
            await asyncio.sleep(3600)  # the exporter hangs up first
        if kind == "list":
            self.listing += 1
            self.list_peak = max(self.list_peak, self.listing)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            if kind == "list":
                self.listing -= 1
        if self.outage:
            return 503, b"<html><body><h1>503 Service Unavailable</h1></body></html>"
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, b'{"message":"invalid secret","code":"UNAUTHORIZED"}'
        body = None
        if ws is not None and kind == "job":
            body = ws.get_job(parts[2], parts[5])
        elif ws is not None and kind == "list":
            body = ws.list_page({k: v[-1] for k, v in parse_qs(url.query).items()})
        elif ws is not None and kind == "pages":
            body = ws.pages_page(parts[5], {k: v[-1] for k, v in parse_qs(url.query).items()})
        if body is None:
            return 404, b'{"message":"not found","code":"NOT_FOUND"}'
        return 200, body


def serve_fake() -> int:
    asyncio.run(FakeConvocore().serve())
    return 0


class Fake:
    """The fake Convocore child process, driven over its control endpoints."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-fake"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root}/v3"

    def _post(self, path: str, document: Any = None) -> dict[str, int]:
        response = requests.post(self.root + path, data=json.dumps(document or {}), timeout=120)
        response.raise_for_status()
        result: dict[str, int] = response.json()
        return result

    def configure(self, latency: float, workspaces: dict[str, dict[str, Any]]) -> None:
        self._post("/_configure", {"latency": latency, "workspaces": workspaces})

    def set_outage(self, on: bool) -> None:
        """Every GET answered 503 (an HTML page, as from a proxy) while ``on``."""
        self._post("/_outage", {"on": on})

    def take_list_peak(self) -> int:
        """The most list requests in flight at once since the last call."""
        return self._post("/_peak")["list"]

    def take_counts(self) -> dict[str, int]:
        """Upstream requests seen since the last call (and reset the counters)."""
        return self._post("/_reset")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- driving the exporter -----------------------------------------------------------------


def config_yaml(
    base_url: str,
    *,
    concurrency: int,
    min_refresh: str,
    workspaces: dict[str, int | None],
    timeout: float = 30.0,
    page_stats: bool = False,
    discovery: str = "",
) -> str:
    """An exporter config; ``workspaces`` maps id to its explicit job count (None: discover)."""
    lines = [
        "api:",
        f"  base_url: {base_url}",
        f"  timeout_seconds: {timeout}",
        f"  max_concurrency: {concurrency}",
        f"  min_refresh_interval: {min_refresh}",
        "workspaces:",
    ]
    for ws, count in workspaces.items():
        lines += [f"  - id: {ws}", "    token: ${BENCH_TOKEN}"]
        if page_stats:
            lines.append("    page_stats: true")
        if count is None:
            lines.append("    discover: true")
            lines += [f"    {line}" for line in discovery.splitlines()]
        else:
            lines.append("    jobs:")
            lines += [f"      - {job_id(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


class InProcess:
    """The exporter behind a real ExporterServer in this process."""

    def __init__(self, yaml_text: str, clock: Callable[[], float] = time.monotonic) -> None:
        config = parse_config(yaml_text, "<bench>", {"BENCH_TOKEN": TOKEN})
        self.exporter = Exporter(
            config, process_collectors=default_process_collectors(), clock=clock
        )
        self.server = ExporterServer(
            ("127.0.0.1", 0), self.exporter, ServerOptions(default_timeout=600.0)
        )
        self.server.start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.exporter.close()


def scrape(url: str, timeout: float = 600) -> tuple[float, str]:
    """One GET /metrics with Prometheus's timeout header: (wall seconds, body)."""
    started = time.perf_counter()
    response = requests.get(
        url + "/metrics",
        headers={
            "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}",
            "Accept-Encoding": "identity",
        },
        timeout=900,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.text


_UP = re.compile(r"^convocore_crawler_up\{[^}]*\} (\S+)$", re.MULTILINE)


def jobs_up(body: str) -> tuple[int, int]:
    """(jobs with up 1, jobs with an up series) in an exposition."""
    values = _UP.findall(body)
    return sum(1 for v in values if v == "1"), len(values)


@dataclass
class Row:
    case: str
    measured: str
    goal: str
    ok: bool
    note: str = ""


def validity(body: str, expected: int) -> str:
    good, total = jobs_up(body)
    if good == expected and total == expected:
        return ""
    return f"only {good} of {expected} jobs up ({total} exported)"


# -- cases --------------------------------------------------------------------------------


def sequential_baseline(base_url: str, ws: str, n: int) -> float:
    """One requests.Session, one job at a time: GET, JSON-decode, parse; wall seconds."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    started = time.perf_counter()
    for i in range(n):
        response = session.get(f"{base_url}/workspaces/{ws}/crawler/jobs/{job_id(i)}", timeout=30)
        response.raise_for_status()
        parse_job(response.json()["data"])
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def cases_1_to_3(args: argparse.Namespace, fake: Fake, wanted: set[int]) -> list[Row]:
    rows: list[Row] = []
    n, latency, conc = args.jobs, args.latency, args.concurrency
    fake.configure(latency, {"ws-bench": {"jobs": n, "finished": args.finished}})
    yaml_text = config_yaml(
        fake.base_url, concurrency=conc, min_refresh="0s", workspaces={"ws-bench": n}
    )
    limit = n * latency / conc
    cold_requests = None
    if wanted & {1, 2}:
        # Cold scrapes by fresh exporters, median taken (the machine may be shared); the
        # last exporter then does the warm scrape of case 2.
        colds: list[float] = []
        bad = ""
        for run in range(args.cold_runs):
            exp = InProcess(yaml_text)
            try:
                seconds, body = scrape(exp.url)
                colds.append(seconds)
                bad = bad or validity(body, n)
                cold_requests = fake.take_counts()["job"]
                if run == args.cold_runs - 1:
                    _, body = scrape(exp.url)
                    bad2 = validity(body, n)
                    warm_requests = fake.take_counts()["job"]
            finally:
                exp.close()
        cold_seconds = statistics.median(colds)
        if 1 in wanted:
            goal_seconds = 1.2 * limit
            rows.append(
                Row(
                    f"1. cold scrape, {n} jobs, {latency * 1000:g} ms, max_concurrency {conc}",
                    f"median {cold_seconds:.2f} s of {len(colds)} "
                    f"({', '.join(f'{c:.2f}' for c in colds)}; {cold_requests} requests each)",
                    f"<= {goal_seconds:.2f} s (1.2 x {n} x {latency:g} s / {conc})",
                    cold_seconds <= goal_seconds and not bad,
                    bad,
                )
            )
            baseline_n = min(n, args.baseline_jobs or n)
            base_seconds = sequential_baseline(fake.base_url, "ws-bench", baseline_n) * (
                n / baseline_n
            )
            fake.take_counts()
            speedup = base_seconds / cold_seconds
            how = "" if baseline_n == n else f", extrapolated from {baseline_n} jobs"
            rows.append(
                Row(
                    "1. ... vs sequential collector (one Session, GET+parse per job)",
                    f"{speedup:.1f}x faster (sequential {base_seconds:.1f} s{how})",
                    ">= 20x faster",
                    speedup >= 20,
                )
            )
        if 2 in wanted:
            share = warm_requests / cold_requests if cold_requests else 1.0
            rows.append(
                Row(
                    f"2. warm scrape, same jobs, {args.finished:.0%} finished, "
                    "min_refresh_interval 0s",
                    f"{warm_requests} requests = {share:.1%} of cold {cold_requests}",
                    "<= 12% of the cold scrape's",
                    share <= 0.12 and not bad2,
                    bad2,
                )
            )
    if 3 in wanted:
        exp = InProcess(yaml_text)
        try:
            scrape(exp.url)
            single = fake.take_counts()["job"]
        finally:
            exp.close()
        exp = InProcess(yaml_text)
        try:
            barrier = threading.Barrier(2)
            bodies: list[str] = []

            def hit() -> None:
                barrier.wait()
                bodies.append(scrape(exp.url)[1])

            threads = [threading.Thread(target=hit) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            double = fake.take_counts()["job"]
        finally:
            exp.close()
        bad = "; ".join(filter(None, (validity(b, n) for b in bodies)))
        rows.append(
            Row(
                "3. two overlapping cold scrapes, min_refresh_interval 0s",
                f"{double} requests (one scrape alone: {single})",
                "the same as one scrape",
                double == single and not bad,
                bad,
            )
        )
    return rows


def case_4(args: argparse.Namespace, fake: Fake) -> list[Row]:
    rows: list[Row] = []
    n = args.jobs
    for style in ("page", "cursor"):
        ws = f"ws-{style}"
        fake.configure(
            args.latency, {ws: {"jobs": n, "finished": args.finished, "pagination": style}}
        )
        exp = InProcess(
            config_yaml(
                fake.base_url,
                concurrency=args.concurrency,
                min_refresh="0s",
                workspaces={ws: None},
            )
        )
        per_scrape: list[int] = []
        bad = ""
        try:
            for _ in range(2):
                _, body = scrape(exp.url)
                bad = bad or validity(body, n)
                counts = fake.take_counts()
                per_scrape.append(counts["list"] + counts["job"] + counts["other"])
        finally:
            exp.close()
        worst = max(per_scrape)
        rows.append(
            Row(
                f"4. discovery of {n} jobs, {style} pagination",
                f"{worst} requests per scrape (2 scrapes: {per_scrape})",
                "<= 10 per scrape",
                worst <= 10 and not bad,
                bad,
            )
        )
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def source_tree(rev: str) -> Path:
    """The ``exporter`` package as it was at git revision ``rev``, unpacked into a temporary
    folder (removed at exit), for the cases that measure the code before a change in the same
    run as the code after it (``--before``)."""
    root = Path(__file__).resolve().parent.parent
    tmp = tempfile.mkdtemp(prefix="bench-before-")
    atexit.register(shutil.rmtree, tmp, True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "exporter"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    return Path(tmp)


@contextlib.contextmanager
def exporter_process(
    config_text: str, source: Path | None = None, *, config_path: list[Path] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The exporter as its own process (``python -m exporter``), ready; (process, URL).

    With ``source`` (see :func:`source_tree`) the package is imported from there instead of
    the installed one: the code before a change, run with the same interpreter and libraries.
    With ``config_path`` (an empty list) the config file's path is appended to it, and
    ``POST /-/reload`` is allowed (``--web.enable-lifecycle``), to reload it rewritten.
    """
    env = {**os.environ, "BENCH_TOKEN": TOKEN}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(config_text)
        lifecycle = []
        if config_path is not None:
            config_path.append(config)
            lifecycle = ["--web.enable-lifecycle"]
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--log.level",
                "warning",
                *lifecycle,
            ],
            env=env,
            cwd=str(source) if source is not None else None,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if requests.get(url + "/-/ready", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the exporter did not start")
                time.sleep(0.1)
            yield proc, url
        finally:
            proc.terminate()
            proc.wait(10)


def cases_5_6(args: argparse.Namespace, fake: Fake, wanted: set[int]) -> list[Row]:
    n, urls = args.big_jobs, args.big_urls
    fake.configure(
        args.big_latency, {"ws-big": {"jobs": n, "finished": args.finished, "urls": urls}}
    )
    rows: list[Row] = []
    # 1h: every job fetched by the first scrape is then served from memory.
    config_text = config_yaml(
        fake.base_url, concurrency=args.concurrency, min_refresh="1h", workspaces={"ws-big": n}
    )
    with exporter_process(config_text) as (proc, url):
        before = proc_status(proc.pid)
        cold_seconds, body = scrape(url)
        bad = validity(body, n)
        after = proc_status(proc.pid)
        requests_seen = fake.take_counts()["job"]
        times = []
        for _ in range(args.repeats):
            seconds, warm_body = scrape(url)
            times.append(seconds)
        bad_warm = validity(warm_body, n)
        samples = sum(1 for line in warm_body.splitlines() if line and not line.startswith("#"))
        warm_requests = fake.take_counts()["job"]
        final = proc_status(proc.pid)
    if 5 in wanted:
        median = statistics.median(times)
        rows.append(
            Row(
                f"5. /metrics, {n} jobs served from memory ({samples} samples)",
                f"median {median:.2f} s of {args.repeats} (min {min(times):.2f}, "
                f"max {max(times):.2f}; {warm_requests} upstream requests)",
                "<= 1 s",
                median <= 1.0 and warm_requests == 0 and not bad_warm,
                bad_warm,
            )
        )
    if 6 in wanted:
        rss = after["VmRSS"] / 1024
        rows.append(
            Row(
                f"6. RSS after a full scrape, {n} jobs x {urls} URLs per answer",
                f"{rss:.0f} MB (idle {before['VmRSS'] / 1024:.0f} MB; peak "
                f"{after['VmHWM'] / 1024:.0f} MB in the cold scrape, "
                f"{final['VmHWM'] / 1024:.0f} MB and RSS {final['VmRSS'] / 1024:.0f} MB after "
                f"{args.repeats} more; cold scrape "
                f"{cold_seconds:.1f} s, {requests_seen} requests)",
                "<= 150 MB",
                rss <= 150 and not bad,
                bad,
            )
        )
    return rows


def case_8(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """Page statistics of finished jobs: read once, then served from memory."""
    n, pages = args.page_jobs, args.pages
    fake.configure(args.big_latency, {"ws-pages": {"jobs": n, "finished": 1.0, "pages": pages}})
    config_text = config_yaml(
        fake.base_url,
        concurrency=args.concurrency,
        min_refresh="10s",
        workspaces={"ws-pages": n},
        page_stats=True,
    )
    fake.take_counts()
    with exporter_process(config_text) as (proc, url):
        before = proc_status(proc.pid)
        cold_seconds, body = scrape(url)
        after = proc_status(proc.pid)
        cold = fake.take_counts()
        warm_seconds, warm_body = scrape(url)
        warm = fake.take_counts()
        final = proc_status(proc.pid)
    bad = validity(body, n) or validity(warm_body, n)
    listed = re.findall(r"^convocore_crawler_job_pages_listed\{[^}]*\} (\S+)$", warm_body, re.M)
    if not bad and listed != [str(pages)] * n:
        bad = f"pages_listed is not {pages} for every job"
    expected_cold = n * math.ceil(pages / PAGES_LIMIT)
    rss = after["VmRSS"] / 1024
    return [
        Row(
            f"8. page stats, {n} finished jobs x {pages} pages: second scrape",
            f"{warm['pages']} pages requests (first scrape {cold['pages']}, expected "
            f"{expected_cold}; {cold_seconds:.1f} s then {warm_seconds:.2f} s)",
            "0 pages requests",
            warm["pages"] == 0 and cold["pages"] == expected_cold and not bad,
            bad,
        ),
        Row(
            f"8. ... RSS after the first scrape ({n * pages} page summaries read)",
            f"{rss:.0f} MB (idle {before['VmRSS'] / 1024:.0f} MB; peak "
            f"{after['VmHWM'] / 1024:.0f} MB in the first scrape, "
            f"RSS {final['VmRSS'] / 1024:.0f} MB after the second)",
            "<= 150 MB",
            rss <= 150 and after["VmHWM"] / 1024 <= 150,
        ),
    ]


def down_reasons(body: str) -> dict[str, str]:
    """job_id -> reason of every convocore_crawler_error_info series in an exposition."""
    found = re.findall(
        r'^convocore_crawler_error_info\{workspace_id="[^"]*",job_id="([^"]*)",'
        r'reason="([^"]*)"\} 1',
        body,
        re.M,
    )
    return dict(found)


def case_9(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """A hung job costs one deadline: scrapes after the first take what they take without it.

    Every job is active and min_refresh_interval is 0 s, so every scrape fetches all of them;
    scrapes send a 10 s timeout header (the deadline is 9.5 s), as Prometheus would."""
    n, latency, conc, hung = args.jobs, args.latency, args.concurrency, job_id(7)
    runs = max(3, args.repeats)
    timings: dict[str, list[float]] = {}
    bad = ""
    for label, hang in (("without", []), ("with", [hung])):
        fake.configure(latency, {"ws-hung": {"jobs": n, "finished": 0.0, "hang": hang}})
        exp = InProcess(
            config_yaml(
                fake.base_url,
                concurrency=conc,
                min_refresh="0s",
                workspaces={"ws-hung": n},
                timeout=10.0,
            )
        )
        try:
            times = []
            for _ in range(1 + runs):
                seconds, body = scrape(exp.url, timeout=10)
                times.append(seconds)
                good, total = jobs_up(body)
                want_good = n - len(hang)
                if (good, total) != (want_good, n):
                    bad = bad or f"{label} the hung job: {good} of {total} up, not {want_good}"
                if hang and down_reasons(body) != {hung: "deadline"}:
                    bad = (
                        bad
                        or f"the hung job is not down with reason deadline: {down_reasons(body)}"
                    )
            timings[label] = times
        finally:
            exp.close()
    base = statistics.median(timings["without"][1:])
    later = statistics.median(timings["with"][1:])
    first = timings["with"][0]
    goal = 1.25 * base + 0.1
    return [
        Row(
            f"9. {n} jobs at {latency * 1000:g} ms, one hung: scrapes 2 to {1 + runs}",
            f"median {later:.2f} s ({', '.join(f'{t:.2f}' for t in timings['with'][1:])}); "
            f"without the hung job {base:.2f} s; first scrape {first:.2f} s (deadline 9.5 s)",
            f"<= {goal:.2f} s (1.25 x without + 0.1 s)",
            later <= goal and not bad,
            bad,
        )
    ]


def case_10(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """An API outage is not hammered, and is left quickly once the API is back.

    Every GET is answered 503 (a proxy's HTML page) for ``--outage-seconds``; the exporter is
    scraped every ``--outage-interval`` seconds of its own clock, which the bench moves instead
    of sleeping (the requests and their latency are real)."""
    n, latency, conc = args.jobs, args.latency, args.concurrency
    interval, length = args.outage_interval, args.outage_seconds
    fake.configure(latency, {"ws-outage": {"jobs": n, "finished": 0.0}})
    clock = Clock(time.monotonic())  # moved by hand (the backoff pauses read it)
    exp = InProcess(
        config_yaml(fake.base_url, concurrency=conc, min_refresh="0s", workspaces={"ws-outage": n}),
        clock=clock,
    )
    bad = ""
    try:
        _, body = scrape(exp.url, timeout=10)
        bad = validity(body, n)
        fake.take_counts()
        fake.set_outage(True)
        scrapes = 0
        elapsed = 0.0
        while elapsed < length:
            _, body = scrape(exp.url, timeout=10)
            scrapes += 1
            if jobs_up(body) != (0, n):
                bad = bad or "a job is not down during the outage"
            clock.now += interval
            elapsed += interval
        during = sum(fake.take_counts().values())
        fake.set_outage(False)
        recovery = 0.0
        while True:
            seconds, body = scrape(exp.url, timeout=10)
            if jobs_up(body) == (n, n):
                break
            if recovery > 10 * length:
                bad = bad or "not recovered"
                break
            clock.now += interval
            recovery += interval
        after = sum(fake.take_counts().values())
    finally:
        exp.close()
    full = scrapes * n * 2  # a full round per scrape, each 503 retried once
    recovery_goal = 1.5 * 30 + interval  # the longest pause with its jitter, plus a scrape
    return [
        Row(
            f"10. {length:g} s outage (503), {n} jobs, a scrape every {interval:g} s",
            f"{during} requests in {scrapes} scrapes ({during / full:.2%} of a full round per "
            f"scrape: {full})",
            "<= 1% of full rounds",
            during <= full / 100 and not bad,
            bad,
        ),
        Row(
            "10. ... time to recover once the API answers",
            f"{recovery:g} s (then {after} requests in the scrape that had every job up, "
            f"{seconds:.2f} s)",
            f"<= {recovery_goal:g} s (the longest pause, 1.5 x 30 s, plus a scrape)",
            recovery <= recovery_goal and not bad,
            bad,
        ),
    ]


def case_11(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """A long crawl history: 20,000 jobs of which 1,000 are active, listed newest first (the
    active ones first), discovered with the defaults (``discover_interval`` 10 m,
    ``min_refresh_interval`` 10 s) and scraped with a 10 s timeout. The exporter's clock is moved
    by the bench (12 s a scrape, then 15 s a scrape for an hour); requests and their latency
    are real."""
    n, active, latency = args.history_jobs, args.history_active, args.latency
    fake.configure(latency, {"ws-history": {"jobs": n, "finished": 0.0, "active": [0, active]}})
    clock = Clock(time.monotonic())  # moved by hand (the backoff pauses read it)
    text = config_yaml(
        fake.base_url, concurrency=16, min_refresh="10s", workspaces={"ws-history": None}
    )
    exp = InProcess(text, clock=clock)
    rows: list[Row] = []
    try:
        times: list[float] = []
        requests_per: list[int] = []
        bad = ""
        for number in range(1, 53):  # 12 s apart: 51 intervals, 612 s, one full listing more
            seconds, body = scrape(exp.url, timeout=10)
            times.append(seconds)
            requests_per.append(sum(fake.take_counts().values()))
            if number >= 3 and not bad:
                bad = validity(body, n)
            clock.now += 12
        full_listing = math.ceil(n / 100)
        warm = requests_per[2:]
        mean = statistics.mean(warm)
        later = max(times[1:])
        rows.append(
            Row(
                f"11. {n} jobs ({active} active), scrapes 2-52 every 12 s",
                f"slowest {later:.2f} s (first {times[0]:.2f} s, {requests_per[0]} requests); "
                f"every job up from scrape 3: {'no' if bad else 'yes'}",
                "<= 2 s; every job from scrape 3",
                later <= 2.0 and not bad,
                bad,
            )
        )
        rows.append(
            Row(
                "11. ... API requests a scrape after warm-up (scrapes 3-52)",
                f"mean {mean:.1f}, max {max(warm)} (a full listing: {full_listing})",
                f"<= {full_listing / 4:g} (a quarter of a full listing)",
                mean <= full_listing / 4,
            )
        )
        hour = 0
        for _ in range(240):  # an hour at a 15 s scrape interval
            clock.now += 15
            scrape(exp.url, timeout=10)
            hour += sum(fake.take_counts().values())
        rows.append(
            Row(
                "11. ... API requests an hour, a scrape every 15 s",
                f"{hour} ({hour / 240:.1f} a scrape)",
                "(before: 137 a scrape, 32,960 an hour, none used)",
                True,
            )
        )
    finally:
        exp.close()
    rows.append(list_peak(fake, latency))
    return rows


def list_peak(fake: Fake, latency: float) -> Row:
    """Three discovering workspaces of 5,000 jobs each listed at once, ``max_concurrency: 8``:
    the most list requests the fake saw in flight together."""
    spaces = {f"ws-peak-{i}": {"jobs": 5000, "finished": 0.9} for i in range(3)}
    fake.configure(latency, spaces)
    text = config_yaml(
        fake.base_url, concurrency=8, min_refresh="10s", workspaces=dict.fromkeys(spaces)
    )
    exp = InProcess(text)
    try:
        fake.take_list_peak()
        seconds, body = scrape(exp.url, timeout=60)
        peak = fake.take_list_peak()
        good, total = jobs_up(body)
    finally:
        exp.close()
    return Row(
        "11. ... three workspaces of 5,000 jobs listed at once, max_concurrency 8",
        f"peak {peak} list requests in flight; {good} of {total} jobs up in {seconds:.1f} s",
        "<= 4 (half of max_concurrency, over all workspaces)",
        peak <= 4 and good == total == 15_000,
    )


def case_12(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """100,000 jobs, 95 % finished more than 7 days ago, the 5,000 active ones after the first
    20,000 in the list, ``include_finished_for: 7d``; the exporter as its own process. Once with
    the default ``discover_max_pages`` (every active job exported), once capped at 150 pages
    (the exact count left out on the counter)."""
    n, active = args.huge_jobs, args.huge_jobs // 20
    spec = {"jobs": n, "finished": 0.0, "active": [20_000, active], "age": 30 * 86_400.0}
    fake.configure(args.latency, {"ws-huge": spec})
    rows: list[Row] = []
    for cap in (None, 150):
        setting = "include_finished_for: 7d" + (f"\ndiscover_max_pages: {cap}" if cap else "")
        text = config_yaml(
            fake.base_url,
            concurrency=16,
            min_refresh="10s",
            workspaces={"ws-huge": None},
            discovery=setting,
        )
        with exporter_process(text) as (proc, url):
            started = time.monotonic()
            while True:
                _, body = scrape(url, timeout=10)
                if "listing_in_progress" not in body or time.monotonic() - started > 600:
                    break
                time.sleep(1)
            listed = time.monotonic() - started
            status = proc_status(proc.pid)
            good, total = jobs_up(body)
            cut = re.search(
                r"^convocore_crawler_discovery_truncated_jobs_total"
                r'\{workspace_id="ws-huge"\} (\S+)',
                body,
                re.M,
            )
            left_out = int(float(cut.group(1))) if cut else -1
        rss = status["VmRSS"] / 1024
        if cap is None:
            rows.append(
                Row(
                    f"12. {n} jobs, {active} active after the first 20,000, "
                    "include_finished_for 7d",
                    f"{good} of {total} exported jobs up (want {active}); RSS {rss:.0f} MB "
                    f"(peak {status['VmHWM'] / 1024:.0f} MB); listed in {listed:.0f} s",
                    "every active job; RSS <= 250 MB",
                    good == total == active and left_out == 0 and rss <= 250,
                )
            )
        else:
            want = n - cap * 100
            rows.append(
                Row(
                    f"12. ... discover_max_pages {cap}",
                    f"{left_out} left out on discovery_truncated_jobs_total (want {want}); "
                    f"{total} jobs exported; RSS {rss:.0f} MB",
                    "the exact count",
                    left_out == want,
                )
            )
    return rows


def expected_totals(n: int) -> dict[str, float]:
    """Case 13's totals, computed from the fake's shape alone (not by the exporter's code):
    ``name{labels}`` -> value, as the exposition writes them."""
    jobs = dict.fromkeys(STATUSES, 0)
    credits = scraped = failed = 0.0
    agent_jobs: dict[str, dict[str, int]] = {}
    agent_credits: dict[str, float] = {}
    for i in range(n):
        status, _, agents, value = history_shape(i)
        jobs[status] += 1
        credits += value
        scraped += 40 + i % 200  # as make_job writes them
        failed += i % 7
        for agent in agents:
            agent_jobs.setdefault(agent, dict.fromkeys(STATUSES, 0))[status] += 1
            agent_credits[agent] = agent_credits.get(agent, 0.0) + value
    ws = 'workspace_id="ws-history"'
    want = {f'workspace_jobs{{{ws},status="{s}"}}': float(c) for s, c in jobs.items()}
    want[f"workspace_estimated_credits{{{ws}}}"] = credits
    want[f"workspace_scraped_pages{{{ws}}}"] = scraped
    want[f"workspace_failed_pages{{{ws}}}"] = failed
    for agent, counts in agent_jobs.items():
        for s, c in counts.items():
            want[f'agent_jobs{{{ws},agent_id="{agent}",status="{s}"}}'] = float(c)
        want[f'agent_estimated_credits{{{ws},agent_id="{agent}"}}'] = agent_credits[agent]
    return want


_TOTAL_LINE = re.compile(
    r"^convocore_crawler_((?:workspace|agent)_(?:jobs|estimated_credits|scraped_pages"
    r"|failed_pages)\{[^}]*\}) (\S+)$",
    re.MULTILINE,
)


def case_13(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """Output that follows activity: 100,000 listed jobs (``--huge-jobs``) shaped as
    :func:`history_shape`, 50 ms latency, the defaults (``include_finished_for`` 7d), the
    exporter as its own process scraped every 5 s with a 10 s timeout; then the code before
    the totals (``--before``, which exports every job) the same way, in the same run."""
    n = args.huge_jobs
    fake.configure(args.latency, {"ws-history": {"jobs": n, "finished": 0.0, "history": True}})
    want = expected_totals(n)
    text = config_yaml(
        fake.base_url, concurrency=16, min_refresh="10s", workspaces={"ws-history": None}
    )
    rows: list[Row] = []
    for label, source in (("after", None), (f"before ({args.before})", source_tree(args.before))):
        times: list[float] = []
        sizes: list[int] = []
        exact: list[bool] = []
        with exporter_process(text, source) as (proc, url):
            started = time.monotonic()
            while len(times) < 12 and time.monotonic() - started < 900:
                seconds, body = scrape(url, timeout=10)
                if "listing_in_progress" in body and not times:
                    time.sleep(1)
                    continue  # the first listing: not yet the scrapes measured
                times.append(seconds)
                sizes.append(len(body.encode()))
                got = {name: float(value) for name, value in _TOTAL_LINE.findall(body)}
                exact.append(got == want)
                time.sleep(5)
            status = proc_status(proc.pid)
            good, total = jobs_up(body)
        later, size = max(times[2:]), max(sizes[2:]) / 1e6
        rss = status["VmRSS"] / 1024
        totals = "exact on every scrape" if all(exact) else f"exact on {sum(exact)} of {len(exact)}"
        ok = later <= 2.0 and size <= 30 and rss <= 200 and all(exact) and good == total
        rows.append(
            Row(
                f"13. {n} listed jobs, 95 % finished (1 in 20 within the hour), defaults: {label}",
                f"scrapes 3-{len(times)} after the first listing: slowest {later:.2f} s, body "
                f"{size:.1f} MB, {total} jobs exported; RSS {rss:.0f} MB (peak "
                f"{status['VmHWM'] / 1024:.0f} MB); totals {totals}",
                "<= 2 s, <= 30 MB, RSS <= 200 MB, every total exact",
                ok if source is None else True,
                ("" if source is None else "the code before, for comparison; ")
                + "scrapes: "
                + " ".join(f"{t:.2f}" for t in times),
            )
        )
    return rows


def samples_of(body: bytes) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    return {
        (sample.name, frozenset(sample.labels.items()), sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def case_7(args: argparse.Namespace) -> list[Row]:
    """The fast writer against prometheus_client's generate_latest, on the same job families.

    Both start from the parsed jobs in memory; the prometheus_client side builds its
    GaugeMetricFamily objects in a custom collector, as an exporter written on it would.
    """
    n = args.big_jobs
    text = config_yaml(
        "http://127.0.0.1:9/v3", concurrency=32, min_refresh="1h", workspaces={"ws-big": n}
    )
    config = parse_config(text, "<bench>", {"BENCH_TOKEN": TOKEN})
    runtime = Runtime(config, OwnMetrics())
    try:
        selected = [runtime.explicit[("ws-big", job_id(i))] for i in range(n)]
        outcomes = {
            t.key: Outcome(
                True, None, parse_job(make_job("ws-big", i, is_finished(i, 0.9), 0)), 1.7e9
            )
            for i, t in enumerate(selected)
        }

        def fast() -> bytes:
            return write_text(job_families(runtime, selected, outcomes))

        class Jobs:
            """The same families, built the prometheus_client way from the same outcomes."""

            def collect(self) -> Any:
                rows = [(t, outcomes[t.key]) for t in selected]
                up = GaugeMetricFamily(metrics.UP.name, metrics.UP.help, labels=JOB_LABELS)
                last = GaugeMetricFamily(
                    metrics.LAST_SUCCESS.name, metrics.LAST_SUCCESS.help, labels=JOB_LABELS
                )
                info = GaugeMetricFamily(
                    metrics.JOB_INFO.name, metrics.JOB_INFO.help, labels=metrics.JOB_INFO.labels
                )
                status = GaugeMetricFamily(
                    metrics.JOB_STATUS.name,
                    metrics.JOB_STATUS.help,
                    labels=metrics.JOB_STATUS.labels,
                )
                failure = GaugeMetricFamily(
                    metrics.JOB_FAILURE_INFO.name,
                    metrics.JOB_FAILURE_INFO.help,
                    labels=metrics.JOB_FAILURE_INFO.labels,
                )
                agent = GaugeMetricFamily(
                    metrics.JOB_AGENT_INFO.name,
                    metrics.JOB_AGENT_INFO.help,
                    labels=metrics.JOB_AGENT_INFO.labels,
                )
                values = [
                    (d, GaugeMetricFamily(d.name, d.help, labels=JOB_LABELS))
                    for d in metrics.JOB_VALUES
                ]
                for target, outcome in rows:
                    ids = [target.workspace.id, target.job_id]
                    job = outcome.job
                    assert job is not None and outcome.last_success is not None
                    up.add_metric(ids, 1.0 if outcome.up else 0.0)
                    last.add_metric(ids, outcome.last_success)
                    extra = (job.primary_url, job.refresh_rate, job.processing_mode)
                    flags = ("true" if job.deep else "false", "true" if job.use_proxy else "false")
                    info.add_metric([*ids, target.name, *(e or "" for e in extra), *flags], 1.0)
                    for state in STATUSES:
                        status.add_metric([*ids, state], 1.0 if job.status == state else 0.0)
                    if job.failure is not None:
                        failure.add_metric([*ids, job.failure], 1.0)
                    for agent_id in job.agents:
                        agent.add_metric([*ids, agent_id], 1.0)
                    for definition, family in values:
                        value = definition.read(job)
                        if value is not None:
                            family.add_metric(ids, float(value))
                yield from (up, last, info, status, failure, agent, *(f for _, f in values))

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Jobs())  # type: ignore[arg-type]
        fast_times, client_times = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            fast_body = fast()
            fast_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            client_body = generate_latest(registry)
            client_times.append(time.perf_counter() - started)
    finally:
        runtime.close()
    same = samples_of(fast_body) == samples_of(client_body)
    fast_median, client_median = statistics.median(fast_times), statistics.median(client_times)
    samples = sum(1 for line in fast_body.splitlines() if not line.startswith(b"#"))
    return [
        Row(
            f"7. job families of {n} jobs ({samples} samples): fast writer vs generate_latest",
            f"{client_median / fast_median:.1f}x faster (median {fast_median:.2f} s vs "
            f"{client_median:.2f} s of {args.repeats}; same samples: {same})",
            ">= 3x faster, the same samples",
            client_median >= 3 * fast_median and same,
            "" if same else "the two writers disagree",
        )
    ]


def timed_scrape(url: str, gzipped: bool = False) -> tuple[float, int, bytes]:
    """One GET /metrics: (wall seconds, bytes on the wire, the body as sent). The client does
    no more than read the body, so that its own work weighs little on either side."""
    started = time.perf_counter()
    response = requests.get(
        url + "/metrics",
        headers={
            "X-Prometheus-Scrape-Timeout-Seconds": "600",
            "Accept-Encoding": "gzip" if gzipped else "identity",
        },
        timeout=900,
        stream=True,
    )
    raw = response.raw.read(decode_content=False)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, len(raw), raw


def listed_everything(url: str, limit: float = 900) -> str:
    """Scrapes until discovery's first listing is complete; the last body."""
    started = time.monotonic()
    while True:
        body = timed_scrape(url)[2].decode()
        if "listing_in_progress" not in body or time.monotonic() - started > limit:
            return body
        time.sleep(1)


def idle(pids: Iterable[int], limit: float = 30.0) -> None:
    """Wait until none of ``pids`` uses CPU any more (under 10 ms in 0.2 s), at most
    ``limit`` seconds: what one process still does after its scrape (freeing a large body)
    must not weigh on the next one's."""
    end = time.monotonic() + limit
    last = {pid: process_cpu(pid) for pid in pids}
    while time.monotonic() < end:
        time.sleep(0.2)
        now = {pid: process_cpu(pid) for pid in last}
        if all(now[pid] - last[pid] < 0.01 for pid in last):
            return
        last = now


def alternate(
    urls: dict[str, str], repeats: int, gzipped: bool = False, pids: Iterable[int] = ()
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """``repeats`` scrapes of each exporter, taking turns (before, after, before, ...), so a
    machine that slows down or speeds up weighs on both alike; the times, and the bytes each
    sent the last time. With ``pids``, each scrape starts once those processes are idle."""
    times: dict[str, list[float]] = {side: [] for side in urls}
    sizes: dict[str, int] = {}
    pids = list(pids)
    for _ in range(repeats):
        for side, url in urls.items():
            idle(pids)
            seconds, sizes[side], _ = timed_scrape(url, gzipped)
            times[side].append(seconds)
    return times, sizes


def case_14(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """The render cache: the code of ``--before`` and this code, each as its own process, in
    the same run, scraped in turns. (a) explicit jobs served from memory (as case 5); (b) a
    long discovered history with every listed job exported."""
    rows: list[Row] = []
    source = source_tree(args.before)
    n = args.render_jobs
    fake.configure(args.big_latency, {"ws-big": {"jobs": n, "finished": args.finished}})
    text = config_yaml(
        fake.base_url, concurrency=args.concurrency, min_refresh="1h", workspaces={"ws-big": n}
    )
    with (
        exporter_process(text, source=source) as (before_proc, before_url),
        exporter_process(text) as (after_proc, after_url),
    ):
        urls = {"before": before_url, "after": after_url}
        bodies = [timed_scrape(u)[2].decode() for u in urls.values()]
        bad = "; ".join(filter(None, (validity(body, n) for body in bodies)))
        times, _ = alternate(urls, args.repeats, pids=(before_proc.pid, after_proc.pid))
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    ratio = after / before
    rows.append(
        Row(
            f"14a. /metrics, {n} jobs from memory, --before {args.before} vs now, in turns",
            f"{ratio:.2f}x: median {after:.3f} s vs {before:.3f} s of {args.repeats} each",
            "<= 0.35x",
            ratio <= 0.35 and not bad,
            bad,
        )
    )
    huge = args.render_huge_jobs
    spec = {"jobs": huge, "finished": 0.95, "age": 30 * 86_400.0}
    fake.configure(args.latency, {"ws-huge": spec})
    # Every listed job exported: the default before, `forever` since the 7d default.
    discovery = {"before": "", "after": "include_finished_for: forever"}
    # Served from memory, as in (a): with a refresh due at each scrape (a scrape in turns
    # takes longer than 10 s before), both sides would wait for its 1,000 list pages at 50 ms,
    # and the measure would be the fake's latency, not /metrics.
    texts = {
        side: config_yaml(
            fake.base_url,
            concurrency=16,
            min_refresh="1h",
            workspaces={"ws-huge": None},
            discovery=discovery[side],
        )
        for side in ("before", "after")
    }
    with (
        exporter_process(texts["before"], source=source) as (before_proc, before_url),
        exporter_process(texts["after"]) as (after_proc, after_url),
    ):
        procs = {"before": before_proc, "after": after_proc}
        urls = {"before": before_url, "after": after_url}
        bad = "; ".join(filter(None, (validity(listed_everything(u), huge) for u in urls.values())))
        pids = [proc.pid for proc in procs.values()]
        times, plain = alternate(urls, args.repeats, pids=pids)
        zipped, zipped_sizes = alternate(urls, args.repeats, gzipped=True, pids=pids)
        status = {side: proc_status(proc.pid) for side, proc in procs.items()}
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    ratio = after / before
    rss = {side: status[side]["VmRSS"] / 1024 for side in status}
    peak = {side: status[side]["VmHWM"] / 1024 for side in status}
    rows.append(
        Row(
            f"14b. /metrics, {huge} listed jobs all exported, in turns",
            f"{ratio:.2f}x: median {after:.2f} s vs {before:.2f} s of {args.repeats} each; "
            f"RSS {rss['after']:.0f} MB vs {rss['before']:.0f} MB (peak {peak['after']:.0f} vs "
            f"{peak['before']:.0f})",
            "<= 0.35x; RSS not above before",
            ratio <= 0.35 and rss["after"] <= rss["before"] and not bad,
            bad,
        )
    )
    rows.append(
        Row(
            "14b. ... with gzip",
            "; ".join(
                f"{side} median {statistics.median(zipped[side]):.2f} s, "
                f"{zipped_sizes[side] / 1e6:.1f} MB of {plain[side] / 1e6:.1f} MB"
                for side in ("after", "before")
            ),
            "(quoted)",
            True,
        )
    )
    return rows


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_loop(base_url: str, ws: str, n: int, threads: int, client: str = "requests") -> int:
    """The reference client: ``threads`` threads, each with its own requests.Session, GET and
    JSON-decode each of its share of ``n`` jobs; prints this process's CPU seconds and wall
    seconds over the loop (run in its own process, so that only its CPU counts).

    With ``client`` "sender", the same loop on the exporter's own client (one shared
    :class:`~exporter.convocore.transport.Sender`) instead: what the exporter's requests cost
    without the rest of the exporter. With "requests-1cpu", the bare loop with its threads kept
    on one CPU, as the exporter keeps its request threads (``api.request_cpus``): how much of
    the difference is that alone."""
    sender = Sender(base_url, threads) if client == "sender" else None
    token = Secret(TOKEN)
    cpus = request_cpus(1) if client == "requests-1cpu" else None

    def worker(index: int) -> None:
        pin(cpus)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        for i in range(index, n, threads):
            url = f"{base_url}/workspaces/{ws}/crawler/jobs/{job_id(i)}"
            if sender is not None:
                response = sender.send(token, url, None, 60)
                response.raise_for_status()
                json.loads(response.raw.read())
                response.close()
                continue
            response = session.get(url, timeout=60)
            response.raise_for_status()
            response.json()
        session.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}))
    return 0


def quiet(fake: Fake, settle: float = 0.5) -> None:
    """Wait until the fake has seen no job request for ``settle`` seconds (a first read at
    start-up has ended)."""
    fake.take_counts()
    while True:
        time.sleep(settle)
        if not fake.take_counts()["job"]:
            return


def cold_read(
    proc: subprocess.Popen[bytes], url: str, config: Path, text: str
) -> tuple[float, float, str]:
    """Reload ``config`` rewritten as ``text`` (jobs never read) and scrape at once:
    ``(wall seconds, CPU seconds, body)`` from the reload to the end of the scrape, the reload
    included. Both sides read the new jobs cold: the code before in the scrape, this tree's
    in the first read the reload starts, which the scrape shares."""
    config.write_text(text)
    start_cpu, start = process_cpu(proc.pid), time.perf_counter()
    requests.post(url + "/-/reload", timeout=60).raise_for_status()
    _, body = scrape(url)
    return time.perf_counter() - start, process_cpu(proc.pid) - start_cpu, body


def case_15(args: argparse.Namespace, fake: Fake) -> list[Row]:
    """The exporter's CPU per upstream request and its cold-scrape time, before and after,
    against a bare requests loop on as many threads; alternately, medians of ``--cpu-rounds``.

    Each exporter starts with one job, is left to settle, and is then reloaded with all of
    them: the cold read is measured alone, without the start-up of the process (and the
    first read at start-up, which this tree's code does and the code before does not)."""
    n, latency, conc, ws = args.jobs, args.latency, args.concurrency, "ws-cpu"
    fake.configure(latency, {ws: {"jobs": n, "finished": args.finished}})
    config_text = config_yaml(fake.base_url, concurrency=conc, min_refresh="0s", workspaces={ws: n})
    first_text = config_yaml(fake.base_url, concurrency=conc, min_refresh="0s", workspaces={ws: 1})
    before_tree = source_tree(args.before)
    kinds = ["before", "after", "bare", "client", "bare-1cpu"]
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    bad = ""
    fake.take_counts()
    for round_ in range(args.cpu_rounds):
        order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
        for which in order:
            if which in ("bare", "client", "bare-1cpu"):
                client = {"bare": "requests", "client": "sender", "bare-1cpu": "requests-1cpu"}
                loop = [fake.base_url, ws, str(n), str(conc), client[which]]
                out = subprocess.run(
                    [sys.executable, __file__, "--bare-loop", *loop],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                measured = json.loads(out)
                seconds, used = measured["wall"], measured["cpu"]
            else:
                source = before_tree if which == "before" else None
                path: list[Path] = []
                with exporter_process(first_text, source, config_path=path) as (proc, url):
                    scrape(url)
                    quiet(fake)
                    seconds, used, body = cold_read(proc, url, path[0], config_text)
                bad = bad or validity(body, n)
            sent = fake.take_counts()["job"]
            cpu[which].append(used / sent)
            wall[which].append(seconds)
    per = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
    slow = {k: statistics.median(v) for k, v in wall.items()}
    ratio, ratio_before = per["after"] / per["bare"], per["before"] / per["bare"]
    limit = n * latency / conc

    def shown(values: list[float], scale: float, unit: str) -> str:
        return ", ".join(f"{v * scale:.{2 if unit == 's' else 3}f}" for v in values)

    return [
        Row(
            f"15. CPU per upstream request, cold scrape of {n} jobs, {latency * 1000:g} ms, "
            f"max_concurrency {conc}",
            f"{ratio:.2f}x the bare loop: after {per['after']:.3f} ms, bare requests loop on "
            f"{conc} threads {per['bare']:.3f} ms, before {per['before']:.3f} ms "
            f"({ratio_before:.2f}x); the exporter's client alone in the bare loop "
            f"{per['client']:.3f} ms ({per['client'] / per['bare']:.2f}x); the bare loop with "
            f"its threads on one CPU, as the exporter's request threads run by default, "
            f"{per['bare-1cpu']:.3f} ms ({per['bare-1cpu'] / per['bare']:.2f}x); medians of "
            f"{args.cpu_rounds} (after: {shown(cpu['after'], 1000, 'ms')}; bare: "
            f"{shown(cpu['bare'], 1000, 'ms')}; before: {shown(cpu['before'], 1000, 'ms')}; "
            f"client: {shown(cpu['client'], 1000, 'ms')}; bare on one CPU: "
            f"{shown(cpu['bare-1cpu'], 1000, 'ms')})",
            "<= 0.7x the bare loop",
            ratio <= 0.7 and not bad,
            bad,
        ),
        Row(
            "15. ... its wall time (the same cold scrapes)",
            f"median {slow['after']:.2f} s ({shown(wall['after'], 1, 's')}); before "
            f"{slow['before']:.2f} s ({shown(wall['before'], 1, 's')}); bare loop "
            f"{slow['bare']:.2f} s",
            f"<= {1.2 * limit:.2f} s (1.2 x {n} x {latency:g} s / {conc})",
            slow["after"] <= 1.2 * limit and not bad,
            bad,
        ),
    ]


# -- output -------------------------------------------------------------------------------


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"machine: nproc {cpus}{', ' + model if model else ''}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        f"{platform.system()} {platform.release()}"
    )


def table(rows: list[Row]) -> str:
    header = ("case", "measured", "goal", "result")
    cells = [
        (
            r.case,
            r.measured,
            r.goal,
            ("pass" if r.ok else "FAIL") + (f": {r.note}" if r.note else ""),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--cases",
        default="1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        help="comma-separated case numbers",
    )
    parser.add_argument(
        "--before",
        default="314af07",
        help="git revision whose code the before-and-after cases measure as 'before' "
        "(default: the last release before the discovery owner, totals and render cache)",
    )
    parser.add_argument("--history-jobs", type=int, default=20_000, help="jobs in case 11")
    parser.add_argument("--history-active", type=int, default=1000, help="active jobs, case 11")
    parser.add_argument("--huge-jobs", type=int, default=100_000, help="jobs in cases 12, 13")
    parser.add_argument("--render-jobs", type=int, default=10_000, help="explicit jobs in case 14a")
    parser.add_argument(
        "--render-huge-jobs", type=int, default=100_000, help="listed jobs in case 14b"
    )
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in cases 1-4")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="upstream latency in cases 1-4 (seconds)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="api.max_concurrency")
    parser.add_argument(
        "--cold-runs", type=int, default=3, help="cold scrapes timed in case 1 (median)"
    )
    parser.add_argument("--finished", type=float, default=0.9, help="share of finished jobs")
    parser.add_argument(
        "--baseline-jobs",
        type=int,
        default=0,
        help="jobs the sequential baseline fetches, its time scaled to --jobs (0: all)",
    )
    parser.add_argument("--big-jobs", type=int, default=10_000, help="jobs in cases 5-7")
    parser.add_argument("--big-urls", type=int, default=500, help="URLs per answer in 5-6")
    parser.add_argument(
        "--big-latency", type=float, default=0.005, help="upstream latency in 5-6 (seconds)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="warm scrapes timed in case 5")
    parser.add_argument("--page-jobs", type=int, default=1000, help="finished jobs in case 8")
    parser.add_argument("--pages", type=int, default=500, help="pages each job lists in case 8")
    parser.add_argument(
        "--outage-seconds", type=float, default=300.0, help="length of the outage in case 10"
    )
    parser.add_argument(
        "--outage-interval", type=float, default=15.0, help="seconds between scrapes in case 10"
    )
    parser.add_argument(
        "--cpu-rounds", type=int, default=3, help="rounds of before, after and bare in case 15"
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare-loop", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_fake:
        return serve_fake()
    if args.bare_loop:
        url, ws, n, threads, *client = args.bare_loop
        return bare_loop(url, ws, int(n), int(threads), *client)
    wanted = {int(c) for c in args.cases.split(",") if c.strip()}
    # Cases 9 and 10 take jobs down on purpose: one warning per job is not the table.
    logging.getLogger("exporter").setLevel(logging.ERROR)
    print(machine(), flush=True)
    fake = Fake()
    rows: list[Row] = []
    started = time.monotonic()
    try:
        if wanted & {1, 2, 3}:
            rows += cases_1_to_3(args, fake, wanted)
        if 4 in wanted:
            rows += case_4(args, fake)
        if wanted & {5, 6}:
            rows += cases_5_6(args, fake, wanted)
        if 7 in wanted:
            rows += case_7(args)
        if 8 in wanted:
            rows += case_8(args, fake)
        if 9 in wanted:
            rows += case_9(args, fake)
        if 10 in wanted:
            rows += case_10(args, fake)
        if 11 in wanted:
            rows += case_11(args, fake)
        if 12 in wanted:
            rows += case_12(args, fake)
        if 13 in wanted:
            rows += case_13(args, fake)
        if 14 in wanted:
            rows += case_14(args, fake)
        if 15 in wanted:
            rows += case_15(args, fake)
    finally:
        fake.close()
    print(table(rows))
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
