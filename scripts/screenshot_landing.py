#!/usr/bin/env python3
"""Screenshots of the landing page for the docs (docs/landing-page.png at a desktop size,
docs/landing-page-phone.png at a phone's width, the whole page).

Starts the exporter with --demo on a free loopback port (a fixed revision and build date, so
the pictures change only when the page does), waits until its first read has filled the page
(nothing scrapes it), and photographs the page in Debian's headless Chromium. Needs the test
extras (Selenium) and the `chromium` and `chromium-driver` packages; scripts/test installs
them. The test suite fails when the committed pictures are no longer what this makes.

    python scripts/screenshot_landing.py [--out-dir docs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[1]
DESKTOP_WIDTH = 1280
PHONE_WIDTH = 390
NAMES = ("landing-page.png", "landing-page-phone.png")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium() -> webdriver.Chrome:
    """Debian's Chromium through Debian's chromedriver: both paths given, nothing downloaded."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        sys.exit("chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONVOCORE_EXPORTER_REVISION": "0123456789ab",
        "CONVOCORE_EXPORTER_BUILD_DATE": "20260101-00:00:00",
    }
    exporter = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", f"--web.listen-address={url[7:]}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or exporter.poll() is not None:
                sys.exit("the exporter did not become ready")
            time.sleep(0.1)
        # The first read at start-up fills the page; no scrape is needed.
        while "reading..." in requests.get(url + "/?refresh=0", timeout=30).text:
            if time.monotonic() > deadline:
                sys.exit("the exporter did not read its jobs")
            time.sleep(0.1)
        driver = chromium()
        try:
            desktop, phone = (args.out_dir / name for name in NAMES)
            shoot(driver, url + "/", DESKTOP_WIDTH, mobile=False, out=desktop)
            shoot(driver, url + "/", PHONE_WIDTH, mobile=True, out=phone)
        finally:
            driver.quit()
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
    print(desktop, phone)
    return 0


def shoot(driver: webdriver.Chrome, url: str, width: int, *, mobile: bool, out: Path) -> None:
    """Photograph the whole of ``url`` at ``width``."""

    def emulate(height: int) -> None:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    emulate(800)
    driver.get(url)
    emulate(int(driver.execute_script("return document.documentElement.scrollHeight")))
    out.write_bytes(driver.get_screenshot_as_png())


if __name__ == "__main__":
    sys.exit(main())
