"""Shared test set-up: quiet TensorFlow, no thread may outlive a test, the groups
`make test` hands to its two pytest-xdist workers (`--dist loadgroup`), and every
thread's stack printed when a test fails on a timeout (a rare hang, diagnosed from CI's
log)."""

from __future__ import annotations

import faulthandler
import os
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

BROWSER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser") + os.sep


def pytest_collection_modifyitems(items) -> None:
    """One xdist group a test file, and one for all the browser tests: each of them
    starts a JupyterLab, a kernel and Chromium, and their latencies are measured against
    limits, so two at once on a 2-core machine would measure each other."""
    for item in items:
        path = str(item.path)
        group = "browser" if path.startswith(BROWSER) else path
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed on a timeout (`run.wait(timeout=...)`, an event waited for):
    print every thread's stack while they are still where they hung."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and (
            call.excinfo.errisinstance(TimeoutError) or "timed out" in str(call.excinfo.value)):
        with tempfile.TemporaryFile("w+") as stacks:  # faulthandler writes to a file
            faulthandler.dump_traceback(file=stacks, all_threads=True)
            stacks.seek(0)
            report.sections.append(("every thread's stack at the timeout", stacks.read()))


@pytest.fixture(scope="module")
def ipython():
    """One real IPython shell (and its history thread) for the module; at the end it
    is no longer the process's shell, so `get_ipython()` in later modules, under
    pytest-xdist in any order, finds none, as in a plain interpreter."""
    from IPython.core.interactiveshell import InteractiveShell

    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every thread a test starts must be joined by the code under test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    leaked = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            break
        leaked[0].join(timeout=0.05)
    assert not leaked, f"threads outlived the test: {[t.name for t in leaked]}"
