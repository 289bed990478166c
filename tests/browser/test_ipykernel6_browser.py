"""The dashboard in JupyterLab with ipykernel 6 (issue 29, point 3).

ipykernel 6 runs widget messages only between cells: a busy cell cannot take
clicks (`nbtrain.kernel_events` needs ipykernel 7's shell-channel thread).
Many managed services still run it.  The kernel here is ipykernel 6.31, the
last 6.x, from `make ipykernel6` (built by `make test`: a virtualenv holding
only ipykernel 6 that sees the rest of `.venv`), registered as the kernelspec
`ipykernel6` of this module's JupyterLab; `ipykernel6_test.ipynb` asks for it.

In one kernel, in order:

- `nbtrain.fit` returns at once (the cell is done while the run trains); the
  dashboard renders and updates from the training thread, and says how to stop
  while a cell waits (`WAIT_HINT`: interrupt the kernel);
- Pause, Resume, Stop and Continue, clicked while no cell runs, steer the run
  (click-to-effect latency measured in the page, printed with `-s`);
- a page reloaded (after a save) while the run trains shows it; Stop clicked
  there, and the file saved from that page has the stopped snapshot;
- a blocking `model.fit(callbacks=[nbtrain.Dashboard()])` shows no buttons and
  says to interrupt the kernel (`STOP_HINT`); the toolbar's Interrupt ends it,
  the dashboard shows it stopped with its epochs, and the model's History keeps them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from browser_helpers import Dashboard, Notebook, Status, start_cell, timed_click, wait_cell_done
from test_reload_browser import save_and_reload, saved_snapshot

from nbtrain.dashboard.cell import STOP_HINT
from nbtrain.dashboard.display import WAIT_HINT

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under NBTRAIN_REQUIRE_BROWSER=1, and say why
    expect = None

NAME = "ipykernel6_test.ipynb"
KERNEL = "ipykernel6"
START = 180_000  # ms: a kernel's start, TensorFlow's import and the first traced step
STEPS = 40
LATENCY = 0.5  # s: the most a click may take to show its effect
STATUS = re.compile(r"^status\(run\)$")


def kernel_python() -> Path:
    """The Python of `make ipykernel6` (`NBTRAIN_IPYKERNEL6` may name another)."""
    named = os.environ.get("NBTRAIN_IPYKERNEL6")
    return Path(named) if named else Path(sys.prefix) / "ipykernel6" / "bin" / "python"


@pytest.fixture(scope="module")
def kernel6(lab) -> str:
    """The kernelspec `ipykernel6` in this module's JupyterLab (its data folder)."""
    python = kernel_python()
    if not os.access(python, os.X_OK):
        reason = f"no ipykernel 6 kernel at {python}"
        hint = "build it with `make ipykernel6` (make test does)"
        if os.environ.get("NBTRAIN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} ({hint}); NBTRAIN_REQUIRE_BROWSER=1 requires the browser tests",
                        pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}; {hint}")
    spec = lab.root / "data" / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel 6)",
        "language": "python",
    }))
    assert KERNEL in lab.api("GET", "api/kernelspecs")["kernelspecs"]
    return KERNEL


def messages(dashboard: Dashboard) -> str:
    return " ".join(dashboard.messages.inner_text().split())


def test_dashboard_on_ipykernel6(page, lab, kernel6, screenshot):
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" on a reload
    notebook = Notebook(page, lab, NAME).open(timeout=START)
    setup = notebook.run_cell(notebook.cell_with("import ipykernel"), timeout=START)
    assert re.search(r"kernel: ipykernel 6\.\d+", setup), setup
    status_cell = notebook.cell_with(STATUS)

    # nbtrain.fit returns at once; the dashboard renders and updates while no cell runs.
    fit_cell = notebook.cell_with("nbtrain.fit(")
    notebook.run_cell(fit_cell, timeout=START)
    dashboard = Dashboard(fit_cell)
    dashboard.expect_state("running", timeout=START)
    expect(dashboard.batch_counter).to_contain_text(f"/{STEPS}", timeout=START)
    dashboard.wait_plot(timeout=START)
    dashboard.wait_advance(dashboard.wait_advance(dashboard.position()))
    expect(dashboard.messages).to_contain_text("ipykernel 6")
    assert " ".join(WAIT_HINT.split()) in messages(dashboard)
    expect(dashboard.pause).to_be_enabled()
    expect(dashboard.stop).to_be_enabled()
    screenshot(dashboard.output_area, "ipykernel6-1-running")

    # The buttons, with the kernel idle.
    latencies = {"pause": timed_click(dashboard, dashboard.pause, "paused")}
    expect(dashboard.pause).to_have_text("Resume")
    paused = Status.parse(notebook.run_cell(status_cell))
    assert paused.state == "paused", paused
    held = dashboard.position()
    seen, elapsed = dashboard.watch_still(1.0)
    assert elapsed >= 1.0 and seen == {held.key}, f"paused, yet the counters moved: {seen}"
    latencies["resume"] = timed_click(dashboard, dashboard.pause, "running")
    dashboard.wait_advance(held, timeout=15_000)
    latencies["stop"] = timed_click(dashboard, dashboard.stop, "stopping|stopped")
    dashboard.expect_state("stopped", timeout=15_000)
    stopped = Status.parse(notebook.run_cell(status_cell))
    assert stopped.state == "stopped" and stopped.history >= 1, stopped
    expect(dashboard.continue_).to_be_enabled()
    latencies["continue"] = timed_click(dashboard, dashboard.continue_, "running")
    dashboard.wait_advance(dashboard.position(), timeout=15_000)
    print("click-to-effect latency, ipykernel 6, kernel idle: "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in latencies.items()))
    assert max(latencies.values()) < LATENCY, latencies

    # A page reloaded while the run trains; stopped from there, its save keeps the snapshot.
    dashboard = save_and_reload(notebook)
    dashboard.expect_state("running")
    dashboard.wait_advance(dashboard.position())
    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)
    notebook.save()
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    tables, images = saved_snapshot(lab, NAME)
    assert len(tables) == 1 and "stopped" in tables[0] and images == 1, tables
    screenshot(dashboard.output_area, "ipykernel6-2-stopped-after-reload")

    # A blocking fit: no buttons, how to stop instead; the kernel's Interrupt stops it.
    blocking = notebook.cell_with("nbtrain.Dashboard()]")
    start_cell(notebook, blocking)
    board = Dashboard(blocking)
    board.expect_state("running", timeout=START)
    expect(board.messages).to_contain_text("interrupt the kernel", timeout=START)
    assert " ".join(STOP_HINT.split()) in messages(board)
    for control in (board.pause, board.stop, board.continue_):
        expect(control).to_be_hidden()
    expect(board.epoch_counter).to_contain_text(re.compile(r"epoch [2-9] /"), timeout=START)
    screenshot(board.output_area, "ipykernel6-3-blocking")
    notebook.panel.locator(
        ".jp-NotebookPanel-toolbar [data-command='notebook:interrupt-kernel']").click()
    wait_cell_done(blocking, timeout=30_000)
    board.expect_state("stopped", timeout=15_000)
    assert "KeyboardInterrupt" in notebook.outputs_text(blocking)
    expect(board.messages).to_contain_text("Interrupted.")
    rows = board.epoch_rows().count()
    assert rows >= 1, "the dashboard lost the epochs trained"
    after = notebook.run_cell(notebook.cell_with("after the interrupt"))
    match = re.search(r"history epochs=(\d+) loss values=(\d+)", after)
    assert match and int(match[1]) == int(match[2]) >= 1, after
    assert rows == min(int(match[1]), 10), (rows, after)  # the table shows the last 10
    screenshot(board.output_area, "ipykernel6-4-interrupted")
