"""A chaos soak of the exporter, for ``tests/test_soak.py`` (about 75 s) and ``bench/soak.py``
(minutes long, for people).

What runs, all on loopback:

- the exporter as its own process (``python -m exporter``), logging at debug level;
- the tests' simulated API (:class:`~tests.fakeapi.FakeConvocore`) with two workspaces: one
  with jobs listed by hand (one of them hung: its get-job never answers), one discovered, both
  with page statistics. A share of the requests fail at random: 500, a proxy's HTML 502, 429
  with ``Retry-After``, a reset mid-body, truncated JSON, a stall past the deadline. The jobs
  progress and finish; a job joins the listing, another leaves it;
- the real Prometheus, scraping the exporter every :data:`SCRAPE_INTERVAL` seconds;
- reloads every :attr:`Schedule.reload_every` seconds, through SIGHUP and ``POST /-/reload``
  in turn, of a valid and an invalid config in turn; once, the token is rotated through the
  workspaces' ``token_file`` (the API accepts both secrets while the reload happens).

:meth:`Report.problems` lists every rule broken; see its checks for the bounds.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from .fakeapi import FakeConvocore, Fault, full_job
from .processes import free_port, spawn_prometheus

SCRAPE_INTERVAL = 2.0
SCRAPE_TIMEOUT = 2.0
MIN_REFRESH = 1.0  # api.min_refresh_interval: the listing is re-read at most this often
GRACE = 30.0  # discover_grace_period
MAX_CONCURRENCY = 8
DISCOVER_INTERVAL = 5.0  # discover_interval: the whole listing is read this often
# A job that leaves (or joins) the listing is gone (or exported) from the first scrape after
# the first good full listing without it (with it): within DISCOVER_INTERVAL plus a scrape
# interval when the listing answers. The bound allows for several failed listings in a row.
LISTING_DELAY = 15.0
# Resources after warm-up: RSS may grow by at most this much until the end; threads and open
# files stay under a bound that the design sets (the upstream workers of two configs during
# a reload, the HTTP threads and a margin).
RSS_GROWTH_BOUND = 12 * 1024 * 1024
THREADS_BOUND = 2 * MAX_CONCURRENCY + 2 + 12  # ... and the listing walker of each
FDS_BOUND = 2 * MAX_CONCURRENCY + 40
FAULT_RATE = 0.15  # of the requests of jobs and pages lists
LISTING_FAULT_RATE = 0.3  # of the listing's requests

EXPLICIT = "ws-hand"
DISCOVERED = "ws-disc"
HUNG = "hung"
JOINER = "d-joiner"
LEAVER = "d-leaver"
TOKENS = ("vg_soak_first_secret_4d9a7c01e2", "vg_soak_second_secret_b83f5e6a90")


@dataclass(frozen=True)
class Schedule:
    """When things happen, in seconds from the start of the soak."""

    duration: float
    warm_up: float
    join: float
    leave: float
    rotate: float
    reload_every: float = 6.0

    @classmethod
    def over(cls, duration: float) -> Schedule:
        return cls(
            duration=duration,
            warm_up=min(20.0, duration / 4),
            join=duration * 0.3,
            leave=duration * 0.4,
            rotate=duration * 0.55,
        )


class Chaos:
    """The fault (or none) of each request, at random with a fixed seed."""

    def __init__(self, seed: int = 15) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        body = '{"success": true, "message": "ok", "data": {"id": "' + "x" * 400 + '"}}'
        self.faults: dict[str, Fault] = {
            "500": Fault(500, {"message": "Internal error", "code": "INTERNAL_SERVER_ERROR"}),
            "html-502": Fault(
                502, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"}
            ),
            "429": Fault(429, {"message": "slow down"}, {"Retry-After": "1"}),
            "reset": Fault(200, body, reset_after=60),
            "truncated": Fault(200, '{"success": true, "message": "ok", "data": {"jobs": ['),
            "stall": Fault(200, body, delay=SCRAPE_TIMEOUT + 1.5),
        }

    def __call__(self, target: str) -> Fault | None:
        listing = target.split("?", 1)[0].endswith("/crawler/jobs")
        with self.lock:
            if self.rng.random() >= (LISTING_FAULT_RATE if listing else FAULT_RATE):
                return None
            name = self.rng.choice(sorted(self.faults))
            self.counts[name] = self.counts.get(name, 0) + 1
        return self.faults[name]


class World:
    """The simulated API's jobs, moving on every second."""

    def __init__(self, fake: FakeConvocore) -> None:
        self.fake = fake
        self.explicit = {
            f"h{i}": full_job(f"h{i}", EXPLICIT, scrapedPagesNum=10 * i, pageLimit=40 + 20 * i)
            for i in range(1, 7)
        }
        self.explicit[HUNG] = full_job(HUNG, EXPLICIT)
        self.discovered = {
            job_id: full_job(job_id, DISCOVERED, scrapedPagesNum=5 * i, pageLimit=60 + 30 * i)
            for i, job_id in enumerate([*(f"d{i}" for i in range(1, 8)), LEAVER])
        }
        self.publish()
        fake.fail(fake.job_path(EXPLICIT, HUNG), Fault(hang=True))

    def publish(self) -> None:
        self.fake.set_jobs(EXPLICIT, dict(self.explicit))
        self.fake.set_jobs(DISCOVERED, dict(self.discovered))

    def tick(self) -> None:
        for jobs in (self.explicit, self.discovered):
            for job_id, job in list(jobs.items()):
                if job["status"] != "processing" or job_id == HUNG:
                    continue
                scraped = min(job["pageLimit"], job["scrapedPagesNum"] + 2)
                moved = {**job, "scrapedPagesNum": scraped, "currentPageIndex": scraped + 3}
                if scraped >= job["pageLimit"]:
                    moved.update(status="completed", done=True, activeScrapeUrl=None)
                moved["ts"] = int(time.time() * 1000)
                jobs[job_id] = moved
        self.publish()

    def join(self) -> None:
        self.discovered[JOINER] = full_job(JOINER, DISCOVERED, scrapedPagesNum=3, pageLimit=500)
        self.publish()

    def leave(self) -> None:
        del self.discovered[LEAVER]
        self.publish()


def config_text(base_url: str, token_file: Path, *, valid: bool) -> str:
    hand = ", ".join([*(f"h{i}" for i in range(1, 7)), HUNG])
    text = (
        "api:\n"
        f"  base_url: {base_url}\n"
        "  timeout_seconds: 5\n"
        f"  max_concurrency: {MAX_CONCURRENCY}\n"
        f"  min_refresh_interval: {MIN_REFRESH:g}s\n"
        "workspaces:\n"
        f"  - id: {EXPLICIT}\n"
        f"    token_file: {token_file}\n"
        f"    jobs: [{hand}]\n"
        "    page_stats: true\n"
        "    page_stats_interval: 10s\n"
        f"  - id: {DISCOVERED}\n"
        f"    token_file: {token_file}\n"
        "    discover: true\n"
        f"    discover_grace_period: {GRACE:g}s\n"
        f"    discover_interval: {DISCOVER_INTERVAL:g}s\n"
        "    page_stats: true\n"
        "    page_stats_interval: 10s\n"
    )
    return text if valid else text + "    page_stat_interval: 10s\n"  # an unknown key


@dataclass
class Sample:
    at: float
    rss: int
    threads: int
    fds: int


@dataclass
class Reload:
    at: float
    how: str  # SIGHUP or POST
    valid: bool
    applied: bool  # what the exporter's reload gauge said afterwards


@dataclass
class Report:
    schedule: Schedule
    started: float = 0.0  # wall time of the first scrape Prometheus recorded
    ended: float = 0.0
    joined_at: float = 0.0
    left_at: float = 0.0
    rotated_at: float = 0.0
    ups: list[tuple[float, float]] = field(default_factory=list)
    durations: list[tuple[float, float]] = field(default_factory=list)
    resets: dict[str, float] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    reloads: list[Reload] = field(default_factory=list)
    logs: str = ""
    served: str = ""  # the last /metrics and landing page, as text
    exit_code: int | None = None
    pages_listed: dict[str, float | None] = field(default_factory=dict)
    discovered_up: dict[str, tuple[float, float]] = field(default_factory=dict)  # min, changes
    joiner_samples: list[float] = field(default_factory=list)  # timestamps
    leaver_samples: list[float] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    unauthorized: float = 0.0

    def problems(self) -> list[str]:
        """Every rule the soak broke, in words; empty when it held."""
        found: list[str] = []
        expected = (self.ended - self.started) / SCRAPE_INTERVAL
        if len(self.ups) < 0.8 * expected:
            found.append(f"only {len(self.ups)} scrapes recorded of about {expected:.0f}")
        found += [f"up {v} at {t:.0f}" for t, v in self.ups if v != 1]
        found += [
            f"scrape of {v:.2f} s at {t:.0f} (timeout {SCRAPE_TIMEOUT:g} s)"
            for t, v in self.durations
            if v >= SCRAPE_TIMEOUT
        ]
        found += [f"counter reset: {name}" for name in sorted(self.resets)]
        found += self._resources()
        for token in TOKENS:
            if token in self.logs or token in self.served:
                found.append("a token shows in the logs or the served pages")
        if "Traceback" in self.logs:
            found.append("a traceback in the logs")
        if self.exit_code != 0:
            found.append(f"the exporter exited with {self.exit_code}")
        found += [
            f"reload by {r.how} of a {'valid' if r.valid else 'invalid'} config: "
            f"{'applied' if r.applied else 'refused'}"
            for r in self.reloads
            if r.applied != r.valid
        ]
        if not {(r.how, r.valid) for r in self.reloads} >= {
            ("SIGHUP", True),
            ("SIGHUP", False),
            ("POST", True),
            ("POST", False),
        }:
            found.append("not every kind of reload happened")
        if self.unauthorized:
            found.append("requests were refused 401 around the token rotation")
        found += [f"no page statistics for {j}" for j, v in self.pages_listed.items() if not v]
        found += [
            f"discovered job {j} up changed {changes:g} times (min {low:g})"
            for j, (low, changes) in self.discovered_up.items()
            if low != 1 or changes != 0
        ]
        found += self._churn()
        return found

    def _resources(self) -> list[str]:
        found: list[str] = []
        warm = [s for s in self.samples if s.at - self.started >= self.schedule.warm_up]
        if len(warm) < 2:
            return ["too few resource samples after warm-up"]
        growth = max(s.rss for s in warm) - warm[0].rss
        if growth > RSS_GROWTH_BOUND:
            found.append(f"RSS grew by {growth / 2**20:.1f} MiB after warm-up")
        threads = max(s.threads for s in warm)
        if threads > THREADS_BOUND:
            found.append(f"{threads} threads (bound {THREADS_BOUND})")
        fds = max(s.fds for s in warm)
        if fds > FDS_BOUND:
            found.append(f"{fds} open files (bound {FDS_BOUND})")
        return found

    def _churn(self) -> list[str]:
        found: list[str] = []
        if not self.joiner_samples or min(self.joiner_samples) > self.joined_at + LISTING_DELAY:
            found.append("the job that joined the listing was not exported in time")
        elif min(self.joiner_samples) < self.joined_at:
            found.append("the job that joined was exported before it joined")
        if not self.leaver_samples or min(self.leaver_samples) > self.left_at:
            found.append("the job that left was not exported before it left")
        elif max(self.leaver_samples) > self.left_at + LISTING_DELAY:
            found.append("the job that left the listing was still exported after the delay")
        return found

    def summary(self) -> str:
        warm = [s for s in self.samples if s.at - self.started >= self.schedule.warm_up] or [
            Sample(0, 0, 0, 0)
        ]
        durations = [v for _, v in self.durations] or [0.0]
        return "\n".join(
            [
                f"soak of {self.ended - self.started:.0f} s: {len(self.ups)} scrapes by "
                f"Prometheus, up 1 in {sum(1 for _, v in self.ups if v == 1)}; scrape "
                f"duration max {max(durations):.3f} s, median "
                f"{sorted(durations)[len(durations) // 2]:.3f} s (timeout {SCRAPE_TIMEOUT:g} s)",
                f"faults injected: {dict(sorted(self.faults.items()))}",
                f"reloads: {len(self.reloads)} ("
                + ", ".join(
                    f"{r.how} {'valid' if r.valid else 'invalid'}"
                    f" {'applied' if r.applied else 'refused'}"
                    for r in self.reloads
                )
                + ")",
                f"after warm-up: RSS {warm[0].rss / 2**20:.1f} -> {warm[-1].rss / 2**20:.1f} "
                f"MiB (max {max(s.rss for s in warm) / 2**20:.1f}), threads "
                f"{min(s.threads for s in warm)}-{max(s.threads for s in warm)}, open files "
                f"{min(s.fds for s in warm)}-{max(s.fds for s in warm)}",
                f"joined job first exported {min(self.joiner_samples, default=math.nan) - self.joined_at:.1f} s "
                f"after joining; left job last exported "
                f"{max(self.leaver_samples, default=math.nan) - self.left_at:.1f} s after leaving",
                f"problems: {self.problems() or 'none'}",
            ]
        )


def _proc(pid: int) -> tuple[int, int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        values[name] = rest.split()[0] if rest.split() else "0"
    return int(values["VmRSS"]) * 1024, int(values["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, workdir: Path, prometheus: str, schedule: Schedule) -> None:
        self.workdir = workdir
        self.prometheus = prometheus
        self.schedule = schedule
        self.report = Report(schedule)
        self.fake = FakeConvocore(jobs={})
        self.fake.api.token = TOKENS[0]
        self.chaos = Chaos()
        self.world = World(self.fake)
        self.token_file = workdir / "token"
        self.token_file.write_text(TOKENS[0] + "\n")
        self.config = workdir / "config.yaml"
        self.config.write_text(config_text(self.fake.base_url, self.token_file, valid=True))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prometheus_url = ""
        self.stop = threading.Event()

    def run(self) -> Report:
        with self._processes() as exporter:
            self.fake.chaos = self.chaos
            threads = [
                threading.Thread(target=self._drive, name="soak-world"),
                threading.Thread(target=self._sample, args=(exporter.pid,), name="soak-sample"),
            ]
            for thread in threads:
                thread.start()
            try:
                self._reloads(exporter)
            finally:
                self.stop.set()
                for thread in threads:
                    thread.join()
            self.fake.chaos = None
            self.report.ended = time.time()
            self.report.served = requests.get(self.url + "/metrics", timeout=30).text
            self.report.served += requests.get(self.url + "/", timeout=30).text
            self._query()
        self.report.faults = dict(self.chaos.counts)
        self.report.logs = (self.workdir / "exporter.log").read_text(errors="replace")
        return self.report

    @contextlib.contextmanager
    def _processes(self) -> Iterator[subprocess.Popen[bytes]]:
        log = (self.workdir / "exporter.log").open("wb")
        exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                f"--config.file={self.config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=debug",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prometheus_port = free_port()
        self.prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        scrape = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL:g}s"},
            "scrape_configs": [
                {
                    "job_name": "soak",
                    "scrape_interval": f"{SCRAPE_INTERVAL:g}s",
                    "scrape_timeout": f"{SCRAPE_TIMEOUT:g}s",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}],
                }
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(scrape))
        prometheus = spawn_prometheus(self.prometheus, self.workdir, prometheus_port)
        try:
            self._wait(lambda: requests.get(self.url + "/-/ready", timeout=2).ok, "the exporter")
            self._wait(lambda: bool(self._instant('up{job="soak"}')), "a first scrape")
            self.report.started = time.time()
            yield exporter
        finally:
            if exporter.poll() is None:
                exporter.send_signal(signal.SIGTERM)
                try:
                    self.report.exit_code = exporter.wait(30)
                except subprocess.TimeoutExpired:
                    exporter.kill()
                    exporter.wait(10)
            else:
                self.report.exit_code = exporter.returncode
            prometheus.terminate()
            prometheus.wait(30)
            log.close()
            self.fake.close()

    def _wait(self, ready: Any, what: str, seconds: float = 60.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with contextlib.suppress(requests.RequestException):
                if ready():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not come within {seconds:g} s")

    def _elapsed(self) -> float:
        return time.time() - self.report.started

    def _drive(self) -> None:
        joined = left = False
        while not self.stop.wait(1.0):
            self.world.tick()
            with self.fake.lock:
                self.fake.log.clear()  # minutes of requests would otherwise pile up here
            if not joined and self._elapsed() >= self.schedule.join:
                self.world.join()
                self.report.joined_at, joined = time.time(), True
            if not left and self._elapsed() >= self.schedule.leave:
                self.world.leave()
                self.report.left_at, left = time.time(), True

    def _sample(self, pid: int) -> None:
        while not self.stop.wait(1.0):
            with contextlib.suppress(OSError):
                rss, threads, fds = _proc(pid)
                self.report.samples.append(Sample(time.time(), rss, threads, fds))

    def _reloads(self, exporter: subprocess.Popen[bytes]) -> None:
        count = 0
        rotated = False
        while self._elapsed() < self.schedule.duration:
            if self.stop.wait(
                min(self.schedule.reload_every, self.schedule.duration - self._elapsed())
            ):
                return
            if self._elapsed() >= self.schedule.duration:
                return
            if not rotated and self._elapsed() >= self.schedule.rotate:
                self._rotate()
                rotated = True
                continue
            # SIGHUP valid, POST invalid, POST valid, SIGHUP invalid, and again.
            how = "SIGHUP" if count % 4 in (0, 3) else "POST"
            valid = count % 2 == 0
            count += 1
            self._reload(exporter, how, valid)

    def _reload(self, exporter: subprocess.Popen[bytes], how: str, valid: bool) -> None:
        self.config.write_text(config_text(self.fake.base_url, self.token_file, valid=valid))
        before = self._reload_gauges()
        if how == "SIGHUP":
            exporter.send_signal(signal.SIGHUP)
        else:
            requests.post(self.url + "/-/reload", timeout=30)
        expected = 1.0 if valid else 0.0

        def settled() -> bool:
            ok, at = self._reload_gauges()
            return ok == expected and (not valid or at > before[1])

        with contextlib.suppress(RuntimeError):
            self._wait(settled, "the reload", seconds=10)
        applied = self._reload_gauges()[0] == 1.0 and self._reload_gauges()[1] > before[1]
        self.report.reloads.append(Reload(time.time(), how, valid, applied))

    def _rotate(self) -> None:
        """The API accepts both secrets; the file gets the new one and is reloaded; then the
        API refuses the old secret."""
        self.fake.tokens = {TOKENS[1]}
        self.token_file.write_text(TOKENS[1] + "\n")
        self.config.write_text(config_text(self.fake.base_url, self.token_file, valid=True))
        answer = requests.post(self.url + "/-/reload", timeout=30)
        self.report.reloads.append(Reload(time.time(), "POST", True, answer.status_code == 200))
        self.fake.api.token = TOKENS[1]
        self.fake.tokens = set()
        self.report.rotated_at = time.time()

    def _reload_gauges(self) -> tuple[float, float]:
        text = requests.get(self.url + "/metrics?jobs=false", timeout=30).text
        values = {}
        for line in text.splitlines():
            if line.startswith("convocore_crawler_config_last_reload_"):
                name, _, number = line.rpartition(" ")
                values[name] = float(number)
        return (
            values.get("convocore_crawler_config_last_reload_successful", -1.0),
            values.get("convocore_crawler_config_last_reload_success_timestamp_seconds", 0.0),
        )

    # -- what Prometheus recorded ------------------------------------------------------------

    def _api(self, query: str) -> list[dict[str, Any]]:
        answer = requests.get(
            self.prometheus_url + "/api/v1/query",
            params={"query": query, "time": f"{self.report.ended:.3f}"},
            timeout=30,
        )
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def _instant(self, query: str) -> list[dict[str, Any]]:
        answer = requests.get(
            self.prometheus_url + "/api/v1/query", params={"query": query}, timeout=30
        )
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def _raw(self, selector: str) -> list[tuple[float, float]]:
        span = math.ceil(self.report.ended - self.report.started) + 5
        values: list[tuple[float, float]] = []
        for series in self._api(f"{selector}[{span}s]"):
            values += [(float(t), float(v)) for t, v in series["values"]]
        return sorted(values)

    def _query(self) -> None:
        report = self.report
        # The last scrape may not be in yet.
        time.sleep(SCRAPE_INTERVAL + 1)
        span = math.ceil(report.ended - report.started) + 5
        report.ups = self._raw('up{job="soak"}')
        report.durations = self._raw('scrape_duration_seconds{job="soak"}')
        counters = (
            '{job="soak",__name__=~"convocore_crawler_.+_total|'
            "convocore_crawler_api_request_duration_seconds_(count|sum|bucket)|"
            'process_.+_total|python_.+_total"}'
        )
        for series in self._api(f"{counters}[{span}s]"):
            values = [float(v) for _, v in series["values"]]
            drops = sum(1 for a, b in itertools.pairwise(values) if b < a)
            if drops:
                report.resets[str(series["metric"])] = drops
        healthy = [
            *((EXPLICIT, f"h{i}") for i in range(1, 7)),
            *((DISCOVERED, j) for j in sorted(self.world.discovered)),
        ]
        for ws, job in healthy:
            found = self._api(
                f'last_over_time(convocore_crawler_job_pages_listed{{workspace_id="{ws}",'
                f'job_id="{job}"}}[{span}s])'
            )
            report.pages_listed[job] = float(found[0]["value"][1]) if found else None
        for job in sorted(self.world.discovered):
            if job == JOINER:
                continue
            selector = f'convocore_crawler_up{{workspace_id="{DISCOVERED}",job_id="{job}"}}'
            low = self._api(f"min_over_time({selector}[{span}s])")
            changes = self._api(f"changes({selector}[{span}s])")
            report.discovered_up[job] = (
                float(low[0]["value"][1]) if low else math.nan,
                float(changes[0]["value"][1]) if changes else math.nan,
            )
        report.joiner_samples = [
            t for t, _ in self._raw(f'convocore_crawler_up{{job_id="{JOINER}"}}')
        ]
        report.leaver_samples = [
            t for t, _ in self._raw(f'convocore_crawler_up{{job_id="{LEAVER}"}}')
        ]
        unauthorized = self._api('sum(convocore_crawler_api_requests_total{job="soak",code="401"})')
        report.unauthorized = float(unauthorized[0]["value"][1]) if unauthorized else 0.0
