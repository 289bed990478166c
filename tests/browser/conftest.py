"""Fixtures of the browser tests: a JupyterLab server of their own, headless
Chromium driven by Playwright (sync API), a fresh browser context per test,
and a folder for screenshots.

Server and browser last for one test module (not the session: the other
tests check that this process has no child processes left).

Without Chromium (or Playwright, or JupyterLab) the tests skip and say how to
install it; with `NBTRAIN_REQUIRE_BROWSER=1` (CI) they fail instead.
`NBTRAIN_CHROMIUM` may name the browser binary; the default is `chromium` on
the PATH (Debian's package: `apt-get install chromium`).  Screenshots, the
server's log and each test's browser console go to `test-artifacts/browser/`
(or `NBTRAIN_BROWSER_ARTIFACTS`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import JupyterLab, children, descendants, reap

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = Path(os.environ.get("NBTRAIN_BROWSER_ARTIFACTS") or REPO / "test-artifacts" / "browser")
NOTEBOOKS = [REPO / "notebooks" / "quickstart.ipynb", *sorted(HERE.glob("*.ipynb"))]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
]
VIEWPORT = {"width": 1280, "height": 1000}
_artifacts_written = False


def _unavailable(reason: str, hint: str) -> None:
    if os.environ.get("NBTRAIN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} ({hint}); NBTRAIN_REQUIRE_BROWSER=1 requires the browser tests",
                    pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}; {hint}")


def find_chromium() -> str | None:
    """The Chromium binary: `NBTRAIN_CHROMIUM`, else `chromium` on the PATH."""
    explicit = os.environ.get("NBTRAIN_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter) -> None:
    if _artifacts_written:
        terminalreporter.write_line(f"browser test artifacts (screenshots, logs): {ARTIFACTS}")


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """As in tests/conftest.py, except for the worker threads of Playwright's event
    loop (`asyncio_N`): they belong to the session's browser, not to a test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    leaked = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()
                  and not t.name.startswith("asyncio_")]
        if not leaked:
            break
        leaked[0].join(timeout=0.05)
    assert not leaked, f"threads outlived the test: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The artifacts folder, emptied of the previous session's files."""
    global _artifacts_written
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.iterdir():
        if old.is_file():
            old.unlink()
    _artifacts_written = True
    print(f"browser test artifacts: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium; at the end, no process it started may remain."""
    executable = find_chromium()
    if executable is None:
        _unavailable("Chromium was not found",
                     "install it with `apt-get install chromium`, or set NBTRAIN_CHROMIUM "
                     "to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed",
                     "install the test extras: `pip install -e '.[test]'`")
    before = children(os.getpid())
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
    except BaseException:
        playwright.stop()
        raise
    started = [pid for pid in children(os.getpid()) if pid not in before]  # the driver
    try:
        yield browser
    finally:
        processes = descendants(*started)
        try:
            browser.close()
        finally:
            playwright.stop()
        left = reap(processes, 15)
    assert not left, f"browser processes outlived the tests (killed): {left}"


@pytest.fixture(scope="module")
def lab(artifacts: Path) -> Iterator[JupyterLab]:
    """`jupyter lab` serving a temporary copy of the notebooks; shut down (with
    every kernel) at the end, and no process below it may remain."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _unavailable("JupyterLab is not installed",
                     "install the test extras: `pip install -e '.[test]'`")
    root = Path(tempfile.mkdtemp(prefix="browser_lab_"))
    server = JupyterLab(root, NOTEBOOKS)
    left: list[str] = []
    try:
        server.start()
        yield server
    finally:
        left = server.stop()
        if server.log_path.exists():
            shutil.copy(server.log_path, artifacts / server.log_path.name)
        shutil.rmtree(root, ignore_errors=True)
    assert not left, f"processes outlived the JupyterLab server (killed): {left}"


@pytest.fixture
def page(browser: Any, lab: JupyterLab, artifacts: Path, request) -> Iterator[Any]:
    """A page in a new browser context.  Afterwards: the console log saved, a
    screenshot if the test failed, and every kernel shut down (none may remain)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    name = request.node.name
    left: list[str] = []
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        try:
            if report is None or report.failed:
                page.screenshot(path=artifacts / f"{name}-failure.png")
        finally:
            (artifacts / f"{name}-console.log").write_text("\n".join(console) + "\n")
            context.close()
            left = lab.shutdown_kernels()
    assert not left, f"kernel processes outlived their shutdown (killed): {left}"


@pytest.fixture
def screenshot(artifacts: Path) -> Callable[[Any, str], Path]:
    """`screenshot(locator, name)`: save the element's screenshot as an artifact."""

    def take(locator: Any, name: str) -> Path:
        path = artifacts / f"{name}.png"
        locator.screenshot(path=path)
        print(f"screenshot: {path}")
        return path

    return take
