"""`make demo`'s launcher (example_project/demo.py): it serves the site with a real worker and beat,
the site works in a real headless Chromium, Ctrl-C leaves no process behind, a second run works,
and a busy port is reported before anything starts. And the scripted tour (example_project/tour.py)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import psutil
import pytest

from redimo.local import free_port

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "example_project" / "demo.py"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,900", "--hide-scrollbars"]
COST = re.compile(r"\d+ requests? · \d+\.\d RCU · \d+\.\d WCU")


@dataclass
class Demo:
    process: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)


def launch(state: Path, seconds: float = 120) -> Demo:
    """Run the launcher (in a process group of its own, as a shell runs it) until it prints its URL."""
    env = {**{name: value for name, value in os.environ.items() if not name.startswith("REDIMO_DEMO_")},
           "DEMO_PORT": str(free_port()), "REDIMO_DEMO_DIR": str(state)}
    process = subprocess.Popen([sys.executable, str(LAUNCHER)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    demo = Demo(process, "")
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            demo.output.append(line)
            if match := re.search(r"The Redimo demo is running: (\S+)", line):
                demo.url = match[1]
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(seconds)
    assert demo.url, f"the demo did not start:\n{''.join(demo.output)}"
    return demo


def stop_and_check(demo: Demo) -> None:
    """Ctrl-C (SIGINT to the launcher's process group): it exits 0 and none of its processes is left."""
    tree = [psutil.Process(demo.process.pid), *psutil.Process(demo.process.pid).children(recursive=True)]
    commands = " ".join(" ".join(p.cmdline()) for p in tree)
    for part in ("DynamoDBLocal.jar", "redimo_site worker", "redimo_site beat", "manage.py runserver"):
        assert part in commands
    assert len(tree) >= 9  # the launcher, Java, the worker and its pool of 4, beat, the server
    known = {(p.pid, p.create_time()) for p in tree}
    groups = {os.getpgid(p.pid) for p in tree}
    os.killpg(demo.process.pid, signal.SIGINT)
    assert demo.process.wait(60) == 0
    assert "Stopped: no demo process is left." in "".join(demo.output)
    left = [p for p in psutil.process_iter(["pid", "create_time", "status"])
            if (p.info["pid"], p.info["create_time"]) in known and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert left == [], "a zombie has exited (its reaping is up to PID 1 once its parent is gone); nothing else may be left"
    for process in psutil.process_iter():
        try:
            assert os.getpgid(process.pid) not in groups, process.cmdline()
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass


def kill_tree(demo: Demo) -> None:
    """After a failed test: stop whatever is left of the demo."""
    if demo.process.poll() is None:
        for process in psutil.Process(demo.process.pid).children(recursive=True):
            process.kill()
        demo.process.kill()
        demo.process.wait()


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    """The demo's SQLite file and logs, kept across the module's runs of the launcher."""
    with tempfile.TemporaryDirectory(prefix="redimo-demo-") as directory:
        yield Path(directory)


@pytest.fixture(scope="module")
def demo(state: Path) -> Iterator[Demo]:
    running = launch(state)
    yield running
    kill_tree(running)


def test_busy_port_is_reported_first() -> None:
    """With the port taken, the launcher says to set DEMO_PORT and starts nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(LAUNCHER)], env={**os.environ, "DEMO_PORT": str(port)},
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and time.monotonic() - started < 10
    assert f"Port {port} is already in use" in result.stderr and f"DEMO_PORT={port + 1} make demo" in result.stderr
    assert "DynamoDB Local" not in result.stdout


def chromium() -> Any:
    """A fresh headless Chromium (Debian's chromium and chromium-driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("chromium and chromium-driver are not installed: run `make test`")
    options = webdriver.ChromeOptions()
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='redimo-chromium-')}"]:
        options.add_argument(flag)
    options.binary_location = binary
    return webdriver.Chrome(options=options, service=Service(driver))


def wait(browser: Any, condition: Any, seconds: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, poll_frequency=0.2).until(condition)


def screenshot(browser: Any, name: str) -> None:
    """The whole page, 1280 px wide."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / name))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_site_in_browser(demo: Demo) -> None:
    """Two browsers sign in; one runs a report to SUCCESS, sees the dashboard and the cached page,
    and signs out everywhere: the other browser's next page is the login page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    first, second = chromium(), chromium()
    try:
        for browser in (first, second):
            browser.get(demo.url + "accounts/login/")
            browser.find_element(By.NAME, "username").send_keys("demo")
            browser.find_element(By.NAME, "password").send_keys("demo")
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait(browser, lambda b: b.current_url == demo.url)

        for browser, region in ((first, "Asia-Pacific"), (second, "Europe")):  # their parts share the limit
            browser.get(demo.url + "jobs/")
            Select(browser.find_element(By.NAME, "region")).select_by_value(region)
            Select(browser.find_element(By.NAME, "weeks")).select_by_value("4")
            browser.find_element(By.ID, "start-report").click()
        for browser in (first, second):
            wait(browser, lambda b: b.find_element(By.ID, "report-state").text == "SUCCESS")
            states = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr[id^=part-] .badge")]
            assert states == ["SUCCESS"] * 4
            assert browser.find_element(By.CSS_SELECTOR, "#report-result .big").text.startswith("$")
        screenshot(first, "job.png")

        def heartbeat_shown(browser: Any) -> bool:
            browser.get(demo.url)
            return "run #" in browser.find_element(By.ID, "heartbeat").text

        wait(first, heartbeat_shown, 30)
        board = first.find_element(By.ID, "leaderboard").text
        assert "Asia-Pacific" in board and "Europe" in board
        assert "Report done: Asia-Pacific, 4 weeks" in first.find_element(By.ID, "feed").text
        assert COST.fullmatch(first.find_element(By.ID, "dynamodb-cost").text)
        screenshot(first, "dashboard.png")

        first.get(demo.url + "cached/")
        first.get(demo.url + "cached/")
        assert first.find_element(By.ID, "cache-status").text.startswith("cache HIT")
        screenshot(first, "cached.png")

        first.get(demo.url + "sessions/")
        assert len(first.find_elements(By.CSS_SELECTOR, "tr.session")) == 2
        screenshot(first, "sessions.png")
        first.find_element(By.ID, "sign-out-everywhere").click()
        wait(first, lambda b: b.current_url == demo.url + "accounts/login/")
        assert "Signed out everywhere: 2 sessions ended." in first.page_source

        second.get(demo.url + "jobs/")
        assert second.current_url == demo.url + "accounts/login/?next=/jobs/"
    finally:
        first.quit()
        second.quit()


def test_ctrl_c_stops_everything(demo: Demo) -> None:
    stop_and_check(demo)


def test_second_run(state: Path) -> None:
    """A second run, on the first one's SQLite file, serves the site and signs demo in."""
    demo = launch(state)
    try:
        opener = build_opener(HTTPCookieProcessor(jar := http.cookiejar.CookieJar()))
        opener.open(demo.url + "accounts/login/", timeout=10)
        token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
        form = urlencode({"username": "demo", "password": "demo", "csrfmiddlewaretoken": token}).encode()
        page = opener.open(Request(demo.url + "accounts/login/", data=form,
                                   headers={"Referer": demo.url + "accounts/login/"}), timeout=10)
        assert page.url == demo.url and "Dashboard" in page.read().decode()
        stop_and_check(demo)
    finally:
        kill_tree(demo)


def test_tour() -> None:
    """The scripted tour prints every step with its cost, and stops its DynamoDB Local."""
    result = subprocess.run([sys.executable, str(ROOT / "example_project" / "tour.py")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for heading in ("== redimo.Redimo", "== Locks", "== Collections", "== Django cache", "== Django sessions"):
        assert heading in result.stdout
    assert "SessionStore.end_user_sessions(1)              -> 1 " in result.stdout
    assert re.search(r"GET greeting +-> b'hello' +1 get_item; RCU 1, WCU 0;", result.stdout)
    assert result.stdout.rstrip().endswith("Done: DynamoDB Local stopped.")
