"""The landing page and a debug report in a real browser: Debian's headless Chromium, driven
through Debian's chromedriver with Selenium (which downloads nothing when both paths are
given). What a user sees: no console errors, links that answer, the jobs table, markup in a
job's name shown as text, and a page that is not blank and fits a phone's width."""

from __future__ import annotations

import io
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

from .conftest import Running
from .fakeapi import FakeConvocore, Fault, full_job
from .support import config_yaml
from .tools import require_tool

# Drives a real Chromium against the exporter: processes and real tools.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "landing-page.png"
HOSTILE = '<img src=x onerror="console.error(1)"><b>bold</b> & co'
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
    fake.set_jobs("ws-1", {"j0": full_job("j0", "ws-1"), "j1": full_job("j1", "ws-1")})
    fake.fail(fake.job_path("ws-1", "j1"), Fault(401, {"message": "no"}))
    running: Running = start_exporter(
        config_yaml(
            fake.base_url,
            "  - id: ws-1\n    token: ${CONVOCORE_TOKEN}\n    jobs:\n"
            f"      - id: j0\n        name: '{HOSTILE}'\n      - j1\n",
        )
    )
    running.scrape()
    return running


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
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")]
    assert len(hrefs) == 4 + 2 * 2  # metrics, sd, healthy, ready, and two per job
    for href in hrefs:
        assert href is not None
        answer = requests.get(urljoin(browser.current_url, href), timeout=30)
        assert answer.status_code == 200, href


def test_the_jobs_table_shows_status_up_and_last_success_with_markup_as_text(
    browser: webdriver.Chrome, landing: Running
) -> None:
    browser.get(landing.url + "/")
    rows = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, "table tr")[1:]
    ]
    assert [row[:5] for row in rows] == [
        ["ws-1", "j0", HOSTILE, "processing", "up"],
        ["ws-1", "j1", "", "", "down: unauthorized"],
    ]
    assert rows[0][5].endswith("s ago)")
    assert rows[1][5] == "never"
    assert rows[0][6] == rows[1][6] == "probe debug report"
    # The name's markup made no element and ran nothing.
    assert browser.find_elements(By.CSS_SELECTOR, "td img, td b") == []
    assert console_errors(browser) == []


def test_a_debug_report_opens_as_plain_text(browser: webdriver.Chrome, landing: Running) -> None:
    browser.get(landing.url + "/")
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


@pytest.mark.parametrize(("size", "mobile"), [(DESKTOP, False), (PHONE, True)])
def test_the_page_shows_real_content_and_fits_the_width(
    browser: webdriver.Chrome, landing: Running, size: tuple[int, int], mobile: bool
) -> None:
    viewport(browser, *size, mobile)
    try:
        browser.get(landing.url + "/")
        picture = screenshot(browser)
        scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
        inner_width = browser.execute_script("return window.innerWidth")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert picture.size == size
    # Not blank: the header's colour across the top, and text and the table over a good share.
    assert picture.getpixel((size[0] // 2, 5)) == HEADER
    assert share_unlike(picture, BACKGROUND) > MIN_CONTENT
    # No horizontal scrolling: the page is no wider than the screen.
    assert scroll_width <= inner_width == size[0]


def test_the_docs_screenshot_is_current(tmp_path: Path) -> None:
    """docs/landing-page.png is what scripts/screenshot_landing.py makes now, up to the few
    pixels of the times and revision on the page."""
    require_tool("chromium")
    fresh = tmp_path / "landing-page.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshot_landing.py"), "--out", str(fresh)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    committed = Image.open(SCREENSHOT).convert("RGB")
    made = Image.open(fresh).convert("RGB")
    assert committed.size == made.size, "run: python scripts/screenshot_landing.py"
    changed = share_unlike(ImageChops.difference(committed, made), (0, 0, 0))
    assert changed < MAX_CHANGED, "run: python scripts/screenshot_landing.py"
