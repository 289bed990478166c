"""The dashboard's buttons while the kernel is busy, clicked in a real JupyterLab.

A kernel runs widget messages on the thread that runs cells; nbtrain handles
them from inside the busy cell (`nbtrain.kernel_events`).  Each case clicks
real buttons and measures click-to-effect latency in the page (from the
button's click event to the state badge's new class, one clock):

- `dashboard_busy_wait.ipynb`: a cell waits in `run.wait()`: Pause, Resume,
  Stop (the wait returns); then, while another cell waits on a second run,
  Continue and Stop on the first run's dashboard;
- `dashboard_busy_blocking.ipynb`: training on the cell's own thread, in
  `nbtrain.fit_generator(verbose=1)`, `model.fit_generator` under
  `%nbtrain legacy`, and `model.fit(callbacks=[nbtrain.Dashboard()])`:
  Pause, Resume, Stop (the call returns its History and the cell goes on).

In each, a cell queued while the first is busy runs after it, once, in order.
The latencies measured are printed (`pytest -s`) and must stay under 0.5 s.
"""

from __future__ import annotations

import re

from browser_helpers import (
    Dashboard,
    Notebook,
    cell_busy,
    start_cell,
    timed_click,
    wait_cell_done,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under NBTRAIN_REQUIRE_BROWSER=1, and say why
    expect = None

START = 180_000  # ms: a kernel's start, TensorFlow's import and the first traced step
STEPS = 40
LATENCY = 0.5  # s: the most a click may take to show its effect while a cell is busy
SETUP = "cells_run = []"
QUEUED = 'cells_run.append("queued")'


def report(case: str, latencies: dict[str, float]) -> None:
    print(f"click-to-effect latency, {case}: "
          + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in latencies.items()))
    slow = {name: seconds for name, seconds in latencies.items() if seconds >= LATENCY}
    assert not slow, f"{case}: clicks slower than {LATENCY} s: {slow}"


def pause_resume_stop(dashboard: Dashboard, busy: list) -> dict[str, float]:
    """Pause (the counters hold), Resume (they move), Stop, while every cell of
    `busy` stays busy; return the latencies."""
    latencies = {}
    # A dashboard's first plot builds its matplotlib figure (hundreds of ms on a loaded
    # machine), on the thread that trains: clicks are measured once it has drawn.
    dashboard.wait_plot(timeout=START)
    dashboard.wait_advance(dashboard.position())
    latencies["pause"] = timed_click(dashboard, dashboard.pause, "paused")
    assert all(cell_busy(cell) for cell in busy), "the cells were not busy during the click"
    expect(dashboard.pause).to_have_text("Resume")
    expect(dashboard.stop).to_be_enabled()
    held = dashboard.position()
    seen, elapsed = dashboard.watch_still(1.0)
    assert elapsed >= 1.0 and seen == {held.key}, f"paused, yet the counters moved: {seen}"
    latencies["resume"] = timed_click(dashboard, dashboard.pause, "running")
    expect(dashboard.pause).to_have_text("Pause")
    dashboard.wait_advance(held, timeout=15_000)
    assert all(cell_busy(cell) for cell in busy), "the cells were not busy during the click"
    latencies["stop"] = timed_click(dashboard, dashboard.stop, "stopping|stopped")
    return latencies


def test_buttons_while_a_cell_waits(page, lab, screenshot):
    notebook = Notebook(page, lab, "dashboard_busy_wait.ipynb").open()
    notebook.run_cell(notebook.cell_with(SETUP), timeout=START)
    fit_cell = notebook.cell_with("run = nbtrain.fit(")
    notebook.run_cell(fit_cell, timeout=START)
    dashboard = Dashboard(fit_cell)
    dashboard.expect_state("running", timeout=START)
    expect(dashboard.batch_counter).to_contain_text(f"/{STEPS}", timeout=START)

    # A cell blocks in run.wait(); another is queued behind it.
    wait_cell = notebook.cell_with("history = run.wait()")
    queued = notebook.cell_with(QUEUED)
    start_cell(notebook, wait_cell)
    start_cell(notebook, queued)
    latencies = pause_resume_stop(dashboard, [wait_cell, queued])
    screenshot(fit_cell.locator(".jp-Cell-outputWrapper"), "busy-wait-stopped")

    # Stop ended the wait; the queued cell ran after it, once.
    waited = wait_cell_done(wait_cell, timeout=30_000)
    assert wait_cell_done(queued, timeout=30_000) == waited + 1
    assert re.search(r"wait returned: state=stopped epochs=\d+", notebook.outputs_text(wait_cell))
    assert "cells_run=['wait', 'queued']" in notebook.outputs_text(queued)
    dashboard.expect_state("stopped")

    # While a cell waits on a second run, the first run's Continue and Stop work.
    second_cell = notebook.cell_with("second = nbtrain.fit(")
    start_cell(notebook, second_cell)
    second = Dashboard(second_cell)
    second.expect_state("running", timeout=START)
    expect(second.batch_counter).to_contain_text(f"/{STEPS}", timeout=START)
    second.wait_advance(second.position())
    expect(dashboard.continue_).to_be_enabled()
    before = dashboard.plot_source()
    latencies["continue"] = timed_click(dashboard, dashboard.continue_, "running")
    assert cell_busy(second_cell), "the cell was not busy during the click"
    dashboard.wait_advance(dashboard.position(), timeout=15_000)
    # An ended run let its figure go; the first render after Continue builds a new one
    # while holding the dashboard's lock, which a click's state change then waits for.
    dashboard.wait_new_plot(before)
    latencies["stop (continued run)"] = timed_click(dashboard, dashboard.stop, "stopping|stopped")
    latencies["stop (second run)"] = timed_click(second, second.stop, "stopping|stopped")
    second_done = wait_cell_done(second_cell, timeout=30_000)
    assert "second wait returned: state=stopped" in notebook.outputs_text(second_cell)
    end = notebook.cell_with('cells_run.append("end")')
    assert notebook.run_cell(end, timeout=30_000)
    assert wait_cell_done(end) == second_done + 1
    assert ("end: run=stopped second=stopped cells_run=['wait', 'queued', 'second', 'end']"
            in notebook.outputs_text(end))
    report("cell waiting in run.wait()", latencies)


def blocking_case(page, lab, screenshot, marker: str, returned: str, label: str) -> None:
    """Run the cell containing `marker` (training on the cell's thread), queue
    another, click Pause, Resume and Stop; the training call returns early."""
    notebook = Notebook(page, lab, "dashboard_busy_blocking.ipynb").open()
    notebook.run_cell(notebook.cell_with(SETUP), timeout=START)
    cell = notebook.cell_with(marker)
    queued = notebook.cell_with(QUEUED)
    start_cell(notebook, cell)
    start_cell(notebook, queued)
    dashboard = Dashboard(cell)
    dashboard.expect_state("running", timeout=START)
    expect(dashboard.batch_counter).to_contain_text(f"/{STEPS}", timeout=START)
    expect(dashboard.pause).to_be_visible()
    expect(dashboard.pause).to_be_enabled()
    expect(dashboard.stop).to_be_enabled()
    expect(dashboard.continue_).to_be_hidden()
    latencies = pause_resume_stop(dashboard, [cell, queued])
    dashboard.expect_state("stopped", timeout=15_000)
    ran = wait_cell_done(cell, timeout=30_000)
    assert wait_cell_done(queued, timeout=30_000) == ran + 1
    match = re.search(rf"{re.escape(returned)} returned: epochs=(\d+)", notebook.outputs_text(cell))
    assert match and 1 <= int(match[1]) < 50, notebook.outputs_text(cell)
    # the call returned: nothing can act, so no controls (hidden, not greyed)
    for control in (dashboard.pause, dashboard.stop, dashboard.continue_):
        expect(control).to_be_hidden()
        expect(control).to_be_disabled()
    assert f"cells_run=['{label}', 'queued']" in notebook.outputs_text(queued)
    screenshot(cell.locator(".jp-Cell-outputWrapper"), f"busy-{label}-stopped")
    report(f"training in the cell ({returned})", latencies)


def test_buttons_in_blocking_fit_generator(page, lab, screenshot):
    blocking_case(page, lab, screenshot, "nbtrain.fit_generator(", "fit_generator",
                  "fit_generator")


def test_buttons_in_legacy_model_fit_generator(page, lab, screenshot):
    blocking_case(page, lab, screenshot, "%nbtrain legacy", "model.fit_generator", "legacy")


def test_buttons_in_model_fit_with_dashboard(page, lab, screenshot):
    blocking_case(page, lab, screenshot, "nbtrain.Dashboard()]", "model.fit", "model.fit")
