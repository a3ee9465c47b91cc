"""Shared fixtures: the real app on a free port, a gradio_client for it, and a Chromium page.

`app_url` starts `python app.py --port N` in a subprocess once per test session (its log goes to
artifacts/app-server.log) and waits until the page is served. `page` drives Debian's Chromium
(/usr/bin/chromium) through Playwright, headless, with the network-quiet flags this machine needs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app exited with status {process.returncode}; see artifacts/app-server.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"app did not serve {url} within {timeout} s")


def start_app(extra_env: dict | None = None, log_name: str = "app-server.log"):
    """Start the real app on a free loopback port; returns (url, process)."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False", **(extra_env or {})}
    log = open(ARTIFACTS / log_name, "w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process)
    except Exception:
        process.kill()
        raise
    return url, process


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def app_url():
    url, process = start_app()
    yield url
    stop_app(process)


def wait_in_queue(job, what: str, timeout_s: float = 120.0):
    """Wait until the server has taken `job` (a gradio_client Job) into its queue: Gradio sends a
    queue estimation when a request joins, so its status says queued or later, or it has ended.
    Returns the status; past the deadline, fails with the status it had."""
    from gradio_client.utils import Status

    seen = {Status.IN_QUEUE, Status.QUEUE_FULL, Status.PROCESSING, Status.ITERATING, Status.PROGRESS,
            Status.FINISHED, Status.CANCELLED}
    deadline = time.monotonic() + timeout_s
    while True:
        status = job.status()
        if job.done() or status.code in seen:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in the server's queue within {timeout_s:.0f} s; its status: {status.code}")
        time.sleep(0.05)  # a poll interval


# gradio_client's HTTP calls (joining the queue, ...) give up after httpx's default 5 s: on a loaded
# machine the app can take longer to answer a join while it serves many; a refusal or an answer,
# not the client's patience, must decide a test.
CLIENT_HTTP = {"timeout": 120}


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False, httpx_kwargs=CLIENT_HTTP)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


class ServerCalls:
    """The page's calls to the app in flight (queue joins, their result streams, direct calls), seen
    through Playwright's request events: `wait_idle` waits until none is, so every result the page
    asked for so far has arrived (a view that says a run ended, plus idle: nothing more arrives)."""

    PATHS = ("/gradio_api/queue/", "/gradio_api/run/", "/gradio_api/api/")

    def __init__(self, page):
        self.page = page
        self.open: dict = {}
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request):
        if any(path in request.url for path in self.PATHS):
            self.open[request] = request.url

    def _ended(self, request):
        self.open.pop(request, None)

    def wait_idle(self, what: str, timeout_s: float = 180.0) -> None:
        """Wait until no call is in flight, also after one more turn of the page's event loop (a
        `.then` event starts its call right after the previous one ends)."""
        deadline = time.monotonic() + timeout_s
        while True:
            while self.open:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{what}: the page still waits on {sorted(self.open.values())} "
                                         f"after {timeout_s:.0f} s")
                self.page.wait_for_timeout(100)  # a poll interval: lets Playwright deliver the request events
            self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))")
            if not self.open:
                return


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.server_calls = ServerCalls(page)
    yield page
    context.close()


PRESENTER_SCALE = {"viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1.5}


@pytest.fixture
def presenter_page(browser):
    """A page as the instructor's projector shows it (1280x720, device scale 1.5), recording the
    page's script errors in `page.errors` and its calls in `page.server_calls`."""
    context = browser.new_context(**PRESENTER_SCALE)
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.server_calls = ServerCalls(page)
    yield page
    context.close()


def shown_legibly(page, elem_id: str, cells: str, min_width: int, shot: str) -> None:
    """`#elem_id` scrolled into view is at least `min_width` x 300 px, the table cells `cells` are
    drawn at 14 px or more, and a screenshot named `shot` records it."""
    block = page.locator(f"#{elem_id}")
    block.scroll_into_view_if_needed()
    box = block.bounding_box()
    assert box["width"] >= min_width and box["height"] >= 300, box
    size = page.evaluate(f"() => parseFloat(getComputedStyle(document.querySelector('{cells}')).fontSize)")
    assert size >= 14, size
    screenshot(page, shot)


def set_number(page, elem_id: str, value: int | float) -> None:
    """Type `value` into the number box of the slider or number `#elem_id` and wait until it sticks.

    A control that has just appeared (an accordion opened a moment ago) can still be mounting; a
    value typed then may be reset to the default a moment later, which happened on a loaded
    machine. Type it again until the box has kept it for three looks over 0.75 s.
    """
    box = page.locator(f"#{elem_id} input[type=number]")
    wanted = str(value)
    for _ in range(20):
        box.fill(wanted)
        box.press("Enter")
        kept = True
        for _ in range(3):
            page.wait_for_timeout(250)
            kept = kept and box.input_value() == wanted
        if kept:
            return
    raise AssertionError(f"#{elem_id} does not keep the value {wanted}; it shows {box.input_value()}")


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots/ (git-ignored)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def handler_outcome(fn, *args) -> str:
    """Call a UI handler (consuming it when it streams): "ok", or the message of the `gr.Error` it
    raised, which must be a real message, never the internal-error text or a traceback."""
    import gradio as gr

    from playground.ui.common import INTERNAL_ERROR

    try:
        result = fn(*args)
        if hasattr(result, "__next__"):
            for _ in result:
                pass
        return "ok"
    except gr.Error as exc:
        assert exc.message != INTERNAL_ERROR, f"{fn.__module__}.{fn.__name__}{args[:3]!r} gave the internal error"
        assert "Traceback" not in str(exc.message)
        return exc.message


def wait_until(page, predicate: str, what: str, seen: str, arg=None, timeout_ms: int = 180_000):
    """Wait until the page function `predicate(arg)` is truthy; past the deadline, fail with `what`
    was awaited and what the page function `seen(arg)` returned then (the deadline only bounds a
    wait that would never end: nothing is decided by how long the page takes)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(predicate, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = page.evaluate(seen, arg)
        raise AssertionError(f"{what}: not within {timeout_ms / 1000:.0f} s; the page showed {shown!r}") from None


def select_tab(page, name: str, timeout_ms: int = 180_000) -> None:
    """Click the tab `name` and wait until the page handled its selection (`body[data-tab-visits]`
    counts them, `playground.ui.link_wiring`) and its first-visit run (the tab's default result, which the
    page computes on a first visit) has finished, so a test's own clicks never race it."""
    tab = page.get_by_role("tab", name=name)
    # counted before looking at the tab: a link that selects it meanwhile (its own selection event)
    # then counts as the selection, and a click on the tab it already opened makes none
    visits = page.evaluate("Number(document.body.dataset.tabVisits) || 0")
    if tab.get_attribute("aria-selected") == "true":  # no selection event for the tab already open
        visits = None
    else:
        tab.click()
    wait_until(page, "(n) => (n === null || (Number(document.body.dataset.tabVisits) || 0) > n)"
                     " && document.body.dataset.linkState !== 'running'",
               f"tab {name!r} selected and its first-visit run done",
               "() => ({visits: document.body.dataset.tabVisits, linkState: document.body.dataset.linkState,"
               " selected: (document.querySelector('button[role=\"tab\"][aria-selected=\"true\"]') || {}).innerText})",
               arg=visits, timeout_ms=timeout_ms)


@pytest.fixture(scope="session")
def redis_url():
    """A private Debian `redis-server` on a free loopback port (no persistence), for the room store."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--protected-mode", "yes"],
        stdout=open(ARTIFACTS / "redis-server.log", "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("redis-server did not answer within 30 s; see artifacts/redis-server.log")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)
