"""The dashboard's basic flow in Jupyter Notebook 7's own UI (the `notebook`
package), not only in JupyterLab: it renders and updates, and Pause, Resume,
Stop and Continue steer the kernel's `Run`; Pause and Stop also while a cell
waits in `run.wait()`; every dropdown shows its value, the learning rate reads
as written and one applied while paused is pending until Resume, the height
holds while it trains, the table has a row per epoch.
A page reloaded while the run trains, stopped from that page, saves the
snapshot into the fit cell (the view's `SnapshotSaver`).

Notebook 7 is built from JupyterLab's components (same notebook widgets, same
widget manager), under its own application and page; its server runs as
`python -m notebook` with the settings of `JupyterLab` (see browser_helpers).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    Dashboard,
    JupyterNotebook,
    Notebook7,
    Status,
    cell_busy,
    start_cell,
    timed_click,
    wait_cell_done,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under NBTRAIN_REQUIRE_BROWSER=1, and say why
    expect = None

HERE = Path(__file__).resolve().parent
START = 180_000
STEPS = 40
STATUS = re.compile(r"^status\(run\)$")
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def notebook7(artifacts: Path) -> Iterator[JupyterNotebook]:
    """`jupyter notebook` serving a temporary copy of the test notebooks; shut
    down (with every kernel) at the end, and no process below it may remain."""
    try:
        import notebook  # noqa: F401
    except ImportError:
        hint = "install the test extras: `pip install -e '.[test]'` (the `notebook` package)"
        if os.environ.get("NBTRAIN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Jupyter Notebook 7 is not installed ({hint}); "
                        "NBTRAIN_REQUIRE_BROWSER=1 requires the browser tests", pytrace=False)
        pytest.skip(f"browser tests skipped: Jupyter Notebook 7 is not installed; {hint}")
    root = Path(tempfile.mkdtemp(prefix="browser_nb7_"))
    server = JupyterNotebook(root, sorted(HERE.glob("dashboard_test.ipynb")))
    left: list[str] = []
    try:
        server.start()
        yield server
    finally:
        left = server.stop()
        if server.log_path.exists():
            shutil.copy(server.log_path, artifacts / "notebook7-server.log")
        shutil.rmtree(root, ignore_errors=True)
    assert not left, f"processes outlived the Notebook 7 server (killed): {left}"


@pytest.fixture
def nb7_page(browser: Any, notebook7: JupyterNotebook, artifacts: Path, request) -> Iterator[Any]:
    """A page in a new browser context (as conftest's `page`, for the Notebook 7 server)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
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
            left = notebook7.shutdown_kernels()
    assert not left, f"kernel processes outlived their shutdown (killed): {left}"


def test_dashboard_flow_in_notebook7(nb7_page, notebook7, screenshot):
    page = nb7_page
    notebook = Notebook7(page, notebook7, "dashboard_test.ipynb").open()
    assert page.url.startswith(f"{notebook7.base}/notebooks/"), page.url  # Notebook 7's page
    expect(page.locator("#jp-main-statusbar")).to_have_count(0)  # not JupyterLab's shell
    notebook.run_all()
    fit_cell = notebook.cell_with("nbtrain.fit(")
    status_cell = notebook.cell_with(STATUS)
    dashboard = Dashboard(fit_cell)

    # Render: header, bars, table, a plot with a size, enabled controls.
    expect(dashboard.root).to_be_visible(timeout=START)
    notebook.wait_all_executed(timeout=START)
    dashboard.expect_state("running")
    expect(dashboard.lr_field).to_be_visible(timeout=START)  # every part is on the page
    watch = dashboard.watch_height()
    expect(dashboard.batch_counter).to_contain_text(f"/{STEPS}", timeout=START)
    for bar in (dashboard.epoch_bar, dashboard.batch_bar):
        expect(bar).to_be_visible()
    table = dashboard.metrics.locator("table.nbtrain-table")
    expect(table).to_be_visible(timeout=START)
    expect(table.locator("thead th", has_text="loss")).not_to_have_count(0)
    plot = dashboard.wait_plot(timeout=START)
    assert min(plot["natural"]) > 0 and min(plot["shown"]) > 0, plot
    expect(dashboard.pause).to_be_enabled()
    expect(dashboard.stop).to_be_enabled()
    expect(dashboard.continue_).to_be_hidden()
    # Every dropdown shows its value; the learning rate reads as written (Adam's default).
    expect(dashboard.plot_controls).to_be_visible()
    assert dashboard.selects() == [(0, "auto"), (0, "auto")], dashboard.selects()
    expect(dashboard.lr_field).to_have_value("0.001")
    expect(dashboard.lr_current).to_have_text("learning rate 0.001")
    # Updates from the training thread reach the page while no cell runs.
    dashboard.wait_advance(dashboard.wait_advance(dashboard.position()))
    screenshot(dashboard.output_area, "nb7-1-running")

    # Pause, with the kernel idle: the counters hold where the loop is held.
    dashboard.pause.click()
    dashboard.expect_state("paused", timeout=10_000)
    expect(dashboard.pause).to_have_text("Resume")
    paused = Status.parse(notebook.run_cell(status_cell))
    assert paused.state == "paused", paused
    held = dashboard.position()
    seen, elapsed = dashboard.watch_still(1.5)
    assert elapsed >= 1.5 and seen == {held.key}, f"paused, yet the counters moved: {seen}"
    # A learning rate applied while paused is pending until Resume, then applied.
    dashboard.lr_field.fill("0.002")
    dashboard.lr_apply.click()
    expect(dashboard.lr_note).to_have_text("pending: from the next batch")
    expect(dashboard.lr_current).to_have_text("learning rate 0.001")
    screenshot(dashboard.output_area, "nb7-2-paused")

    # Resume, then Pause and Resume again while a cell waits in run.wait().
    dashboard.pause.click()
    dashboard.expect_state("running", timeout=10_000)
    dashboard.wait_advance(held, timeout=15_000)
    expect(dashboard.lr_current).to_have_text("learning rate 0.002")
    expect(dashboard.lr_note).to_contain_text("applied from epoch")
    wait_cell = notebook.code_cells.last  # the status cell, given a new source:
    assert STATUS.search(wait_cell.locator(".jp-InputArea-editor").inner_text().strip())
    source = wait_cell.locator(".jp-InputArea-editor")
    source.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("history = run.wait()\nprint(f'waited: {run.state}')")
    start_cell(notebook, wait_cell)
    latencies = {"pause": timed_click(dashboard, dashboard.pause, "paused")}
    assert cell_busy(wait_cell)
    latencies["resume"] = timed_click(dashboard, dashboard.pause, "running")
    dashboard.wait_advance(dashboard.position(), timeout=15_000)
    # Stop, from the busy cell: the wait returns.
    latencies["stop"] = timed_click(dashboard, dashboard.stop, "stopping|stopped")
    wait_cell_done(wait_cell, timeout=30_000)
    assert "waited: stopped" in notebook.outputs_text(wait_cell)
    print("click-to-effect latency, Notebook 7, cell waiting in run.wait(): "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in latencies.items()))
    assert max(latencies.values()) < 0.5, latencies
    dashboard.expect_state("stopped")
    records = dashboard.heights(watch)
    stretches = dashboard.heights_while_training(records)
    assert len(stretches) == 1 and len(stretches[0]) == 1, (
        f"the dashboard's height changed while training:\n{dashboard.height_log(watch)}")
    expect(dashboard.snapshot).to_contain_text("stopped")
    expect(dashboard.continue_).to_be_enabled()
    screenshot(dashboard.output_area, "nb7-3-stopped")

    # Continue to the end of the next epoch and watch it finish.
    epoch = dashboard.position().epoch
    target = epoch + 1
    dashboard.continue_epochs.fill(str(target))
    dashboard.continue_.click()
    dashboard.expect_state("running", timeout=10_000)
    dashboard.expect_state("finished", timeout=60_000)
    expect(dashboard.epoch_counter).to_have_text(f"epoch {target} / {target}")
    expect(dashboard.snapshot).to_contain_text("finished")
    expect(dashboard.snapshot_image).to_have_count(1)
    expect(dashboard.epoch_rows()).to_have_count(min(target, 10))  # a row per epoch
    screenshot(dashboard.output_area, "nb7-4-finished")


def _saved_fit_outputs(path: Path) -> list[dict]:
    saved = json.loads(path.read_text())
    fit = [c for c in saved["cells"] if "nbtrain.fit(" in "".join(c["source"])]
    assert len(fit) == 1
    return fit[0]["outputs"]


def _snapshot_tables(outputs: list[dict]) -> list[str]:
    return ["".join(o["data"]["text/html"]) for o in outputs
            if "nbtrain-snapshot" in "".join(o.get("data", {}).get("text/html", ""))]


def wait_saved(path: Path, condition: Any, timeout: float = 30.0) -> list[dict]:
    """Wait until the notebook on disk has fit-cell outputs satisfying `condition`
    (Notebook 7 has no tab whose dirty mark a test could wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            outputs = _saved_fit_outputs(path)
        except (OSError, ValueError):
            outputs = []
        if condition(outputs):
            return outputs
        if time.monotonic() > deadline:
            return outputs
        time.sleep(0.2)  # polling a file: the server writes it, there is no event here


def test_a_page_reloaded_while_training_saves_the_snapshot(nb7_page, notebook7):
    page = nb7_page
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" on a reload
    notebook = Notebook7(page, notebook7, "dashboard_test.ipynb").open()
    notebook.run_all()
    dashboard = Dashboard(notebook.cell_with("nbtrain.fit("))
    expect(dashboard.root).to_be_visible(timeout=START)
    notebook.wait_all_executed(timeout=START)
    dashboard.wait_plot(timeout=START)
    dashboard.expect_state("running")
    path = notebook7.notebooks / "dashboard_test.ipynb"

    notebook.panel.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    outputs = wait_saved(path, lambda outputs: any(WIDGET in o.get("data", {}) for o in outputs))
    assert any(WIDGET in o.get("data", {}) for o in outputs)
    assert _snapshot_tables(outputs) == []  # saved while training: empty snapshot outputs

    page.reload()
    notebook.wait_kernel_idle(timeout=START)
    dashboard = Dashboard(notebook.cell_with("nbtrain.fit("))
    expect(dashboard.root).to_be_visible(timeout=60_000)  # restored from the kernel
    dashboard.wait_advance(dashboard.position())
    dashboard.stop.click()
    dashboard.expect_state("stopped", timeout=15_000)
    expect(dashboard.snapshot).to_be_hidden()  # written into the outputs, hidden by the view
    expect(dashboard.snapshot).to_have_count(1)

    notebook.panel.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    outputs = wait_saved(path, lambda outputs: len(_snapshot_tables(outputs)) == 1)
    tables = _snapshot_tables(outputs)
    assert len(tables) == 1 and "stopped" in tables[0], outputs
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 1
