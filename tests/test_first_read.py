"""The first read: right after start-up (and after a reload that brings new jobs) the exporter
reads its jobs once in the background, at the cost of the first scrape and no more. Counted
at the loopback fake: one read per job and per listing, none repeated by a scrape within
``api.min_refresh_interval``, none of a job read before when a reload adds another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from exporter.collect import WarmUp
from exporter.reloader import Reloader
from exporter.web.server import scrape_deadline

from .conftest import Running, value
from .fakeapi import TOKEN, FakeConvocore, Fault, full_job
from .processes import ROOT, free_port, run_exporter
from .support import config_yaml, wait_for

WS, LISTED = "ws-1", "ws-2"
P = "convocore_crawler_"
LIST = f"/v3/workspaces/{LISTED}/crawler/jobs"
SLOW = "  min_refresh_interval: 60s\n"


def workspaces(jobs: list[str], discover: bool = True) -> str:
    text = (
        f"  - id: {WS}\n    token: ${{CONVOCORE_TOKEN}}\n    page_stats: true\n"
        f"    jobs: [{', '.join(jobs)}]\n"
    )
    if discover:
        text += f"  - id: {LISTED}\n    token: ${{CONVOCORE_TOKEN}}\n    discover: true\n"
    return text


def serve_jobs(fake: FakeConvocore) -> None:
    fake.set_jobs(WS, {j: full_job(j, WS) for j in ("j1", "j2", "j3")})
    fake.set_jobs(LISTED, {j: full_job(j, LISTED) for j in ("l1", "l2")})


def api_paths(fake: FakeConvocore) -> list[str]:
    return sorted(p.removeprefix("/v3/workspaces/") for p in fake.paths())


READ_AT_START = sorted(
    [
        f"{WS}/crawler/jobs/j1",
        f"{WS}/crawler/jobs/j1/pages",
        f"{WS}/crawler/jobs/j2",
        f"{WS}/crawler/jobs/j2/pages",
        f"{LISTED}/crawler/jobs",
    ]
)


def warm(running: Running) -> WarmUp:
    warm_up = WarmUp(running.exporter, lambda: scrape_deadline(10, 0.5))
    warm_up.start("start-up")
    assert warm_up.wait(30)
    return warm_up


def test_the_first_read_reads_each_job_once_and_the_first_scrape_reads_nothing(
    fake, start_exporter
):
    serve_jobs(fake)
    running = start_exporter(config_yaml(fake.base_url, workspaces(["j1", "j2"]), SLOW))
    before = {(v.job_id, v.read, v.status) for v in running.exporter.overview()}
    assert before == {("j1", False, None), ("j2", False, None)}  # "reading..."
    warm(running)
    assert api_paths(fake) == READ_AT_START
    views = {v.job_id: v for v in running.exporter.overview()}
    assert sorted(views) == ["j1", "j2", "l1", "l2"]
    assert all(v.read and v.up and v.status == "processing" for v in views.values())
    assert (views["j1"].scraped_pages, views["j1"].page_limit) == (40, 200)
    assert (views["j1"].failed_pages, views["j1"].estimated_credits) == (3, 200)
    # Prometheus's first scrape, within min_refresh_interval: served from memory.
    series = running.scrape()
    assert api_paths(fake) == READ_AT_START
    for ws, job in ((WS, "j1"), (WS, "j2"), (LISTED, "l1"), (LISTED, "l2")):
        assert value(series, P + "up", workspace_id=ws, job_id=job) == 1
    assert value(series, P + "job_scraped_pages", workspace_id=WS, job_id="j1") == 40
    assert value(series, P + "job_pages_listed", workspace_id=WS, job_id="j1") == 43


def test_a_job_that_fails_its_first_read_shows_why_and_is_read_again_by_the_scrape(
    fake, start_exporter
):
    serve_jobs(fake)
    fake.fail(fake.job_path(WS, "j2"), Fault(401, {"message": "no"}))
    running = start_exporter(config_yaml(fake.base_url, workspaces(["j1", "j2"], False), SLOW))
    warm(running)
    views = {v.job_id: v for v in running.exporter.overview()}
    assert (views["j2"].read, views["j2"].up, views["j2"].reason) == (True, False, "unauthorized")
    assert fake.count(fake.job_path(WS, "j2")) == 1
    # A failure is not remembered as data: the scrape asks again, as it would have anyway.
    running.scrape()
    assert fake.count(fake.job_path(WS, "j2")) == 2
    assert fake.count(fake.job_path(WS, "j1")) == 1


def test_a_reload_reads_the_jobs_it_adds_and_no_other(fake, start_exporter, tmp_path, monkeypatch):
    serve_jobs(fake)
    path = tmp_path / "config.yaml"
    # No minimum interval: a job read again would show at once in the counts.
    path.write_text(config_yaml(fake.base_url, workspaces(["j1", "j2"])))
    monkeypatch.setenv("CONVOCORE_TOKEN", TOKEN)
    running = start_exporter(path.read_text())
    warm_up = warm(running)
    reloader = Reloader(running.exporter, str(path), swapped=lambda: warm_up.start("reload"))
    path.write_text(config_yaml(fake.base_url, workspaces(["j1", "j2", "j3"])))
    assert reloader.reload() is None
    assert warm_up.wait(30)
    added = [f"{WS}/crawler/jobs/j3", f"{WS}/crawler/jobs/j3/pages"]
    assert api_paths(fake) == sorted(READ_AT_START + added)
    views = {v.job_id: v for v in running.exporter.overview()}
    assert views["j3"].read and views["j3"].up
    # A reload that adds nothing reads nothing.
    assert reloader.reload() is None
    assert warm_up.wait(30)
    assert api_paths(fake) == sorted(READ_AT_START + added)


def test_a_scrape_during_the_first_read_shares_its_fetch(fake, start_exporter):
    serve_jobs(fake)
    fake.latency = 0.5
    running = start_exporter(config_yaml(fake.base_url, workspaces(["j1"], False), SLOW))
    warm_up = WarmUp(running.exporter, lambda: scrape_deadline(10, 0.5))
    warm_up.start("start-up")
    assert wait_for(lambda: fake.answering == 1)
    series = running.scrape()  # while the API takes its time over the first read's request
    assert fake.peak == 1
    assert warm_up.wait(30)
    assert value(series, P + "up", workspace_id=WS, job_id="j1") == 1
    assert fake.count(fake.job_path(WS, "j1")) == 1


# The command line ------------------------------------------------------------------------


@pytest.mark.integration
def test_serving_reads_every_job_once_before_any_scrape(fake, tmp_path):
    serve_jobs(fake)
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(fake.base_url, workspaces(["j1", "j2"]), SLOW))
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "exporter", f"--config.file={path}"),
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CONVOCORE_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        read = wait_for(lambda: api_paths(fake) == READ_AT_START or process.poll() is not None, 60)
        filled = read and wait_for(lambda: "reading..." not in _page(url), 30)
        page = _page(url)
        scraped = requests.get(url + "/metrics", timeout=30).status_code if filled else None
        time.sleep(0.2)  # a stray request would have arrived by now
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert (read, filled, scraped) == (True, True, 200), err
    assert page.count('<td class="up" data-label="Up">up</td>') == 4
    assert api_paths(fake) == READ_AT_START
    assert 'msg="first read done" trigger=start-up jobs=4' in err


def _page(url: str) -> str:
    try:
        return requests.get(url + "/?refresh=0", timeout=10).text
    except requests.ConnectionError:
        return "reading..."


@pytest.mark.integration
def test_once_and_config_check_read_as_before(fake, tmp_path):
    serve_jobs(fake)
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml(fake.base_url, workspaces(["j1", "j2"]), SLOW))
    env = {"CONVOCORE_TOKEN": TOKEN}
    checked = run_exporter("--config.check", f"--config.file={path}", env=env)
    assert (checked.returncode, checked.stdout) == (0, "OK\n")
    assert fake.paths() == []
    once = run_exporter("--once", f"--config.file={path}", env=env)
    assert once.returncode == 0, once.stderr
    assert api_paths(fake) == READ_AT_START  # the one scrape, nothing before it
    assert "first read" not in once.stderr
