"""The landing page and a debug report in a real browser: Debian's headless Chromium, driven
through Debian's chromedriver with Selenium (which downloads nothing when both paths are
given). What a user sees: no console errors, links that answer, the jobs table, markup in a
job's name shown as text, the states, progress, credits and totals the first read fills in
before anything scrapes, and a page that is not blank and fits a phone's width without
scrolling sideways."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from PIL import Image, ImageChops
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from exporter.collect import WarmUp
from exporter.web.server import scrape_deadline

from .conftest import Running
from .fakeapi import FakeConvocore, Fault, full_job
from .processes import free_port
from .support import config_yaml, wait_for
from .tools import require_tool

# Drives a real Chromium against the exporter: processes and real tools.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ("landing-page.png", "landing-page-phone.png")
HOSTILE = '<img src=x onerror="console.error(1)"><b>bold</b> & co'
# A failure text with a long unbroken run, which a phone must wrap, not scroll.
LONG_FAILURE = "Blocked at https://docs.example.com/" + "a" * 90 + " <i>by</i> the firewall"
BACKGROUND = (0xF6, 0xF8, 0xFA)  # the page's background colour
HEADER = (0xE6, 0x52, 0x2C)  # the header's
DESKTOP = (1280, 900)
PHONE = (390, 844)
MIN_CONTENT = 0.05  # share of a screenshot not in the background colour (about 0.11 at desktop)
MAX_CHANGED = 0.01  # share of the docs' screenshot that may differ from a fresh one


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = require_tool("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(require_tool("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def viewport(driver: webdriver.Chrome, width: int, height: int, mobile: bool) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def landing(fake: FakeConvocore, start_exporter) -> Running:  # type: ignore[no-untyped-def]
    """Two jobs read by the first read alone: nothing has scraped /metrics."""
    fake.set_jobs(
        "ws-1",
        {"j0": full_job("j0", "ws-1", resultError=LONG_FAILURE), "j1": full_job("j1", "ws-1")},
    )
    fake.fail(fake.job_path("ws-1", "j1"), Fault(401, {"message": "no"}))
    running: Running = start_exporter(
        config_yaml(
            fake.base_url,
            "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs:\n"
            f"      - id: j0\n        name: '{HOSTILE}'\n      - j1\n",
        )
    )
    warm_up = WarmUp(running.exporter, lambda: scrape_deadline(10, 0.5))
    warm_up.start("start-up")
    assert warm_up.wait(30)
    assert sorted(fake.paths()) == [fake.job_path("ws-1", "j0"), fake.job_path("ws-1", "j1")]
    return running


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """``--demo`` as a newcomer starts it, at the URL returned: nothing scrapes it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", f"--web.listen-address=127.0.0.1:{port}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _ready(url), 60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/-/ready", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_console_log_is_read(browser: webdriver.Chrome) -> None:
    # The check below would pass on any page if the browser's log were never read.
    browser.get("data:text/html,<script>console.error('seen')</script>")
    assert any("seen" in message for message in console_errors(browser))


def test_the_landing_page_loads_cleanly_and_every_link_answers(
    browser: webdriver.Chrome, landing: Running
) -> None:
    console_errors(browser)  # drop what earlier pages logged
    browser.get(landing.url + "/")
    assert browser.title == "Convocore crawler exporter"
    assert console_errors(browser) == []
    refresh = browser.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert refresh.get_attribute("content") == "30"
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")]
    # metrics, sd, healthy, ready, the switch of the reloads, and two per job
    assert len(hrefs) == 4 + 1 + 2 * 2
    for href in hrefs:
        assert href is not None
        answer = requests.get(urljoin(browser.current_url, href), timeout=30)
        assert answer.status_code == 200, href
    browser.find_element(By.LINK_TEXT, "stop").click()
    assert browser.current_url == landing.url + "/?refresh=0"
    assert browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]') == []
    assert console_errors(browser) == []


def job_rows(driver: webdriver.Chrome) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")
    ]


def test_the_jobs_show_their_state_before_any_scrape_with_markup_as_text(
    browser: webdriver.Chrome, landing: Running
) -> None:
    browser.get(landing.url + "/?refresh=0")
    rows = job_rows(browser)
    assert [row[:6] for row in rows] == [
        [f"{HOSTILE}\nj0", f"processing\n{LONG_FAILURE}", "up", "40 / 200", "3", "200"],
        ["j1", "unknown", "down: unauthorized", "\u2014", "\u2014", "\u2014"],
    ]
    assert re.fullmatch(r"\d+s ago\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows[0][6])
    assert rows[1][6] == "never"
    assert rows[0][7] == rows[1][7] == "probe debug report"
    # The name's markup made no element and ran nothing.
    assert browser.find_elements(By.CSS_SELECTOR, "td img, td b") == []
    assert console_errors(browser) == []


def test_the_demo_shows_progress_credits_and_totals_from_the_first_read(
    browser: webdriver.Chrome, demo: str
) -> None:
    def filled() -> bool:
        browser.get(demo + "/?refresh=0")
        return "reading..." not in browser.page_source

    assert wait_for(filled, 30)
    rows = {row[0].split("\n")[-1]: row for row in job_rows(browser)}
    assert list(rows) == [
        "job-docs",
        "job-blog",
        "job-help",
        "job-legacy",
        "job-pricing",
        "job-careers",
    ]
    # Status, up, progress, failed pages, credits: the demo's finished jobs stay put.
    assert rows["job-help"][1:6] == ["completed", "up", "120 / 120", "3", "120"]
    assert rows["job-legacy"][1:6] == [
        "failed\nCrawl aborted after 30 failed pages: https://legacy.example.com/x-0 answered "
        "HTTP 403 Forbidden (blocked by the site's firewall)",
        "up",
        "12 / 250",
        "30",
        "12",
    ]
    assert rows["job-pricing"][1:6] == ["cancelled", "up", "5 / 250", "0", "5"]
    assert rows["job-blog"][5] == "1,000"  # a deep crawl: 10 credits a page, 100 pages
    bars = {
        bar.find_element(By.XPATH, "./ancestor::tr/td[1]/code").text: (
            bar.get_attribute("value"),
            bar.get_attribute("max"),
        )
        for bar in browser.find_elements(By.CSS_SELECTOR, "table.jobs progress")
    }
    assert bars["job-help"] == ("120", "120")
    assert bars["job-legacy"] == ("12", "250")
    assert bars["job-careers"] == ("0", "250")
    # The workspace's totals, over the six jobs.
    totals = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".total")]
    scraped = sum(int(row[3].split(" / ")[0]) for row in rows.values())
    failed = sum(int(row[4]) for row in rows.values())
    assert totals == [
        "Jobs\n6 2 processing, 1 queued, 1 completed, 1 failed, 1 cancelled",
        f"Scraped pages\n{scraped} {failed} failed",
        "Estimated credits\n1,637 about US$1.64",
    ]
    assert (
        browser.find_element(By.CSS_SELECTOR, ".cover").text
        == "Totals over every job listed or configured, each once."
    )
    assert console_errors(browser) == []


def test_a_debug_report_opens_as_plain_text(browser: webdriver.Chrome, landing: Running) -> None:
    browser.get(landing.url + "/?refresh=0")
    browser.find_elements(By.LINK_TEXT, "debug report")[1].click()
    text = browser.find_element(By.TAG_NAME, "body").text
    lines = text.splitlines()
    assert lines[0] == "Probe of job j1 in workspace ws-1"
    assert any(
        line.startswith("Result: down (convocore_crawler_up 0), reason unauthorized")
        for line in lines
    )
    assert 'convocore_crawler_up{workspace_id="ws-1",job_id="j1"} 0' in lines
    assert console_errors(browser) == []


def screenshot(driver: webdriver.Chrome) -> Image.Image:
    return Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")


def share_unlike(picture: Image.Image, colour: tuple[int, int, int]) -> float:
    """The share of pixels that are not ``colour``."""
    plain = Image.new("RGB", picture.size, colour)
    difference = ImageChops.difference(picture, plain).convert("L").point(lambda v: 255 * (v > 8))
    histogram = difference.histogram()
    return histogram[255] / (picture.size[0] * picture.size[1])


# Every box of the jobs and totals whose right or left edge is off the screen, or whose
# content is wider than the box (cut off, or scrolled inside it): "tag.class text"; and every
# cell of a card lower than its label (an empty value folds, and the labels overlap).
OFF_SCREEN = """
const width = window.innerWidth, found = [];
for (const el of document.querySelectorAll(
        'main, section, .totals, .total, table.jobs, table.jobs tr, table.jobs td')) {
  const box = el.getBoundingClientRect();
  if (getComputedStyle(el).display === 'none') { found.push('hidden ' + el.tagName); continue; }
  if (box.left < 0 || box.right > width + 0.5 || el.scrollWidth > el.clientWidth + 1)
    found.push(el.tagName + '.' + el.className + ' ' + el.textContent.slice(0, 40));
  const label = getComputedStyle(el, '::before');  // a card's label, beside its value
  if (label.position === 'absolute' && box.height + 0.5 < parseFloat(label.height))
    found.push('folded ' + el.dataset.label + ': ' + el.textContent.slice(0, 40));
}
return found;
"""


@pytest.mark.parametrize(("size", "mobile"), [(DESKTOP, False), (PHONE, True)])
@pytest.mark.parametrize("page", ["landing", "demo"])
def test_the_page_shows_real_content_and_fits_the_width(
    browser: webdriver.Chrome,
    request: pytest.FixtureRequest,
    page: str,
    size: tuple[int, int],
    mobile: bool,
) -> None:
    served = request.getfixturevalue(page)
    url = served if isinstance(served, str) else served.url
    viewport(browser, *size, mobile)
    try:
        browser.get(url + "/?refresh=0")
        picture = screenshot(browser)
        scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
        inner_width = browser.execute_script("return window.innerWidth")
        off_screen = browser.execute_script(OFF_SCREEN)
        cells = browser.execute_script(
            "return [...document.querySelectorAll('table.jobs tbody tr')].map(r => "
            "[...r.cells].filter(c => c.getBoundingClientRect().width > 0).length)"
        )
        layout = browser.execute_script(
            "return getComputedStyle(document.querySelector('table.jobs tr')).display"
        )
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert picture.size == size
    # Not blank: the header's colour across the top, and text and the table over a good share.
    assert picture.getpixel((size[0] // 2, 5)) == HEADER
    assert share_unlike(picture, BACKGROUND) > MIN_CONTENT
    # No horizontal scrolling, of the page or inside any box: the page is no wider than the
    # screen, and every cell of every job is shown, whole, on it.
    assert scroll_width <= inner_width == size[0]
    assert off_screen == []
    assert cells and set(cells) == {8}
    # Rows below the phone breakpoint are stacked cards; a table row above it.
    assert layout == ("block" if mobile else "table-row")
    assert console_errors(browser) == []


def test_the_docs_screenshots_are_current(tmp_path: Path) -> None:
    """docs/landing-page.png and docs/landing-page-phone.png are what
    scripts/screenshot_landing.py makes now, up to the few pixels of the times and the
    progress of the demo's running jobs."""
    require_tool("chromium")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "screenshot_landing.py"),
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in SCREENSHOTS:
        committed = Image.open(ROOT / "docs" / name).convert("RGB")
        made = Image.open(tmp_path / name).convert("RGB")
        assert committed.size == made.size, f"{name}: run python scripts/screenshot_landing.py"
        changed = share_unlike(ImageChops.difference(committed, made), (0, 0, 0))
        assert changed < MAX_CHANGED, f"{name}: run python scripts/screenshot_landing.py"
